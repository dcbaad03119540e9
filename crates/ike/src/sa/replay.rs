//! The responder's replay cache (RFC 7296 2.1): the last response, sent again only for a
//! byte-identical retransmission of the request it answered. For a fragmented request that is its
//! first fragment (RFC 7383 2.6.1). The request is kept as a SHA-256 digest, so the cache costs 32
//! bytes beyond the response, and a forged datagram with the old message ID gets nothing: a replay
//! cache that answered any header with that ID would be an amplifier.

use ring::digest::{digest, SHA256};

use super::{Core, Ctx, IkeSa};

/// What identifies a request: the digest of the datagram (its first fragment) as received.
pub(crate) type RequestId = [u8; 32];

pub(crate) fn request_id(datagram: &[u8]) -> RequestId {
    let mut id = [0; 32];
    id.copy_from_slice(digest(&SHA256, datagram).as_ref());
    id
}

/// Our last response and the request it answers.
#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) mid: u32,
    request: RequestId,
    datagrams: Vec<Vec<u8>>,
}

impl Replay {
    pub(crate) fn new(mid: u32, request: RequestId, datagrams: Vec<Vec<u8>>) -> Self {
        Self {
            mid,
            request,
            datagrams,
        }
    }

    /// The response to send again if `datagram` is the request it answered, byte for byte.
    pub(crate) fn answer(&self, mid: u32, datagram: &[u8]) -> Option<&[Vec<u8>]> {
        (self.mid == mid && self.request == request_id(datagram)).then_some(&self.datagrams)
    }
}

impl IkeSa {
    /// Sends the cached response of `core` (current or retiring) again for a byte-identical
    /// retransmission of the request it answered.
    pub(crate) fn replay_from(&self, core: &Core, ctx: &mut Ctx<'_>, mid: u32, datagram: &[u8]) {
        let cached = core.tm.cache.as_ref().and_then(|c| c.answer(mid, datagram));
        cached.into_iter().flatten().for_each(|d| self.send(ctx, d));
    }

    pub(crate) fn replay(&self, ctx: &mut Ctx<'_>, mid: u32, datagram: &[u8]) {
        self.replay_from(&self.core, ctx, mid, datagram);
    }
}
