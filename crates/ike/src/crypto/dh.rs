//! Key exchange (RFC 7296 section 3.4; IANA IKEv2 Transform Type 4).
//!
//! A [`KeyShare`] is our ephemeral private value for one exchange. Its
//! [`public`](KeyShare::public) bytes are exactly the KE payload's Key Exchange Data:
//! 32 bytes for Curve25519 (RFC 8031 section 2), x || y for the ECP groups (RFC 5903
//! section 7: 64 bytes for group 19, 96 for group 20), and the 256-byte big-endian
//! value padded with leading zeros for MODP-2048 (RFC 7296 section 3.4).
//!
//! [`KeyShare::agree`] validates the peer's value before using it and returns
//! g^ir in the form RFC 7296 section 2.14 feeds into SKEYSEED.
//!
//! ML-KEM (FIPS 203; IDs 35-37, draft-ietf-ipsecme-ikev2-mlkem) is a KEM, not a
//! Diffie-Hellman group: the initiator sends an encapsulation key ([`KeyShare::generate`],
//! [`KeyShare::public`]), the responder answers with a ciphertext
//! ([`KeyShare::respond`]), and the initiator decapsulates it ([`KeyShare::agree`]).
//! [`KeyShare::respond`] works for every method, so exchange code never needs to know
//! which kind it negotiated.
//!
//! Randomness: [`KeyShare::generate`] draws its private value from the injected
//! generator, so a seeded generator gives the same key share every time. It draws
//! 32 bytes (Curve25519, P-256, MODP-2048), 48 bytes (P-384) or 64 bytes (ML-KEM);
//! the ECP groups draw again in the rare case the bytes are not a valid scalar
//! (0 < k < n). ML-KEM encapsulation draws 32 bytes.

use std::fmt;

use zeroize::Zeroizing;

use super::mlkem::{self, DecapsKey, Level};
use super::{ecp, modp, CryptoError, CryptoRng};

/// A key exchange group that IKE can negotiate (IANA Transform Type 4 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DhGroup {
    /// 2048-bit MODP group, RFC 3526 section 3 (14).
    Modp2048,
    /// 256-bit random ECP group (NIST P-256), RFC 5903 (19).
    Ecp256,
    /// 384-bit random ECP group (NIST P-384), RFC 5903 (20).
    Ecp384,
    /// Curve25519 (X25519), RFC 8031 (31).
    Curve25519,
    /// ML-KEM-512, FIPS 203 (35).
    MlKem512,
    /// ML-KEM-768, FIPS 203 (36).
    MlKem768,
    /// ML-KEM-1024, FIPS 203 (37).
    MlKem1024,
}

impl DhGroup {
    /// Every Diffie-Hellman group this module implements, in our order of preference.
    pub const ALL: [Self; 4] = [Self::Curve25519, Self::Ecp256, Self::Ecp384, Self::Modp2048];

    /// Every ML-KEM parameter set, in our order of preference.
    pub const ML_KEM: [Self; 3] = [Self::MlKem768, Self::MlKem1024, Self::MlKem512];

    /// The method for an IANA Transform Type 4 identifier, if implemented.
    pub fn from_iana(id: u16) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::ML_KEM)
            .find(|g| g.iana() == id)
    }

    /// Whether this method resists a quantum computer (ML-KEM; not the DH groups).
    pub fn is_post_quantum(self) -> bool {
        self.kem_level().is_some()
    }

    fn kem_level(self) -> Option<Level> {
        match self {
            Self::MlKem512 => Some(Level::L512),
            Self::MlKem768 => Some(Level::L768),
            Self::MlKem1024 => Some(Level::L1024),
            _ => None,
        }
    }

    /// The IANA Transform Type 4 identifier.
    pub fn iana(self) -> u16 {
        match self {
            Self::Modp2048 => 14,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
            Self::MlKem512 => 35,
            Self::MlKem768 => 36,
            Self::MlKem1024 => 37,
        }
    }

    /// Length of the initiator's Key Exchange Data (an ML-KEM encapsulation key).
    pub fn public_len(self) -> usize {
        match self {
            Self::Modp2048 => modp::PUBLIC_LEN,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
            Self::MlKem512 | Self::MlKem768 | Self::MlKem1024 => {
                self.kem_level().map_or(0, Level::ek_len)
            }
        }
    }

    /// Length of the responder's Key Exchange Data: the same as [`Self::public_len`]
    /// for Diffie-Hellman, an ML-KEM ciphertext for ML-KEM.
    pub fn response_len(self) -> usize {
        self.kem_level().map_or(self.public_len(), Level::ct_len)
    }

    /// The strongSwan-style name: `CURVE_25519`, `ML_KEM_768`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Modp2048 => "MODP_2048",
            Self::Ecp256 => "ECP_256",
            Self::Ecp384 => "ECP_384",
            Self::Curve25519 => "CURVE_25519",
            Self::MlKem512 => "ML_KEM_512",
            Self::MlKem768 => "ML_KEM_768",
            Self::MlKem1024 => "ML_KEM_1024",
        }
    }
}

/// The private part of a key share; each variant zeroizes itself on drop.
enum Secret {
    Curve25519(x25519_dalek::StaticSecret),
    Ecp256(p256::SecretKey),
    Ecp384(p384::SecretKey),
    Modp2048(modp::Exponent),
    MlKem(DecapsKey),
}

/// Our ephemeral private value for one key exchange, with its public value.
pub struct KeyShare {
    group: DhGroup,
    public: Vec<u8>,
    secret: Secret,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("group", &self.group)
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

impl KeyShare {
    /// Draws a fresh private value for `group` from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn CryptoRng) -> Result<Self, CryptoError> {
        let (secret, public) = match group {
            DhGroup::Curve25519 => curve25519_generate(rng)?,
            DhGroup::Ecp256 => {
                let k = ecp::generate::<p256::NistP256>(rng)?;
                let public = ecp::public_value(&k);
                (Secret::Ecp256(k), public)
            }
            DhGroup::Ecp384 => {
                let k = ecp::generate::<p384::NistP384>(rng)?;
                let public = ecp::public_value(&k);
                (Secret::Ecp384(k), public)
            }
            DhGroup::Modp2048 => {
                let (x, public) = modp::generate(rng)?;
                (Secret::Modp2048(x), public)
            }
            DhGroup::MlKem512 | DhGroup::MlKem768 | DhGroup::MlKem1024 => {
                let level = group.kem_level().ok_or(CryptoError::Internal)?;
                let (dk, ek) = mlkem::generate(level, rng)?;
                (Secret::MlKem(dk), ek)
            }
        };
        Ok(Self {
            group,
            public,
            secret,
        })
    }

    /// The group this share belongs to.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value, exactly as the KE payload carries it.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Validates the peer's KE data for this group and computes g^ir (for ML-KEM:
    /// decapsulates the responder's ciphertext).
    ///
    /// Fails with [`CryptoError::InvalidPeerPublicKey`] when the value has the wrong
    /// length, is not a point of the curve (ECP), is outside 1 < y < p-1 (MODP), or
    /// yields an all-zero secret (Curve25519, RFC 8031 section 2).
    pub fn agree(self, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        if peer_public.len() != self.group.response_len() {
            return Err(CryptoError::InvalidPeerPublicKey);
        }
        let bytes = match &self.secret {
            Secret::Curve25519(k) => curve25519_agree(k, peer_public)?,
            Secret::Ecp256(k) => ecp::agree(k, peer_public)?,
            Secret::Ecp384(k) => ecp::agree(k, peer_public)?,
            Secret::Modp2048(x) => modp::agree(x, peer_public)?,
            Secret::MlKem(dk) => mlkem::decapsulate(dk, peer_public)?,
        };
        Ok(SharedSecret(bytes))
    }

    /// The responder's side: answers the initiator's KE data `peer_public` with our own
    /// KE data and the shared secret. Diffie-Hellman generates a share and agrees;
    /// ML-KEM checks the encapsulation key (FIPS 203 section 7.2) and encapsulates.
    pub fn respond(
        group: DhGroup,
        peer_public: &[u8],
        rng: &mut dyn CryptoRng,
    ) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
        if peer_public.len() != group.public_len() {
            return Err(CryptoError::InvalidPeerPublicKey);
        }
        if let Some(level) = group.kem_level() {
            let (c, k) = mlkem::encapsulate(level, peer_public, rng)?;
            return Ok((c, SharedSecret(k)));
        }
        let share = Self::generate(group, rng)?;
        let public = share.public.clone();
        Ok((public, share.agree(peer_public)?))
    }
}

/// The Diffie-Hellman shared secret g^ir; zeroized on drop.
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// g^ir as RFC 7296 section 2.14 uses it: the X25519 output (RFC 8031), the x
    /// coordinate (RFC 5903 section 7), the modulus-length big-endian value, or the
    /// 32-byte ML-KEM shared secret K.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A secret with these bytes, for key-derivation tests.
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

fn curve25519_generate(rng: &mut dyn CryptoRng) -> Result<(Secret, Vec<u8>), CryptoError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.try_fill_bytes(bytes.as_mut())
        .map_err(|_| CryptoError::RngFailure)?;
    let secret = x25519_dalek::StaticSecret::from(*bytes);
    let public = x25519_dalek::PublicKey::from(&secret).as_bytes().to_vec();
    Ok((Secret::Curve25519(secret), public))
}

/// RFC 7748 section 5 X25519; RFC 8031 section 2: an all-zero result is refused.
fn curve25519_agree(
    secret: &x25519_dalek::StaticSecret,
    peer: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let peer: [u8; 32] = peer
        .try_into()
        .map_err(|_| CryptoError::InvalidPeerPublicKey)?;
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
    if !shared.was_contributory() {
        return Err(CryptoError::InvalidPeerPublicKey);
    }
    Ok(Zeroizing::new(shared.as_bytes().to_vec()))
}
