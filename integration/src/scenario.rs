//! A shared LAN with the signed DNS fixture on it, for end-to-end tests of `oe` with several hosts:
//! 192.0.2.0/24 and 2001:db8::/64 over a bridge, the fixture's resolver at 192.0.2.53.

use std::net::UdpSocket;
use std::time::Duration;

use crate::agent::Agent;
use crate::dns::{Builder, DnsFixture};
use crate::netns::{Lan, Netns};

/// The resolver's address on the LAN.
pub const RESOLVER: &str = "192.0.2.53";

/// The standard hosts' addresses: a workstation, a server whose key (host-ed25519) the fixture publishes for
/// `host.ed.example.` and for these addresses' reverse names, and a host without a key (a PTR only).
pub const WS4: &str = "192.0.2.1";
pub const WS6: &str = "2001:db8::1";
pub const SRV4: &str = "192.0.2.30";
pub const SRV6: &str = "2001:db8::30";
pub const NOKEY4: &str = "192.0.2.31";

/// A [`LanBed`] with the standard hosts attached.
#[derive(Debug)]
pub struct StandardBed {
    pub ws: Netns,
    pub srv: Netns,
    pub nokey: Netns,
    /// The workstation's interface on the LAN (for captures).
    pub ws_if: String,
    pub lanbed: LanBed,
}

impl StandardBed {
    /// The LAN with the standard hosts attached ([`WS4`], [`SRV4`], [`NOKEY4`] and their IPv6 twins).
    pub fn start(builder: Builder) -> Self {
        let lanbed = LanBed::start(builder);
        let (ws, ws_if) = lanbed.host("ws", &[&format!("{WS4}/24"), &format!("{WS6}/64")]);
        let (srv, _) = lanbed.host("srv", &[&format!("{SRV4}/24"), &format!("{SRV6}/64")]);
        let (nokey, _) = lanbed.host("nokey", &[&format!("{NOKEY4}/24")]);
        Self {
            ws,
            srv,
            nokey,
            ws_if,
            lanbed,
        }
    }
}

/// The LAN, the DNS namespace and the fixture. Hosts are added with [`LanBed::host`].
#[derive(Debug)]
pub struct LanBed {
    pub fixture: DnsFixture,
    dns: Netns,
    lan: Lan,
}

impl LanBed {
    /// Starts the LAN and the fixture (with the builder's extra records).
    pub fn start(builder: Builder) -> Self {
        let lan = Lan::new();
        let dns = Netns::new("dns");
        lan.attach(&dns, &[&format!("{RESOLVER}/24")]);
        let fixture = builder
            .resolver(RESOLVER.parse().unwrap_or_else(|e| panic!("{e}")))
            .start_in(&dns);
        Self { fixture, dns, lan }
    }

    /// A new host on the LAN with the given addresses (CIDR); returns it and its interface name.
    pub fn host(&self, label: &str, cidrs: &[&str]) -> (Netns, String) {
        let ns = Netns::new(label);
        let ifname = self.lan.attach(&ns, cidrs);
        (ns, ifname)
    }

    /// The `[dns]` and `[log]` sections that point an agent at the fixture.
    pub fn agent_dns_config(&self) -> String {
        format!(
            "[dns]\nupstreams = [\"{RESOLVER}\"]\ntrust_anchor = \"{}\"\n[log]\nlevel = \"debug\"\n",
            self.fixture.trust_anchor_dnskey().display()
        )
    }

    /// An anonymous workstation's configuration: `private-or-clear` for the test networks, then `extra`
    /// (lines that continue the `[groups]` section, or further sections).
    pub fn workstation_config(&self, extra: &str) -> String {
        format!(
            "[identity]\nkey = \"@DIR@/no-key.pem\"\n[groups]\nprivate-or-clear = [\"192.0.2.0/24\", \"2001:db8::/64\"]\n{extra}\n{}",
            self.agent_dns_config()
        )
    }

    /// A server's configuration: the committed test key `key_file` (in `integration/keys`), identity `id`
    /// ("address" or "fqdn:NAME"), answering anyone on the test networks (`clear-or-private`).
    pub fn server_config(&self, key_file: &str, id: &str) -> String {
        format!(
            "[identity]\nkey = \"{}\"\nid = \"{id}\"\n[groups]\nprivate-or-clear = []\nclear-or-private = [\"192.0.2.0/24\", \"2001:db8::/64\"]\n{}",
            crate::keys_dir().join(key_file).display(),
            self.agent_dns_config()
        )
    }

    /// The DNS namespace (where the fixture's servers run).
    pub fn dns_namespace(&self) -> &Netns {
        &self.dns
    }
}

/// A UDP socket bound inside `ns`, with a 10 s read timeout.
pub fn udp_receiver(ns: &Netns, addr: &str, port: u16) -> UdpSocket {
    let socket = ns.run(|| {
        UdpSocket::bind((addr, port)).unwrap_or_else(|e| panic!("bind {addr}:{port}: {e}"))
    });
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    socket
}

/// Sends one datagram from `from` inside `ns`.
pub fn send_udp(ns: &Netns, from: &str, to: &str, port: u16, payload: &[u8]) {
    ns.run(|| {
        let socket = UdpSocket::bind((from, 0)).unwrap_or_else(|e| panic!("bind {from}: {e}"));
        // A send can fail while policies change under it (EPERM from a block); the tests resend.
        let _ = socket.send_to(payload, (to, port));
    });
}

/// Whether `agent` reports an established peer `peer` with at least one child SA.
pub fn established(agent: &Agent, peer: &str) -> bool {
    let answer = agent.request(r#"{"command":"peers"}"#);
    answer["result"]["peers"].as_array().is_some_and(|peers| {
        peers.iter().any(|p| {
            p["address"] == peer
                && p["state"] == "established"
                && p["child_sas"].as_array().is_some_and(|c| !c.is_empty())
        })
    })
}
