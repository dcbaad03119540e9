//! PRF (IANA Transform Type 2) and prf+ (RFC 7296 section 2.13).
//!
//! PRF_HMAC_SHA2_256/384/512 per RFC 4868 section 2.1: HMAC with a key of any
//! length, full-length output. prf+ (RFC 7296 section 2.13):
//!
//! ```text
//! prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//! T1 = prf (K, S | 0x01)
//! T2 = prf (K, T1 | S | 0x02)
//! ...
//! ```
//!
//! The counter is one octet, so prf+ yields at most 255 blocks.

use ring::hmac;
use zeroize::Zeroizing;

use super::CryptoError;

/// A pseudo-random function that IKE can negotiate (IANA Transform Type 2 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrfAlg {
    /// PRF_HMAC_SHA2_256 (5).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (6).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (7).
    HmacSha512,
}

impl PrfAlg {
    /// Every PRF this module implements, in our order of preference.
    pub const ALL: [Self; 3] = [Self::HmacSha256, Self::HmacSha384, Self::HmacSha512];

    /// The PRF for an IANA Transform Type 2 identifier, if implemented.
    pub fn from_iana(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.iana() == id)
    }

    /// The IANA Transform Type 2 identifier.
    pub fn iana(self) -> u16 {
        match self {
            Self::HmacSha256 => 5,
            Self::HmacSha384 => 6,
            Self::HmacSha512 => 7,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    /// Key length for SK_d, SK_pi and SK_pr: the output length (RFC 4868 section 2.1.2).
    pub fn preferred_key_len(self) -> usize {
        self.output_len()
    }

    fn ring_alg(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256 => hmac::HMAC_SHA256,
            Self::HmacSha384 => hmac::HMAC_SHA384,
            Self::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// prf(key, data).
    pub fn prf(self, key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
        let key = hmac::Key::new(self.ring_alg(), key);
        Zeroizing::new(hmac::sign(&key, data).as_ref().to_vec())
    }

    /// prf+(key, seed) truncated to `len` bytes (RFC 7296 section 2.13).
    ///
    /// Fails with [`CryptoError::OutputTooLong`] past 255 blocks.
    pub fn prf_plus(
        self,
        key: &[u8],
        seed: &[u8],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let blocks = len.div_ceil(self.output_len());
        if blocks > usize::from(u8::MAX) {
            return Err(CryptoError::OutputTooLong);
        }
        let key = hmac::Key::new(self.ring_alg(), key);
        let mut out = Zeroizing::new(Vec::with_capacity(blocks * self.output_len()));
        let mut block = Zeroizing::new(Vec::with_capacity(self.output_len()));
        for counter in 1..=u8::MAX {
            if out.len() >= len {
                break;
            }
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(&block);
            ctx.update(seed);
            ctx.update(&[counter]);
            block.clear();
            block.extend_from_slice(ctx.sign().as_ref());
            out.extend_from_slice(&block);
        }
        out.truncate(len);
        Ok(out)
    }
}
