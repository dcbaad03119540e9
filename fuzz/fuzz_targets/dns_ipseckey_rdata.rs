#![no_main]
//! IPSECKEY RDATA: parse, emit, parse again; the second parse must give the same record, and
//! the presentation form must parse back to it too. No input may panic.

use oe_dns::ipseckey::IpsecKey;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(record) = IpsecKey::parse(data) else {
        return;
    };
    let wire = record.to_wire();
    let again = IpsecKey::parse(&wire).expect("emitted RDATA must parse");
    assert_eq!(again, record);
    let text = record.to_string();
    let from_text: IpsecKey = text.parse().expect("printed RDATA must parse");
    assert_eq!(from_text, record);
});
