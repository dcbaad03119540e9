#![no_main]
//! Feeds arbitrary datagrams to oe-kernel's parsers of kernel messages: the event
//! parser (ACQUIRE, EXPIRE, POLEXPIRE, MAPPING) and the reply side of the request
//! exchange (dumps of SAs and policies, acks, errors). Nothing may panic.
//! Seeds: `crates/kernel/tests/data/{host,esp}` (captured kernel datagrams).

use oe_kernel::{wire::parse_events, Request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for event in parse_events(data) {
        if let Ok(Some(event)) = event {
            let _ = format!("{event:?}");
        }
    }
    // Replies are matched by sequence number: use the one in the datagram's first header.
    let seq = data
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0);
    let _ = Request::dump_sas().start(seq).1.on_datagram(data);
    let _ = Request::dump_policies().start(seq).1.on_datagram(data);
});
