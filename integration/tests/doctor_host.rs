//! `oe doctor` on a host broken on purpose, in a network namespace on this machine's kernel, with
//! the signed DNS fixture: a home router's resolver (dnsmasq) that strips DNSSEC, a running
//! charon, a foreign XFRM policy, a key others can read, a resolv.conf that bypasses the DNS
//! trigger. Then a host set up right, with a running agent, whose only failures are the kernel's
//! (this machine's kernel has no ESP, which doctor must say, and a second kernel with ESP would
//! not), and two more mistakes made one at a time: a key that is not the published one, and the
//! IANA trust anchor in front of the fixture's private root.
//!
//! The host's name is host.ed.example and its address 192.0.2.30: the fixture publishes the
//! host-ed25519 key under both (forward and reverse).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oe_integration::agent::{oe_binary, Agent};
use oe_integration::dns::DnsFixture;
use oe_integration::home_router::HomeRouter;
use oe_integration::netns::Netns;
use oe_integration::peers::{Charon, CharonSetup};
use oe_integration::scenario::{LanBed, RESOLVER, SRV4};
use serde_json::Value;

/// `/etc/netns/NS/resolv.conf`, which `ip netns exec NS` mounts over /etc/resolv.conf; removed on drop.
struct ResolvConf(PathBuf);

impl ResolvConf {
    fn new(ns: &Netns, text: &str) -> Self {
        let dir = Path::new("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), text).unwrap();
        Self(dir)
    }
}

impl Drop for ResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this kernel installs ESP SAs, asked without oe: `ip xfrm state add` in a scratch namespace.
fn kernel_has_esp() -> bool {
    let ns = Netns::new("esp");
    let key = "0x".to_owned() + &"ab".repeat(20);
    ns.cmd("ip")
        .args([
            "xfrm",
            "state",
            "add",
            "src",
            "127.0.0.1",
            "dst",
            "127.0.0.1",
            "proto",
            "esp",
        ])
        .args([
            "spi",
            "0x100",
            "mode",
            "transport",
            "aead",
            "rfc4106(gcm(aes))",
            &key,
            "128",
        ])
        .status()
        .unwrap()
        .success()
}

/// A copy of a committed test key in `dir`, with `mode`.
fn key_copy(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let path = dir.join("key.pem");
    std::fs::copy(oe_integration::keys_dir().join(name), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Runs `oe doctor --json --config CONFIG` in `ns`; its exit status and report.
fn doctor(ns: &Netns, config: &Path) -> (i32, Value) {
    let out = ns
        .cmd(&oe_binary().to_string_lossy())
        .args(["doctor", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

/// The finding named `id`.
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn expect(report: &Value, id: &str, verdict: &str) -> String {
    let c = check(report, id);
    assert_eq!(c["verdict"], verdict, "{id}: {c:#}");
    if verdict == "fail" || verdict == "warn" {
        assert!(
            c["fix"].as_str().is_some_and(|f| !f.is_empty()),
            "{id} has a fix: {c:#}"
        );
    }
    c.to_string()
}

fn host_on_lan(bed: &LanBed) -> Netns {
    bed.host("srv", &[&format!("{SRV4}/24")]).0
}

#[test]
fn doctor_finds_each_problem_of_a_broken_host() {
    let esp = kernel_has_esp();
    let bed = LanBed::start(DnsFixture::builder());
    let host = host_on_lan(&bed);
    let dir = tempfile::tempdir().unwrap();
    // A key anyone can read; a home router's resolver; no agent.
    let key = key_copy(dir.path(), "host-ed25519.pem", 0o644);
    let resolver: SocketAddr = format!("{RESOLVER}:53").parse().unwrap();
    let router = HomeRouter::start(&host, "127.0.0.60".parse().unwrap(), resolver);
    let config = dir.path().join("oe.toml");
    std::fs::write(
        &config,
        format!(
            "[identity]\nkey = \"{}\"\nid = \"fqdn:host.ed.example\"\n[dns]\nupstreams = [\"{}\"]\n\
             trust_anchor = \"{}\"\n[status]\nsocket = \"{}/oe.sock\"\n",
            key.display(),
            router.address(),
            bed.fixture.trust_anchor_dnskey().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    // Lookups bypass the stub; a foreign policy; strongSwan's charon holds the IKE ports.
    let _resolv = ResolvConf::new(&host, &format!("nameserver {RESOLVER}\n"));
    host.ip(&[
        "xfrm",
        "policy",
        "add",
        "dst",
        "198.51.100.0/24",
        "dir",
        "out",
        "action",
        "block",
    ]);
    let charon = Charon::start(&host, &CharonSetup::default());

    let (code, report) = doctor(&host, &config);
    println!("{report:#}");
    assert_eq!(code, 1, "OE cannot work here");
    assert_eq!(report["ok"], false);
    expect(&report, "config", "ok");
    let kernel = expect(&report, "kernel-esp", if esp { "ok" } else { "fail" });
    if !esp {
        assert!(kernel.contains("no ESP"), "{kernel}");
    }
    expect(&report, "agent", "warn");
    let stripped = expect(&report, "resolver-dnssec", "fail");
    assert!(
        stripped.contains("127.0.0.60:53: does not pass DNSSEC") && stripped.contains("no RRSIG"),
        "{stripped}"
    );
    let anchor = expect(&report, "trust-anchor", "fail");
    assert!(anchor.contains("fix resolver-dnssec first"), "{anchor}");
    let trigger = expect(&report, "dns-trigger", "warn");
    assert!(trigger.contains("nameserver 127.0.2.53"), "{trigger}");
    let key_check = expect(&report, "host-key", "warn");
    assert!(key_check.contains("chmod 600"), "{key_check}");
    let published = expect(&report, "published-keys", "fail");
    assert!(published.contains("BOGUS"), "{published}");
    let ports = expect(&report, "ike-ports", "fail");
    assert!(
        ports.contains(&format!("held by charon (pid {})", charon.pid())),
        "{ports}"
    );
    let daemons = expect(&report, "ike-daemons", "fail");
    assert!(
        daemons.contains(&format!("charon (pid {})", charon.pid())),
        "{daemons}"
    );
    let foreign = expect(&report, "foreign-xfrm", "warn");
    assert!(foreign.contains("198.51.100.0/24"), "{foreign}");

    // The text report says the same, with each fix.
    let text = host
        .cmd(&oe_binary().to_string_lossy())
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("FAIL  resolver-dnssec"), "{text}");
    assert!(text.contains("fix: point [dns] upstreams"), "{text}");
    assert!(text.contains("OE cannot work on this host"), "{text}");
}

#[test]
fn doctor_passes_a_host_set_up_right_and_catches_one_mistake_at_a_time() {
    let esp = kernel_has_esp();
    let bed = LanBed::start(DnsFixture::builder());
    let host = host_on_lan(&bed);
    let dir = tempfile::tempdir().unwrap();
    let key = key_copy(dir.path(), "host-ed25519.pem", 0o600);
    let anchor = bed.fixture.trust_anchor_dnskey();
    let settings = |key: &Path, anchor: &str| {
        format!(
            "[identity]\nkey = \"{}\"\nid = \"fqdn:host.ed.example\"\n[dns]\nupstreams = [\"{RESOLVER}\"]\n\
             trust_anchor = \"{anchor}\"\n[trigger]\nupstreams = [\"{RESOLVER}\"]\n",
            key.display()
        )
    };
    let agent = Agent::start(&host, &settings(&key, &anchor.display().to_string()));
    let config = agent.dir().join("oe.toml");
    let _resolv = ResolvConf::new(&host, "nameserver 127.0.2.53\n");

    let (code, report) = doctor(&host, &config);
    println!("{report:#}");
    for id in [
        "config",
        "resolver-dnssec",
        "trust-anchor",
        "dns-trigger",
        "host-key",
        "ike-ports",
        "ike-daemons",
        "foreign-xfrm",
    ] {
        expect(&report, id, "ok");
    }
    let published = expect(&report, "published-keys", "ok");
    assert!(
        published.contains("host.ed.example.: SECURE, holds this host's key")
            && published.contains("30.2.0.192.in-addr.arpa.: SECURE, holds this host's key"),
        "{published}"
    );
    let ports = check(&report, "ike-ports").to_string();
    assert!(ports.contains("held by the agent"), "{ports}");
    // This kernel decides the rest: without ESP the agent runs degraded and doctor says why.
    expect(&report, "kernel-esp", if esp { "ok" } else { "fail" });
    let agent_check = expect(&report, "agent", if esp { "ok" } else { "fail" });
    assert!(
        agent_check.contains(&format!("pid {}", agent.pid())),
        "{agent_check}"
    );
    assert_eq!(code, if esp { 0 } else { 1 });

    // Mistake 1: a key that is not the published one.
    let other = tempfile::tempdir().unwrap();
    let wrong_key = key_copy(other.path(), "host-p256.pem", 0o600);
    let wrong = dir.path().join("wrong-key.toml");
    std::fs::write(
        &wrong,
        settings(&wrong_key, &anchor.display().to_string()) + &status(&agent),
    )
    .unwrap();
    let (_, report) = doctor(&host, &wrong);
    let published = expect(&report, "published-keys", "fail");
    assert!(
        published.contains("not this host's key") && published.contains("IN IPSECKEY 10 0 3 ."),
        "{published}"
    );
    expect(&report, "host-key", "ok");

    // Mistake 2: the IANA root keys in front of a private root; the resolvers are fine.
    let iana = dir.path().join("iana.toml");
    std::fs::write(&iana, settings(&key, "") + &status(&agent)).unwrap();
    let (_, report) = doctor(&host, &iana);
    expect(&report, "resolver-dnssec", "ok");
    let anchor_check = expect(&report, "trust-anchor", "fail");
    assert!(
        anchor_check.contains("IANA") && anchor_check.contains("trust_anchor"),
        "{anchor_check}"
    );
}

fn status(agent: &Agent) -> String {
    format!("[status]\nsocket = \"{}\"\n", agent.socket().display())
}
