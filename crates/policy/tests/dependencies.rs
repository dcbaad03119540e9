//! The policy core is sans-IO by construction: no crate that opens sockets, runs a reactor,
//! resolves names or talks netlink may appear in its dependency graph (ARCHITECTURE.md). The
//! executor (oe-agent) brings those.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

/// Crates that open sockets, run reactors, resolve names or wrap syscalls for I/O.
const IO_CRATES: [&str; 9] = [
    "tokio",
    "mio",
    "socket2",
    "netlink-sys",
    "netlink-proto",
    "hickory-resolver",
    "async-std",
    "nix",
    "rustls",
];

/// The names of the crates in `package`'s normal dependency graph.
fn dependency_names(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "-p", package, "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .unwrap();
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
fn the_policy_core_has_no_io_crates() {
    let names = dependency_names("oe-policy");
    for needed in ["oe-ike", "oe-kernel", "oe-dns"] {
        assert!(names.iter().any(|n| n == needed), "{needed}: {names:?}");
    }
    let io: Vec<_> = names
        .iter()
        .filter(|n| IO_CRATES.contains(&n.as_str()))
        .collect();
    assert!(io.is_empty(), "I/O crates in oe-policy's graph: {io:?}");
}

#[test]
fn the_executor_brings_them() {
    // The control: the same reading of `cargo tree` sees I/O crates where they are.
    let names = dependency_names("oe-agent");
    for expected in ["tokio", "netlink-sys", "hickory-resolver"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
}
