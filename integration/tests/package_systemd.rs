//! The Debian package under a real systemd: systemd 252 boots as PID 1 in a container
//! (systemd-nspawn, `oe_integration::container`) on a throwaway overlay of this host's root, the
//! package is installed there with dpkg while systemd runs, and oe.service is started, reloaded
//! and stopped with systemctl.
//!
//! The container shares this machine's kernel, which has XFRM but no ESP: the agent runs
//! degraded (no traps, no SAs), so "the sandbox lets the agent install traps and SAs" is shown
//! only as far as this kernel allows: the agent's XFRM requests (dump, delete) succeed under the
//! sandbox, its sockets are bound, a process of the unit can set net.core.xfrm_larval_drop, and
//! the ESP probe's answer is the kernel's "no ESP" (EPROTONOSUPPORT), not a sandbox refusal.
//! (The UML kernel with ESP does not boot on hosts whose CPU has AMX; see the operator's report.)

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use oe_integration::container::Container;
use oe_integration::package::{build_deb, FreshRoot};
use oe_integration::process::wait_until;
use serde_json::Value;

/// oe's marks (oe-kernel `ownership`): a priority in its band and a reqid in its range.
const OE_PRIORITY: u32 = 0x6f65_0000 + 100;
const OE_REQID: u32 = 0x6f65_0005;

/// The configuration the test installs: nothing reachable to resolve with (the container has only
/// loopback), so lookups fail at once; a block entry that `reload` adds.
fn config(block: &str) -> String {
    format!(
        "[dns]\nupstreams = [\"127.0.0.9\"]\ntimeout = \"1s\"\n[trigger]\nupstreams = [\"127.0.0.9\"]\n\
         [groups]\nblock = [{block}]\n"
    )
}

/// Adds a policy with oe's marks, as a crashed or running agent leaves them.
fn oe_policy(c: &Container, dst: &str) {
    c.sh_ok(&format!(
        "ip xfrm policy add src 0.0.0.0/0 dst {dst} dir out priority {OE_PRIORITY} \
         tmpl proto esp reqid {OE_REQID} mode transport"
    ));
}

fn policies(c: &Container) -> String {
    c.sh_ok("ip xfrm policy")
}

fn show(c: &Container, property: &str) -> String {
    c.sh_ok(&format!("systemctl show oe -p {property} --value"))
        .trim()
        .to_owned()
}

fn explain_group(c: &Container, host: &str) -> String {
    let out = c.sh_ok(&format!("oe explain --json {host}"));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["addresses"][0]["group"].as_str().unwrap().to_owned()
}

#[test]
fn systemd_starts_reloads_and_stops_the_packaged_agent() {
    let out = tempfile::tempdir().unwrap();
    let deb = build_deb(out.path());
    let root = FreshRoot::for_container();
    let deb = root.copy_in(&deb);
    let c = Container::boot(&root);

    // Installed under a running systemd: enabled, not started, no key made.
    let install = c.sh(&format!("dpkg -i {deb} 2>&1"));
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stdout)
    );
    assert_eq!(c.sh_ok("systemctl is-enabled oe").trim(), "enabled");
    assert_eq!(
        String::from_utf8_lossy(&c.sh("systemctl is-active oe").stdout).trim(),
        "inactive"
    );
    c.sh_ok("test ! -e /etc/oe/key.pem");

    // The shipped configuration (every setting commented out) starts as it is.
    c.sh_ok("systemctl start oe && oe status >/dev/null && systemctl stop oe");
    assert_eq!(show(&c, "Result"), "success");

    // A configuration that does not load: start fails (nothing reported READY=1).
    c.sh_ok("echo 'not toml [' > /etc/oe/oe.toml");
    assert!(
        !c.sh("systemctl start oe").status.success(),
        "start must fail before READY=1"
    );
    c.sh_ok("systemctl stop oe; systemctl reset-failed oe");

    // Left-overs of a crashed run, and a policy that is someone else's.
    c.sh_ok(&format!("cat > /etc/oe/oe.toml <<'EOF'\n{}EOF", config("")));
    oe_policy(&c, "198.51.100.0/24");
    c.sh_ok("ip xfrm policy add dst 203.0.113.0/24 dir out action block");
    // A process of the unit writes net.core.xfrm_larval_drop (as the agent does when ESP exists)
    // and cannot write other kernel tunables: the sandbox at work.
    c.sh_ok(
        "mkdir -p /etc/systemd/system/oe.service.d && cat > /etc/systemd/system/oe.service.d/test.conf <<'EOF'\n\
         [Service]\nExecStartPost=/bin/sh -c 'echo 0 > /proc/sys/net/core/xfrm_larval_drop && ! (echo 1 > /proc/sys/net/ipv4/ip_forward) 2>/dev/null'\nEOF\n\
         systemctl daemon-reload",
    );

    // start returns once the agent sent READY=1: its socket answers at once, its status line is
    // what it notified, and its start-up lines come before systemd's "Started".
    c.sh_ok("systemctl start oe");
    assert_eq!(show(&c, "ActiveState"), "active");
    let status: Value = serde_json::from_str(&c.sh_ok("oe status --json")).unwrap();
    let pid = show(&c, "MainPID");
    assert_eq!(status["pid"].to_string(), pid, "{status}");
    let status_text = show(&c, "StatusText");
    assert!(
        status_text.starts_with("degraded:") || status_text.starts_with("encrypting"),
        "{status_text}"
    );
    let journal = c.sh_ok(
        "journalctl -b -o cat --no-pager _SYSTEMD_UNIT=oe.service + SYSLOG_IDENTIFIER=systemd",
    );
    let agent_line = journal
        .find("start-up reconciliation")
        .unwrap_or_else(|| panic!("{journal}"));
    let started = journal
        .find("Started oe.service")
        .unwrap_or_else(|| panic!("{journal}"));
    assert!(agent_line < started, "{journal}");
    println!("{journal}\nStatusText={status_text}");

    // Under the sandbox: the crashed run's policy is gone (XFRM dump and delete work), the foreign
    // one stays; the agent holds its sockets; its probe met the kernel, not a refusal.
    let p = policies(&c);
    assert!(
        !p.contains("198.51.100.0/24") && p.contains("203.0.113.0/24"),
        "{p}"
    );
    let sockets = c.sh_ok(&format!("ss -lunpH | grep 'pid={pid},'"));
    println!("{sockets}");
    for local in ["0.0.0.0:500 ", "0.0.0.0:4500 ", "127.0.2.53:53 "] {
        assert!(sockets.contains(local), "{local} in {sockets}");
    }
    assert!(
        !status["kernel"]["detail"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{status}"
    );
    let proc_status = c.sh_ok(&format!("cat /proc/{pid}/status"));
    assert!(
        proc_status.contains("CapEff:\t0000000000001400"),
        "CAP_NET_ADMIN and CAP_NET_BIND_SERVICE only:\n{proc_status}"
    );
    assert!(
        proc_status.contains("NoNewPrivs:\t1") && proc_status.contains("Seccomp:\t2"),
        "{proc_status}"
    );
    assert_eq!(
        c.sh_ok("cat /proc/sys/net/core/xfrm_larval_drop").trim(),
        "0"
    );

    // journald has the agent's lines with their priorities (info 6, warning 4).
    let lines: Vec<Value> = c
        .sh_ok("journalctl -b -o json --no-pager _SYSTEMD_UNIT=oe.service")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let priority = |needle: &str| {
        lines
            .iter()
            .find(|l| l["MESSAGE"].as_str().is_some_and(|m| m.contains(needle)))
            .map(|l| l["PRIORITY"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no line with {needle}: {lines:?}"))
    };
    assert_eq!(priority("start-up reconciliation"), "6");
    if status["state"] == "degraded" {
        assert_eq!(priority("not installing trap policies"), "4");
    }
    assert!(lines
        .iter()
        .all(|l| !l["MESSAGE"].as_str().unwrap_or("").starts_with('<')));

    // reload re-reads the configuration, in the same process.
    assert_eq!(explain_group(&c, "203.0.113.5"), "private-or-clear");
    c.sh_ok(&format!(
        "cat > /etc/oe/oe.toml <<'EOF'\n{}EOF",
        config("\"203.0.113.0/24\"")
    ));
    c.sh_ok("systemctl reload oe");
    let reloaded = wait_until(Duration::from_secs(10), || {
        explain_group(&c, "203.0.113.5") == "block"
    });
    assert!(
        reloaded,
        "{}",
        c.sh_ok("journalctl -u oe --no-pager | tail -20")
    );
    assert_eq!(show(&c, "MainPID"), pid, "a reload is not a restart");
    assert!(wait_until(Duration::from_secs(10), || show(
        &c,
        "ActiveState"
    ) == "active"));
    assert!(c.sh_ok("oe events").contains("configuration reloaded"));

    // stop removes everything with oe's marks (what it installed), and nothing else.
    oe_policy(&c, "192.0.2.0/24");
    c.sh_ok("systemctl stop oe");
    assert_eq!(show(&c, "ActiveState"), "inactive");
    assert_eq!(show(&c, "Result"), "success");
    let p = policies(&c);
    assert!(
        !p.contains("192.0.2.0/24") && p.contains("203.0.113.0/24"),
        "{p}"
    );
    let journal = c.sh_ok("journalctl -b -o cat --no-pager -u oe");
    assert!(
        journal.contains("removed what the agent installed"),
        "{journal}"
    );

    // The unit's exposure, as systemd scores it, stays where it was (2.1).
    let security = c.sh_ok("systemd-analyze security --no-pager oe.service");
    let level: f64 = security
        .lines()
        .find_map(|l| l.strip_prefix("→ Overall exposure level for oe.service: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{security}"));
    println!("systemd-analyze security oe.service: {level}");
    assert!(level <= 2.1, "{security}");
}
