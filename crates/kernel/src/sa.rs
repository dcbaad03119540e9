//! Transport-mode ESP SAs: what to install, and what the kernel reports back.

use std::net::IpAddr;

use netlink_packet_xfrm::{
    Address, EncapTmpl, LifetimeConfig, ReplayEsn, UserSaId, UserSaInfo, XfrmAttrs, IPPROTO_ESP,
    UDP_ENCAP_ESPINUDP, XFRM_INF, XFRM_MODE_TRANSPORT, XFRM_MODE_TUNNEL, XFRM_STATE_ESN,
};

use crate::alg::EspAlgorithm;
use crate::event::Flow;
use crate::snapshot::PendingAcquire;
use crate::types::{Family, InvalidRequest, Reqid, Spi, TrafficSelector};

/// The ESP mode of an SA or policy template (RFC 4301 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// The hosts' own packets are protected; the SA's addresses are the packets'.
    #[default]
    Transport,
    /// Inner packets (between the selector's addresses, possibly a virtual address
    /// assigned by the peer) travel inside an outer IP header between the SA's addresses.
    Tunnel,
}

impl Mode {
    pub(crate) fn to_xfrm(self) -> u8 {
        match self {
            Self::Transport => XFRM_MODE_TRANSPORT,
            Self::Tunnel => XFRM_MODE_TUNNEL,
        }
    }

    pub(crate) fn from_xfrm(mode: u8) -> Option<Self> {
        match mode {
            XFRM_MODE_TRANSPORT => Some(Self::Transport),
            XFRM_MODE_TUNNEL => Some(Self::Tunnel),
            _ => None,
        }
    }
}

/// Identifies an SA: destination address, SPI and protocol (`struct xfrm_usersa_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaId {
    /// Destination address (the receiving host).
    pub dst: IpAddr,
    /// SPI chosen by the receiver.
    pub spi: Spi,
    /// IP protocol: ESP (50) for everything this crate installs.
    pub proto: u8,
}

impl SaId {
    /// An ESP SA.
    pub fn esp(dst: IpAddr, spi: Spi) -> Self {
        Self {
            dst,
            spi,
            proto: IPPROTO_ESP,
        }
    }

    pub(crate) fn to_xfrm(self) -> UserSaId {
        UserSaId {
            daddr: Address::from_ip(&self.dst),
            spi: self.spi.0,
            family: Family::of(&self.dst).af(),
            proto: self.proto,
        }
    }
}

/// Limits of one kind of lifetime; `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Bytes processed.
    pub bytes: Option<u64>,
    /// Packets processed.
    pub packets: Option<u64>,
    /// Seconds since installation.
    pub add_seconds: Option<u64>,
    /// Seconds since first use.
    pub use_seconds: Option<u64>,
}

/// Soft limits raise an EXPIRE event (time to rekey); hard limits raise an EXPIRE
/// event and remove the SA (or policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// Rekey point.
    pub soft: Limits,
    /// End of life.
    pub hard: Limits,
}

impl Lifetime {
    /// Only a hard limit on age: used for shunts and probes.
    pub fn hard_seconds(seconds: u64) -> Self {
        Self {
            hard: Limits {
                add_seconds: Some(seconds),
                ..Limits::default()
            },
            ..Self::default()
        }
    }

    /// Checks that each soft limit lies below its hard limit.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        let pairs = [
            ("bytes", self.soft.bytes, self.hard.bytes),
            ("packets", self.soft.packets, self.hard.packets),
            ("add seconds", self.soft.add_seconds, self.hard.add_seconds),
            ("use seconds", self.soft.use_seconds, self.hard.use_seconds),
        ];
        for (what, soft, hard) in pairs {
            if let (Some(soft), Some(hard)) = (soft, hard) {
                if soft >= hard {
                    return Err(InvalidRequest::Lifetime { what, soft, hard });
                }
            }
        }
        Ok(())
    }

    /// `struct xfrm_lifetime_cfg`: `XFRM_INF` for no byte/packet limit, 0 for no time limit.
    pub(crate) fn to_xfrm(self) -> LifetimeConfig {
        let count = |v: Option<u64>| v.unwrap_or(XFRM_INF);
        let time = |v: Option<u64>| v.unwrap_or(0);
        LifetimeConfig {
            soft_byte_limit: count(self.soft.bytes),
            hard_byte_limit: count(self.hard.bytes),
            soft_packet_limit: count(self.soft.packets),
            hard_packet_limit: count(self.hard.packets),
            soft_add_expires_seconds: time(self.soft.add_seconds),
            hard_add_expires_seconds: time(self.hard.add_seconds),
            soft_use_expires_seconds: time(self.soft.use_seconds),
            hard_use_expires_seconds: time(self.hard.use_seconds),
        }
    }

    pub(crate) fn from_xfrm(cfg: &LifetimeConfig) -> Self {
        let count = |v: u64| (v != XFRM_INF).then_some(v);
        let time = |v: u64| (v != 0).then_some(v);
        Self {
            soft: Limits {
                bytes: count(cfg.soft_byte_limit),
                packets: count(cfg.soft_packet_limit),
                add_seconds: time(cfg.soft_add_expires_seconds),
                use_seconds: time(cfg.soft_use_expires_seconds),
            },
            hard: Limits {
                bytes: count(cfg.hard_byte_limit),
                packets: count(cfg.hard_packet_limit),
                add_seconds: time(cfg.hard_add_expires_seconds),
                use_seconds: time(cfg.hard_use_expires_seconds),
            },
        }
    }
}

/// Anti-replay settings (RFC 4303 section 3.4.3) and extended sequence numbers
/// (section 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// Window in packets; 0 disables anti-replay (only valid without ESN).
    pub window: u32,
    /// 64-bit extended sequence numbers.
    pub esn: bool,
}

impl Default for Replay {
    fn default() -> Self {
        Self {
            window: 32,
            esn: false,
        }
    }
}

/// Largest replay window the kernel accepts (`XFRMA_REPLAY_ESN_MAX` bytes of bitmap).
pub const MAX_REPLAY_WINDOW: u32 = 4096 * 8;

/// The classic `replay_window` field is 8 bits wide and the classic bitmap 32 bits.
const CLASSIC_WINDOW: u32 = 32;

impl Replay {
    fn validate(&self) -> Result<(), InvalidRequest> {
        if self.window > MAX_REPLAY_WINDOW || (self.esn && self.window == 0) {
            return Err(InvalidRequest::ReplayWindow(self.window));
        }
        Ok(())
    }

    /// ESN or windows over 32 need `XFRMA_REPLAY_ESN_VAL`, and then the header's
    /// `replay_window` must be 0.
    fn esn_attr(&self) -> Option<XfrmAttrs> {
        if !self.esn && self.window <= CLASSIC_WINDOW {
            return None;
        }
        let bmp_len = self.window.div_ceil(32);
        Some(XfrmAttrs::ReplayStateEsn(ReplayEsn {
            bmp_len,
            replay_window: self.window,
            bmp: vec![0; usize::try_from(bmp_len).unwrap_or(0)],
            ..ReplayEsn::default()
        }))
    }

    fn header_window(&self) -> u8 {
        match self.esn_attr() {
            Some(_) => 0,
            None => u8::try_from(self.window).unwrap_or(0),
        }
    }
}

/// UDP encapsulation of ESP for NAT traversal (RFC 3948): the ports on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpEncap {
    /// Source UDP port (usually 4500).
    pub src_port: u16,
    /// Destination UDP port (usually 4500, or the NAT's mapping).
    pub dst_port: u16,
    /// For inbound SAs: report a changed peer address or port (MAPPING event) at most
    /// this often, in seconds (`XFRMA_MTIMER_THRESH`, Linux 5.17+). `None` leaves the
    /// kernel default.
    pub mapping_threshold: Option<u32>,
}

/// Everything needed to install one ESP SA. The mode is the request's
/// ([`crate::Request::add_sa_in`]): transport unless asked otherwise.
#[derive(Debug, Clone)]
pub struct SaSpec {
    /// Sending host (in tunnel mode: the outer source).
    pub src: IpAddr,
    /// Receiving host (in tunnel mode: the outer destination).
    pub dst: IpAddr,
    /// SPI chosen by the receiver.
    pub spi: Spi,
    /// Request id; must lie in the owner's range (see [`crate::Ownership`]).
    pub reqid: Reqid,
    /// Transform and keys.
    pub algorithm: EspAlgorithm,
    /// Soft and hard lifetimes.
    pub lifetime: Lifetime,
    /// Anti-replay and ESN.
    pub replay: Replay,
    /// UDP encapsulation, if a NAT was detected.
    pub encap: Option<UdpEncap>,
    /// Traffic the SA carries; `None` means all traffic between `src` and `dst`. In tunnel
    /// mode, the inner packets: the kernel drops decapsulated packets outside it.
    pub selector: Option<TrafficSelector>,
    /// The `seq` of the ACQUIRE this SA answers: the kernel then replaces the larval
    /// state that holds back further ACQUIREs for the flow.
    pub acquire_seq: Option<u32>,
}

impl SaSpec {
    /// The SA's id.
    pub fn id(&self) -> SaId {
        SaId::esp(self.dst, self.spi)
    }

    /// Checks the request without asking the kernel.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        if Family::of(&self.src) != Family::of(&self.dst) {
            return Err(InvalidRequest::SaFamilies);
        }
        if self.spi.0 == 0 {
            return Err(InvalidRequest::ZeroSpi);
        }
        if let Some(sel) = &self.selector {
            if sel.family() != Family::of(&self.dst) {
                return Err(InvalidRequest::SaFamilies);
            }
        }
        self.algorithm.validate()?;
        self.lifetime.validate()?;
        self.replay.validate()
    }

    pub(crate) fn sa_info(&self, mode: Mode) -> Result<UserSaInfo, InvalidRequest> {
        let family = Family::of(&self.dst);
        let selector = match self.selector {
            Some(sel) => sel,
            None => TrafficSelector::hosts(self.src, self.dst)?,
        };
        let mut info = UserSaInfo {
            selector: selector.to_xfrm(),
            saddr: Address::from_ip(&self.src),
            lifetime_cfg: self.lifetime.to_xfrm(),
            seq: self.acquire_seq.unwrap_or(0),
            reqid: self.reqid.0,
            family: family.af(),
            mode: mode.to_xfrm(),
            replay_window: self.replay.header_window(),
            flags: if self.replay.esn { XFRM_STATE_ESN } else { 0 },
            ..UserSaInfo::default()
        };
        info.id.daddr = Address::from_ip(&self.dst);
        info.id.spi = self.spi.0;
        info.id.proto = IPPROTO_ESP;
        Ok(info)
    }

    pub(crate) fn attrs(&self) -> Vec<XfrmAttrs> {
        let mut attrs = self.algorithm.attrs();
        attrs.extend(self.replay.esn_attr());
        if let Some(encap) = self.encap {
            attrs.push(XfrmAttrs::EncapsulationTemplate(EncapTmpl {
                encap_type: UDP_ENCAP_ESPINUDP,
                encap_sport: encap.src_port,
                encap_dport: encap.dst_port,
                encap_oa: Address::default(),
            }));
            attrs.extend(encap.mapping_threshold.map(XfrmAttrs::MappingTimeThreshold));
        }
        attrs
    }
}

/// What the kernel has counted for an SA (`struct xfrm_lifetime_cur` and stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Bytes processed.
    pub bytes: u64,
    /// Packets processed.
    pub packets: u64,
    /// Installation time (seconds since the epoch).
    pub add_time: u64,
    /// First use (seconds since the epoch), 0 if never used.
    pub use_time: u64,
}

/// Error counters of an SA (`struct xfrm_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaStats {
    /// Packets dropped because they fell outside the replay window.
    pub replay_window: u32,
    /// Replayed packets dropped.
    pub replay: u32,
    /// Packets that failed integrity checks.
    pub integrity_failed: u32,
}

/// An SA as the kernel reports it (GETSA, dumps, ALLOCSPI replies). Never carries keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaInfo {
    /// Destination, SPI, protocol.
    pub id: SaId,
    /// Source address.
    pub src: IpAddr,
    /// Request id.
    pub reqid: Reqid,
    /// `XFRM_MODE_*` (0 = transport).
    pub mode: u8,
    /// Traffic selector, when it is one this crate can express.
    pub selector: Option<TrafficSelector>,
    /// Configured lifetimes.
    pub lifetime: Lifetime,
    /// Current counters.
    pub current: Counters,
    /// Error counters.
    pub stats: SaStats,
    /// Last time a packet used the SA (seconds since the epoch), if the kernel reports
    /// it. Linux updates it for every packet only since "xfrm: update x->lastused for
    /// every packet" (not in 6.1, where transport-mode SAs report none): compare
    /// [`Counters`] between two reads to detect idleness portably.
    pub last_used: Option<u64>,
    /// Names of the kernel algorithms (`rfc4106(gcm(aes))`, ...).
    pub algorithms: Vec<String>,
    /// UDP encapsulation ports, if any.
    pub encap: Option<(u16, u16)>,
    /// Replay window in packets.
    pub replay_window: u32,
    /// Extended sequence numbers in use.
    pub esn: bool,
    /// Outbound sequence number (low 32 bits).
    pub oseq: u32,
    /// Whether the SA is larval (reserved by ALLOCSPI or an ACQUIRE, no keys yet).
    pub larval: bool,
    /// The kernel's sequence number of the state (`km.seq`): for a larval state an ACQUIRE
    /// left, the ACQUIRE's [`crate::Acquire::seq`]; for an SA that answered one, the same.
    pub seq: u32,
    /// For a larval state an ACQUIRE left (no SPI yet): the packet's flow, read from the
    /// state's selector as [`crate::Acquire::flow`] is. `None` for every other state.
    pub acquired: Option<Flow>,
}

impl SaInfo {
    /// The protocol of the SA's id.
    pub fn is_esp(&self) -> bool {
        self.id.proto == IPPROTO_ESP
    }

    /// The SA's mode, if it is one this crate installs.
    pub fn mode(&self) -> Option<Mode> {
        Mode::from_xfrm(self.mode)
    }

    /// The ACQUIRE this larval state stands for, if an ACQUIRE left it.
    pub fn pending_acquire(&self) -> Option<PendingAcquire> {
        Some(PendingAcquire {
            flow: self.acquired?,
            reqid: self.reqid,
            seq: self.seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::AlgorithmKind;

    pub(crate) fn spec() -> SaSpec {
        SaSpec {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            spi: Spi(0x1234_5678),
            reqid: Reqid(0x6f65_0001),
            algorithm: AlgorithmKind::AesGcm128.filler(1),
            lifetime: Lifetime::default(),
            replay: Replay::default(),
            encap: None,
            selector: None,
            acquire_seq: None,
        }
    }

    #[test]
    fn validate_catches_mistakes() {
        assert_eq!(spec().validate(), Ok(()));
        let mut s = spec();
        s.dst = "2001:db8::2".parse().unwrap();
        assert_eq!(s.validate(), Err(InvalidRequest::SaFamilies));
        let mut s = spec();
        s.spi = Spi(0);
        assert_eq!(s.validate(), Err(InvalidRequest::ZeroSpi));
        let mut s = spec();
        s.lifetime.soft.packets = Some(10);
        s.lifetime.hard.packets = Some(10);
        assert!(matches!(s.validate(), Err(InvalidRequest::Lifetime { .. })));
        let mut s = spec();
        s.replay = Replay {
            window: 0,
            esn: true,
        };
        assert_eq!(s.validate(), Err(InvalidRequest::ReplayWindow(0)));
    }

    #[test]
    fn lifetime_round_trip() {
        let l = Lifetime {
            soft: Limits {
                bytes: Some(1000),
                packets: None,
                add_seconds: Some(30),
                use_seconds: None,
            },
            hard: Limits {
                bytes: Some(2000),
                packets: Some(5),
                add_seconds: Some(60),
                use_seconds: Some(9),
            },
        };
        assert_eq!(Lifetime::from_xfrm(&l.to_xfrm()), l);
        assert_eq!(l.to_xfrm().soft_packet_limit, XFRM_INF);
    }

    #[test]
    fn replay_encoding() {
        let classic = Replay {
            window: 32,
            esn: false,
        };
        assert!(classic.esn_attr().is_none());
        assert_eq!(classic.header_window(), 32);
        let big = Replay {
            window: 128,
            esn: true,
        };
        let Some(XfrmAttrs::ReplayStateEsn(r)) = big.esn_attr() else {
            panic!()
        };
        assert_eq!((r.bmp_len, r.replay_window, r.bmp.len()), (4, 128, 4));
        assert_eq!(big.header_window(), 0);
    }

    #[test]
    fn sa_info_fields() {
        let mut s = spec();
        s.acquire_seq = Some(77);
        let info = s.sa_info(Mode::Transport).unwrap();
        assert_eq!(info.id.spi, 0x1234_5678);
        assert_eq!(
            (info.mode, info.seq, info.reqid),
            (XFRM_MODE_TRANSPORT, 77, 0x6f65_0001)
        );
        assert_eq!(
            (info.selector.prefixlen_d, info.selector.prefixlen_s),
            (32, 32)
        );
        assert_eq!(s.sa_info(Mode::Tunnel).unwrap().mode, XFRM_MODE_TUNNEL);
    }
}
