//! ESP algorithms and their keys, as the kernel's crypto API names them.
//!
//! Key material is zeroized on drop, and so is every buffer this crate copies it into.

use netlink_packet_xfrm::{Alg, AlgAead, AlgAuth, XfrmAttrs};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::types::InvalidRequest;

/// Secret key bytes, zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key(Vec<u8>);

impl Key {
    /// Wraps key bytes (takes ownership so no copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Key length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> u32 {
        u32::try_from(self.0.len().saturating_mul(8)).unwrap_or(u32::MAX)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

/// The algorithm kinds this crate installs (for capability probing and status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgorithmKind {
    /// AES-GCM with a 16-byte ICV and a 128-bit key (RFC 4106).
    AesGcm128,
    /// AES-GCM with a 16-byte ICV and a 256-bit key (RFC 4106).
    AesGcm256,
    /// ChaCha20-Poly1305 (RFC 7634).
    ChaCha20Poly1305,
    /// AES-CBC (RFC 3602) with HMAC-SHA2-256-128 (RFC 4868).
    AesCbcHmacSha256,
}

impl AlgorithmKind {
    /// Every kind, in preference order.
    pub const ALL: [Self; 4] = [
        Self::AesGcm128,
        Self::AesGcm256,
        Self::ChaCha20Poly1305,
        Self::AesCbcHmacSha256,
    ];

    /// The kind whose kernel algorithm names (as [`crate::SaInfo::algorithms`] lists them)
    /// are `names`; AES-GCM reads as [`AlgorithmKind::AesGcm128`] (the names do not tell
    /// the key size).
    pub fn from_kernel_names(names: &[String]) -> Option<Self> {
        let has = |name: &str| names.iter().any(|n| n == name);
        if has(AES_GCM) {
            Some(Self::AesGcm128)
        } else if has(CHACHA20_POLY1305) {
            Some(Self::ChaCha20Poly1305)
        } else if has(AES_CBC) && has(HMAC_SHA256) {
            Some(Self::AesCbcHmacSha256)
        } else {
            None
        }
    }

    /// A key of the right length made of `byte`, for probes and tests.
    pub fn filler(self, byte: u8) -> EspAlgorithm {
        let key = |n: usize| Key::new(vec![byte; n]);
        match self {
            Self::AesGcm128 => EspAlgorithm::AesGcm16 { key: key(20) },
            Self::AesGcm256 => EspAlgorithm::AesGcm16 { key: key(36) },
            Self::ChaCha20Poly1305 => EspAlgorithm::ChaCha20Poly1305 { key: key(36) },
            Self::AesCbcHmacSha256 => EspAlgorithm::AesCbcHmacSha256 {
                enc_key: key(16),
                auth_key: key(32),
            },
        }
    }
}

/// Kernel name of RFC 4106 AES-GCM for ESP.
pub const AES_GCM: &str = "rfc4106(gcm(aes))";
/// Kernel name of RFC 7634 ChaCha20-Poly1305 for ESP.
pub const CHACHA20_POLY1305: &str = "rfc7539esp(chacha20,poly1305)";
/// Kernel name of AES-CBC.
pub const AES_CBC: &str = "cbc(aes)";
/// Kernel name of HMAC-SHA2-256.
pub const HMAC_SHA256: &str = "hmac(sha256)";

/// An ESP transform with its keys (as IKEv2 derives them, RFC 7296 section 2.17).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EspAlgorithm {
    /// `rfc4106(gcm(aes))`, 16-byte ICV. Key = AES key (16 or 32 bytes) followed by
    /// the 4-byte salt (RFC 4106 section 8.1): 20 or 36 bytes.
    AesGcm16 {
        /// AES key then salt.
        key: Key,
    },
    /// `rfc7539esp(chacha20,poly1305)`, 16-byte ICV. Key = 32-byte key followed by the
    /// 4-byte salt (RFC 7634 section 2): 36 bytes.
    ChaCha20Poly1305 {
        /// ChaCha20 key then salt.
        key: Key,
    },
    /// `cbc(aes)` (16, 24 or 32-byte key) with `hmac(sha256)` truncated to 128 bits
    /// (RFC 4868 section 2.3, 32-byte key).
    AesCbcHmacSha256 {
        /// AES key.
        enc_key: Key,
        /// HMAC key.
        auth_key: Key,
    },
}

impl std::fmt::Debug for EspAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind())
    }
}

impl EspAlgorithm {
    /// Which algorithm this is (with its key size).
    pub fn kind(&self) -> AlgorithmKind {
        match self {
            Self::AesGcm16 { key } if key.len() == 20 => AlgorithmKind::AesGcm128,
            Self::AesGcm16 { .. } => AlgorithmKind::AesGcm256,
            Self::ChaCha20Poly1305 { .. } => AlgorithmKind::ChaCha20Poly1305,
            Self::AesCbcHmacSha256 { .. } => AlgorithmKind::AesCbcHmacSha256,
        }
    }

    /// Checks key lengths.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        let check = |alg, key: &Key, expected: &'static [usize]| {
            if expected.contains(&key.len()) {
                Ok(())
            } else {
                Err(InvalidRequest::KeyLength {
                    alg,
                    got: key.len(),
                    expected,
                })
            }
        };
        match self {
            Self::AesGcm16 { key } => check(AES_GCM, key, &[20, 36]),
            Self::ChaCha20Poly1305 { key } => check(CHACHA20_POLY1305, key, &[36]),
            Self::AesCbcHmacSha256 { enc_key, auth_key } => {
                check(AES_CBC, enc_key, &[16, 24, 32])?;
                check(HMAC_SHA256, auth_key, &[32])
            }
        }
    }

    /// The netlink attributes carrying this transform (`XFRMA_ALG_AEAD`, or
    /// `XFRMA_ALG_CRYPT` plus `XFRMA_ALG_AUTH_TRUNC`).
    pub(crate) fn attrs(&self) -> Vec<XfrmAttrs> {
        match self {
            Self::AesGcm16 { key } => vec![aead(AES_GCM, key)],
            Self::ChaCha20Poly1305 { key } => vec![aead(CHACHA20_POLY1305, key)],
            Self::AesCbcHmacSha256 { enc_key, auth_key } => vec![
                XfrmAttrs::EncryptionAlg(Alg {
                    alg_name: name(AES_CBC),
                    alg_key_len: enc_key.bits(),
                    alg_key: enc_key.0.clone(),
                }),
                XfrmAttrs::AuthenticationAlgTrunc(AlgAuth {
                    alg_name: name(HMAC_SHA256),
                    alg_key_len: auth_key.bits(),
                    alg_trunc_len: 128,
                    alg_key: auth_key.0.clone(),
                }),
            ],
        }
    }
}

/// ICV length of the AEADs, in bits.
const ICV_BITS: u32 = 128;

fn aead(alg: &str, key: &Key) -> XfrmAttrs {
    XfrmAttrs::EncryptionAlgAead(AlgAead {
        alg_name: name(alg),
        alg_key_len: key.bits(),
        alg_icv_len: ICV_BITS,
        alg_key: key.0.clone(),
    })
}

/// A NUL-padded algorithm name (`char alg_name[64]`).
fn name<const N: usize>(alg: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(alg.bytes().take(N.saturating_sub(1))) {
        *o = b;
    }
    out
}

/// Reads a NUL-padded algorithm name from the kernel.
pub(crate) fn name_str(raw: &[u8]) -> String {
    let text = raw.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// Overwrites key material held in attributes (requests we built, replies we parsed).
pub(crate) fn scrub(attrs: &mut [XfrmAttrs]) {
    for attr in attrs {
        match attr {
            XfrmAttrs::EncryptionAlgAead(a) => a.alg_key.zeroize(),
            XfrmAttrs::EncryptionAlg(a) | XfrmAttrs::AuthenticationAlg(a) => a.alg_key.zeroize(),
            XfrmAttrs::AuthenticationAlgTrunc(a) => a.alg_key.zeroize(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths() {
        for kind in AlgorithmKind::ALL {
            assert_eq!(kind.filler(1).validate(), Ok(()));
            assert_eq!(kind.filler(1).kind(), kind);
        }
        let bad = EspAlgorithm::AesGcm16 {
            key: Key::new(vec![0; 16]),
        };
        assert!(matches!(
            bad.validate(),
            Err(InvalidRequest::KeyLength { got: 16, .. })
        ));
        let bad = EspAlgorithm::AesCbcHmacSha256 {
            enc_key: Key::new(vec![0; 16]),
            auth_key: Key::new(vec![0; 20]),
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn kinds_from_kernel_names() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            AlgorithmKind::from_kernel_names(&names(&[AES_GCM])),
            Some(AlgorithmKind::AesGcm128)
        );
        assert_eq!(
            AlgorithmKind::from_kernel_names(&names(&[AES_CBC, HMAC_SHA256])),
            Some(AlgorithmKind::AesCbcHmacSha256)
        );
        assert_eq!(AlgorithmKind::from_kernel_names(&names(&[AES_CBC])), None);
        assert_eq!(AlgorithmKind::from_kernel_names(&[]), None);
    }

    #[test]
    fn debug_never_prints_keys() {
        let alg = EspAlgorithm::ChaCha20Poly1305 {
            key: Key::new(vec![0xAB; 36]),
        };
        assert_eq!(format!("{alg:?}"), "ChaCha20Poly1305");
        assert_eq!(format!("{:?}", Key::new(vec![0xAB; 3])), "Key(3 bytes)");
    }

    #[test]
    fn gcm_attribute() {
        let attrs = AlgorithmKind::AesGcm256.filler(7).attrs();
        let [XfrmAttrs::EncryptionAlgAead(a)] = attrs.as_slice() else {
            panic!("{attrs:?}")
        };
        assert_eq!(name_str(&a.alg_name), AES_GCM);
        assert_eq!((a.alg_key_len, a.alg_icv_len), (288, 128));
    }

    #[test]
    fn scrub_zeroes_keys() {
        let mut attrs = AlgorithmKind::AesCbcHmacSha256.filler(9).attrs();
        scrub(&mut attrs);
        for a in &attrs {
            match a {
                XfrmAttrs::EncryptionAlg(a) => assert!(a.alg_key.is_empty()),
                XfrmAttrs::AuthenticationAlgTrunc(a) => assert!(a.alg_key.is_empty()),
                other => panic!("{other:?}"),
            }
        }
    }
}
