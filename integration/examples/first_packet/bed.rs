//! The bench's hosts on one LAN, with the signed DNS fixture:
//!
//! | host  | address(es)               | runs                                                      |
//! |-------|---------------------------|-----------------------------------------------------------|
//! | ws    | 192.0.2.1                 | `oe` (anonymous, private-or-clear 0.0.0.0/0, the stub)    |
//! | ss    | 192.0.2.13                | strongSwan charon, `start_action=trap`, keys configured   |
//! | lsw   | 192.0.2.12                | Libreswan pluto, OE with `rightrsasigkey=%dnsondemand`    |
//! | plain | 192.0.2.2                 | nothing: the floors, and keyless traffic without an agent |
//! | srv   | 192.0.2.30                | `oe` server, Ed25519, identity its address (reverse zone) |
//! | fq    | 192.0.2.44                | `oe` server, RSA-3072, identity `srvrsa.rsa.example`      |
//! | nokey | 192.0.2.100-, 198.51.100.100- | no IKE, no key (keyless destinations)                 |
//!
//! Libreswan 4.10 has no Ed25519 and its libunbound refuses the documentation ranges' reverse
//! zones, so pluto reaches the FQDN server; charon (no ipseckey plugin in Debian's build) is
//! given srv's key, and srv authenticates charon by the key in charon's reverse zone.

use std::net::IpAddr;

use oe_integration::agent::Agent;
use oe_integration::capture::Capture;
use oe_integration::dns::DnsFixture;
use oe_integration::netns::Netns;
use oe_integration::scenario::{LanBed, RESOLVER};
use oe_integration::test_key_ipseckey;

pub const WS: &str = "192.0.2.1";
pub const PLAIN: &str = "192.0.2.2";
pub const SS: &str = "192.0.2.13";
pub const LSW: &str = "192.0.2.12";
pub const SRV: &str = "192.0.2.30";
pub const SRV_NAME: &str = "host.ed.example.";
pub const FQ: &str = "192.0.2.44";
pub const FQ_NAME: &str = "srvrsa.rsa.example.";
pub const STUB: &str = "127.0.2.53:53";
/// Keyless destinations: in the signed reverse zone (no name: NXDOMAIN proven by NSEC) and in
/// 198.51.100.0/24, whose reverse zone is unsigned below an insecure delegation when the fixture
/// has one (else the root proves it does not exist).
pub const KEYLESS_SIGNED: &str = "192.0.2";
pub const KEYLESS_INSECURE: &str = "198.51.100";
pub const KEYLESS_FIRST: u8 = 100;
pub const KEYLESS_COUNT: u8 = 40;

/// A host on the LAN with its interface.
pub struct Host {
    pub ns: Netns,
    pub ifname: String,
    pub addr: IpAddr,
}

/// Every host, the fixture and the servers' agents.
pub struct Bed {
    pub lan: LanBed,
    pub ws: Host,
    pub ss: Host,
    pub lsw: Host,
    pub plain: Host,
    pub srv: Host,
    pub fq: Host,
    pub nokey: Host,
    pub srv_agent: Agent,
    pub fq_agent: Agent,
}

impl Bed {
    pub fn start() -> Self {
        let lan = LanBed::start(fixture());
        let host = |label: &str, addr: &str| {
            let (ns, ifname) = lan.host(label, &[&format!("{addr}/24")]);
            Host {
                ns,
                ifname,
                addr: addr.parse().unwrap(),
            }
        };
        let (ws, ss, lsw, plain) = (
            host("ws", WS),
            host("ss", SS),
            host("lsw", LSW),
            host("plain", PLAIN),
        );
        let (srv, fq, nokey) = (
            host("srv", SRV),
            host("fq", FQ),
            host("nokey", "192.0.2.99"),
        );
        let srv_agent = Agent::start(&srv.ns, &lan.server_config("host-ed25519.pem", "address"));
        let fq_agent = Agent::start(
            &fq.ns,
            &lan.server_config("host-rsa3072.pem", "fqdn:srvrsa.rsa.example"),
        );
        let bed = Self {
            lan,
            ws,
            ss,
            lsw,
            plain,
            srv,
            fq,
            nokey,
            srv_agent,
            fq_agent,
        };
        bed.add_keyless_addresses();
        bed
    }

    /// The keyless host's addresses; the senders reach 198.51.100.0/24 on the link, and know
    /// every keyless address's MAC (no ARP in the first packet's time, with or without agent).
    fn add_keyless_addresses(&self) {
        let mac = mac_of(&self.nokey);
        let mut own = Vec::new();
        let mut neigh = Vec::new();
        for prefix in [KEYLESS_SIGNED, KEYLESS_INSECURE] {
            for i in 0..KEYLESS_COUNT {
                let addr = format!("{prefix}.{}", KEYLESS_FIRST + i);
                own.push(format!("addr add {addr}/24 dev {}", self.nokey.ifname));
                neigh.push(format!("neigh replace {addr} lladdr {mac} dev @IF@"));
            }
        }
        batch(&self.nokey.ns, &own);
        for sender in [&self.ws, &self.plain] {
            let mut lines: Vec<String> = neigh
                .iter()
                .map(|l| l.replace("@IF@", &sender.ifname))
                .collect();
            lines.push(format!(
                "route add {KEYLESS_INSECURE}.0/24 dev {}",
                sender.ifname
            ));
            batch(&sender.ns, &lines);
        }
    }

    /// The `[dns]` and `[log]` sections for an agent.
    pub fn dns_config(&self) -> String {
        self.lan.agent_dns_config()
    }

    /// The resolver, as a socket address.
    pub fn resolver(&self) -> std::net::SocketAddr {
        format!("{RESOLVER}:53").parse().unwrap()
    }
}

/// Captures on every initiator's link for the whole run.
pub struct Captures {
    pub ws: Capture,
    pub ss: Capture,
    pub lsw: Capture,
}

impl Captures {
    pub fn start(bed: &Bed) -> Self {
        Self {
            ws: Capture::start(&bed.ws.ns, &bed.ws.ifname),
            ss: Capture::start(&bed.ss.ns, &bed.ss.ifname),
            lsw: Capture::start(&bed.lsw.ns, &bed.lsw.ifname),
        }
    }
}

/// The fixture with the bench's records: the FQDN server's name, address and RSA key; charon's
/// key in its reverse zone.
fn fixture() -> oe_integration::dns::Builder {
    let rsa = test_key_ipseckey("host-rsa3072");
    let ed = test_key_ipseckey("ws-ed25519");
    DnsFixture::builder()
        .record("rsa.example.", &format!("srvrsa A {FQ}"))
        .record("rsa.example.", &format!("srvrsa IPSECKEY 10 0 2 . {rsa}"))
        .record(
            "2.0.192.in-addr.arpa.",
            &format!("13 IPSECKEY 10 0 4 . {ed}"),
        )
}

/// Runs `ip` commands in one process (each process start costs tens of milliseconds in UML).
fn batch(ns: &Netns, lines: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    ns.ip(&["-batch", &file.to_string_lossy()]);
}

fn mac_of(host: &Host) -> String {
    let out = host.ns.ip(&["-o", "link", "show", &host.ifname]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {text}"))
        .to_owned()
}
