//! AES-CBC (RFC 3602) with AUTH_HMAC_SHA2_256_128 (RFC 4868) SK protection.
//!
//! Encrypt-then-MAC as RFC 7296 section 3.14 lays it out: the ICV covers the
//! message from the IKE header through the ciphertext and is checked in constant
//! time before decryption, so padding errors never reach an unauthenticated peer.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{CryptoError, CryptoRng, EncrAlg, IntegAlg};

const BLOCK: usize = 16;
const ICV_LEN: usize = 16;

/// AES-CBC key bytes and the HMAC key for one direction.
pub(super) struct CbcKey {
    aes: Zeroizing<Vec<u8>>,
    mac: hmac::Key,
}

impl CbcKey {
    pub(super) fn new(
        encr: EncrAlg,
        integ: IntegAlg,
        sk_e: &[u8],
        sk_a: &[u8],
    ) -> Result<Self, CryptoError> {
        if !matches!(
            encr,
            EncrAlg::AesCbc {
                key_bits: 128 | 256
            }
        ) {
            return Err(CryptoError::UnsupportedAlgorithm);
        }
        if sk_e.len() != encr.key_len() || sk_a.len() != integ.key_len() {
            return Err(CryptoError::BadKeyLength);
        }
        let IntegAlg::HmacSha2_256_128 = integ;
        Ok(Self {
            aes: Zeroizing::new(sk_e.to_vec()),
            mac: hmac::Key::new(hmac::HMAC_SHA256, sk_a),
        })
    }

    /// ICV = HMAC-SHA-256(SK_a, prefix || IV || ciphertext) truncated to 128 bits.
    fn icv(&self, prefix: &[u8], iv_and_ciphertext: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(prefix);
        ctx.update(iv_and_ciphertext);
        ctx.sign()
    }

    /// Returns IV || ciphertext || ICV; `padded` is a whole number of blocks.
    pub(super) fn seal(
        &self,
        prefix: &[u8],
        mut padded: Zeroizing<Vec<u8>>,
        rng: &mut dyn CryptoRng,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut iv = [0u8; BLOCK];
        rng.try_fill_bytes(&mut iv)
            .map_err(|_| CryptoError::RngFailure)?;
        self.encrypt(&iv, padded.as_mut_slice())?;
        let mut out = Vec::with_capacity(BLOCK + padded.len() + ICV_LEN);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&padded);
        let tag = self.icv(prefix, &out);
        out.extend_from_slice(tag.as_ref().get(..ICV_LEN).ok_or(CryptoError::Internal)?);
        Ok(out)
    }

    /// Checks the ICV, then decrypts; returns the padded plaintext.
    pub(super) fn open(
        &self,
        prefix: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (authenticated, icv) = body
            .split_last_chunk::<ICV_LEN>()
            .ok_or(CryptoError::DecryptFailed)?;
        let (iv, ciphertext) = authenticated
            .split_first_chunk::<BLOCK>()
            .ok_or(CryptoError::DecryptFailed)?;
        if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
            return Err(CryptoError::DecryptFailed);
        }
        let expected = self.icv(prefix, authenticated);
        let expected = expected
            .as_ref()
            .get(..ICV_LEN)
            .ok_or(CryptoError::Internal)?;
        if !bool::from(expected.ct_eq(icv)) {
            return Err(CryptoError::DecryptFailed);
        }
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.decrypt(iv, buf.as_mut_slice())?;
        Ok(buf)
    }

    fn encrypt(&self, iv: &[u8; BLOCK], buf: &mut [u8]) -> Result<(), CryptoError> {
        let len = buf.len();
        let done = match self.aes.len() {
            16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.aes, iv)
                .map_err(|_| CryptoError::BadKeyLength)?
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .is_ok(),
            32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(&self.aes, iv)
                .map_err(|_| CryptoError::BadKeyLength)?
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .is_ok(),
            _ => false,
        };
        done.then_some(()).ok_or(CryptoError::Internal)
    }

    fn decrypt(&self, iv: &[u8; BLOCK], buf: &mut [u8]) -> Result<(), CryptoError> {
        let done = match self.aes.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.aes, iv)
                .map_err(|_| CryptoError::BadKeyLength)?
                .decrypt_padded_mut::<NoPadding>(buf)
                .is_ok(),
            32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.aes, iv)
                .map_err(|_| CryptoError::BadKeyLength)?
                .decrypt_padded_mut::<NoPadding>(buf)
                .is_ok(),
            _ => false,
        };
        done.then_some(()).ok_or(CryptoError::DecryptFailed)
    }
}
