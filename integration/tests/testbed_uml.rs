//! The UML guest kernel carries real ESP: statically keyed transport-mode SAs between two namespaces put
//! only ESP on the wire (IPv4 and IPv6), and a trap policy raises an ACQUIRE.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use oe_integration::capture::{Capture, Kind};
use oe_integration::netns::{Netns, Pair};
use oe_integration::process::Daemon;
use oe_integration::uml;

/// Installs an SA pair and policies for one address family, keyed statically (`ip xfrm`).
fn install_static_esp(ns: &Netns, local: &str, remote: &str, out_spi: u32, in_spi: u32) {
    // One key per SPI, so both ends agree on each direction's key.
    let sa = |src: &str, dst: &str, spi: u32| {
        let key = format!("0x{spi:08x}0102030405060708090a0b0c0d0e0f10");
        ns.sh(&format!(
            "ip xfrm state add src {src} dst {dst} proto esp spi {spi:#x} reqid 7 mode transport \
             aead 'rfc4106(gcm(aes))' {key} 128"
        ));
    };
    sa(local, remote, out_spi);
    sa(remote, local, in_spi);
    for (dir, src, dst) in [("out", local, remote), ("in", remote, local)] {
        ns.sh(&format!(
            "ip xfrm policy add src {src} dst {dst} dir {dir} tmpl src {src} dst {dst} proto esp reqid 7 mode transport"
        ));
    }
}

fn esp_pair() -> Pair {
    let pair = Pair::new();
    for (a, b) in [(Pair::A4, Pair::B4), (Pair::A6, Pair::B6)] {
        install_static_esp(&pair.a, a, b, 0x1000, 0x2000);
        install_static_esp(&pair.b, b, a, 0x2000, 0x1000);
    }
    pair
}

#[test]
fn static_esp_crosses_the_wire_encrypted() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("static_esp_crosses_the_wire_encrypted");
    }
    let pair = esp_pair();
    let capture = Capture::start(&pair.a, &pair.a_if);
    for (src, dst) in [(Pair::A4, Pair::B4), (Pair::A6, Pair::B6)] {
        let receiver = pair.b.run(|| UdpSocket::bind((dst, 5000)).unwrap());
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        pair.a.run(|| {
            UdpSocket::bind((src, 0))
                .unwrap()
                .send_to(b"secret payload", (dst, 5000))
                .unwrap()
        });
        let mut buf = [0; 64];
        let (n, _) = receiver
            .recv_from(&mut buf)
            .expect("the datagram arrives through ESP");
        assert_eq!(&buf[..n], b"secret payload");
        let ping = pair
            .a
            .cmd("ping")
            .args(["-c", "2", "-i", "0.2", "-W", "2", dst])
            .output()
            .unwrap();
        assert!(ping.status.success(), "ping {dst} through ESP");
    }
    let packets = capture.stop();
    let (a4, b4): (IpAddr, IpAddr) = (Pair::A4.parse().unwrap(), Pair::B4.parse().unwrap());
    let (a6, b6): (IpAddr, IpAddr) = (Pair::A6.parse().unwrap(), Pair::B6.parse().unwrap());
    for (x, y) in [(a4, b4), (a6, b6)] {
        let between: Vec<_> = packets.iter().filter(|p| p.between(x, y)).collect();
        let esp = between
            .iter()
            .filter(|p| matches!(p.kind, Kind::Esp { .. }))
            .count();
        // A datagram and two echo requests each way: at least 5 ESP packets per family.
        assert!(esp >= 5, "{x} <-> {y}: {esp} ESP packets in {between:?}");
        let clear: Vec<_> = between
            .iter()
            .filter(|p| !matches!(p.kind, Kind::Esp { .. }))
            .collect();
        assert!(
            clear.is_empty(),
            "{x} <-> {y}: cleartext on the wire: {clear:?}"
        );
    }
    let spis: Vec<u32> = packets
        .iter()
        .filter_map(|p| match p.kind {
            Kind::Esp { spi } => Some(spi),
            _ => None,
        })
        .collect();
    assert!(
        spis.contains(&0x1000) && spis.contains(&0x2000),
        "both SAs carried traffic: {spis:x?}"
    );
}

#[test]
fn trap_policy_raises_acquire_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("trap_policy_raises_acquire_in_the_guest");
    }
    let pair = Pair::new();
    assert_acquire(&pair.a, Pair::A4, Pair::B4);
}

/// The host kernel (no ESP) raises ACQUIREs too: trap policies work everywhere.
#[test]
fn trap_policy_raises_acquire_on_the_host() {
    let pair = Pair::new();
    assert_acquire(&pair.a, Pair::A4, Pair::B4);
}

fn assert_acquire(ns: &Netns, local: &str, remote: &str) {
    ns.sh(&format!(
        "ip xfrm policy add src {local}/32 dst {remote}/32 dir out tmpl src {local} dst {remote} proto esp mode transport"
    ));
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut monitor = ns.cmd("ip");
    monitor.args(["-o", "xfrm", "monitor", "acquire"]);
    let mut monitor = Daemon::spawn("ip xfrm monitor", monitor, log.path()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let acquired = oe_integration::process::wait_until(Duration::from_secs(10), || {
        let _ = ns.run(|| {
            UdpSocket::bind((local, 0))
                .unwrap()
                .send_to(b"trigger", (remote, 7000))
        });
        std::fs::read_to_string(log.path()).is_ok_and(|t| t.contains("acquire"))
    });
    monitor.stop(Duration::from_secs(2));
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(acquired, "no ACQUIRE for {local} -> {remote}: {text}");
    assert!(
        text.contains(&format!("src {local} dst {remote}")),
        "ACQUIRE names the pair: {text}"
    );
    assert!(
        text.contains("dport 7000"),
        "ACQUIRE carries the selector's port: {text}"
    );
}
