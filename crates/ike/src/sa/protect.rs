//! Sealing and opening SK payloads (RFC 7296 3.14), with IKE fragmentation (RFC 7383): we split
//! messages that would exceed the configured size into SKF payloads, each sealed on its own, and
//! reassemble the peer's fragments after verifying each one (RFC 7383 2.6.2).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{Core, Ctx, IkeSa};
use crate::error::{Error, LocalError, PeerError};
use crate::wire::{
    encode_inner, flags, parse_chain, sk_prefix, skf_prefix, ExchangeType, Fragment, Header,
    Message, Payload, PayloadType, HEADER_LEN,
};

/// Reassembly bounds: a peer can make us hold at most this much per IKE SA.
const MAX_FRAGMENTS: u16 = 32;
const MAX_REASSEMBLY_BYTES: usize = 64 * 1024;
/// The zero SPI field before IKE messages on the NAT-T port (RFC 3948 2.2).
const NON_ESP_MARKER_LEN: usize = 4;
/// IKE header + SKF generic header + fragment number and total.
const SKF_OVERHEAD: usize = HEADER_LEN + 8;

/// Decrypted fragments of one message.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    mid: Option<u32>,
    total: u16,
    first_inner: PayloadType,
    parts: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    bytes: usize,
}

impl Reassembly {
    fn reset(&mut self, mid: u32, total: u16) {
        *self = Self {
            mid: Some(mid),
            total,
            ..Self::default()
        };
    }

    /// Adds a verified fragment; returns the whole inner chain once complete.
    fn add(
        &mut self,
        mid: u32,
        f: &Fragment,
        plain: Zeroizing<Vec<u8>>,
    ) -> Result<Option<(PayloadType, Vec<u8>)>, Error> {
        if f.total > MAX_FRAGMENTS {
            return Err(PeerError::Protocol("too many fragments").into());
        }
        // RFC 7383 2.6.1: a different total means the sender re-fragmented; start over.
        if self.mid != Some(mid) || self.total != f.total {
            self.reset(mid, f.total);
        }
        if f.number == 1 {
            self.first_inner = f.first_inner;
        }
        if self.parts.contains_key(&f.number) {
            return Ok(None);
        }
        self.bytes += plain.len();
        if self.bytes > MAX_REASSEMBLY_BYTES {
            self.reset(mid, f.total);
            return Err(PeerError::Protocol("fragmented message too large").into());
        }
        self.parts.insert(f.number, plain);
        if self.parts.len() < usize::from(self.total) {
            return Ok(None);
        }
        let whole: Vec<u8> = self
            .parts
            .values()
            .flat_map(|p| p.iter().copied())
            .collect();
        let first = self.first_inner;
        *self = Self::default();
        Ok(Some((first, whole)))
    }
}

pub(crate) fn header(core: &Core, exchange: ExchangeType, mid: u32, response: bool) -> Header {
    let mut fl = if core.initiator { flags::INITIATOR } else { 0 };
    if response {
        fl |= flags::RESPONSE;
    }
    Header {
        spi_i: core.spi_i,
        spi_r: core.spi_r,
        next_payload: PayloadType::SK,
        version: Header::VERSION_2_0,
        exchange,
        flags: fl,
        message_id: mid,
        length: 0,
    }
}

/// Seals payloads into one datagram, or into fragments when negotiated and needed.
pub(crate) fn seal(
    sa: &IkeSa,
    core: &Core,
    ctx: &mut Ctx<'_>,
    exchange: ExchangeType,
    mid: u32,
    response: bool,
    payloads: &[Payload],
) -> Result<Vec<Vec<u8>>, Error> {
    let keys = core
        .keys
        .as_ref()
        .ok_or(LocalError::Config("no keys for SK payload"))?;
    let h = header(core, exchange, mid, response);
    let (first, plain) = encode_inner(payloads);
    let sealed_len = keys.out.sealed_len(plain.len());
    // RFC 7383 2.5.1: the limit is on the UDP payload, which on the NAT-T port starts with the
    // non-ESP marker (RFC 3948 2.2).
    let marker = if sa.local.port() == ctx.config.nat_t_port {
        NON_ESP_MARKER_LEN
    } else {
        0
    };
    let limit = ctx.config.fragment_size.saturating_sub(marker);
    // RFC 7383 2.5: fragmentation applies once both sides announced it, never to IKE_SA_INIT.
    let fragment =
        sa.peer_fragmentation && ctx.config.fragmentation && HEADER_LEN + 4 + sealed_len > limit;
    if !fragment {
        let prefix = sk_prefix(&h, first, sealed_len);
        let body = keys.out.seal(&prefix, &plain, ctx.rng)?;
        return Ok(vec![[prefix, body].concat()]);
    }
    let chunk = fragment_capacity(core, limit)?;
    let total = u16::try_from(plain.len().div_ceil(chunk))
        .map_err(|_| LocalError::Config("message too large"))?;
    let mut out = Vec::with_capacity(usize::from(total));
    for (piece, number) in plain.chunks(chunk).zip(1u16..) {
        let inner = if number == 1 {
            first
        } else {
            PayloadType::NONE
        };
        let prefix = skf_prefix(&h, inner, number, total, keys.out.sealed_len(piece.len()));
        let body = keys.out.seal(&prefix, piece, ctx.rng)?;
        out.push([prefix, body].concat());
    }
    Ok(out)
}

/// The most plaintext one SKF datagram of `limit` bytes can carry.
fn fragment_capacity(core: &Core, limit: usize) -> Result<usize, Error> {
    let keys = core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let room = limit.saturating_sub(SKF_OVERHEAD);
    let mut p = room;
    while p > 0 && keys.out.sealed_len(p) > room {
        p -= 1;
    }
    if p < 64 {
        return Err(LocalError::Config("fragment_size too small").into());
    }
    Ok(p)
}

/// What opening a protected message gave.
#[derive(Debug)]
pub(crate) enum Opened {
    /// The whole inner payload chain.
    Whole(Vec<Payload>),
    /// A verified fragment; more are missing.
    Partial,
    /// Authentic (its ICV verified) but malformed inside: the peer's fault, answerable.
    Malformed(Error),
}

/// Opens an SK message, or adds an SKF fragment. `None` when the message is not authentic: no SK
/// or SKF payload where one must be, or an ICV that does not verify. RFC 7296 2.4: nothing may
/// be concluded from such a message, so the caller drops it and changes no state.
pub(crate) fn open(sa: &mut IkeSa, datagram: &[u8], msg: &Message) -> Option<Opened> {
    let keys = sa.core.keys.as_ref()?;
    let whole = |first, plain: &[u8]| match parse_chain(first, plain, 0) {
        Ok(p) => Opened::Whole(p),
        Err(e) => Opened::Malformed(e.into()),
    };
    match msg.payloads.as_slice() {
        [Payload::Sk(e)] => {
            let prefix = datagram.get(..e.aad_len)?;
            let plain = keys.inbound.open(prefix, &e.body).ok()?;
            keep_intermediate(sa, msg, e.first_inner, &plain);
            Some(whole(e.first_inner, &plain))
        }
        [Payload::Skf(f)] if sa.peer_fragmentation && ctx_allows_fragments(msg) => {
            let prefix = datagram.get(..f.aad_len)?;
            let plain = keys.inbound.open(prefix, &f.body).ok()?;
            let added = sa.core.tm.reassembly.add(msg.header.message_id, f, plain);
            Some(match added {
                Ok(Some((first, all))) => {
                    keep_intermediate(sa, msg, first, &all);
                    whole(first, &all)
                }
                Ok(None) => Opened::Partial,
                Err(e) => Opened::Malformed(e),
            })
        }
        _ => None,
    }
}

/// RFC 9242 3.3: IntAuth covers an IKE_INTERMEDIATE message's inner payloads exactly as they
/// arrived (after reassembly), so keep them for `intermediate`.
fn keep_intermediate(sa: &mut IkeSa, msg: &Message, first: PayloadType, plain: &[u8]) {
    if msg.header.exchange == ExchangeType::IKE_INTERMEDIATE {
        sa.handshake.last_intermediate = Some((msg.header, first, plain.to_vec()));
    }
}

fn ctx_allows_fragments(msg: &Message) -> bool {
    msg.header.exchange != ExchangeType::IKE_SA_INIT
}
