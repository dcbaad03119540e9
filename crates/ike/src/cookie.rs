//! Stateless cookies for IKE_SA_INIT (RFC 7296 2.6):
//! `Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)`, here with HMAC-SHA-256
//! keyed by the secret.

use std::net::IpAddr;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{CryptoRng, PrfAlg};

/// The responder's cookie secret and its version byte.
#[derive(Debug)]
pub(crate) struct CookieJar {
    version: u8,
    secret: Zeroizing<[u8; 32]>,
    previous: Option<(u8, Zeroizing<[u8; 32]>)>,
}

impl CookieJar {
    pub(crate) fn new(rng: &mut dyn CryptoRng) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self {
            version: 0,
            secret,
            previous: None,
        }
    }

    /// Replaces the secret; cookies made with the previous one stay valid until the next rotation.
    pub(crate) fn rotate(&mut self, rng: &mut dyn CryptoRng) {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        let old = core::mem::replace(&mut self.secret, secret);
        self.previous = Some((self.version, old));
        self.version = self.version.wrapping_add(1);
    }

    fn make(version: u8, secret: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
        let ip = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mac = PrfAlg::HmacSha256.prf(secret, &[ni, &ip, &spi_i.to_be_bytes()].concat());
        [&[version][..], &mac].concat()
    }

    pub(crate) fn cookie(&self, ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
        Self::make(self.version, self.secret.as_ref(), ni, ip, spi_i)
    }

    pub(crate) fn check(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some(&version) = cookie.first() else {
            return false;
        };
        let secret = if version == self.version {
            self.secret.as_ref()
        } else {
            match &self.previous {
                Some((v, s)) if *v == version => s.as_ref(),
                _ => return false,
            }
        };
        bool::from(Self::make(version, secret, ni, ip, spi_i).ct_eq(cookie))
    }
}
