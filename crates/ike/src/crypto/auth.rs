//! AUTH payload signatures (RFC 7296 section 2.15, RFC 7427, RFC 8420).
//!
//! - Method 14, Digital Signature (RFC 7427): authentication data is the ASN.1
//!   length octet, the AlgorithmIdentifier and the signature (see [`super::asn1`]).
//!   RSA keys sign RSASSA-PSS (MGF1 with the same hash, salt = hash length), and
//!   RSASSA-PKCS1-v1_5 is accepted from peers too. ECDSA signatures are DER
//!   Ecdsa-Sig-Value. Ed25519 signs the octets themselves (hash Identity, RFC 8420).
//!   The hash is the first of our preference the peer announced in
//!   SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4).
//! - Method 1, RSA Digital Signature (RFC 7296 section 3.8): PKCS#1 v1.5 with
//!   SHA-1, as Libreswan and strongSwan use it. We verify it (RSA 2048-8192) but do
//!   not sign it: ring, which holds our RSA keys, signs only with SHA-2 hashes.
//!   Every peer we target speaks RFC 7427.
//! - Method 13, NULL (RFC 7619): no signature; the engine computes its MAC with
//!   [`super::PrfAlg::prf`]. Both functions refuse it.
//!
//! Determinism: Ed25519 and RSASSA-PKCS1-v1_5 signatures are deterministic; ECDSA
//! uses RFC 6979 nonces hedged with 32 bytes from the injected generator, so a
//! seeded generator gives the same signature. RSASSA-PSS salts come from ring's
//! own system generator (ring takes no other), so RSA signatures differ from run
//! to run even under a seeded generator; their length does not.

use p256::ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use ring::{digest, rand::SystemRandom, signature as ring_sig};

use super::{
    asn1::{self, Algorithm, Scheme},
    ecp,
    keys::Inner,
    CryptoError, CryptoRng, PrivateKey, PublicKey,
};

/// RFC 7427 section 4 hash algorithms (SIGNATURE_HASH_ALGORITHMS values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigHash {
    /// SHA2-256 (2).
    Sha256,
    /// SHA2-384 (3).
    Sha384,
    /// SHA2-512 (4).
    Sha512,
    /// Identity (5), RFC 8420: the signature scheme hashes internally (Ed25519).
    Identity,
}

impl SigHash {
    /// Every hash we accept, as we announce them.
    pub const ALL: [Self; 4] = [Self::Sha256, Self::Sha384, Self::Sha512, Self::Identity];

    /// The hash for a SIGNATURE_HASH_ALGORITHMS value, if implemented.
    pub fn from_iana(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.iana() == id)
    }

    /// The SIGNATURE_HASH_ALGORITHMS value.
    pub fn iana(self) -> u16 {
        match self {
            Self::Sha256 => 2,
            Self::Sha384 => 3,
            Self::Sha512 => 4,
            Self::Identity => 5,
        }
    }

    fn digest(self, msg: &[u8]) -> Option<digest::Digest> {
        let alg = match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
            Self::Identity => return None,
        };
        Some(digest::digest(alg, msg))
    }
}

/// IKEv2 authentication methods (IANA IKEv2 Authentication Method values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// RSA Digital Signature (1), RFC 7296: PKCS#1 v1.5 with SHA-1.
    RsaSig,
    /// NULL Authentication (13), RFC 7619.
    Null,
    /// Digital Signature (14), RFC 7427.
    DigitalSignature,
}

impl AuthMethod {
    /// The method for an IANA value, if implemented.
    pub fn from_iana(id: u8) -> Option<Self> {
        [Self::RsaSig, Self::Null, Self::DigitalSignature]
            .into_iter()
            .find(|m| m.iana() == id)
    }

    /// The IANA Authentication Method value.
    pub fn iana(self) -> u8 {
        match self {
            Self::RsaSig => 1,
            Self::Null => 13,
            Self::DigitalSignature => 14,
        }
    }
}

/// Produces the AUTH payload's authentication data (what follows the method
/// octet and the three reserved octets).
///
/// For [`AuthMethod::DigitalSignature`] the hash is the first of our preference
/// found in `peer_hashes` ([`CryptoError::NoCommonHash`] if none fits the key).
/// [`AuthMethod::RsaSig`] and [`AuthMethod::Null`] fail with
/// [`CryptoError::UnsupportedAlgorithm`] (see the module docs).
pub fn sign_auth(
    key: &PrivateKey,
    method: AuthMethod,
    peer_hashes: &[SigHash],
    signed_octets: &[u8],
    rng: &mut dyn CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    match method {
        AuthMethod::DigitalSignature => {}
        AuthMethod::RsaSig if !matches!(key.inner(), Inner::Rsa(_)) => {
            return Err(CryptoError::UnsuitableKey)
        }
        AuthMethod::RsaSig | AuthMethod::Null => return Err(CryptoError::UnsupportedAlgorithm),
    }
    let (scheme, hash) = choose(key.inner(), peer_hashes)?;
    let signature = sign(key.inner(), hash, signed_octets, rng)?;
    let alg_id = asn1::encode(scheme, hash).ok_or(CryptoError::Internal)?;
    let alg_len = u8::try_from(alg_id.len()).map_err(|_| CryptoError::Internal)?;
    let mut out = Vec::with_capacity(1 + alg_id.len() + signature.len());
    out.push(alg_len);
    out.extend_from_slice(alg_id);
    out.extend_from_slice(&signature);
    Ok(out)
}

/// Our hash preference for a key type, and the scheme we sign with.
fn choose(key: &Inner, peer_hashes: &[SigHash]) -> Result<(Scheme, SigHash), CryptoError> {
    use SigHash::{Identity, Sha256, Sha384, Sha512};
    let (scheme, preference): (Scheme, &[SigHash]) = match key {
        Inner::Ed25519(_) => (Scheme::Ed25519, &[Identity]),
        Inner::EcdsaP256(_) => (Scheme::Ecdsa, &[Sha256, Sha384, Sha512]),
        Inner::EcdsaP384(_) => (Scheme::Ecdsa, &[Sha384, Sha256, Sha512]),
        Inner::Rsa(_) => (Scheme::RsaPss, &[Sha256, Sha384, Sha512]),
    };
    preference
        .iter()
        .find(|h| peer_hashes.contains(h))
        .map(|&h| (scheme, h))
        .ok_or(CryptoError::NoCommonHash)
}

fn sign(
    key: &Inner,
    hash: SigHash,
    msg: &[u8],
    mut rng: &mut dyn CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    match key {
        Inner::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
        Inner::EcdsaP256(k) => {
            let prehash = hash.digest(msg).ok_or(CryptoError::Internal)?;
            let sig: p256::ecdsa::Signature = k
                .sign_prehash_with_rng(&mut rng, prehash.as_ref())
                .map_err(|_| CryptoError::Internal)?;
            Ok(sig.to_der().as_bytes().to_vec())
        }
        Inner::EcdsaP384(k) => {
            let prehash = hash.digest(msg).ok_or(CryptoError::Internal)?;
            let sig: p384::ecdsa::Signature = k
                .sign_prehash_with_rng(&mut rng, prehash.as_ref())
                .map_err(|_| CryptoError::Internal)?;
            Ok(sig.to_der().as_bytes().to_vec())
        }
        Inner::Rsa(k) => {
            let padding: &'static dyn ring_sig::RsaEncoding = match hash {
                SigHash::Sha256 => &ring_sig::RSA_PSS_SHA256,
                SigHash::Sha384 => &ring_sig::RSA_PSS_SHA384,
                SigHash::Sha512 => &ring_sig::RSA_PSS_SHA512,
                SigHash::Identity => return Err(CryptoError::NoCommonHash),
            };
            let mut sig = vec![0u8; k.public().modulus_len()];
            k.sign(padding, &SystemRandom::new(), msg, &mut sig)
                .map_err(|_| CryptoError::Internal)?;
            Ok(sig)
        }
    }
}

/// Verifies the peer's AUTH data against its validated public key.
///
/// Strict: the AlgorithmIdentifier must be byte for byte one of the RFC 7427
/// appendix A encodings (a fixed table) and fit the key type, the signature
/// length must fit the key, and ECDSA signatures must be canonical DER. Peer faults come back as
/// [`CryptoError::MalformedSignature`], [`CryptoError::AlgorithmKeyMismatch`],
/// [`CryptoError::RefusedSignatureAlgorithm`] or [`CryptoError::BadSignature`];
/// a key that is not well formed as [`CryptoError::InvalidPublicKey`].
pub fn verify_auth(
    key: &PublicKey,
    method: AuthMethod,
    auth_data: &[u8],
    signed_octets: &[u8],
) -> Result<(), CryptoError> {
    key.validate()?;
    match method {
        AuthMethod::DigitalSignature => verify_digital_signature(key, auth_data, signed_octets),
        AuthMethod::RsaSig => verify_rsa_sha1(key, auth_data, signed_octets),
        AuthMethod::Null => Err(CryptoError::UnsupportedAlgorithm),
    }
}

fn verify_digital_signature(key: &PublicKey, data: &[u8], msg: &[u8]) -> Result<(), CryptoError> {
    let (alg_id, signature) = asn1::split_auth_data(data).ok_or(CryptoError::MalformedSignature)?;
    let (scheme, hash) = match asn1::lookup(alg_id) {
        Some(Algorithm::Supported(scheme, hash)) => (scheme, hash),
        Some(Algorithm::Refused) => return Err(CryptoError::RefusedSignatureAlgorithm),
        None => return Err(CryptoError::MalformedSignature),
    };
    match (key, scheme) {
        (PublicKey::Rsa { n, e }, Scheme::RsaPkcs1 | Scheme::RsaPss) => {
            verify_rsa(n, e, rsa_params(scheme, hash)?, signature, msg)
        }
        (PublicKey::EcdsaP256(xy), Scheme::Ecdsa) => verify_p256(xy, hash, signature, msg),
        (PublicKey::EcdsaP384(xy), Scheme::Ecdsa) => verify_p384(xy, hash, signature, msg),
        (PublicKey::Ed25519(pk), Scheme::Ed25519) => verify_ed25519(pk, signature, msg),
        _ => Err(CryptoError::AlgorithmKeyMismatch),
    }
}

fn rsa_params(
    scheme: Scheme,
    hash: SigHash,
) -> Result<&'static ring_sig::RsaParameters, CryptoError> {
    Ok(match (scheme, hash) {
        (Scheme::RsaPkcs1, SigHash::Sha256) => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        (Scheme::RsaPkcs1, SigHash::Sha384) => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        (Scheme::RsaPkcs1, SigHash::Sha512) => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        (Scheme::RsaPss, SigHash::Sha256) => &ring_sig::RSA_PSS_2048_8192_SHA256,
        (Scheme::RsaPss, SigHash::Sha384) => &ring_sig::RSA_PSS_2048_8192_SHA384,
        (Scheme::RsaPss, SigHash::Sha512) => &ring_sig::RSA_PSS_2048_8192_SHA512,
        _ => return Err(CryptoError::Internal),
    })
}

/// RFC 7296 method 1: RSASSA-PKCS1-v1_5 with SHA-1, the signature alone.
fn verify_rsa_sha1(key: &PublicKey, signature: &[u8], msg: &[u8]) -> Result<(), CryptoError> {
    let PublicKey::Rsa { n, e } = key else {
        return Err(CryptoError::AlgorithmKeyMismatch);
    };
    let params = &ring_sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY;
    verify_rsa(n, e, params, signature, msg)
}

/// The signature must be exactly as long as the modulus (RFC 8017 section 8.2.2).
fn verify_rsa(
    n: &[u8],
    e: &[u8],
    params: &'static ring_sig::RsaParameters,
    signature: &[u8],
    msg: &[u8],
) -> Result<(), CryptoError> {
    if signature.len() != n.len() {
        return Err(CryptoError::MalformedSignature);
    }
    ring_sig::RsaPublicKeyComponents { n, e }
        .verify(params, msg, signature)
        .map_err(|_| CryptoError::BadSignature)
}

fn verify_ed25519(pk: &[u8; 32], signature: &[u8], msg: &[u8]) -> Result<(), CryptoError> {
    if signature.len() != 64 {
        return Err(CryptoError::MalformedSignature);
    }
    ring_sig::UnparsedPublicKey::new(&ring_sig::ED25519, pk)
        .verify(msg, signature)
        .map_err(|_| CryptoError::BadSignature)
}

/// SEC1 uncompressed point from x || y, as ring wants it.
fn sec1(xy: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + xy.len());
    point.push(0x04);
    point.extend_from_slice(xy);
    point
}

fn verify_p256(xy: &[u8], hash: SigHash, der: &[u8], msg: &[u8]) -> Result<(), CryptoError> {
    let (r, s) = asn1::parse_ecdsa_sig(der, 32).ok_or(CryptoError::MalformedSignature)?;
    let ring_alg = match hash {
        SigHash::Sha256 => &ring_sig::ECDSA_P256_SHA256_ASN1,
        SigHash::Sha384 => &ring_sig::ECDSA_P256_SHA384_ASN1,
        // ring has no P-256 with SHA-512: verify the prehash with the p256 crate.
        SigHash::Sha512 => {
            let key =
                ecp::decode_point::<p256::NistP256>(xy).ok_or(CryptoError::InvalidPublicKey)?;
            let sig = p256::ecdsa::Signature::from_scalars(pad::<32>(r)?, pad::<32>(s)?)
                .map_err(|_| CryptoError::BadSignature)?;
            let prehash = digest::digest(&digest::SHA512, msg);
            return p256::ecdsa::VerifyingKey::from(key)
                .verify_prehash(prehash.as_ref(), &sig)
                .map_err(|_| CryptoError::BadSignature);
        }
        SigHash::Identity => return Err(CryptoError::MalformedSignature),
    };
    ring_sig::UnparsedPublicKey::new(ring_alg, sec1(xy))
        .verify(msg, der)
        .map_err(|_| CryptoError::BadSignature)
}

fn verify_p384(xy: &[u8], hash: SigHash, der: &[u8], msg: &[u8]) -> Result<(), CryptoError> {
    let (r, s) = asn1::parse_ecdsa_sig(der, 48).ok_or(CryptoError::MalformedSignature)?;
    let ring_alg = match hash {
        SigHash::Sha256 => &ring_sig::ECDSA_P384_SHA256_ASN1,
        SigHash::Sha384 => &ring_sig::ECDSA_P384_SHA384_ASN1,
        // ring has no P-384 with SHA-512: verify the prehash with the p384 crate.
        SigHash::Sha512 => {
            let key =
                ecp::decode_point::<p384::NistP384>(xy).ok_or(CryptoError::InvalidPublicKey)?;
            let sig = p384::ecdsa::Signature::from_scalars(pad::<48>(r)?, pad::<48>(s)?)
                .map_err(|_| CryptoError::BadSignature)?;
            let prehash = digest::digest(&digest::SHA512, msg);
            return p384::ecdsa::VerifyingKey::from(key)
                .verify_prehash(prehash.as_ref(), &sig)
                .map_err(|_| CryptoError::BadSignature);
        }
        SigHash::Identity => return Err(CryptoError::MalformedSignature),
    };
    ring_sig::UnparsedPublicKey::new(ring_alg, sec1(xy))
        .verify(msg, der)
        .map_err(|_| CryptoError::BadSignature)
}

/// Left-pads a big-endian integer of at most N bytes to exactly N bytes.
fn pad<const N: usize>(value: &[u8]) -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    let start = N
        .checked_sub(value.len())
        .ok_or(CryptoError::MalformedSignature)?;
    out.get_mut(start..)
        .ok_or(CryptoError::MalformedSignature)?
        .copy_from_slice(value);
    Ok(out)
}
