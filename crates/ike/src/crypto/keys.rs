//! Public keys as DNS publishes them, and our private keys from PKCS#8.
//!
//! [`PublicKey`] holds the raw forms IPSECKEY records carry (RFC 4025 section
//! 2.6): RSA as modulus and exponent (RFC 3110 section 2), ECDSA as x || y (RFC
//! 6605 section 4 / RFC 8005), Ed25519 as its 32-byte encoding (RFC 8080 section 3).
//!
//! [`PrivateKey`] loads PKCS#8 (RFC 5958) DER or PEM for Ed25519, ECDSA P-256 and
//! P-384, and RSA (2048 to 8192 bits). For keys made by other tools, PEM files
//! labelled `EC PRIVATE KEY` (SEC1, RFC 5915) and `RSA PRIVATE KEY` (PKCS#1, RFC
//! 8017 appendix A.1.2) are accepted too. The ECDSA keys zeroize themselves; the
//! ring key pairs (Ed25519, RSA) do not wipe their memory on drop, a limitation
//! of ring; the decoded PEM and DER buffers are wiped.

use std::fmt;

use pkcs8::{der::pem, DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use ring::signature::{self as ring_sig, KeyPair as _};
use zeroize::Zeroizing;

use super::{ecp, CryptoError};

/// A peer's (or our own) public key in the raw form DNS publishes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicKey {
    /// RSA modulus and public exponent, big-endian, no leading zeros.
    Rsa {
        /// Modulus n.
        n: Vec<u8>,
        /// Public exponent e.
        e: Vec<u8>,
    },
    /// ECDSA P-256 point as x || y (64 bytes).
    EcdsaP256(Vec<u8>),
    /// ECDSA P-384 point as x || y (96 bytes).
    EcdsaP384(Vec<u8>),
    /// Ed25519 public key (RFC 8032 section 5.1.5 encoding).
    Ed25519([u8; 32]),
}

/// RSA moduli we accept: 2048 to 8192 bits, as ring verifies.
const RSA_MIN_BYTES: usize = 256;
const RSA_MAX_BYTES: usize = 1024;

impl PublicKey {
    /// A short name for logs and status output, e.g. "Ed25519", "RSA-3072".
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa { n, .. } => format!("RSA-{}", bit_len(n)),
            Self::EcdsaP256(_) => "ECDSA-P256".to_string(),
            Self::EcdsaP384(_) => "ECDSA-P384".to_string(),
            Self::Ed25519(_) => "Ed25519".to_string(),
        }
    }

    /// Checks the key's form: RSA modulus of 2048-8192 bits without leading
    /// zeros and an odd exponent of at most 4 bytes; ECDSA x || y a point of its
    /// curve. (Ed25519 points are checked when a signature is verified.)
    pub fn validate(&self) -> Result<(), CryptoError> {
        let ok = match self {
            Self::Rsa { n, e } => {
                (RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&n.len())
                    && n.first().is_some_and(|&b| b != 0)
                    && (1..=4).contains(&e.len())
                    && e.first().is_some_and(|&b| b != 0)
                    && e.last().is_some_and(|&b| b & 1 == 1)
            }
            Self::EcdsaP256(xy) => ecp::decode_point::<p256::NistP256>(xy).is_some(),
            Self::EcdsaP384(xy) => ecp::decode_point::<p384::NistP384>(xy).is_some(),
            Self::Ed25519(_) => true,
        };
        ok.then_some(()).ok_or(CryptoError::InvalidPublicKey)
    }
}

fn bit_len(n: &[u8]) -> usize {
    let Some(pos) = n.iter().position(|&b| b != 0) else {
        return 0;
    };
    let lead = n.get(pos).map_or(0, |b| b.leading_zeros() as usize);
    (n.len() - pos) * 8 - lead
}

/// Our private key for signing AUTH payloads.
pub struct PrivateKey {
    inner: Inner,
    public: PublicKey,
}

pub(super) enum Inner {
    Ed25519(ring_sig::Ed25519KeyPair),
    EcdsaP256(p256::ecdsa::SigningKey),
    EcdsaP384(p384::ecdsa::SigningKey),
    Rsa(ring_sig::RsaKeyPair),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public.describe())
    }
}

// Algorithm OIDs in PKCS#8 PrivateKeyInfo (RFC 8410, RFC 5480, RFC 8017).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

impl PrivateKey {
    /// Loads a PKCS#8 PrivateKeyInfo (DER).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let info = PrivateKeyInfo::try_from(der).map_err(|_| CryptoError::InvalidPrivateKey)?;
        let alg = info.algorithm;
        let inner = match alg.oid {
            OID_ED25519 => Inner::Ed25519(
                ring_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|_| CryptoError::InvalidPrivateKey)?,
            ),
            OID_EC_PUBLIC_KEY => match alg.parameters_oid() {
                Ok(OID_P256) => Inner::EcdsaP256(
                    p256::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map_err(|_| CryptoError::InvalidPrivateKey)?,
                ),
                Ok(OID_P384) => Inner::EcdsaP384(
                    p384::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map_err(|_| CryptoError::InvalidPrivateKey)?,
                ),
                _ => return Err(CryptoError::InvalidPrivateKey),
            },
            OID_RSA => Inner::Rsa(
                ring_sig::RsaKeyPair::from_pkcs8(der)
                    .map_err(|_| CryptoError::InvalidPrivateKey)?,
            ),
            _ => return Err(CryptoError::InvalidPrivateKey),
        };
        Ok(Self::from_inner(inner))
    }

    /// Loads a PEM file: `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) or
    /// `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let (label, der) =
            pem::decode_vec(text.trim().as_bytes()).map_err(|_| CryptoError::InvalidPrivateKey)?;
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "EC PRIVATE KEY" => Self::from_sec1_der(&der),
            "RSA PRIVATE KEY" => ring_sig::RsaKeyPair::from_der(&der)
                .map(|k| Self::from_inner(Inner::Rsa(k)))
                .map_err(|_| CryptoError::InvalidPrivateKey),
            _ => Err(CryptoError::InvalidPrivateKey),
        }
    }

    /// SEC1 ECPrivateKey: the private key's length tells P-256 from P-384.
    fn from_sec1_der(der: &[u8]) -> Result<Self, CryptoError> {
        if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            return Ok(Self::from_inner(Inner::EcdsaP256(k.into())));
        }
        p384::SecretKey::from_sec1_der(der)
            .map(|k| Self::from_inner(Inner::EcdsaP384(k.into())))
            .map_err(|_| CryptoError::InvalidPrivateKey)
    }

    fn from_inner(inner: Inner) -> Self {
        let public = match &inner {
            Inner::Ed25519(k) => {
                PublicKey::Ed25519(k.public_key().as_ref().try_into().unwrap_or_default())
            }
            Inner::EcdsaP256(k) => {
                PublicKey::EcdsaP256(xy(k.verifying_key().to_encoded_point(false).as_bytes()))
            }
            Inner::EcdsaP384(k) => {
                PublicKey::EcdsaP384(xy(k.verifying_key().to_encoded_point(false).as_bytes()))
            }
            Inner::Rsa(k) => {
                let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public());
                PublicKey::Rsa { n: c.n, e: c.e }
            }
        };
        Self { inner, public }
    }

    /// The matching public key, in the form DNS would publish it.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// x || y from an uncompressed SEC1 point (drops the 0x04 tag).
fn xy(sec1: &[u8]) -> Vec<u8> {
    sec1.get(1..).unwrap_or_default().to_vec()
}
