//! A private DNSSEC tree for tests: `integration/dns/build-tree.sh` builds and signs it, this module serves it.
//!
//! Inside a namespace of the test's choosing, on that namespace's loopback:
//! nsd serves the root "." at 127.0.0.201, knotd every child at 127.0.0.202, a recursive, non-validating
//! unbound answers clients at [`DnsFixture::resolver`] (127.0.0.53 unless the builder says otherwise) and passes
//! DNSSEC records through so clients validate themselves, and a validating unbound at 127.0.0.204 serves as a
//! cross-check. The root's key is the only trust anchor ([`DnsFixture::trust_anchor_dnskey`]).
//! `dead.example.` is delegated to [`DEAD_SERVER`]; after [`DnsFixture::silence_dead_zone`] the
//! namespace drops its packets (iptables, or tc where the kernel has no netfilter tables), so that
//! zone never answers (without it, queries to it are refused at once).
//! The zones and names are listed in `integration/dns/README.md` and in [`names`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{run_ok, wait_until, Daemon};
use crate::require;

/// Names served by the fixture (fully qualified).
pub mod names {
    /// Secure, RSA/SHA-256 zone (NSEC): IPSECKEY alg 2 (host-rsa2048), A 192.0.2.10, AAAA 2001:db8::10.
    pub const RSA_HOST: &str = "host.rsa.example.";
    /// Secure, ECDSA P-256 zone (NSEC): IPSECKEY alg 3 (host-p256), A 192.0.2.20, AAAA 2001:db8::20.
    pub const ECDSA_HOST: &str = "host.ecdsa.example.";
    /// Secure, Ed25519 zone (NSEC): IPSECKEY alg 4 (host-ed25519), A 192.0.2.30, AAAA 2001:db8::30.
    pub const ED_HOST: &str = "host.ed.example.";
    /// Secure NSEC3 zone (ECDSA P-256): IPSECKEY alg 4 (host-ed25519), A 192.0.2.40.
    pub const NSEC3_HOST: &str = "host.nsec3.example.";
    /// A (no IPSECKEY) in an NSEC zone: the IPSECKEY is provably absent (NODATA).
    pub const NSEC_NOKEY: &str = "nokey.rsa.example.";
    /// A (no IPSECKEY) in the NSEC3 zone: provably absent (NODATA).
    pub const NSEC3_NOKEY: &str = "nokey.nsec3.example.";
    /// A name that does not exist in the NSEC3 zone (NXDOMAIN, proven by NSEC3).
    pub const NSEC3_NXDOMAIN: &str = "nonexistent.nsec3.example.";
    /// A name that does not exist in an NSEC zone (NXDOMAIN, proven by NSEC).
    pub const NSEC_NXDOMAIN: &str = "nonexistent.ed.example.";
    /// Unsigned child (no DS in the root): IPSECKEY alg 4, provably insecure.
    pub const INSECURE_HOST: &str = "host.insecure.example.";
    /// Child whose signatures expired in 2020: bogus.
    pub const EXPIRED_HOST: &str = "host.expired.example.";
    /// IPSECKEY changed after signing (RRSIG kept): bogus.
    pub const TAMPERED_HOST: &str = "tampered.ed.example.";
    /// Matches the wildcard `*.wild.ed.example.` (IPSECKEY alg 4) in the NSEC-signed Ed25519 zone.
    pub const WILDCARD_HOST: &str = "anything.wild.ed.example.";
    /// Three IPSECKEYs with gateway types 1 (IPv4), 2 (IPv6) and 3 (name).
    pub const GATEWAYS: &str = "gw.ed.example.";
    /// Reverse names with IPSECKEY (RSA, ECDSA, Ed25519 keys) for 192.0.2.10, .20, .30.
    pub const REV_V4_RSA: &str = "10.2.0.192.in-addr.arpa.";
    pub const REV_V4_ECDSA: &str = "20.2.0.192.in-addr.arpa.";
    pub const REV_V4_ED: &str = "30.2.0.192.in-addr.arpa.";
    /// 192.0.2.31 has a PTR but no IPSECKEY.
    pub const REV_V4_NOKEY: &str = "31.2.0.192.in-addr.arpa.";
    /// Reverse names with IPSECKEY for 2001:db8::10 (RSA) and 2001:db8::30 (Ed25519), Ed25519-signed zone.
    pub const REV_V6_RSA: &str =
        "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    pub const REV_V6_ED: &str =
        "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    /// An unsigned reverse zone (no DS in the root): 198.51.100.0/24 is provably insecure; .1 and
    /// .2 have PTRs, no address there has a key.
    pub const REV_V4_INSECURE_ZONE: &str = "100.51.198.in-addr.arpa.";
    /// A zone delegated (without DS) to a server that never answers: every lookup below it
    /// times out.
    pub const DEAD_ZONE: &str = "dead.example.";
}

/// The address `dead.example.` is delegated to (see [`DnsFixture::silence_dead_zone`]).
pub const DEAD_SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 205));

/// The zones a test may add records to (`Builder::record`).
pub const ZONES: &[&str] = &[
    "rsa.example.",
    "ecdsa.example.",
    "ed.example.",
    "nsec3.example.",
    "insecure.example.",
    "expired.example.",
    "2.0.192.in-addr.arpa.",
    "100.51.198.in-addr.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.",
];

/// Address of the validating cross-check resolver inside the fixture's namespace.
pub const VALIDATOR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 204));

/// Configures a fixture before it is built.
#[derive(Debug, Clone)]
pub struct Builder {
    extra: BTreeMap<String, Vec<String>>,
    resolver: IpAddr,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            extra: BTreeMap::new(),
            resolver: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)),
        }
    }
}

impl Builder {
    /// Adds a zone-file line (relative names are relative to `zone`) before signing,
    /// e.g. `.record("ed.example.", "server A 192.0.2.2")`.
    pub fn record(mut self, zone: &str, line: &str) -> Self {
        let zone = zone.trim_end_matches('.').to_owned() + ".";
        assert!(
            ZONES.contains(&zone.as_str()),
            "the fixture has no zone {zone}; zones: {ZONES:?}"
        );
        self.extra.entry(zone).or_default().push(line.to_owned());
        self
    }

    /// Where the recursive resolver listens (the address must exist in the namespace; 127/8 always does).
    pub fn resolver(mut self, addr: IpAddr) -> Self {
        self.resolver = addr;
        self
    }

    /// Builds and signs the tree, and starts the servers inside `ns`.
    pub fn start_in(self, ns: &Netns) -> DnsFixture {
        require_tools();
        let dir = tempfile::Builder::new()
            .prefix("oe-dns.")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let extra = dir.path().join("extra");
        std::fs::create_dir_all(&extra).unwrap_or_else(|e| panic!("mkdir: {e}"));
        for (zone, lines) in &self.extra {
            let file = extra.join(format!("{}.extra", zone.trim_end_matches('.')));
            std::fs::write(&file, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("write: {e}"));
        }
        let tree = dir.path().join("tree");
        run_ok(
            Command::new(crate::integration_dir().join("dns/build-tree.sh"))
                .arg(&tree)
                .env("EXTRA_DIR", &extra)
                .env("RESOLVER", self.resolver.to_string()),
        );
        let daemons = start_servers(ns, &tree);
        let mut fixture = DnsFixture {
            resolver: self.resolver,
            tree,
            daemons,
            _dir: dir,
        };
        fixture.wait_ready(ns);
        fixture
    }
}

/// A running signed DNS tree. Servers stop and files vanish when it drops.
#[derive(Debug)]
pub struct DnsFixture {
    resolver: IpAddr,
    tree: PathBuf,
    daemons: Vec<Daemon>,
    _dir: tempfile::TempDir,
}

impl DnsFixture {
    /// A builder for a fixture with extra records or another resolver address.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The standard tree, served inside `ns` with the resolver at 127.0.0.53.
    pub fn start_in(ns: &Netns) -> Self {
        Builder::default().start_in(ns)
    }

    /// The recursive (non-validating) resolver clients should query, port 53.
    pub fn resolver(&self) -> SocketAddr {
        SocketAddr::new(self.resolver, 53)
    }

    /// The root's key-signing DNSKEY in zone-file form (as unbound's trust-anchor-file takes it).
    pub fn trust_anchor_dnskey(&self) -> PathBuf {
        self.tree.join("root.dnskey")
    }

    /// A validator that asks this fixture's resolver ([`DnsFixture::resolver`]) and trusts only the
    /// fixture's root key; other settings are oe-dns's defaults.
    pub fn validator_config(&self) -> oe_dns::ValidatorConfig {
        let anchor = self.trust_anchor_dnskey();
        oe_dns::ValidatorConfig {
            upstream: oe_dns::Upstream::Servers(vec![self.resolver()]),
            anchors: oe_dns::AnchorSet::from_file(&anchor)
                .unwrap_or_else(|e| panic!("{}: {e}", anchor.display())),
            ..oe_dns::ValidatorConfig::default()
        }
    }

    /// The root's DS record (SHA-256) in zone-file form.
    pub fn trust_anchor_ds(&self) -> PathBuf {
        self.tree.join("root.ds")
    }

    /// The root's key as a BIND `trust-anchors` clause (for `delv -a`).
    pub fn trust_anchor_bind(&self) -> PathBuf {
        self.tree.join("root.bind-anchor")
    }

    /// The folder with zones, keys, server configurations and logs.
    pub fn dir(&self) -> &Path {
        &self.tree
    }

    /// Runs `delv` (BIND's validating lookup tool) inside `ns` against the fixture's resolver with the
    /// private root anchor, and returns its combined output.
    pub fn delv(&self, ns: &Netns, name: &str, rrtype: &str) -> String {
        let out = ns
            .cmd("delv")
            .arg(format!("@{}", self.resolver))
            .arg("-a")
            .arg(self.trust_anchor_bind())
            .args(["+root=.", name, rrtype])
            .output()
            .unwrap_or_else(|e| panic!("delv: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    fn wait_ready(&mut self, ns: &Netns) {
        let server = format!("@{}", self.resolver);
        // Generous: on a loaded two-core machine running UML guests side by side, start-up can take a while.
        let ready = wait_until(Duration::from_secs(60), || {
            ns.cmd("dig")
                .args([
                    &server,
                    "+short",
                    "+time=1",
                    "+tries=1",
                    names::ED_HOST,
                    "A",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("192.0.2.30"))
        });
        if !ready {
            let running: Vec<String> = self
                .daemons
                .iter_mut()
                .map(|d| format!("{}: {}", d.pid(), d.is_running()))
                .collect();
            let logs: String = [
                "nsd.out",
                "knotd.out",
                "unbound-resolver.out",
                "nsd/nsd.log",
                "knot/knot.log",
                "unbound/resolver.log",
            ]
            .iter()
            .map(|f| {
                format!(
                    "--- {f}\n{}\n",
                    std::fs::read_to_string(self.tree.join(f)).unwrap_or_default()
                )
            })
            .collect();
            panic!("the DNS fixture did not answer within 60 s (pid: running {running:?}); logs:\n{logs}");
        }
    }

    /// Makes `dead.example.` a zone that never answers: `ns` (the fixture's namespace) drops every
    /// packet to [`DEAD_SERVER`], UDP and TCP, so resolvers wait for it until they time out. Needs
    /// iptables with a working backend (the host's kernel has one; the UML guest's has not).
    pub fn silence_dead_zone(&self, ns: &Netns) {
        drop_packets_to(ns, DEAD_SERVER);
    }

    /// Stops the servers now (they also stop on drop).
    pub fn stop(&mut self) {
        self.daemons.clear();
    }
}

/// Drops every packet to `addr` arriving in `ns` (a server that never answers, UDP and TCP):
/// with iptables, or where the kernel has no netfilter tables (the UML guest's) with a tc filter
/// on the loopback device.
fn drop_packets_to(ns: &Netns, addr: IpAddr) {
    let iptables = ns
        .cmd("iptables")
        .args(["-A", "INPUT", "-d", &addr.to_string(), "-j", "DROP"])
        .output();
    if iptables.is_ok_and(|o| o.status.success()) {
        return;
    }
    for tc in [
        "qdisc add dev lo root handle 1: prio".to_owned(),
        format!(
            "filter add dev lo parent 1: protocol ip prio 1 u32 match ip dst {addr}/32 action drop"
        ),
    ] {
        run_ok(ns.cmd("tc").args(tc.split(' ')));
    }
}

fn require_tools() {
    require::root();
    for (program, package) in [
        ("nsd", "nsd"),
        ("knotd", "knot"),
        ("unbound", "unbound"),
        ("ldns-signzone", "ldnsutils"),
        ("dnssec-signzone", "bind9-utils"),
        ("dig", "bind9-dnsutils"),
        ("delv", "bind9-dnsutils"),
    ] {
        require::program(program, package);
    }
}

fn start_servers(ns: &Netns, tree: &Path) -> Vec<Daemon> {
    let conf = |p: &str| tree.join(p).to_string_lossy().into_owned();
    let spawn = |name: &str, program: &str, args: &[String]| {
        let mut cmd = ns.cmd(program);
        cmd.args(args);
        Daemon::spawn(name, cmd, &tree.join(format!("{name}.out")))
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
    };
    vec![
        spawn(
            "nsd",
            "nsd",
            &["-d".into(), "-c".into(), conf("nsd/nsd.conf")],
        ),
        spawn("knotd", "knotd", &["-c".into(), conf("knot/knot.conf")]),
        spawn(
            "unbound-resolver",
            "unbound",
            &["-d".into(), "-c".into(), conf("unbound/resolver.conf")],
        ),
        spawn(
            "unbound-validator",
            "unbound",
            &["-d".into(), "-c".into(), conf("unbound/validator.conf")],
        ),
    ]
}
