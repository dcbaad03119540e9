//! oe-ike: an IKEv2 (RFC 7296) engine with no I/O inside.
//!
//! Datagrams and the current time go in; datagrams to send, timers and events come out.

pub mod crypto;
pub mod wire;
