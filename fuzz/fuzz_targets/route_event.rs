#![no_main]
//! Feeds arbitrary datagrams to oe-kernel's rtnetlink parsers: the event parser (address,
//! route and link changes) and the reply side of every rtnetlink request (address, link
//! and route dumps, a route lookup). Nothing may panic.

use oe_kernel::route::{parse_events, RouteRequest};

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
    let _ = RouteRequest::addresses().start(seq).1.on_datagram(data);
    let _ = RouteRequest::links().start(seq).1.on_datagram(data);
    let _ = RouteRequest::routes().start(seq).1.on_datagram(data);
    let dst = std::net::IpAddr::from([203, 0, 113, 5]);
    let _ = RouteRequest::route_to(dst).start(seq).1.on_datagram(data);
});
