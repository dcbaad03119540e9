//! Wire format of IKEv2 messages (RFC 7296 section 3; RFC 7383 for SKF).
//!
//! Every type here is a `Repr` in smoltcp's sense: `parse` checks everything and returns a typed
//! [`WireError`] on malformed input (never panics, never allocates more than the input holds),
//! `emit` writes bytes, `buffer_len` tells the size `emit` will write. Unknown registry values are
//! kept (see [`registry`]); unknown payloads are skipped unless critical (RFC 7296 3.2).
//!
//! Encrypted payloads stay sealed here: [`Payload::Sk`] and [`Payload::Skf`] record where their
//! associated data ends; the inner chain is parsed with [`parse_chain`] after decryption.

mod cp;
mod delete;
mod error;
mod find;
mod header;
mod id;
mod message;
mod notify;
mod payload;
mod peek;
mod reader;
pub mod registry;
mod sa;
mod simple;
mod ts;
mod writer;

pub use cp::{CfgAttribute, CfgType, CpPayload, INTERNAL_IP4_ADDRESS, INTERNAL_IP6_ADDRESS};
pub use delete::DeletePayload;
pub use error::WireError;
pub use find::Payloads;
pub use header::{flags, peek_routing, Header, HEADER_LEN};
pub use id::Identity;
pub use message::{encode_inner, find_notify, notifies, sk_prefix, skf_prefix, Message};
pub use notify::{u16_list_data, NotifyPayload};
pub use payload::{
    chain_len, emit_chain, parse_chain, Encrypted, Fragment, Payload, GENERIC_HEADER_LEN,
};
pub use peek::InitPeek;
pub use reader::Reader;
pub use registry::{
    AttributeType, AuthMethodId, CertEncoding, ExchangeType, IdType, NotifyType, PayloadType,
    ProtocolId, TransformType, TsType,
};
pub use sa::{Attribute, Proposal, SaPayload, Transform};
pub use simple::{AuthPayload, CertPayload, KePayload, NoncePayload};
pub use ts::{TrafficSelector, TsPayload};
pub use writer::Writer;

#[cfg(test)]
mod tests;
