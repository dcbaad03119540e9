//! The README's DNS-trigger setup never leaves the host without DNS, inside the UML guest (its
//! /etc and /run are a throwaway overlay): each host's resolv.conf is
//! `/etc/netns/<namespace>/resolv.conf`, which `ip netns exec` mounts over /etc/resolv.conf for
//! everything run in the namespace (the agent, and `getent`, which stands for every
//! application). The workstation's agent names no upstream in its configuration: it finds them.
//!
//! Setups: resolv.conf naming only the stub (the start is refused with the fix named);
//! `nameserver 127.0.2.53` then the network's server (DNS works, upstream changes are followed,
//! a later resolv.conf naming only the stub keeps DNS working and is reported); a forwarder on
//! 127.0.0.53 in front of the stub (resolved-style: resolv.conf names it, it forwards to the stub),
//! with and without resolved's own list; the same forwarder behind the stub.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::path::PathBuf;
use std::time::Duration;

use oe_integration::agent::{oe_binary, Agent};
use oe_integration::dns::DnsFixture;
use oe_integration::netns::Netns;
use oe_integration::process::{wait_until, Daemon};
use oe_integration::scenario::{LanBed, RESOLVER};
use oe_integration::uml;

/// A name the fixture answers, and its address.
const NAME: &str = "host.ed.example";
const ADDR: &str = "192.0.2.30";

/// The workstation's configuration: no upstream named anywhere.
fn config(bed: &LanBed, extra: &str) -> String {
    format!(
        "[identity]\nkey = \"@DIR@/no-key.pem\"\n[dns]\ntrust_anchor = \"{}\"\n[log]\nlevel = \"debug\"\n{extra}",
        bed.fixture.trust_anchor_dnskey().display()
    )
}

/// Writes the namespace's resolv.conf (in place, as DHCP clients rewrite it).
fn resolv_conf(ns: &Netns, text: &str) {
    let dir = PathBuf::from("/etc/netns").join(ns.name());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("resolv.conf"), text).unwrap();
}

/// Whether an application in `ns` resolves [`NAME`] through the system's resolver.
fn resolves(ns: &Netns) -> bool {
    let out = ns
        .cmd("timeout")
        .args(["5", "getent", "ahostsv4", NAME])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(ADDR)
}

/// dnsmasq on 127.0.0.53 forwarding to `upstream` (as systemd-resolved's stub does).
fn forwarder(ns: &Netns, upstream: &str) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dnsmasq.log");
    let mut cmd = ns.cmd("dnsmasq");
    cmd.args([
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.53",
        "--port=53",
        "--user=root",
        "--cache-size=0",
    ])
    .arg(format!("--server={upstream}"))
    .arg(format!("--pid-file={}", dir.path().join("pid").display()));
    let daemon = Daemon::spawn("dnsmasq", cmd, &log).unwrap();
    let up = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("using nameserver"))
    });
    assert!(up, "{}", std::fs::read_to_string(&log).unwrap_or_default());
    (daemon, dir)
}

/// `oe run` that must not start: its exit status and output.
fn refused_start(ns: &Netns, config_text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text.replace("@DIR@", &dir.path().display().to_string());
    let text = format!(
        "{text}\n[status]\nsocket = \"{}/oe.sock\"\n",
        dir.path().display()
    );
    let path = dir.path().join("oe.toml");
    std::fs::write(&path, text).unwrap();
    let out = ns
        .cmd("timeout")
        .arg("30")
        .arg(oe_binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A refused start leaves no policy behind (no trap holds traffic without an agent).
    let policies = ns.sh("ip xfrm policy");
    let left = String::from_utf8_lossy(&policies.stdout).into_owned();
    assert!(
        !left.contains("dir out") && !left.contains("dir in"),
        "policies left by a refused start:\n{left}"
    );
    (out.status.success() || out.status.code() == Some(124), text)
}

fn status(agent: &Agent) -> serde_json::Value {
    agent.request(r#"{"command":"status"}"#)["result"]["trigger"].clone()
}

#[test]
fn the_dns_trigger_setup_never_leaves_the_host_without_dns() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("the_dns_trigger_setup_never_leaves_the_host_without_dns");
    }
    let bed = LanBed::start(DnsFixture::builder());
    let (ws, _) = bed.host("ws", &["192.0.2.1/24"]);

    // 1. resolv.conf names only the stub, nothing else knows a server: no dead stub.
    resolv_conf(&ws, "nameserver 127.0.2.53\n");
    let (ran, output) = refused_start(&ws, &config(&bed, ""));
    assert!(
        !ran,
        "oe must not run with a stub that has no upstream:\n{output}"
    );
    assert!(
        output.contains("no upstream resolver") && output.contains("Fix:"),
        "the refusal names the fix:\n{output}"
    );

    // 2. The stub first, then the network's server (a dead one, then the real one).
    resolv_conf(&ws, "nameserver 127.0.2.53\nnameserver 192.0.2.99\n");
    let agent = Agent::start(&ws, &config(&bed, ""));
    assert_eq!(status(&agent)["upstream"]["servers"][0], "192.0.2.99:53");
    resolv_conf(
        &ws,
        &format!("nameserver 127.0.2.53\nnameserver {RESOLVER}\n"),
    );
    let followed = wait_until(Duration::from_secs(10), || resolves(&ws));
    assert!(followed, "the new upstream is followed:\n{}", agent.log());
    let trigger = status(&agent);
    assert_eq!(
        trigger["upstream"]["servers"][0],
        format!("{RESOLVER}:53"),
        "{trigger}"
    );
    assert_eq!(
        trigger["upstream"]["source"], "/etc/resolv.conf",
        "{trigger}"
    );
    println!("plain resolv.conf, stub first: followed the new upstream");

    // 3. A rewrite that names only the stub: DNS keeps working, and oe says why.
    resolv_conf(&ws, "nameserver 127.0.2.53\n");
    let reported = wait_until(Duration::from_secs(10), || {
        status(&agent)["upstream"]["problem"].is_string()
    });
    assert!(reported, "{}", status(&agent));
    assert!(resolves(&ws), "DNS keeps working through the last upstream");
    let explain = agent.request(&format!(r#"{{"command":"explain","host":"{ADDR}"}}"#));
    assert!(
        explain.to_string().contains("no usable upstream"),
        "{explain}"
    );
    let shown = agent.cli(&["status"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("DNS problem"),
        "{shown:?}"
    );
    drop(agent);
    println!("resolv.conf naming only the stub mid-run: DNS kept working, reported");

    // 4. A resolved-style forwarder on 127.0.0.53 in front of the stub: resolv.conf names it,
    //    it forwards to the stub. With resolved's own list naming the stub and the server, the
    //    stub forwards to the server; without it, the probe finds the loop and oe refuses.
    let (_front, _f) = forwarder(&ws, "127.0.2.53");
    resolv_conf(&ws, "nameserver 127.0.0.53\n");
    let (ran, output) = refused_start(&ws, &config(&bed, ""));
    assert!(!ran, "a loop is refused:\n{output}");
    assert!(output.contains("forwards queries back"), "{output}");
    std::fs::create_dir_all("/run/systemd/resolve").unwrap();
    std::fs::write(
        "/run/systemd/resolve/resolv.conf",
        format!("nameserver 127.0.2.53\nnameserver {RESOLVER}\n"),
    )
    .unwrap();
    let agent = Agent::start(&ws, &config(&bed, ""));
    assert!(
        resolves(&ws),
        "through the forwarder and the stub:\n{}",
        agent.log()
    );
    let trigger = status(&agent);
    assert_eq!(
        trigger["upstream"]["servers"],
        serde_json::json!([format!("{RESOLVER}:53")]),
        "{trigger}"
    );
    assert_eq!(trigger["upstream_failures"], 0, "no loop: {trigger}");
    drop(agent);
    drop(_front);
    std::fs::remove_file("/run/systemd/resolve/resolv.conf").unwrap();
    println!("forwarder on 127.0.0.53 in front of the stub: no loop, DNS works");

    // 5. The forwarder behind the stub: resolv.conf names the stub, the stub forwards to it;
    //    resolved's list names the server it forwards to (which must not wait for IKE).
    std::fs::write(
        "/run/systemd/resolve/resolv.conf",
        format!("nameserver {RESOLVER}\n"),
    )
    .unwrap();
    let (_behind, _b) = forwarder(&ws, RESOLVER);
    resolv_conf(&ws, "nameserver 127.0.2.53\nnameserver 127.0.0.53\n");
    let agent = Agent::start(&ws, &config(&bed, ""));
    assert!(resolves(&ws), "{}", agent.log());
    let trigger = status(&agent);
    assert_eq!(
        trigger["upstream"]["servers"],
        serde_json::json!(["127.0.0.53:53"]),
        "{trigger}"
    );
    println!("forwarder on 127.0.0.53 behind the stub: DNS works");
}
