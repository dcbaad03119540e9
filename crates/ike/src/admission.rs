//! Whether a new IKE_SA_INIT request may create a half-open IKE SA (RFC 7296 2.6), decided
//! without keeping anything for the request:
//!
//! 1. Past `cookie_threshold` half-open SAs (under load), the request must carry a valid cookie
//!    as its first payload; otherwise it is answered with a fresh COOKIE.
//! 2. Past `max_half_open` in total, or `max_half_open_per_source` from its IP address, it is
//!    dropped, cookie or not.
//! 3. Under load, a key share in an expensive group (MODP-2048 costs about 11 times an X25519
//!    exchange) is answered with INVALID_KE_PAYLOAD naming the cheapest group both sides offer
//!    (2.7); an initiator that offers no cheap group is dropped and may retry when the load is
//!    gone.
//!
//! RFC 8019 client puzzles would add work for legitimate initiators too and only help with peers
//! that implement them (neither strongSwan 5.9 nor Libreswan 4 does); cookies plus these bounds
//! already keep a spoofed flood stateless, so puzzles are not done.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::{Config, IkeProposal};
use crate::cookie::CookieJar;
use crate::crypto::{CryptoRng, DhGroup};
use crate::proposal::select_ike;
use crate::registry::Registry;
use crate::sa::init::notify_response;
use crate::wire::{InitPeek, Message, NotifyType, Payloads};

/// What to do with a new IKE_SA_INIT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Answer it and keep a half-open SA.
    Accept,
    /// Send this stateless answer (a COOKIE or INVALID_KE_PAYLOAD) and keep nothing.
    Answer(Vec<u8>),
    /// Drop it silently: a bound is reached, and no answer would help.
    Drop,
}

/// Key exchange groups cheap enough to compute for anyone under load: X25519 and P-256.
pub(crate) fn cheap(group: DhGroup) -> bool {
    matches!(group, DhGroup::Curve25519 | DhGroup::Ecp256)
}

/// Our proposals restricted to cheap groups (those left with none are dropped).
pub(crate) fn cheap_proposals(ours: &[IkeProposal]) -> Vec<IkeProposal> {
    ours.iter()
        .map(|p| IkeProposal {
            groups: p.groups.iter().copied().filter(|g| cheap(*g)).collect(),
            ..p.clone()
        })
        .filter(|p| !p.groups.is_empty())
        .collect()
}

/// The endpoint state admission reads and the cookie jar it writes.
pub(crate) struct Gate<'a> {
    pub(crate) sas: &'a Registry,
    pub(crate) config: &'a Config,
    pub(crate) cheap: &'a [IkeProposal],
    pub(crate) cookies: &'a mut CookieJar,
    pub(crate) rng: &'a mut dyn CryptoRng,
    pub(crate) now: Instant,
}

impl Gate<'_> {
    /// The stateless step, from the shallow read alone: under load, a request without a valid
    /// cookie is answered with a fresh one, or dropped when it has no nonce or nothing besides
    /// a cookie. `None` when the request goes on to `admit`.
    pub(crate) fn require_cookie(
        &mut self,
        peek: &InitPeek<'_>,
        from: SocketAddr,
    ) -> Option<Admission> {
        self.cookies.rotate_if_due(self.now, self.rng);
        if !self.under_load() {
            return None;
        }
        let spi_i = peek.header.spi_i;
        let Some(ni) = peek.nonce() else {
            return Some(Admission::Drop);
        };
        // 2.6: the cookie must be the first payload.
        let returned = peek.first_cookie();
        if returned.is_some_and(|c| self.cookies.check(self.now, c, ni, from, spi_i)) {
            return None;
        }
        if peek.only_cookie() {
            return Some(Admission::Drop);
        }
        let cookie = self.cookies.cookie(self.now, ni, from, spi_i);
        Some(Admission::Answer(notify_response(
            spi_i,
            0,
            NotifyType::COOKIE,
            cookie,
        )))
    }

    /// The stateful step, for a request `require_cookie` let through, fully parsed: the bounds
    /// on half-open SAs, then, under load, the cheap-group rule.
    pub(crate) fn admit(&self, msg: &Message, from: SocketAddr) -> Admission {
        let full = self.sas.half_open_count() >= self.config.max_half_open;
        if full || self.sas.half_open_from(from.ip()) >= self.config.max_half_open_per_source {
            return Admission::Drop;
        }
        if self.under_load() {
            return self.cheap_group(msg);
        }
        Admission::Accept
    }

    fn under_load(&self) -> bool {
        self.sas.half_open_count() >= self.config.cookie_threshold
    }

    /// Under load: a key share in a cheap group goes on; otherwise INVALID_KE_PAYLOAD naming a
    /// cheap group the initiator offered, or nothing if it offered none.
    fn cheap_group(&self, msg: &Message) -> Admission {
        let (Some(sa), Some(ke)) = (msg.payloads.sa(), msg.payloads.ke()) else {
            return Admission::Accept; // init answers INVALID_SYNTAX
        };
        if DhGroup::from_iana(ke.group).is_some_and(cheap) {
            return Admission::Accept;
        }
        // Only the main group matters here; additional key exchanges are optional for the choice.
        match select_ike(sa, self.cheap, None, &crate::addke::AdditionalKe::hybrid()) {
            Some((_, algs)) => Admission::Answer(notify_response(
                msg.header.spi_i,
                0,
                NotifyType::INVALID_KE_PAYLOAD,
                algs.group.iana().to_be_bytes().to_vec(),
            )),
            None => Admission::Drop,
        }
    }
}
