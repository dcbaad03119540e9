//! Events the kernel multicasts: ACQUIRE, EXPIRE, POLEXPIRE, MAPPING.

use std::net::{IpAddr, SocketAddr};

use crate::policy::PolicyInfo;
use crate::sa::{Counters, SaId};
use crate::types::Reqid;

/// A typed kernel event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A packet hit a trap: the kernel wants an SA for this flow.
    Acquire(Acquire),
    /// An SA reached a soft (rekey) or hard (removed) limit.
    Expire(SaExpire),
    /// A policy reached its lifetime (a shunt expired and was removed, if hard).
    PolicyExpire(PolicyExpire),
    /// The peer of a UDP-encapsulated SA now sends from another address or port.
    Mapping(Mapping),
    /// The socket's receive buffer overflowed: events were lost; re-read state.
    Lost,
}

/// The packet's flow that raised an ACQUIRE (the larval state's selector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source address (ours).
    pub src: IpAddr,
    /// Destination address (the peer).
    pub dst: IpAddr,
    /// IP protocol, 0 if unknown.
    pub proto: u8,
    /// Source port (ICMP: type).
    pub src_port: u16,
    /// Destination port (ICMP: code).
    pub dst_port: u16,
}

/// `XFRM_MSG_ACQUIRE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquire {
    /// The triggering flow.
    pub flow: Flow,
    /// The trap policy that matched (index, priority, selector, templates).
    pub policy: PolicyInfo,
    /// The template's reqid (the trap's), if the message carried templates.
    pub reqid: Option<Reqid>,
    /// Sequence number of the larval state; pass it as [`crate::SaSpec::acquire_seq`].
    pub seq: u32,
}

/// `XFRM_MSG_EXPIRE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaExpire {
    /// The SA.
    pub sa: SaId,
    /// Its source address.
    pub src: IpAddr,
    /// Its reqid.
    pub reqid: Reqid,
    /// Hard: the SA is gone. Soft: rekey now.
    pub hard: bool,
    /// Counters at expiry.
    pub current: Counters,
}

/// `XFRM_MSG_POLEXPIRE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyExpire {
    /// The policy.
    pub policy: PolicyInfo,
    /// Hard: the policy is gone.
    pub hard: bool,
}

/// `XFRM_MSG_MAPPING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The inbound SA.
    pub sa: SaId,
    /// Its reqid.
    pub reqid: Reqid,
    /// Address and port the peer used before.
    pub old: SocketAddr,
    /// Address and port the peer uses now.
    pub new: SocketAddr,
}
