//! config/oe.service: systemd's own checker accepts it without a warning, and it keeps the
//! settings the agent depends on (Type=notify, SIGHUP reload, /run/oe, its two capabilities, a
//! writable net.core for xfrm_larval_drop).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/oe.service");
    std::fs::read_to_string(path).unwrap()
}

/// The unit's `Key=value` lines, in order.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value(text: &str, key: &str) -> String {
    let found: Vec<String> = settings(text)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "{key} set {} times", found.len());
    found[0].clone()
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is missing: install the Debian package `systemd` (.ci/debian-packages)");
    };
    assert!(out.status.success());
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("oe.service");
    let text = unit_text().replace("/usr/bin/oe", env!("CARGO_BIN_EXE_oe"));
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown or misspelt keys are only warnings ("Unknown key ..., ignoring"): none allowed.
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

#[test]
fn the_unit_keeps_what_the_agent_needs() {
    let text = unit_text();
    assert_eq!(value(&text, "Type"), "notify");
    assert_eq!(value(&text, "ExecStart"), "/usr/bin/oe run");
    assert_eq!(value(&text, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value(&text, "RuntimeDirectory"), "oe");
    assert_eq!(value(&text, "Restart"), "on-failure");
    assert_eq!(
        value(&text, "CapabilityBoundingSet"),
        "CAP_NET_ADMIN CAP_NET_BIND_SERVICE"
    );
    assert_eq!(
        value(&text, "AmbientCapabilities"),
        "CAP_NET_ADMIN CAP_NET_BIND_SERVICE"
    );
    assert_eq!(
        value(&text, "RestrictAddressFamilies"),
        "AF_UNIX AF_INET AF_INET6 AF_NETLINK"
    );
    assert_eq!(value(&text, "ProtectKernelTunables"), "yes");
    assert_eq!(value(&text, "ReadWritePaths"), "/proc/sys/net/core");
    for key in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "NoNewPrivileges",
        "SystemCallArchitectures",
    ] {
        assert!(!value(&text, key).is_empty(), "{key}");
    }
    // The status socket's default folder must be the runtime directory systemd creates.
    let socket = oe_agent::config::Config::embedded().status.socket;
    assert_eq!(socket.parent(), Some(Path::new("/run/oe")));
}
