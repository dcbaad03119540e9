//! Real IKE peers start, answer IKE_SA_INIT, and (inside the UML kernel) establish transport-mode ESP with
//! each other: strongSwan's charon and Libreswan's pluto, both directions.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use oe_integration::capture::{Capture, Kind};
use oe_integration::ike_probe::probe;
use oe_integration::netns::Pair;
use oe_integration::peers::{charon_rsa_transport, pluto_rsa_transport, Charon, Pluto};
use oe_integration::uml;

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

#[test]
fn charon_answers_ike_sa_init() {
    let pair = Pair::new();
    let _charon = Charon::start(&pair.b, &charon_rsa_transport(Pair::B4, Pair::A4));
    let answer = pair
        .a
        .run(|| probe(sa(Pair::A4, 500), sa(Pair::B4, 500), Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        answer.first_payload, 33,
        "charon answers with an SA payload: {answer:?}"
    );
    assert_ne!(answer.responder_spi, 0);
}

#[test]
fn pluto_answers_ike_sa_init() {
    let pair = Pair::new();
    let _pluto = Pluto::start(&pair.b, &pluto_rsa_transport(Pair::B4, Pair::A4));
    let answer = pair
        .a
        .run(|| probe(sa(Pair::A4, 500), sa(Pair::B4, 500), Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        answer.first_payload, 33,
        "pluto answers with an SA payload: {answer:?}"
    );
    assert_ne!(answer.responder_spi, 0);
}

/// pluto (a) and charon (b) establish transport-mode ESP with each other, each side initiating once, and
/// the traffic between them is ESP only.
#[test]
fn pluto_and_charon_establish_esp_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("pluto_and_charon_establish_esp_in_the_guest");
    }
    let pair = Pair::new();
    let pluto = Pluto::start(&pair.a, &pluto_rsa_transport(Pair::A4, Pair::B4));
    let charon = Charon::start(&pair.b, &charon_rsa_transport(Pair::B4, Pair::A4));
    let (a, b): (IpAddr, IpAddr) = (Pair::A4.parse().unwrap(), Pair::B4.parse().unwrap());

    // pluto initiates.
    let capture = Capture::start(&pair.a, &pair.a_if);
    let out = pluto.whack(&["--initiate", "--name", "peer"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("established Child SA"),
        "pluto initiate: {text}\n{}",
        pluto.log()
    );
    ping(&pair.a, Pair::B4);
    assert_esp_only(&capture.stop(), a, b);
    assert!(
        charon.list_sas().contains("INSTALLED, TRANSPORT"),
        "charon: {}",
        charon.list_sas()
    );
    assert!(
        !charon.log().contains("end entity cert"),
        "pluto authenticates with a raw key, no certificate"
    );
    assert!(
        pluto.traffic_status().contains("inBytes="),
        "pluto: {}",
        pluto.traffic_status()
    );
    let _ = pluto.whack(&["--terminate", "--name", "peer"]);
    std::thread::sleep(Duration::from_millis(500));

    // charon initiates.
    let capture = Capture::start(&pair.a, &pair.a_if);
    let out = charon.swanctl(&[
        "--initiate",
        "--child",
        "t",
        "--ike",
        "peer",
        "--timeout",
        "30",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("initiate completed successfully"),
        "charon initiate: {text}"
    );
    ping(&pair.b, Pair::A4);
    assert_esp_only(&capture.stop(), a, b);
    assert!(
        pluto.traffic_status().contains("inBytes="),
        "pluto as responder: {}",
        pluto.traffic_status()
    );
}

fn ping(ns: &oe_integration::netns::Netns, dst: &str) {
    let out = ns
        .cmd("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2", dst])
        .output()
        .unwrap();
    assert!(out.status.success(), "ping {dst}: {out:?}");
}

fn assert_esp_only(packets: &[oe_integration::capture::Packet], a: IpAddr, b: IpAddr) {
    let between: Vec<_> = packets.iter().filter(|p| p.between(a, b)).collect();
    let esp = between
        .iter()
        .filter(|p| matches!(p.kind, Kind::Esp { .. }))
        .count();
    assert!(
        esp >= 6,
        "three pings and their replies as ESP: {between:?}"
    );
    let clear: Vec<_> = between
        .iter()
        .filter(|p| !matches!(p.kind, Kind::Esp { .. } | Kind::Ike))
        .collect();
    assert!(clear.is_empty(), "cleartext on the wire: {clear:?}");
}
