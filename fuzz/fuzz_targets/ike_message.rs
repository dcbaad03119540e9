#![no_main]
// Placeholder until the parser lands; the owning crate replaces this body.
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
