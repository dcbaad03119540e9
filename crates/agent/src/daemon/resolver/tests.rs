#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{discover, nameservers, RESOLVED, RESOLV_CONF};

const STUB: &str = "127.0.2.53:53";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn files(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = list
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect();
    move |p| map.get(p).cloned()
}

#[test]
fn nameserver_lines() {
    let text = "# written by DHCP\nsearch example\nnameserver 127.0.2.53\nnameserver 192.0.2.53 # isp\n nameserver fe80::1%eth0\noptions edns0\n";
    assert_eq!(
        nameservers(text),
        [sa("127.0.2.53:53"), sa("192.0.2.53:53"), sa("[fe80::1]:53")]
    );
}

#[test]
fn a_plain_resolv_conf_with_the_stub_first_gives_the_servers_after_it() {
    let found = discover(
        &[],
        &[sa(STUB)],
        files(&[(
            RESOLV_CONF,
            "nameserver 127.0.2.53\nnameserver 192.0.2.53\n",
        )]),
    );
    assert_eq!(found.servers, [sa("192.0.2.53:53")]);
    assert_eq!(found.source, RESOLV_CONF);
}

#[test]
fn resolv_conf_naming_only_the_stub_falls_back_to_resolved_then_networkmanager() {
    let only_stub = (RESOLV_CONF, "nameserver 127.0.2.53\n");
    let none = discover(&[], &[sa(STUB)], files(&[only_stub]));
    assert!(none.servers.is_empty() && none.source.is_empty());
    let nm = discover(
        &[],
        &[sa(STUB)],
        files(&[
            only_stub,
            (
                "/run/NetworkManager/no-stub-resolv.conf",
                "nameserver 198.51.100.53\n",
            ),
        ]),
    );
    assert_eq!(nm.servers, [sa("198.51.100.53:53")]);
    let resolved = discover(
        &[],
        &[sa(STUB)],
        files(&[only_stub, (RESOLVED, "nameserver 203.0.113.53\n")]),
    );
    assert_eq!(resolved.servers, [sa("203.0.113.53:53")]);
    assert_eq!(resolved.source, RESOLVED);
}

#[test]
fn resolved_forwarding_to_the_stub_is_not_used_as_its_upstream() {
    // resolv.conf -> resolved (127.0.0.53) -> the stub: forwarding to 127.0.0.53 would loop.
    let found = discover(
        &[],
        &[sa(STUB)],
        files(&[
            (
                RESOLV_CONF,
                "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
            ),
            (RESOLVED, "nameserver 127.0.2.53\nnameserver 192.0.2.53\n"),
        ]),
    );
    assert_eq!(found.servers, [sa("192.0.2.53:53")]);
    assert!(
        found.notes[0].contains("forwards to this stub"),
        "{found:?}"
    );
    // resolved behind the stub (it does not name the stub): forwarded to as it is.
    let behind = discover(
        &[],
        &[sa(STUB)],
        files(&[
            (RESOLV_CONF, "nameserver 127.0.0.53\n"),
            (RESOLVED, "nameserver 192.0.2.53\n"),
        ]),
    );
    assert_eq!(behind.servers, [sa("127.0.0.53:53")]);
}

#[test]
fn the_configuration_wins_and_never_names_the_stub() {
    let found = discover(
        &[sa(STUB), sa("192.0.2.1:53")],
        &[sa(STUB)],
        files(&[(RESOLV_CONF, "nameserver 192.0.2.53\n")]),
    );
    assert_eq!(found.servers, [sa("192.0.2.1:53")]);
    assert_eq!(found.source, "the configuration");
}
