use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, PublicKeyBuf, TrustAnchors};
use hickory_proto::rr::Name;

use super::{AnchorError, AnchorSet};

/// The root KSK-2017 DS record as IANA publishes it (root-anchors.xml).
const ROOT_DS_2017: &str =
    ". 86400 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";

fn iana_dnskeys() -> Vec<DNSKEY> {
    AnchorSet::iana()
        .keys
        .into_iter()
        .map(|(_, alg, bytes)| DNSKEY::new(true, true, false, PublicKeyBuf::new(bytes, alg)))
        .collect()
}

#[test]
fn iana_default_has_both_root_ksks() {
    let set = AnchorSet::iana();
    assert_eq!(set.keys.len(), 2);
    assert!(set
        .keys
        .iter()
        .all(|(o, a, _)| o.is_root() && *a == Algorithm::RSASHA256));
    assert_eq!(set.trust_anchors().len(), 2);
}

#[test]
fn ds_anchor_selects_the_matching_dnskey() {
    let set = AnchorSet::parse(ROOT_DS_2017).unwrap();
    assert_eq!(set.ds.len(), 1);
    assert_eq!(set.ds_owners(), vec![Name::root()]);
    let mut anchors = TrustAnchors::empty();
    // Of the two root KSKs only KSK-2017 has this digest.
    assert_eq!(
        set.resolve_ds(&Name::root(), &iana_dnskeys(), &mut anchors),
        1
    );
    assert_eq!(anchors.len(), 1);
    // A DS for another owner matches nothing here.
    let other = AnchorSet::parse(&ROOT_DS_2017.replacen(". ", "example. ", 1)).unwrap();
    let mut anchors = TrustAnchors::empty();
    assert_eq!(
        other.resolve_ds(&Name::root(), &iana_dnskeys(), &mut anchors),
        0
    );
}

#[test]
fn dnskey_file_forms() {
    let key = "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU=";
    let text = format!(
        "; comment line\n$TTL 3600\n\
         . IN DNSKEY 257 3 8 {key}\n\
         . 172800 IN DNSKEY ( 257 3 8\n {} ; split\n {} )\n\
         example. DNSKEY 385 3 8 {key}\n\
         example. IN 300 DNSKEY 1 3 8 {key}\n",
        &key[..100],
        &key[100..]
    );
    let set = AnchorSet::parse(&text).unwrap();
    // The revoked key (flags 385 = 0x181) and the non-zone key (flags 1) are skipped.
    assert_eq!(set.keys.len(), 2);
    assert_eq!(set.keys[0], set.keys[1]);
    assert!(set.trust_anchors().len() == 1);
}

#[test]
fn syntax_errors_name_the_line() {
    for (text, line) in [
        ("\n\nexample IN DS 1 8 2 AA", 3),
        (". IN DS 1 8 2 XYZ", 1),
        (". IN A 192.0.2.1", 1),
        (". IN DNSKEY 257 2 8 AwEA", 1),
        (". IN DNSKEY 257 3 8 ***", 1),
        ("\n. IN DS ( 1 8 2 AA", 2),
        (". IN DS 70000 8 2 AA", 1),
    ] {
        match AnchorSet::parse(text) {
            Err(AnchorError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        AnchorSet::parse("; nothing\n"),
        Err(AnchorError::Empty)
    ));
}
