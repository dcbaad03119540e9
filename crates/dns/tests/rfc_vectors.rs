//! The RFC 4025 section 3 and RFC 9373 Appendix A examples: parse, print, and round-trip
//! through wire form.

use oe_dns::ipseckey::{Gateway, IpsecKey, PublicKey, Usability};

/// Splits a zone-file fragment into the RDATA text of each IPSECKEY record.
fn rdata_texts(zone: &str) -> Vec<String> {
    let without_comments: String = zone
        .lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split("IPSECKEY")
        .skip(1)
        .map(|rest| {
            // The RDATA ends with its closing parenthesis.
            let end = rest.find(')').map_or(rest.len(), |i| i + 1);
            rest[..end].to_owned()
        })
        .collect()
}

const RFC4025_KEY_HEX: &str =
    "010351537986ed35533b6064478eeeb27b5bd74dae149b6e81ba3a0521af82ab7801";

#[test]
fn rfc4025_section3_examples() {
    let texts = rdata_texts(include_str!("data/rfc4025-section3.zone"));
    assert_eq!(texts.len(), 5);
    let printed = [
        "10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
        "10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
        "10 1 2 192.0.2.3 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
        "10 3 2 mygateway.example.com. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
        "10 2 2 2001:db8:0:8002::2000:1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
    ];
    let key = hex::decode(RFC4025_KEY_HEX).unwrap();
    for (text, want) in texts.iter().zip(printed) {
        let rec: IpsecKey = text.parse().unwrap();
        assert_eq!(rec.to_string(), want);
        assert_eq!(rec.precedence, 10);
        let PublicKey::Rsa { exponent, modulus } = &rec.key else {
            panic!("{rec:?}")
        };
        assert_eq!(exponent, &[3]);
        assert_eq!(modulus.len(), 32);
        // A 256-bit toy modulus: parsed, but not usable for authentication.
        assert!(matches!(rec.key.usability(), Usability::Unsupported(_)));
        // Wire form: header, gateway, then the key bytes exactly as published.
        let wire = rec.to_wire();
        assert!(wire.ends_with(&key));
        assert_eq!(IpsecKey::parse(&wire).unwrap(), rec);
        assert_eq!(want.parse::<IpsecKey>().unwrap(), rec);
    }
    let gw = |i: usize| texts[i].parse::<IpsecKey>().unwrap().to_wire();
    assert_eq!(&gw(0)[..7], &[10, 1, 2, 192, 0, 2, 38]);
    assert_eq!(&gw(1)[..3], &[10, 0, 2]);
    assert_eq!(
        &gw(3)[..28],
        b"\x0a\x03\x02\x09mygateway\x07example\x03com\x00\x01\x03"
    );
    let v6: [u8; 16] = "2001:db8:0:8002::2000:1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert_eq!(&gw(4)[3..19], &v6);
}

#[test]
fn rfc9373_appendix_a_example() {
    let texts = rdata_texts(include_str!("data/rfc9373-appendix-a.zone"));
    assert_eq!(texts.len(), 1);
    let rec: IpsecKey = texts[0].parse().unwrap();
    assert_eq!(rec.gateway, Gateway::None);
    let PublicKey::Ed25519(public) = rec.key else {
        panic!("{rec:?}")
    };
    assert_eq!(rec.key.usability(), Usability::Usable);
    assert_eq!(
        rec.to_string(),
        "10 0 4 . 3WTXgUvpn1RlCXnm80gGY2LZ/ErUUEZtZ33IDi8yfhM="
    );
    assert_eq!(IpsecKey::parse(&rec.to_wire()).unwrap(), rec);

    // The published key is the public half of the RFC's private key.
    use ring::signature::KeyPair as _;
    let seed =
        hex::decode("c7be71a45cbf87785f639dc4fd1c82637c21b5e02488939976ece32b9268d0b7").unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    assert_eq!(pair.public_key().as_ref(), &public);
}
