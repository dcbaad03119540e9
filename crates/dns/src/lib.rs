//! `oe-dns`: IPSECKEY records (RFC 4025) proven with DNSSEC.
//!
//! - [`ipseckey`]: the record codec, wire and presentation form; no I/O, total parsing.
//! - [`LookupTarget`]: a host name (forward lookup) or an address (reverse zone).
//! - [`Answer`] / [`LookupError`]: the outcomes of a lookup, as types.
//! - [`Validator`]: the validating lookup (hickory's DNSSEC validator over a work-limiting
//!   [`guard`](WorkLimits) over hickory's name server pool); [`AnchorSet`]: trust anchors.
//! - [`KeyCache`]: outcomes cached for their validated lifetime, concurrent lookups of one name
//!   coalesced, bounded, with a [`CacheSnapshot`] for the status socket; validated addresses
//!   ([`AddressAnswer`], A and AAAA) in a second table, for binding names to peer addresses.
//! - [`trigger`]: the DNS trigger, a local DNS stub that starts IKE while an application's name
//!   lookup is in flight ([`trigger::Stub`], [`trigger::TriggerHook`]).
//!
//! Contract: only a key from a `Secure` answer may authenticate a peer; insecure, absent, bogus
//! and failed lookups are distinct outcomes the agent's policy acts on. Nothing here decides
//! policy. A key is usable until min(now + TTL, RRSIG expiration) ([`SecureKeys::usable_until`]).
//!
//! Bounded work: every lookup has a deadline ([`ValidatorConfig::lookup_timeout`]); responses
//! over the [`WorkLimits`] (RRSIGs per RRset, DNSKEYs per owner and per key tag, DS per owner,
//! NSEC3 per response, upstream queries per lookup) are rejected before any signature is
//! checked; NSEC3 iterations follow RFC 9276 (over 100 insecure, over 150 bogus). The module
//! docs of `guard` list what hickory 0.26.3 enforces itself and what is added here.
//!
//! Known gap of hickory 0.26.3 and its workaround: an NSEC-signed wildcard answering one label
//! below comes back bogus from hickory; the validator re-checks such answers against RFC 4035
//! section 5.3.4 on the records hickory validated (module `wildcard`).

#![forbid(unsafe_code)]
// Without `resolver`, helpers used only by the validator and the stub have no caller.
#![cfg_attr(not(feature = "resolver"), allow(dead_code))]

mod address;
mod anchor;
mod answer;
#[cfg(feature = "resolver")]
mod cache;
mod classify;
#[cfg(feature = "resolver")]
mod config;
#[cfg(feature = "resolver")]
mod guard;
pub mod ipseckey;
pub mod outcome;
mod proofs;
mod target;
pub mod trigger;
#[cfg(feature = "resolver")]
mod validator;
mod wildcard;

/// Domain names as the API takes them (hickory's), re-exported so users need no hickory dependency.
pub use hickory_proto::rr::Name;

pub use address::AddressAnswer;
pub use anchor::{AnchorError, AnchorSet};
pub use answer::{
    Absence, Answer, Denial, Failure, KeyRecord, LookupError, SecureKeys, Signature, Unsigned,
};
#[cfg(feature = "resolver")]
pub use cache::{
    AddressOutcome, CacheConfig, CacheSnapshot, Counters, EntrySnapshot, KeyCache, Lookup, Outcome,
    Priority,
};
pub use classify::classify;
#[cfg(feature = "resolver")]
pub use config::{parse_server, Upstream, ValidatorConfig};
#[cfg(feature = "resolver")]
pub use guard::{GuardStats, WorkLimits};
pub use ipseckey::{Gateway, IpsecKey, PublicKey};
pub use outcome::{AddressVerdict, KeyVerdict};
pub use target::{BadTarget, LookupTarget};
#[cfg(feature = "resolver")]
pub use validator::{current_thread_runtime, lookup_blocking, LookupCost, Validator};
