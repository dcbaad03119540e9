//! Encryption and integrity transforms (IANA Transform Types 1 and 3).
//!
//! These descriptors serve both the IKE SA's SK payload ([`super::SkCipher`]) and
//! the ESP child SAs the engine hands to the kernel. Key lengths follow RFC 7296
//! section 2.14 and section 2.17: for the AEAD ciphers the keying material
//! carries the 4-byte salt after the key (RFC 5282 section 7.1, RFC 7634 section 2
//! and RFC 4106 section 8.1 for ESP).

/// An encryption transform (IANA Transform Type 1 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncrAlg {
    /// ENCR_AES_CBC (12), RFC 3602; needs an integrity transform.
    AesCbc {
        /// Key Length attribute: 128 or 256.
        key_bits: u16,
    },
    /// ENCR_AES_GCM_16 (20), RFC 5282 / RFC 4106: 16-byte ICV, 8-byte explicit IV.
    AesGcm16 {
        /// Key Length attribute: 128 or 256.
        key_bits: u16,
    },
    /// ENCR_CHACHA20_POLY1305 (28), RFC 7634; never carries a Key Length attribute.
    ChaCha20Poly1305,
}

/// Length of the salt that follows an AEAD key in the keying material.
pub(super) const AEAD_SALT_LEN: usize = 4;

impl EncrAlg {
    /// The transform for an IANA identifier and its Key Length attribute, if
    /// implemented. AES needs the attribute (128 or 256); ChaCha20-Poly1305 must
    /// not have one (RFC 7634 section 2).
    pub fn from_iana(id: u16, key_bits: Option<u16>) -> Option<Self> {
        let aes_bits = key_bits.filter(|b| matches!(b, 128 | 256));
        match (id, key_bits) {
            (12, Some(_)) => aes_bits.map(|key_bits| Self::AesCbc { key_bits }),
            (20, Some(_)) => aes_bits.map(|key_bits| Self::AesGcm16 { key_bits }),
            (28, None) => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The IANA Transform Type 1 identifier.
    pub fn iana(self) -> u16 {
        match self {
            Self::AesCbc { .. } => 12,
            Self::AesGcm16 { .. } => 20,
            Self::ChaCha20Poly1305 => 28,
        }
    }

    /// The Key Length attribute to put in a proposal, if the transform has one.
    pub fn key_bits_attr(self) -> Option<u16> {
        match self {
            Self::AesCbc { key_bits } | Self::AesGcm16 { key_bits } => Some(key_bits),
            Self::ChaCha20Poly1305 => None,
        }
    }

    /// True for combined-mode ciphers, which take no integrity transform.
    pub fn is_aead(self) -> bool {
        !matches!(self, Self::AesCbc { .. })
    }

    /// Length of the cipher key alone, in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AesCbc { key_bits } | Self::AesGcm16 { key_bits } => usize::from(key_bits / 8),
            Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Length of SK_e (and of each ESP encryption key taken from KEYMAT): the key,
    /// plus the 4-byte salt for AEAD ciphers.
    pub fn key_material_len(self) -> usize {
        if self.is_aead() {
            self.key_len() + AEAD_SALT_LEN
        } else {
            self.key_len()
        }
    }

    /// Length of the IV carried in each message.
    pub fn iv_len(self) -> usize {
        match self {
            Self::AesCbc { .. } => 16,
            Self::AesGcm16 { .. } | Self::ChaCha20Poly1305 => 8,
        }
    }

    /// Length of the AEAD tag, or 0 for a cipher that needs an integrity transform.
    pub fn tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            0
        }
    }

    /// Block size that the plaintext plus Pad Length must fill (RFC 7296 section 3.14).
    pub fn block_len(self) -> usize {
        match self {
            Self::AesCbc { .. } => 16,
            Self::AesGcm16 { .. } | Self::ChaCha20Poly1305 => 1,
        }
    }
}

/// An integrity transform (IANA Transform Type 3 values); only with AES-CBC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(non_camel_case_types)]
pub enum IntegAlg {
    /// AUTH_HMAC_SHA2_256_128 (12), RFC 4868: 32-byte key, 16-byte ICV.
    HmacSha2_256_128,
}

impl IntegAlg {
    /// The transform for an IANA Transform Type 3 identifier, if implemented.
    pub fn from_iana(id: u16) -> Option<Self> {
        (id == 12).then_some(Self::HmacSha2_256_128)
    }

    /// The IANA Transform Type 3 identifier.
    pub fn iana(self) -> u16 {
        match self {
            Self::HmacSha2_256_128 => 12,
        }
    }

    /// Length of SK_a (and of each ESP integrity key), in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::HmacSha2_256_128 => 32,
        }
    }

    /// Length of the truncated ICV, in bytes.
    pub fn icv_len(self) -> usize {
        match self {
            Self::HmacSha2_256_128 => 16,
        }
    }
}
