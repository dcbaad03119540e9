//! Packet captures on a namespace's interface (tcpdump), read back and classified, so tests can prove
//! what crossed the wire: ESP, IKE, or cleartext.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::netns::Netns;
use crate::process::{wait_until, Daemon};
use crate::require;

/// A running capture.
#[derive(Debug)]
pub struct Capture {
    daemon: Daemon,
    file: PathBuf,
    dir: tempfile::TempDir,
}

/// What a captured IP packet carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ESP (IP protocol 50, or UDP-encapsulated on port 4500), with its SPI.
    Esp { spi: u32 },
    /// IKE on UDP 500, or on 4500 behind the non-ESP marker.
    Ike,
    /// Other UDP.
    Udp { src_port: u16, dst_port: u16 },
    /// TCP; `syn` is set for SYN segments (with or without ACK).
    Tcp {
        src_port: u16,
        dst_port: u16,
        syn: bool,
    },
    /// ICMP or ICMPv6.
    Icmp,
    /// Any other IP protocol.
    Other(u8),
}

/// One captured IP packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packet {
    /// Seconds since the epoch.
    pub time: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub kind: Kind,
    /// For IKE, the message's exchange type (RFC 7296 3.1: 34 IKE_SA_INIT, 35 IKE_AUTH, 43
    /// IKE_INTERMEDIATE, 44 IKE_FOLLOWUP_KE...), if the header was captured.
    pub ike_exchange: Option<u8>,
}

impl Packet {
    /// Whether this packet travelled between `a` and `b` (either direction).
    pub fn between(&self, a: IpAddr, b: IpAddr) -> bool {
        (self.src == a && self.dst == b) || (self.src == b && self.dst == a)
    }

    /// Whether the packet is plaintext application traffic (not ESP, not IKE, not ICMP control).
    pub fn is_cleartext_payload(&self) -> bool {
        matches!(
            self.kind,
            Kind::Udp { .. } | Kind::Tcp { .. } | Kind::Other(_)
        )
    }
}

impl Capture {
    /// Starts tcpdump on `ifname` inside `ns` and waits until it listens.
    pub fn start(ns: &Netns, ifname: &str) -> Self {
        Self::start_with(ns, ifname, &[])
    }

    /// Like [`Capture::start`], keeping only what `ns` sends on `ifname` (`tcpdump -Q out`):
    /// what that host put on the wire. Tunnel-mode ESP needs it: the kernel hands a
    /// decapsulated packet back to the receiving device, so a capture of both directions
    /// shows every received inner packet a second time, in clear, though it never crossed
    /// the link.
    pub fn start_outgoing(ns: &Netns, ifname: &str) -> Self {
        Self::start_with(ns, ifname, &["-Q", "out"])
    }

    fn start_with(ns: &Netns, ifname: &str, extra: &[&str]) -> Self {
        require::program("tcpdump", "tcpdump");
        let dir = tempfile::Builder::new()
            .prefix("oe-pcap.")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("capture.pcap");
        let log = dir.path().join("tcpdump.log");
        let mut cmd = ns.cmd("tcpdump");
        // Whole frames (-s 0): a truncated frame would hide what it carried.
        cmd.args([
            "-Z",
            "root",
            "-U",
            "--immediate-mode",
            "-n",
            "-s",
            "0",
            "-i",
            ifname,
        ])
        .args(extra)
        .arg("-w")
        .arg(&file);
        let daemon = Daemon::spawn("tcpdump", cmd, &log).unwrap_or_else(|e| panic!("tcpdump: {e}"));
        let listening = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening on"))
        });
        assert!(
            listening,
            "tcpdump did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { daemon, file, dir }
    }

    /// Stops the capture and returns its IP packets in order.
    pub fn stop(self) -> Vec<Packet> {
        let bytes = self.stop_file();
        parse_pcap(&bytes).unwrap_or_else(|e| panic!("bad capture file: {e}"))
    }

    /// Stops the capture and returns every UDP datagram's payload in order (for fuzz seeds).
    pub fn stop_udp(self) -> Vec<Datagram> {
        let bytes = self.stop_file();
        udp_datagrams(&bytes).unwrap_or_else(|e| panic!("bad capture file: {e}"))
    }

    /// Stops tcpdump and returns the pcap file's bytes.
    fn stop_file(mut self) -> Vec<u8> {
        // Let packets in flight reach the file before tcpdump stops.
        std::thread::sleep(Duration::from_millis(200));
        self.daemon.stop(Duration::from_secs(5));
        let bytes = std::fs::read(&self.file)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.file.display()));
        drop(self.dir);
        bytes
    }
}

/// One captured UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// The UDP datagrams of a classic pcap file (Ethernet link type), whole ones only.
pub fn udp_datagrams(bytes: &[u8]) -> Result<Vec<Datagram>, String> {
    let mut out = Vec::new();
    for_each_frame(bytes, |_, frame| {
        let Ok(sliced) = etherparse::SlicedPacket::from_ethernet(frame) else {
            return;
        };
        if let Some(TransportSlice::Udp(udp)) = sliced.transport {
            out.push(Datagram {
                src_port: udp.source_port(),
                dst_port: udp.destination_port(),
                payload: udp.payload().to_vec(),
            });
        }
    })?;
    Ok(out)
}

/// Parses a classic pcap file (Ethernet link type) into classified IP packets; other frames are skipped.
pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<Packet>, String> {
    let mut packets = Vec::new();
    for_each_frame(bytes, |time, frame| packets.extend(classify(time, frame)))?;
    Ok(packets)
}

/// Calls `each` with every record's time (seconds since the epoch) and frame.
fn for_each_frame(bytes: &[u8], mut each: impl FnMut(f64, &[u8])) -> Result<(), String> {
    let header = bytes.get(..24).ok_or("short pcap header")?;
    let magic = u32::from_le_bytes(word(header, 0)?);
    let (big_endian, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xd4c3_b2a1 => (true, false),
        0xa1b2_3c4d => (false, true),
        0x4d3c_b2a1 => (true, true),
        other => return Err(format!("not a pcap file (magic {other:#x})")),
    };
    let read = |b: &[u8], at: usize| -> Result<u32, String> {
        let w = word(b, at)?;
        Ok(if big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        })
    };
    if read(header, 20)? != 1 {
        return Err("only Ethernet captures are supported".into());
    }
    let mut rest = bytes.get(24..).unwrap_or_default();
    while !rest.is_empty() {
        let rec = rest.get(..16).ok_or("truncated record header")?;
        let len = usize::try_from(read(rec, 8)?).map_err(|e| e.to_string())?;
        let frame = rest.get(16..16 + len).ok_or("truncated record")?;
        let frac = f64::from(read(rec, 4)?) / if nanos { 1e9 } else { 1e6 };
        each(f64::from(read(rec, 0)?) + frac, frame);
        rest = rest.get(16 + len..).unwrap_or_default();
    }
    Ok(())
}

fn word(b: &[u8], at: usize) -> Result<[u8; 4], String> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| "truncated pcap".to_owned())
}

/// Classifies one frame. Lax parsing: a frame whose IP or transport header claims more bytes than were
/// captured is still classified by what its headers say, never silently skipped.
fn classify(time: f64, frame: &[u8]) -> Option<Packet> {
    let sliced = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let (src, dst, proto, payload) = match sliced.net? {
        LaxNetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload().ip_number.0,
            ip.payload().payload,
        ),
        LaxNetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload().ip_number.0,
            ip.payload().payload,
        ),
        LaxNetSlice::Arp(_) => return None,
    };
    let mut ike_exchange = None;
    let kind = match (proto, sliced.transport) {
        (50, _) => Kind::Esp {
            spi: u32::from_be_bytes(word(payload, 0).ok()?),
        },
        (_, Some(TransportSlice::Udp(udp))) => {
            let kind = udp_kind(udp.source_port(), udp.destination_port(), udp.payload());
            if kind == Kind::Ike {
                let on_500 = udp.source_port() == 500 || udp.destination_port() == 500;
                ike_exchange = exchange_type(on_500, udp.payload());
            }
            kind
        }
        (_, Some(TransportSlice::Tcp(tcp))) => Kind::Tcp {
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            syn: tcp.syn(),
        },
        (_, Some(TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_))) | (1 | 58, _) => {
            Kind::Icmp
        }
        // A UDP or TCP header that did not fit in the capture: still application traffic.
        (17, None) => Kind::Udp {
            src_port: 0,
            dst_port: 0,
        },
        (6, None) => Kind::Tcp {
            src_port: 0,
            dst_port: 0,
            syn: false,
        },
        (other, _) => Kind::Other(other),
    };
    Some(Packet {
        time,
        src,
        dst,
        kind,
        ike_exchange,
    })
}

/// The exchange type of an IKE message (byte 18 of its header), after the non-ESP marker off
/// port 500 (RFC 3948 2.2).
fn exchange_type(on_500: bool, payload: &[u8]) -> Option<u8> {
    let message = if on_500 { payload } else { payload.get(4..)? };
    message.get(18).copied()
}

fn udp_kind(src_port: u16, dst_port: u16, payload: &[u8]) -> Kind {
    if src_port == 500 || dst_port == 500 {
        return Kind::Ike;
    }
    if src_port == 4500 || dst_port == 4500 {
        // RFC 3948 section 2.2: a zero non-ESP marker means IKE; one byte 0xff is a NAT keepalive.
        return match word(payload, 0) {
            Ok([0, 0, 0, 0]) | Err(_) => Kind::Ike,
            Ok(spi) => Kind::Esp {
                spi: u32::from_be_bytes(spi),
            },
        };
    }
    Kind::Udp { src_port, dst_port }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(parse_pcap(&[]).is_err());
        assert!(parse_pcap(&[0u8; 24]).is_err());
        let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        header.extend_from_slice(&[0; 12]);
        header.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(parse_pcap(&header), Ok(vec![]));
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&100u32.to_le_bytes());
        header.extend_from_slice(&100u32.to_le_bytes());
        assert!(
            parse_pcap(&header).is_err(),
            "a record longer than the file must be an error"
        );
    }

    #[test]
    fn truncated_frames_are_still_classified() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]); // IPv4
        let mut ip = vec![
            0x45, 0, 0x05, 0x78, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        ip.extend_from_slice(&[0x04, 0xd2, 0x13, 0x88, 0x05, 0x64, 0, 0]); // UDP 1234 -> 5000, claims 1380 bytes
        ip.extend_from_slice(b"only a few");
        frame.extend_from_slice(&ip);
        let packet =
            classify(1.0, &frame).expect("a frame cut short by the capture is still a packet");
        assert_eq!(
            packet.kind,
            Kind::Udp {
                src_port: 1234,
                dst_port: 5000
            }
        );
        assert!(packet.is_cleartext_payload());
        assert_eq!(packet.ike_exchange, None);
    }

    #[test]
    fn ike_exchange_type_is_read_on_both_ports() {
        let mut ike = vec![0u8; 28];
        ike[18] = 43;
        assert_eq!(exchange_type(true, &ike), Some(43));
        let marked = [&[0u8; 4][..], &ike].concat();
        assert_eq!(exchange_type(false, &marked), Some(43));
        assert_eq!(exchange_type(true, &ike[..10]), None);
    }

    #[test]
    fn nat_t_marker_separates_ike_from_esp() {
        assert_eq!(udp_kind(4500, 4500, &[0, 0, 0, 0, 1]), Kind::Ike);
        assert_eq!(
            udp_kind(4500, 4500, &[0, 0, 1, 2, 9]),
            Kind::Esp { spi: 0x0102 }
        );
        assert_eq!(
            udp_kind(1234, 53, &[1, 2, 3, 4]),
            Kind::Udp {
                src_port: 1234,
                dst_port: 53
            }
        );
    }
}
