//! SK payload protection for one direction of an IKE SA (RFC 7296 section 3.14).
//!
//! Body layout, as carried after the SK (or SKF) generic payload header:
//!
//! ```text
//! IV || Encrypted(inner payloads || Padding || Pad Length) || ICV
//! ```
//!
//! - AES-GCM-16 (RFC 5282) and ChaCha20-Poly1305 (RFC 7634): 8-byte explicit IV,
//!   nonce = 4-byte salt (the last 4 bytes of SK_e) || IV, AAD = everything before
//!   the IV (IKE header and SK payload header, RFC 5282 section 5.1), 16-byte tag
//!   as the ICV. No padding is added (block size 1); the Pad Length byte stays.
//! - AES-CBC with AUTH_HMAC_SHA2_256_128: 16-byte random IV, zero padding to the
//!   block size, ICV = first 16 bytes of HMAC-SHA-256(SK_a, prefix || IV ||
//!   ciphertext), checked in constant time before anything is decrypted.
//!
//! IVs come from the injected generator. GCM's 8-byte IV is random rather than a
//! counter, so the contract stays `&self`; an IKE SA carries few messages, far
//! below the 2^32 messages where random 64-bit IVs start to risk a collision.

use std::fmt;

use zeroize::Zeroizing;

use super::{sk_aead::AeadKey, sk_cbc::CbcKey, CryptoError, CryptoRng, EncrAlg, IntegAlg};

/// One direction of an IKE SA's SK protection.
pub struct SkCipher {
    encr: EncrAlg,
    integ: Option<IntegAlg>,
    keys: Keys,
}

enum Keys {
    Aead(Box<AeadKey>),
    Cbc(CbcKey),
}

impl fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkCipher")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

impl SkCipher {
    /// Keys one direction: `sk_e` is SK_ei or SK_er (with the salt for AEAD),
    /// `sk_a` is SK_ai or SK_ar (empty for AEAD).
    ///
    /// AEAD ciphers take no integrity transform, AES-CBC requires one; other
    /// combinations fail with [`CryptoError::UnsupportedAlgorithm`].
    pub fn new(
        encr: EncrAlg,
        integ: Option<IntegAlg>,
        sk_e: &[u8],
        sk_a: &[u8],
    ) -> Result<Self, CryptoError> {
        if sk_e.len() != encr.key_material_len() {
            return Err(CryptoError::BadKeyLength);
        }
        let keys = match (encr.is_aead(), integ) {
            (true, None) if sk_a.is_empty() => Keys::Aead(Box::new(AeadKey::new(encr, sk_e)?)),
            (true, None) => return Err(CryptoError::BadKeyLength),
            (false, Some(integ)) => Keys::Cbc(CbcKey::new(encr, integ, sk_e, sk_a)?),
            _ => return Err(CryptoError::UnsupportedAlgorithm),
        };
        Ok(Self { encr, integ, keys })
    }

    /// The encryption transform.
    pub fn encr(&self) -> EncrAlg {
        self.encr
    }

    /// The integrity transform, `None` for AEAD.
    pub fn integ(&self) -> Option<IntegAlg> {
        self.integ
    }

    /// Bytes the SK payload body (IV || ciphertext || padding + Pad Length || ICV)
    /// takes for `plaintext_len` inner bytes.
    pub fn sealed_len(&self, plaintext_len: usize) -> usize {
        let icv = self.integ.map_or(self.encr.tag_len(), IntegAlg::icv_len);
        self.encr.iv_len() + padded_len(plaintext_len, self.encr.block_len()) + icv
    }

    /// Encrypts and protects `plaintext` (the inner payloads).
    ///
    /// `prefix` is the IKE header plus the SK generic payload header, both already
    /// carrying their final lengths (use [`sealed_len`](Self::sealed_len)).
    pub fn seal(
        &self,
        prefix: &[u8],
        plaintext: &[u8],
        rng: &mut dyn CryptoRng,
    ) -> Result<Vec<u8>, CryptoError> {
        let padded = pad(plaintext, self.encr.block_len());
        match &self.keys {
            Keys::Aead(k) => k.seal(prefix, padded, rng),
            Keys::Cbc(k) => k.seal(prefix, padded, rng),
        }
    }

    /// Verifies and decrypts an SK payload body, strips the padding, and returns the
    /// inner payload bytes. Any failure is [`CryptoError::DecryptFailed`].
    pub fn open(&self, prefix: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let padded = match &self.keys {
            Keys::Aead(k) => k.open(prefix, body)?,
            Keys::Cbc(k) => k.open(prefix, body)?,
        };
        unpad(padded)
    }
}

/// Plaintext plus padding plus the Pad Length byte, rounded up to the block size.
fn padded_len(plaintext_len: usize, block: usize) -> usize {
    (plaintext_len + 1).div_ceil(block) * block
}

/// Appends zero padding and the Pad Length byte (RFC 7296 section 3.14).
fn pad(plaintext: &[u8], block: usize) -> Zeroizing<Vec<u8>> {
    let total = padded_len(plaintext.len(), block);
    let pad_len = total - plaintext.len() - 1;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(plaintext);
    out.resize(total - 1, 0);
    // The pad length is below the block size (at most 15).
    out.push(u8::try_from(pad_len).unwrap_or(0));
    out
}

/// Strips padding: the last byte counts the padding bytes before it, whose values
/// the receiver must accept whatever they are (RFC 7296 section 3.14).
fn unpad(mut padded: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let pad_len = usize::from(*padded.last().ok_or(CryptoError::DecryptFailed)?);
    let inner_len = padded
        .len()
        .checked_sub(pad_len + 1)
        .ok_or(CryptoError::DecryptFailed)?;
    padded.truncate(inner_len);
    Ok(padded)
}
