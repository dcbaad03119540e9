//! Requests and the request/reply exchange, without I/O.
//!
//! A [`Request`] is an encoded XFRM message plus how to read its answer. An
//! [`Exchange`] consumes the datagrams the kernel sends back and finishes on the
//! acknowledgement (`NLMSG_ERROR` with errno 0), an error, or the end of a dump
//! (`NLMSG_DONE`). Messages with another sequence number (left over from an
//! abandoned request) are ignored. Every request asks for an ACK, so a request that
//! returns data (GETSA, ALLOCSPI) ends with its ACK too.

use netlink_packet_core::{Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_xfrm::policy::{
    DelGetMessage as PolicyIdMessage, ModifyMessage as PolicyMessage,
};
use netlink_packet_xfrm::state::{
    AllocSpiMessage, DelGetMessage as SaIdMessage, GetDumpMessage, ModifyMessage as SaMessage,
};
use netlink_packet_xfrm::{
    Address, UserPolicyId, UserSaInfo, UserSpiInfo, XfrmMessage, IPPROTO_ESP, XFRM_MODE_TRANSPORT,
};
use zeroize::Zeroizing;

use super::conversation::Conversation;
use super::frame::{Header, HEADER_LEN};
use super::{parse_payload, Payload};
use crate::alg::scrub;
use crate::error::Error;
use crate::ownership::{OwnedPolicy, OwnedSa, Ownership};
use crate::policy::{PolicyInfo, PolicyKey, PolicySpec};
use crate::sa::{Mode, SaId, SaInfo, SaSpec};
use crate::types::{Family, InvalidRequest, Reqid};

type Decode<T> = super::conversation::Decode<T, Payload>;

/// An encoded request and the shape of its answer. Key material in the encoded bytes
/// is zeroized when the request is dropped.
pub struct Request<T> {
    op: &'static str,
    kind: u16,
    flags: u16,
    payload: Zeroizing<Vec<u8>>,
    decode: Decode<T>,
}

impl<T> std::fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({}, {} bytes)", self.op, self.payload.len())
    }
}

/// Lowest SPI ALLOCSPI hands out (1-255 are reserved, RFC 4303 section 2.1).
pub(crate) const SPI_MIN: u32 = 0x100;

impl Request<()> {
    /// `XFRM_MSG_NEWSA`: install a transport-mode SA (fails with `EEXIST` if its id is
    /// taken).
    pub fn add_sa(spec: &SaSpec, ownership: &Ownership) -> Result<Self, InvalidRequest> {
        Self::add_sa_in(Mode::Transport, spec, ownership)
    }

    /// `XFRM_MSG_NEWSA` in `mode`.
    pub fn add_sa_in(
        mode: Mode,
        spec: &SaSpec,
        ownership: &Ownership,
    ) -> Result<Self, InvalidRequest> {
        Self::sa("XFRM_MSG_NEWSA", mode, spec, ownership, XfrmMessage::AddSa)
    }

    /// `XFRM_MSG_UPDSA`: install an SA over the larval state of an SPI from
    /// [`Request::alloc_spi`], or update an existing SA (the kernel then takes only its
    /// lifetimes and UDP encapsulation from `spec`, keeping keys and counters). `current` is
    /// the entry as read and checked (see [`crate::ownership`]); `spec` must have its id.
    pub fn update_sa(
        current: &OwnedSa,
        spec: &SaSpec,
        ownership: &Ownership,
    ) -> Result<Self, InvalidRequest> {
        Self::update_sa_in(Mode::Transport, current, spec, ownership)
    }

    /// [`Request::update_sa`] in `mode`.
    pub fn update_sa_in(
        mode: Mode,
        current: &OwnedSa,
        spec: &SaSpec,
        ownership: &Ownership,
    ) -> Result<Self, InvalidRequest> {
        if current.id() != spec.id() {
            return Err(InvalidRequest::OtherEntry);
        }
        Self::sa(
            "XFRM_MSG_UPDSA",
            mode,
            spec,
            ownership,
            XfrmMessage::UpdateSa,
        )
    }

    fn sa(
        op: &'static str,
        mode: Mode,
        spec: &SaSpec,
        ownership: &Ownership,
        wrap: fn(SaMessage) -> XfrmMessage,
    ) -> Result<Self, InvalidRequest> {
        spec.validate()?;
        if !ownership.owns_reqid(spec.reqid) {
            return Err(InvalidRequest::ForeignReqid(spec.reqid.0));
        }
        let mut msg = wrap(SaMessage {
            user_sa_info: spec.sa_info(mode)?,
            nlas: spec.attrs(),
        });
        let req = Self::new(op, &msg, NLM_F_ACK, ack);
        if let XfrmMessage::AddSa(m) | XfrmMessage::UpdateSa(m) = &mut msg {
            scrub(&mut m.nlas);
        }
        Ok(req)
    }

    /// `XFRM_MSG_DELSA` of an SA read and checked to be ours (see [`crate::ownership`]).
    pub fn delete_sa(current: &OwnedSa) -> Self {
        let msg = XfrmMessage::DeleteSa(SaIdMessage {
            user_sa_id: current.id().to_xfrm(),
            nlas: vec![],
        });
        Self::new("XFRM_MSG_DELSA", &msg, NLM_F_ACK, ack)
    }

    /// `XFRM_MSG_NEWPOLICY`: fails with `EEXIST` if a policy with the same selector and
    /// direction exists (ours or not).
    pub fn add_policy(spec: &PolicySpec, ownership: &Ownership) -> Result<Self, InvalidRequest> {
        Self::policy(
            "XFRM_MSG_NEWPOLICY",
            spec,
            ownership,
            XfrmMessage::AddPolicy,
        )
    }

    /// `XFRM_MSG_UPDPOLICY`: replace the policy with the same selector and direction in
    /// place (to turn a trap into a shunt or back, or to renew its lifetime: the kernel
    /// restarts `add_time`). `current` is that policy as read and checked (see
    /// [`crate::ownership`]); `spec` must have its key. Should the policy have vanished
    /// meanwhile, the kernel adds `spec` anew.
    pub fn update_policy(
        current: &OwnedPolicy,
        spec: &PolicySpec,
        ownership: &Ownership,
    ) -> Result<Self, InvalidRequest> {
        if current.key() != spec.key() {
            return Err(InvalidRequest::OtherEntry);
        }
        Self::policy(
            "XFRM_MSG_UPDPOLICY",
            spec,
            ownership,
            XfrmMessage::UpdatePolicy,
        )
    }

    fn policy(
        op: &'static str,
        spec: &PolicySpec,
        ownership: &Ownership,
        wrap: fn(PolicyMessage) -> XfrmMessage,
    ) -> Result<Self, InvalidRequest> {
        spec.validate(ownership)?;
        let msg = wrap(PolicyMessage {
            user_policy_info: spec.info(ownership),
            nlas: spec.attrs(),
        });
        Ok(Self::new(op, &msg, NLM_F_ACK, ack))
    }

    /// `XFRM_MSG_DELPOLICY` of a policy read and checked to be ours, by the kernel's index
    /// (see [`crate::ownership`] for why).
    pub fn delete_policy(current: &OwnedPolicy) -> Self {
        Self::new(
            "XFRM_MSG_DELPOLICY",
            &policy_id(XfrmMessage::DeletePolicy, &current.key(), current.index()),
            NLM_F_ACK,
            ack,
        )
    }
}

impl Request<SaInfo> {
    /// `XFRM_MSG_GETSA`: one SA with its counters and last-use time.
    pub fn get_sa(id: SaId) -> Self {
        let msg = XfrmMessage::GetSa(SaIdMessage {
            user_sa_id: id.to_xfrm(),
            nlas: vec![],
        });
        Self::new("XFRM_MSG_GETSA", &msg, NLM_F_ACK, one_sa)
    }

    /// `XFRM_MSG_ALLOCSPI`: reserve an SPI for the inbound SA from `peer` to `local`.
    /// The kernel holds a larval state (no keys) until [`Request::update_sa`] fills it
    /// or `net.core.xfrm_acq_expires` passes.
    pub fn alloc_spi(
        local: std::net::IpAddr,
        peer: std::net::IpAddr,
        reqid: Reqid,
        ownership: &Ownership,
    ) -> Result<Self, InvalidRequest> {
        if Family::of(&local) != Family::of(&peer) {
            return Err(InvalidRequest::SaFamilies);
        }
        if !ownership.owns_reqid(reqid) {
            return Err(InvalidRequest::ForeignReqid(reqid.0));
        }
        let mut info = UserSaInfo {
            saddr: Address::from_ip(&peer),
            reqid: reqid.0,
            family: Family::of(&local).af(),
            mode: XFRM_MODE_TRANSPORT,
            ..UserSaInfo::default()
        };
        info.id.daddr = Address::from_ip(&local);
        info.id.proto = IPPROTO_ESP;
        let spi_info = UserSpiInfo {
            info,
            min: SPI_MIN,
            max: u32::MAX,
        };
        let msg = XfrmMessage::AllocSpi(AllocSpiMessage {
            spi_info,
            nlas: vec![],
        });
        Ok(Self::new("XFRM_MSG_ALLOCSPI", &msg, NLM_F_ACK, one_sa))
    }
}

impl Request<Vec<SaInfo>> {
    /// `XFRM_MSG_GETSA` dump: every SA (ours and foreign; keys are never kept).
    pub fn dump_sas() -> Self {
        let msg = XfrmMessage::GetDumpSa(GetDumpMessage { nlas: vec![] });
        Self::new("XFRM_MSG_GETSA", &msg, NLM_F_DUMP, all_sas)
    }
}

impl Request<PolicyInfo> {
    /// `XFRM_MSG_GETPOLICY` by selector and direction.
    pub fn get_policy(key: &PolicyKey) -> Self {
        Self::new(
            "XFRM_MSG_GETPOLICY",
            &policy_id(XfrmMessage::GetPolicy, key, 0),
            NLM_F_ACK,
            one_policy,
        )
    }
}

impl Request<Vec<PolicyInfo>> {
    /// `XFRM_MSG_GETPOLICY` dump: every policy, ours and foreign.
    pub fn dump_policies() -> Self {
        let msg = XfrmMessage::GetPolicy(PolicyIdMessage::default());
        Self::new("XFRM_MSG_GETPOLICY", &msg, NLM_F_DUMP, all_policies)
    }
}

/// `struct xfrm_userpolicy_id`: with a non-zero `index` the kernel looks the policy up
/// by index (and direction) only, else by selector and direction.
fn policy_id(wrap: fn(PolicyIdMessage) -> XfrmMessage, key: &PolicyKey, index: u32) -> XfrmMessage {
    wrap(PolicyIdMessage {
        user_policy_id: UserPolicyId {
            selector: key.selector,
            index,
            direction: key.dir.to_xfrm(),
        },
        nlas: vec![],
    })
}

impl<T> Request<T> {
    fn new(op: &'static str, msg: &XfrmMessage, flags: u16, decode: Decode<T>) -> Self {
        let mut payload = Zeroizing::new(vec![0u8; msg.buffer_len()]);
        msg.emit(&mut payload);
        Self {
            op,
            kind: msg.message_type(),
            flags: NLM_F_REQUEST | flags,
            payload,
            decode,
        }
    }

    /// The netlink message type name, e.g. `XFRM_MSG_NEWSA`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The encoded payload (without the netlink header).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The encoded length of the whole message (header and payload).
    pub(super) fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends the whole message with sequence number `seq`; `ack: false` drops
    /// `NLM_F_ACK` (the kernel then answers only if the request fails).
    pub(super) fn encode_into(&self, seq: u32, ack: bool, out: &mut Vec<u8>) {
        let flags = if ack {
            self.flags
        } else {
            self.flags & !NLM_F_ACK
        };
        let header = Header {
            len: u32::try_from(self.encoded_len()).unwrap_or(u32::MAX),
            kind: self.kind,
            flags,
            seq,
            port: 0,
        };
        header.write(out);
        out.extend_from_slice(&self.payload);
    }

    /// Encodes the whole message with sequence number `seq` and starts the exchange.
    pub fn start(self, seq: u32) -> (Zeroizing<Vec<u8>>, Exchange<T>) {
        let mut bytes = Zeroizing::new(Vec::with_capacity(self.encoded_len()));
        self.encode_into(seq, true, &mut bytes);
        let dump = self.flags & NLM_F_DUMP == NLM_F_DUMP;
        let exchange = Conversation::new(self.op, seq, dump, parse_payload, self.decode);
        (bytes, Exchange(exchange))
    }
}

pub use super::conversation::Step;

/// One request in flight: feed it the datagrams received on the request socket.
#[derive(Debug)]
pub struct Exchange<T>(Conversation<T, Payload>);

impl<T> Exchange<T> {
    /// Sequence number of the request.
    pub fn seq(&self) -> u32 {
        self.0.seq()
    }

    /// Consumes one received datagram.
    pub fn on_datagram(&mut self, datagram: &[u8]) -> Step<T> {
        self.0.on_datagram(datagram)
    }
}

fn ack(_: &'static str, _: Vec<Payload>) -> Result<(), Error> {
    Ok(())
}

fn one_sa(op: &'static str, replies: Vec<Payload>) -> Result<SaInfo, Error> {
    all_sas(op, replies)?
        .into_iter()
        .next()
        .ok_or(Error::UnexpectedReply { op })
}

fn all_sas(_: &'static str, replies: Vec<Payload>) -> Result<Vec<SaInfo>, Error> {
    Ok(replies
        .into_iter()
        .filter_map(|p| match p {
            Payload::Sa(sa) => Some(sa),
            _ => None,
        })
        .collect())
}

fn one_policy(op: &'static str, replies: Vec<Payload>) -> Result<PolicyInfo, Error> {
    all_policies(op, replies)?
        .into_iter()
        .next()
        .ok_or(Error::UnexpectedReply { op })
}

fn all_policies(_: &'static str, replies: Vec<Payload>) -> Result<Vec<PolicyInfo>, Error> {
    Ok(replies
        .into_iter()
        .filter_map(|p| match p {
            Payload::Policy(p) => Some(p),
            _ => None,
        })
        .collect())
}
