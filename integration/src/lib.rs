//! The oe test bed: real components, started by the tests themselves.
//!
//! - [`netns`]: named network namespaces joined by veth pairs, deleted on drop.
//! - [`uml`]: re-run a test inside a User-Mode-Linux kernel that has ESP (the host kernel may not).
//! - [`dns`]: a private DNSSEC tree (root and signed, unsigned, expired and tampered children) served by
//!   nsd and knot behind a recursive unbound.
//! - [`home_router`]: dnsmasq as a home router that strips DNSSEC records.
//! - [`peers`]: strongSwan's charon and Libreswan's pluto as IKE peers.
//! - [`load`]: a load generator: many IKE initiators from many source addresses.
//! - [`capture`]: tcpdump captures and a classifier that tells ESP from cleartext.
//! - [`openmetrics`]: OpenMetrics text read back by Python's prometheus_client.
//! - [`container`]: systemd as PID 1 in a container (systemd-nspawn) on a fresh root.
//! - [`package`]: the Debian package, and a throwaway copy of this host's root to install it in.
//!
//! Everything here needs root and Debian packages (see `.ci/debian-packages`). A test that cannot get what it
//! needs fails with a message naming it ([`require`]); nothing is skipped silently.
//!
//! Panicking with a clear message is this crate's error handling: it only ever runs inside tests.
#![allow(clippy::panic, clippy::indexing_slicing)] // serde_json::Value indexing returns Null, never panics

pub mod agent;
pub mod capture;
pub mod container;
pub mod dns;
pub mod home_router;
pub mod ike_probe;
pub mod load;
pub mod nat;
pub mod netns;
pub mod openmetrics;
pub mod package;
pub mod peers;
pub mod process;
pub mod require;
pub mod scenario;
pub mod uml;

/// The repository's `integration/` folder (scripts, keys, DNS tree builder).
pub fn integration_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed test keys (`integration/keys`): PKCS#8 PEM private keys, their public halves, and
/// `ipseckey.txt` with each key's IPSECKEY key field.
pub fn keys_dir() -> std::path::PathBuf {
    integration_dir().join("keys")
}

/// The IPSECKEY public-key field (base64) of a committed test key, e.g. `test_key_ipseckey("host-ed25519")`.
pub fn test_key_ipseckey(name: &str) -> String {
    let path = keys_dir().join("ipseckey.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name))
                .then(|| f.nth(1).map(str::to_owned))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no test key named {name} in {}", path.display()))
}
