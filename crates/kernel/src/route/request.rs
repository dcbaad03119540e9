//! rtnetlink requests and their answers, without I/O, in the shape of
//! [`crate::Request`]: encode with a sequence number, feed the answers to the exchange.

use std::net::IpAddr;

use netlink_packet_core::{Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::AddressFamily;

use super::parse::{parse_payload, RtPayload, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE};
use super::types::{Link, LocalAddress, Route};
use crate::error::Error;
use crate::types::Family;
use crate::wire::conversation::{Conversation, Decode, Parse, Step};
use crate::wire::frame::{Header, HEADER_LEN};

/// An encoded rtnetlink request and the shape of its answer.
pub struct RouteRequest<T> {
    op: &'static str,
    kind: u16,
    flags: u16,
    payload: Vec<u8>,
    parse: Parse<RtPayload>,
    decode: Decode<T, RtPayload>,
}

impl<T> std::fmt::Debug for RouteRequest<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RouteRequest({}, {} bytes)", self.op, self.payload.len())
    }
}

impl RouteRequest<Vec<LocalAddress>> {
    /// `RTM_GETADDR` dump: every IPv4 and IPv6 address of the namespace.
    pub fn addresses() -> Self {
        Self::new(
            "RTM_GETADDR",
            RTM_GETADDR,
            NLM_F_DUMP,
            &AddressMessage::default(),
            |_, replies| {
                Ok(replies
                    .into_iter()
                    .filter_map(|p| match p {
                        RtPayload::Address(a) => Some(a),
                        _ => None,
                    })
                    .collect())
            },
        )
    }
}

impl RouteRequest<Vec<Link>> {
    /// `RTM_GETLINK` dump: every link of the namespace.
    pub fn links() -> Self {
        Self::new(
            "RTM_GETLINK",
            RTM_GETLINK,
            NLM_F_DUMP,
            &LinkMessage::default(),
            |_, replies| {
                Ok(replies
                    .into_iter()
                    .filter_map(|p| match p {
                        RtPayload::Link(l) => Some(l),
                        _ => None,
                    })
                    .collect())
            },
        )
    }
}

impl RouteRequest<Vec<Route>> {
    /// `RTM_GETROUTE` dump: every unicast IPv4 and IPv6 route of every table.
    pub fn routes() -> Self {
        Self::new(
            "RTM_GETROUTE",
            RTM_GETROUTE,
            NLM_F_DUMP,
            &RouteMessage::default(),
            |_, replies| {
                Ok(replies
                    .into_iter()
                    .filter_map(|p| match p {
                        RtPayload::Route(r, true) => Some(r),
                        _ => None,
                    })
                    .collect())
            },
        )
    }
}

impl RouteRequest<Route> {
    /// `RTM_GETROUTE` for one destination: the kernel's routing decision for a packet to
    /// `dst` (as `ip route get`), with the source address it would use
    /// ([`Route::pref_src`]). An unreachable destination is [`Error::Kernel`]
    /// (`ENETUNREACH`, `EHOSTUNREACH`).
    pub fn route_to(dst: IpAddr) -> Self {
        let mut msg = RouteMessage::default();
        let family = Family::of(&dst);
        msg.header.address_family = match family {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        };
        msg.header.destination_prefix_length = family.max_prefix();
        msg.attributes = vec![RouteAttribute::Destination(RouteAddress::from(dst))];
        Self::new(
            "RTM_GETROUTE",
            RTM_GETROUTE,
            NLM_F_ACK,
            &msg,
            |op, replies| {
                replies
                    .into_iter()
                    .find_map(|p| match p {
                        RtPayload::Route(r, _) => Some(r),
                        _ => None,
                    })
                    .ok_or(Error::UnexpectedReply { op })
            },
        )
    }
}

impl<T> RouteRequest<T> {
    pub(super) fn new(
        op: &'static str,
        kind: u16,
        flags: u16,
        msg: &impl Emitable,
        decode: Decode<T, RtPayload>,
    ) -> Self {
        let mut payload = vec![0u8; msg.buffer_len()];
        msg.emit(&mut payload);
        Self {
            op,
            kind,
            flags: NLM_F_REQUEST | flags,
            payload,
            parse: parse_payload,
            decode,
        }
    }

    /// The same request with answers decoded by `parse`.
    pub(super) fn parsed_by(self, parse: Parse<RtPayload>) -> Self {
        Self { parse, ..self }
    }

    /// The netlink message type name, e.g. `RTM_GETROUTE`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// Encodes the whole message with sequence number `seq` and starts the exchange.
    pub fn start(self, seq: u32) -> (Vec<u8>, RouteExchange<T>) {
        let len = HEADER_LEN + self.payload.len();
        let mut bytes = Vec::with_capacity(len);
        Header {
            len: u32::try_from(len).unwrap_or(u32::MAX),
            kind: self.kind,
            flags: self.flags,
            seq,
            port: 0,
        }
        .write(&mut bytes);
        bytes.extend_from_slice(&self.payload);
        let dump = self.flags & NLM_F_DUMP == NLM_F_DUMP;
        let exchange = Conversation::new(self.op, seq, dump, self.parse, self.decode);
        (bytes, RouteExchange(exchange))
    }
}

/// One rtnetlink request in flight: feed it the datagrams received on its socket.
#[derive(Debug)]
pub struct RouteExchange<T>(Conversation<T, RtPayload>);

impl<T> RouteExchange<T> {
    /// Consumes one received datagram.
    pub fn on_datagram(&mut self, datagram: &[u8]) -> Step<T> {
        self.0.on_datagram(datagram)
    }
}
