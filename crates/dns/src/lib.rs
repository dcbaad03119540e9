//! `oe-dns`: IPSECKEY records (RFC 4025) proven with DNSSEC.
//!
//! - [`ipseckey`]: the record codec, wire and presentation form; no I/O, total parsing.
//!
//! Contract: only a key from a `Secure` answer may authenticate a peer; insecure, absent, bogus
//! and failed lookups are distinct outcomes the agent's policy acts on. Nothing here decides
//! policy.

#![forbid(unsafe_code)]

pub mod ipseckey;

pub use ipseckey::{Gateway, IpsecKey, PublicKey};
