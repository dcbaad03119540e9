//! Whole-message tests: captured bytes decoded field by field and re-encoded byte-identical,
//! round trips of every payload, and malformed input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// IKE_SA_INIT request sent by strongSwan charon 5.9.8 (captured in a namespace, Ed25519 config,
/// proposals aes256-sha256-x25519 and aes128gcm16-prfsha256-ecp256).
const STRONGSWAN_INIT: &[u8] = include_bytes!("../../testdata/strongswan_ike_sa_init.bin");

#[test]
fn strongswan_ike_sa_init_decodes() {
    let m = Message::parse(STRONGSWAN_INIT).unwrap();
    assert_eq!(m.header.spi_i, 0x6d6d_ee04_852f_462b);
    assert_eq!(m.header.spi_r, 0);
    assert_eq!(m.header.exchange, ExchangeType::IKE_SA_INIT);
    assert_eq!(m.header.flags, flags::INITIATOR);
    assert_eq!(m.header.message_id, 0);
    let types: Vec<_> = m.payloads.iter().map(Payload::payload_type).collect();
    assert_eq!(
        types,
        [PayloadType::SA, PayloadType::KE, PayloadType::NONCE]
            .into_iter()
            .chain([PayloadType::NOTIFY; 5])
            .collect::<Vec<_>>()
    );
    let Payload::Sa(sa) = &m.payloads[0] else {
        panic!()
    };
    assert_eq!(sa.proposals.len(), 2);
    let p1 = &sa.proposals[0];
    assert_eq!(
        (p1.number, p1.protocol, p1.spi.len()),
        (1, ProtocolId::IKE, 0)
    );
    let t: Vec<_> = p1
        .transforms
        .iter()
        .map(|t| (t.ty, t.id, t.key_len()))
        .collect();
    assert_eq!(
        t,
        [
            (TransformType::ENCR, 12, Some(256)),
            (TransformType::INTEG, 12, None),
            (TransformType::PRF, 5, None),
            (TransformType::KE, 31, None),
        ]
    );
    let p2 = &sa.proposals[1];
    assert_eq!(p2.first(TransformType::ENCR).unwrap().id, 20);
    assert_eq!(p2.first(TransformType::ENCR).unwrap().key_len(), Some(128));
    assert_eq!(p2.first(TransformType::KE).unwrap().id, 19);
    let Payload::Ke(ke) = &m.payloads[1] else {
        panic!()
    };
    assert_eq!((ke.group, ke.data.len()), (31, 32));
    let Payload::Nonce(n) = &m.payloads[2] else {
        panic!()
    };
    assert_eq!(n.0.len(), 32);
    let notes: Vec<_> = m.notifies().map(|n| n.ty).collect();
    assert_eq!(
        notes,
        [
            NotifyType::NAT_DETECTION_SOURCE_IP,
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            NotifyType::SIGNATURE_HASH_ALGORITHMS,
            NotifyType(16406), // REDIRECT_SUPPORTED (RFC 5685), kept though unknown to us
        ]
    );
    let sha = find_notify(&m.payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS).unwrap();
    assert_eq!(sha.u16_list().unwrap(), [2, 3, 4, 5]);
    assert_eq!(
        find_notify(&m.payloads, NotifyType::NAT_DETECTION_SOURCE_IP)
            .unwrap()
            .data
            .len(),
        20
    );
}

#[test]
fn strongswan_ike_sa_init_reencodes_identically() {
    let m = Message::parse(STRONGSWAN_INIT).unwrap();
    assert_eq!(m.buffer_len(), STRONGSWAN_INIT.len());
    assert_eq!(m.emit(), STRONGSWAN_INIT);
}

#[test]
fn every_truncation_and_length_change_is_an_error() {
    for n in 0..STRONGSWAN_INIT.len() {
        assert!(
            Message::parse(&STRONGSWAN_INIT[..n]).is_err(),
            "prefix of {n} bytes parsed"
        );
    }
    let mut longer = STRONGSWAN_INIT.to_vec();
    longer.push(0);
    assert_eq!(
        Message::parse(&longer),
        Err(WireError::BadLength { what: "IKE header" })
    );
}

#[test]
fn single_bit_flips_never_panic() {
    for i in 0..STRONGSWAN_INIT.len() * 8 {
        let mut b = STRONGSWAN_INIT.to_vec();
        b[i / 8] ^= 1 << (i % 8);
        if let Ok(m) = Message::parse(&b) {
            // Whatever still parses must re-encode to a message that parses the same way.
            assert_eq!(Message::parse(&m.emit()).unwrap(), m);
        }
    }
}

fn header(exchange: ExchangeType) -> Header {
    Header {
        spi_i: 1,
        spi_r: 2,
        next_payload: PayloadType::NONE,
        version: Header::VERSION_2_0,
        exchange,
        flags: flags::RESPONSE,
        message_id: 7,
        length: 0,
    }
}

fn every_payload() -> Vec<Payload> {
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    vec![
        Payload::Notify(NotifyPayload::new(NotifyType::USE_TRANSPORT_MODE, vec![])),
        Payload::IdI(Identity::Fqdn("host.example.com".into())),
        Payload::IdR(Identity::Null),
        Payload::IdR(Identity::Ipv6(Ipv6Addr::LOCALHOST)),
        Payload::IdI(Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 9))),
        Payload::Auth(AuthPayload {
            method: AuthMethodId::DIGITAL_SIGNATURE,
            data: vec![7; 70],
        }),
        Payload::CertReq(CertPayload {
            encoding: CertEncoding::RAW_PUBLIC_KEY,
            data: vec![],
        }),
        Payload::Cert(CertPayload {
            encoding: CertEncoding::RAW_PUBLIC_KEY,
            data: vec![1; 44],
        }),
        Payload::TsI(TsPayload(vec![
            TrafficSelector::host(v4),
            TrafficSelector::host(v6),
        ])),
        Payload::TsR(TsPayload(vec![TrafficSelector {
            ip_proto: 6,
            start_port: 80,
            end_port: 80,
            start: v4,
            end: v4,
        }])),
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::ESP,
            spis: vec![0xc000_0001, 5],
        }),
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spis: vec![],
        }),
        Payload::Vendor(b"oe".to_vec()),
        Payload::Notify(NotifyPayload {
            protocol: ProtocolId::ESP,
            spi: vec![1, 2, 3, 4],
            ty: NotifyType::REKEY_SA,
            data: vec![],
        }),
        Payload::Unknown {
            ty: PayloadType(200),
            critical: false,
            body: vec![9, 9],
        },
        Payload::Ke(KePayload {
            group: 14,
            data: vec![3; 256],
        }),
        Payload::Nonce(NoncePayload(vec![4; 16])),
    ]
}

#[test]
fn every_payload_round_trips() {
    let m = Message {
        header: header(ExchangeType::INFORMATIONAL),
        payloads: every_payload(),
    };
    let bytes = m.emit();
    assert_eq!(bytes.len(), m.buffer_len());
    let back = Message::parse(&bytes).unwrap();
    assert_eq!(back.payloads, m.payloads);
    assert_eq!(back.emit(), bytes);
}

#[test]
fn critical_unknown_payload_names_itself() {
    let m = Message {
        header: header(ExchangeType::INFORMATIONAL),
        payloads: vec![Payload::Unknown {
            ty: PayloadType(200),
            critical: true,
            body: vec![],
        }],
    };
    let err = Message::parse(&m.emit()).unwrap_err();
    assert_eq!(
        err,
        WireError::UnsupportedCritical {
            payload: PayloadType(200)
        }
    );
    assert_eq!(
        err.answer(),
        (NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![200])
    );
}

#[test]
fn sk_payload_must_be_last_and_records_its_aad() {
    let inner = vec![Payload::Nonce(NoncePayload(vec![1; 32]))];
    let (first, _) = encode_inner(&inner);
    let sk = Payload::Sk(Encrypted {
        first_inner: first,
        aad_len: 0,
        body: vec![0xaa; 40],
    });
    let m = Message {
        header: header(ExchangeType::IKE_AUTH),
        payloads: vec![sk],
    };
    let bytes = m.emit();
    let Payload::Sk(e) = &Message::parse(&bytes).unwrap().payloads[0] else {
        panic!()
    };
    assert_eq!(
        (e.first_inner, e.aad_len, e.body.len()),
        (PayloadType::NONCE, 32, 40)
    );
    assert_eq!(sk_prefix(&m.header, first, 40), bytes[..32]);
    // A payload after SK is malformed.
    let mut bad = m.clone();
    bad.payloads.push(Payload::Vendor(vec![]));
    assert!(Message::parse(&bad.emit()).is_err());
}

#[test]
fn skf_fragment_numbers_are_checked() {
    let frag = |number, total| {
        let f = Fragment {
            first_inner: PayloadType::NONE,
            number,
            total,
            aad_len: 0,
            body: vec![1; 20],
        };
        Message {
            header: header(ExchangeType::IKE_AUTH),
            payloads: vec![Payload::Skf(f)],
        }
        .emit()
    };
    let Payload::Skf(f) = &Message::parse(&frag(2, 3)).unwrap().payloads[0] else {
        panic!()
    };
    assert_eq!((f.number, f.total, f.aad_len), (2, 3, 36));
    assert_eq!(
        skf_prefix(&header(ExchangeType::IKE_AUTH), PayloadType::NONE, 2, 3, 20),
        frag(2, 3)[..36]
    );
    assert!(Message::parse(&frag(0, 3)).is_err());
    assert!(Message::parse(&frag(4, 3)).is_err());
}

#[test]
fn bad_version_and_short_nonce() {
    let mut b = STRONGSWAN_INIT.to_vec();
    b[17] = 0x30;
    assert_eq!(
        Message::parse(&b),
        Err(WireError::UnsupportedVersion { major: 3 })
    );
    assert!(NoncePayload::parse(&[0; 15]).is_err());
    assert!(NoncePayload::parse(&[0; 257]).is_err());
    assert!(
        Identity::parse(&[13, 0, 0, 0, 1]).is_err(),
        "ID_NULL with data"
    );
    assert!(
        Identity::parse(&[2, 0, 0, 0, b'a', 0]).is_err(),
        "NUL in FQDN"
    );
}
