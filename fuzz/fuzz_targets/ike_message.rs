#![no_main]
//! Round trip of the IKEv2 message parser (hickory `fuzz_targets/message.rs` style): whatever
//! parses must re-encode to bytes that parse to the same message; inner payload chains too.

use oe_ike::wire::{parse_chain, Message, PayloadType};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let bytes = m.emit();
        let again = Message::parse(&bytes).expect("re-encoded message must parse");
        assert_eq!(again, m);
    }
    // The same bytes as a decrypted SK body starting with each common payload type.
    if let Some((&first, rest)) = data.split_first() {
        let _ = parse_chain(PayloadType(first), rest, 0);
    }
});
