//! A whole IKE message: header plus payload chain (RFC 7296 3).

use super::header::{Header, HEADER_LEN};
use super::notify::NotifyPayload;
use super::payload::{
    chain_len, emit_chain, emit_generic_header, parse_chain, Payload, GENERIC_HEADER_LEN,
};
use super::registry::{NotifyType, PayloadType};
use super::{Reader, WireError, Writer};

/// A decoded message. Encrypted content stays sealed in a [`Payload::Sk`] / [`Payload::Skf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Decodes a datagram (without any non-ESP marker).
    pub fn parse(datagram: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(datagram);
        let header = Header::parse(&mut r, datagram.len())?;
        let payloads = parse_chain(header.next_payload, r.rest(), HEADER_LEN)?;
        Ok(Self { header, payloads })
    }

    /// Encodes; the header's next payload and length fields are computed.
    pub fn emit(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.buffer_len());
        let mut header = self.header;
        header.next_payload = self
            .payloads
            .first()
            .map_or(PayloadType::NONE, Payload::payload_type);
        header.length = u32::try_from(self.buffer_len()).unwrap_or(u32::MAX);
        header.emit(&mut w);
        emit_chain(&self.payloads, &mut w);
        w.into_vec()
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + chain_len(&self.payloads)
    }

    /// Notifications in this message, in order.
    pub fn notifies(&self) -> impl Iterator<Item = &NotifyPayload> {
        notifies(&self.payloads)
    }
}

/// Notifications among a list of payloads.
pub fn notifies(payloads: &[Payload]) -> impl Iterator<Item = &NotifyPayload> {
    payloads.iter().filter_map(|p| match p {
        Payload::Notify(n) => Some(n),
        _ => None,
    })
}

/// The first notification of a type.
pub fn find_notify(payloads: &[Payload], ty: NotifyType) -> Option<&NotifyPayload> {
    notifies(payloads).find(|n| n.ty == ty)
}

/// Encodes payloads that will be sealed inside SK: returns the first type and the bytes.
pub fn encode_inner(payloads: &[Payload]) -> (PayloadType, Vec<u8>) {
    let mut w = Writer::with_capacity(chain_len(payloads));
    let first = emit_chain(payloads, &mut w);
    (first, w.into_vec())
}

/// The bytes in front of an SK payload's body: the IKE header with its final length and the SK
/// generic header. They are the AEAD's associated data (RFC 5282 5.1) and start the ICV input.
pub fn sk_prefix(header: &Header, first_inner: PayloadType, sealed_len: usize) -> Vec<u8> {
    let mut w = Writer::with_capacity(HEADER_LEN + GENERIC_HEADER_LEN);
    let mut h = *header;
    h.next_payload = PayloadType::SK;
    h.length = u32::try_from(HEADER_LEN + GENERIC_HEADER_LEN + sealed_len).unwrap_or(u32::MAX);
    h.emit(&mut w);
    emit_generic_header(&mut w, first_inner, false, sealed_len);
    w.into_vec()
}

/// The bytes in front of an SKF body (RFC 7383 2.5.3): header, SKF generic header, fragment
/// number and total. `first_inner` must be NONE except in fragment 1.
pub fn skf_prefix(
    header: &Header,
    first_inner: PayloadType,
    number: u16,
    total: u16,
    sealed_len: usize,
) -> Vec<u8> {
    let mut w = Writer::with_capacity(HEADER_LEN + GENERIC_HEADER_LEN + 4);
    let mut h = *header;
    h.next_payload = PayloadType::SKF;
    h.length = u32::try_from(HEADER_LEN + GENERIC_HEADER_LEN + 4 + sealed_len).unwrap_or(u32::MAX);
    h.emit(&mut w);
    emit_generic_header(&mut w, first_inner, false, 4 + sealed_len);
    w.u16(number);
    w.u16(total);
    w.into_vec()
}
