//! Stateless cookies for IKE_SA_INIT (RFC 7296 2.6):
//! `Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)`, here HMAC-SHA-256 keyed
//! by the secret over Ni, the initiator's address *and port*, and SPIi: exactly what keys a
//! half-open SA, so a cookie earned from one port opens nothing from another.
//!
//! The secret changes on the engine's timer while cookies are being sent ("regenerate `<secret>`
//! periodically"); a cookie made with the previous secret stays valid for [`PREVIOUS_GRACE`],
//! long enough for the round trip that brings it back. While no cookie is sent the jar asks for
//! no wake-ups.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{CryptoRng, PrfAlg};

/// How long a cookie made with the previous secret is still accepted after a rotation.
pub(crate) const PREVIOUS_GRACE: Duration = Duration::from_secs(10);

type Secret = Zeroizing<[u8; 32]>;

fn fresh(rng: &mut dyn CryptoRng) -> Secret {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret.as_mut());
    secret
}

/// The responder's cookie secrets and their version byte.
#[derive(Debug)]
pub(crate) struct CookieJar {
    version: u8,
    secret: Secret,
    /// When the current secret was first used (None: never).
    since: Option<Instant>,
    lifetime: Duration,
    /// The previous secret's version, the secret, and when it was replaced.
    previous: Option<(u8, Secret, Instant)>,
}

impl CookieJar {
    pub(crate) fn new(rng: &mut dyn CryptoRng, lifetime: Duration) -> Self {
        Self {
            version: 0,
            secret: fresh(rng),
            since: None,
            lifetime,
            previous: None,
        }
    }

    /// When the current secret must be replaced: only once a cookie was made with it.
    pub(crate) fn next_rotation(&self) -> Option<Instant> {
        self.since.map(|t| t + self.lifetime)
    }

    /// Replaces the secret if its time is up.
    pub(crate) fn rotate_if_due(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        if self.next_rotation().is_some_and(|t| now >= t) {
            let old = core::mem::replace(&mut self.secret, fresh(rng));
            self.previous = Some((self.version, old, now));
            self.version = self.version.wrapping_add(1);
            self.since = None;
        }
    }

    fn make(version: u8, secret: &[u8], ni: &[u8], from: SocketAddr, spi_i: u64) -> Vec<u8> {
        let ip = match from.ip() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let data = [ni, &ip, &from.port().to_be_bytes(), &spi_i.to_be_bytes()].concat();
        let mac = PrfAlg::HmacSha256.prf(secret, &data);
        [&[version][..], &mac].concat()
    }

    pub(crate) fn cookie(
        &mut self,
        now: Instant,
        ni: &[u8],
        from: SocketAddr,
        spi_i: u64,
    ) -> Vec<u8> {
        self.since.get_or_insert(now);
        Self::make(self.version, self.secret.as_ref(), ni, from, spi_i)
    }

    pub(crate) fn check(
        &self,
        now: Instant,
        cookie: &[u8],
        ni: &[u8],
        from: SocketAddr,
        spi_i: u64,
    ) -> bool {
        let Some(&version) = cookie.first() else {
            return false;
        };
        let secret = if version == self.version {
            self.secret.as_ref()
        } else {
            match &self.previous {
                Some((v, s, replaced)) if *v == version && now < *replaced + PREVIOUS_GRACE => {
                    s.as_ref()
                }
                _ => return false,
            }
        };
        bool::from(Self::make(version, secret, ni, from, spi_i).ct_eq(cookie))
    }
}
