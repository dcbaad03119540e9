//! AEAD SK protection: AES-GCM-16 (RFC 5282) and ChaCha20-Poly1305 (RFC 7634) on ring.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::{transforms::AEAD_SALT_LEN, CryptoError, CryptoRng, EncrAlg};

/// Explicit IV length (RFC 5282 section 3, RFC 7634 section 2).
const IV_LEN: usize = 8;
/// Tag (ICV) length: 16 for AES-GCM-16 and ChaCha20-Poly1305.
const TAG_LEN: usize = 16;

/// An AEAD key with its implicit salt.
pub(super) struct AeadKey {
    key: LessSafeKey,
    salt: Zeroizing<[u8; AEAD_SALT_LEN]>,
}

impl AeadKey {
    /// `material` is key || 4-byte salt; its length was checked by the caller.
    pub(super) fn new(encr: EncrAlg, material: &[u8]) -> Result<Self, CryptoError> {
        let (key, salt) = material
            .split_at_checked(encr.key_len())
            .ok_or(CryptoError::BadKeyLength)?;
        let alg = match encr {
            EncrAlg::AesGcm16 { key_bits: 128 } => &aead::AES_128_GCM,
            EncrAlg::AesGcm16 { key_bits: 256 } => &aead::AES_256_GCM,
            EncrAlg::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
            _ => return Err(CryptoError::UnsupportedAlgorithm),
        };
        let key = UnboundKey::new(alg, key).map_err(|_| CryptoError::BadKeyLength)?;
        let salt = Zeroizing::new(salt.try_into().map_err(|_| CryptoError::BadKeyLength)?);
        Ok(Self {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    /// nonce = salt || IV (RFC 5282 section 4, RFC 7634 section 2).
    fn nonce(&self, iv: &[u8; IV_LEN]) -> Nonce {
        let mut n = [0u8; aead::NONCE_LEN];
        let (salt, rest) = n.split_at_mut(AEAD_SALT_LEN);
        salt.copy_from_slice(self.salt.as_ref());
        rest.copy_from_slice(iv);
        Nonce::assume_unique_for_key(n)
    }

    /// Returns IV || ciphertext || tag.
    pub(super) fn seal(
        &self,
        prefix: &[u8],
        mut padded: Zeroizing<Vec<u8>>,
        rng: &mut dyn CryptoRng,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut iv = [0u8; IV_LEN];
        rng.try_fill_bytes(&mut iv)
            .map_err(|_| CryptoError::RngFailure)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(&iv), Aad::from(prefix), padded.as_mut_slice())
            .map_err(|_| CryptoError::Internal)?;
        let mut out = Vec::with_capacity(IV_LEN + padded.len() + TAG_LEN);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&padded);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Verifies the tag and returns the padded plaintext.
    pub(super) fn open(
        &self,
        prefix: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (iv, sealed) = body
            .split_first_chunk::<IV_LEN>()
            .ok_or(CryptoError::DecryptFailed)?;
        // At least the Pad Length byte must be inside.
        if sealed.len() < TAG_LEN + 1 {
            return Err(CryptoError::DecryptFailed);
        }
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain_len = self
            .key
            .open_in_place(self.nonce(iv), Aad::from(prefix), buf.as_mut_slice())
            .map_err(|_| CryptoError::DecryptFailed)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}
