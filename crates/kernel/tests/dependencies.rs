//! Without its default features oe-kernel is typed requests, specs, events and checked
//! wire parsing: no I/O crate may appear in its dependency graph, so a sans-IO policy
//! core can depend on it (ARCHITECTURE.md, oe-kernel's invariants).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

/// Crates that open sockets, run reactors or wrap syscalls for I/O.
const IO_CRATES: [&str; 5] = ["tokio", "mio", "netlink-sys", "netlink-proto", "socket2"];

/// The names of the crates in oe-kernel's normal dependency graph.
fn dependency_names(default_features: bool) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "-p", "oe-kernel", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"]);
    if !default_features {
        cmd.arg("--no-default-features");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn no_default_features_means_no_io_crates() {
    let names = dependency_names(false);
    assert!(
        names.iter().any(|n| n == "netlink-packet-xfrm"),
        "{names:?}"
    );
    let io: Vec<_> = names
        .iter()
        .filter(|n| IO_CRATES.contains(&n.as_str()))
        .collect();
    assert!(io.is_empty(), "I/O crates without default features: {io:?}");
}

#[test]
fn default_features_bring_the_io_half() {
    // The control: the same reading of `cargo tree` sees the I/O crates when they are there.
    let names = dependency_names(true);
    for expected in ["tokio", "netlink-sys"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
}
