//! The namespace harness: hosts reach each other over IPv4 and IPv6, closures run inside a namespace, and
//! namespaces are deleted on drop, even when the test panics.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::UdpSocket;
use std::path::Path;

use oe_integration::netns::{Lan, Netns, Pair};

fn exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn pair_reaches_each_other_over_v4_and_v6() {
    let pair = Pair::new();
    for dst in [Pair::B4, Pair::B6] {
        let out = pair
            .a
            .cmd("ping")
            .args(["-c", "1", "-W", "2", dst])
            .output()
            .unwrap();
        assert!(out.status.success(), "ping {dst}: {out:?}");
    }
}

#[test]
fn closure_runs_inside_the_namespace() {
    let pair = Pair::new();
    let receiver = pair.b.run(|| UdpSocket::bind((Pair::B6, 4000)).unwrap());
    pair.a.run(|| {
        let socket = UdpSocket::bind((Pair::A6, 0)).expect("A6 exists only inside namespace a");
        socket.send_to(b"hello", (Pair::B6, 4000)).unwrap();
    });
    let mut buf = [0; 16];
    receiver
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let (n, from) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(from.ip().to_string(), Pair::A6);
    // The test process itself is not in either namespace.
    assert!(UdpSocket::bind((Pair::A4, 0)).is_err());
}

#[test]
fn namespaces_are_deleted_on_drop_and_on_panic() {
    let name = {
        let ns = Netns::new("drop");
        assert!(exists(ns.name()));
        ns.name().to_owned()
    };
    assert!(!exists(&name), "{name} survived its drop");

    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let ns = Netns::new("panic");
        tx.send(ns.name().to_owned()).unwrap();
        panic!("test panic while {} exists", ns.name());
    });
    assert!(result.is_err());
    let name = rx.recv().unwrap();
    assert!(!exists(&name), "{name} survived a panic");
}

#[test]
fn lan_joins_three_hosts() {
    let lan = Lan::new();
    let hosts: Vec<Netns> = ["x", "y", "z"].iter().map(|l| Netns::new(l)).collect();
    for (i, host) in hosts.iter().enumerate() {
        lan.attach(
            host,
            &[
                &format!("198.51.100.{}/24", i + 1),
                &format!("2001:db8:1::{}/64", i + 1),
            ],
        );
    }
    for dst in ["198.51.100.3", "2001:db8:1::2"] {
        let out = hosts[0]
            .cmd("ping")
            .args(["-c", "1", "-W", "2", dst])
            .output()
            .unwrap();
        assert!(out.status.success(), "ping {dst} over the LAN");
    }
}
