//! The signed DNS fixture serves what it promises: `delv` with the private root anchor reports secure,
//! insecure, bogus and proven-absent answers for the matching names, and a validating unbound agrees.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use oe_integration::dns::{names, DnsFixture, VALIDATOR};
use oe_integration::netns::Netns;

#[derive(Debug, PartialEq)]
enum Verdict {
    Secure,
    Insecure,
    Bogus,
    ProvenAbsent,
}

fn delv_verdict(out: &str) -> Verdict {
    if out.contains("; fully validated") && !out.contains("negative response") {
        Verdict::Secure
    } else if out.contains("negative response, fully validated") {
        Verdict::ProvenAbsent
    } else if out.contains("; unsigned answer")
        || out.contains("negative response, unsigned answer")
    {
        Verdict::Insecure
    } else {
        assert!(
            out.contains("resolution failed") || out.contains("no valid signature"),
            "unexpected delv output: {out}"
        );
        Verdict::Bogus
    }
}

#[test]
fn delv_sees_secure_insecure_bogus_and_absent() {
    let ns = Netns::new("dns");
    let started = std::time::Instant::now();
    let fixture = DnsFixture::start_in(&ns);
    println!(
        "DNS fixture built, signed and serving in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let cases = [
        (names::RSA_HOST, Verdict::Secure),
        (names::ECDSA_HOST, Verdict::Secure),
        (names::ED_HOST, Verdict::Secure),
        (names::NSEC3_HOST, Verdict::Secure),
        (names::WILDCARD_HOST, Verdict::Secure),
        (names::GATEWAYS, Verdict::Secure),
        (names::REV_V4_RSA, Verdict::Secure),
        (names::REV_V4_ECDSA, Verdict::Secure),
        (names::REV_V4_ED, Verdict::Secure),
        (names::REV_V6_RSA, Verdict::Secure),
        (names::REV_V6_ED, Verdict::Secure),
        (names::INSECURE_HOST, Verdict::Insecure),
        (
            &format!("1.{}", names::REV_V4_INSECURE_ZONE),
            Verdict::Insecure,
        ),
        (names::EXPIRED_HOST, Verdict::Bogus),
        (names::TAMPERED_HOST, Verdict::Bogus),
        (names::NSEC_NOKEY, Verdict::ProvenAbsent),
        (names::NSEC3_NOKEY, Verdict::ProvenAbsent),
        (names::NSEC3_NXDOMAIN, Verdict::ProvenAbsent),
        (names::NSEC_NXDOMAIN, Verdict::ProvenAbsent),
        (names::REV_V4_NOKEY, Verdict::ProvenAbsent),
    ];
    for (name, expected) in cases {
        let out = fixture.delv(&ns, name, "IPSECKEY");
        assert_eq!(delv_verdict(&out), expected, "{name}: {out}");
    }
    // The zone that never answers: no answer within dig's 2 s, or SERVFAIL once unbound gives up.
    let out = ns
        .cmd("dig")
        .args([
            &format!("@{}", fixture.resolver().ip()),
            "+time=2",
            "+tries=1",
            &format!("host.{}", names::DEAD_ZONE),
            "A",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("timed out") || out.contains("SERVFAIL"),
        "dead.example. answered: {out}"
    );
}

#[test]
fn validating_unbound_agrees() {
    let ns = Netns::new("dns");
    let fixture = DnsFixture::start_in(&ns);
    let dig = |name: &str| {
        let out = ns
            .cmd("dig")
            .args([
                &format!("@{VALIDATOR}"),
                "+dnssec",
                "+time=3",
                name,
                "IPSECKEY",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for name in [names::ED_HOST, names::RSA_HOST, names::REV_V6_ED] {
        let out = dig(name);
        assert!(
            out.contains("flags: qr rd ra ad"),
            "{name} should validate (ad): {out}"
        );
    }
    for name in [names::EXPIRED_HOST, names::TAMPERED_HOST] {
        assert!(
            dig(name).contains("status: SERVFAIL"),
            "{name} should be SERVFAIL (bogus)"
        );
    }
    let out = dig(names::INSECURE_HOST);
    assert!(
        out.contains("status: NOERROR") && !out.contains(" ad;"),
        "insecure answers carry no ad: {out}"
    );
    drop(fixture);
}

#[test]
fn extra_records_are_signed_into_their_zone() {
    let ns = Netns::new("dns");
    let key = oe_integration::test_key_ipseckey("ws-ed25519");
    let fixture = DnsFixture::builder()
        .record("ed.example.", "server A 192.0.2.2")
        .record("ed.example.", &format!("server IPSECKEY 10 0 4 . {key}"))
        .start_in(&ns);
    let out = fixture.delv(&ns, "server.ed.example.", "IPSECKEY");
    assert_eq!(delv_verdict(&out), Verdict::Secure, "{out}");
    assert!(out.contains(&key), "{out}");
}
