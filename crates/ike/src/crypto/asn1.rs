//! The strict ASN.1 side of RFC 7427 authentication data.
//!
//! RFC 7427 section 3: the AUTH payload's authentication data is
//!
//! ```text
//! ASN.1 Length (1 octet) || AlgorithmIdentifier (DER) || Signature Value
//! ```
//!
//! We never parse a peer's AlgorithmIdentifier: we look its exact bytes up in a
//! fixed table of the DER encodings RFC 7427 appendix A lists (plus RFC 8420's
//! Ed25519 one and the SHA-384/512 variants of A.4.3 built the same way, which is
//! what Libreswan and strongSwan send). Anything else, including a different but
//! equivalent encoding, trailing bytes inside the length, or RSASSA-PSS parameters
//! other than MGF1 with the same hash and a salt as long as the hash, is refused.
//! Lax parsing here is how Libreswan's CVE-2026-50722 happened.
//!
//! ECDSA signature values are DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s
//! INTEGER }` (RFC 7427 section 3, RFC 3279 section 2.2.3), checked here for
//! canonical DER before any arithmetic.

use super::SigHash;

/// A `&'static [u8]` from a hex literal, decoded at compile time.
macro_rules! der {
    ($hex:expr) => {{
        const TEXT: &str = $hex;
        &hex::<{ TEXT.len() / 2 }>(TEXT)
    }};
}

/// The signature scheme an AlgorithmIdentifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 section 8.2).
    RsaPkcs1,
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
    RsaPss,
    /// ECDSA with a DER Ecdsa-Sig-Value.
    Ecdsa,
    /// Ed25519 (RFC 8420), hash Identity.
    Ed25519,
}

/// What an AlgorithmIdentifier in the table means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// A scheme and hash we verify and sign.
    Supported(Scheme, SigHash),
    /// Known, but refused: SHA-1 based or DSA (RFC 8247 section 3.3).
    Refused,
}

// RFC 7427 A.1: sha*WithRSAEncryption, NULL parameters.
const RSA_PKCS1_SHA1: &[u8] = der!("300d06092a864886f70d0101050500");
const RSA_PKCS1_SHA256: &[u8] = der!("300d06092a864886f70d01010b0500");
const RSA_PKCS1_SHA384: &[u8] = der!("300d06092a864886f70d01010c0500");
const RSA_PKCS1_SHA512: &[u8] = der!("300d06092a864886f70d01010d0500");
// RFC 7427 A.2: DSA.
const DSA_SHA1: &[u8] = der!("300906072a8648ce380403");
const DSA_SHA256: &[u8] = der!("300b0609608648016503040302");
// RFC 7427 A.3: ecdsa-with-*, no parameters.
const ECDSA_SHA1: &[u8] = der!("300906072a8648ce3d0401");
const ECDSA_SHA256: &[u8] = der!("300a06082a8648ce3d040302");
const ECDSA_SHA384: &[u8] = der!("300a06082a8648ce3d040303");
const ECDSA_SHA512: &[u8] = der!("300a06082a8648ce3d040304");
// RFC 7427 A.4.1 and A.4.2: RSASSA-PSS with empty and with default (SHA-1) parameters.
const RSA_PSS_EMPTY: &[u8] = der!("300b06092a864886f70d01010a");
const RSA_PSS_DEFAULT: &[u8] = der!("300d06092a864886f70d01010a3000");
// RFC 7427 A.4.3: RSASSA-PSS, hashAlgorithm [0] and MGF1 [1] with the same SHA-2 hash
// (NULL parameters), saltLength [2] = hash length; the same layout for 384 and 512.
const RSA_PSS_SHA256: &[u8] = der!(concat!(
    "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a",
    "06092a864886f70d010108300d06096086480165030402010500a203020120"
));
const RSA_PSS_SHA384: &[u8] = der!(concat!(
    "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a",
    "06092a864886f70d010108300d06096086480165030402020500a203020130"
));
const RSA_PSS_SHA512: &[u8] = der!(concat!(
    "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a",
    "06092a864886f70d010108300d06096086480165030402030500a203020140"
));
// RFC 8420 section 2 / RFC 8410 section 3: id-Ed25519, parameters absent.
const ED25519: &[u8] = der!("300506032b6570");

/// Every AlgorithmIdentifier we recognise, byte for byte.
const TABLE: &[(&[u8], Algorithm)] = &[
    (
        RSA_PKCS1_SHA256,
        Algorithm::Supported(Scheme::RsaPkcs1, SigHash::Sha256),
    ),
    (
        RSA_PKCS1_SHA384,
        Algorithm::Supported(Scheme::RsaPkcs1, SigHash::Sha384),
    ),
    (
        RSA_PKCS1_SHA512,
        Algorithm::Supported(Scheme::RsaPkcs1, SigHash::Sha512),
    ),
    (
        RSA_PSS_SHA256,
        Algorithm::Supported(Scheme::RsaPss, SigHash::Sha256),
    ),
    (
        RSA_PSS_SHA384,
        Algorithm::Supported(Scheme::RsaPss, SigHash::Sha384),
    ),
    (
        RSA_PSS_SHA512,
        Algorithm::Supported(Scheme::RsaPss, SigHash::Sha512),
    ),
    (
        ECDSA_SHA256,
        Algorithm::Supported(Scheme::Ecdsa, SigHash::Sha256),
    ),
    (
        ECDSA_SHA384,
        Algorithm::Supported(Scheme::Ecdsa, SigHash::Sha384),
    ),
    (
        ECDSA_SHA512,
        Algorithm::Supported(Scheme::Ecdsa, SigHash::Sha512),
    ),
    (
        ED25519,
        Algorithm::Supported(Scheme::Ed25519, SigHash::Identity),
    ),
    (RSA_PKCS1_SHA1, Algorithm::Refused),
    (RSA_PSS_EMPTY, Algorithm::Refused),
    (RSA_PSS_DEFAULT, Algorithm::Refused),
    (DSA_SHA1, Algorithm::Refused),
    (DSA_SHA256, Algorithm::Refused),
    (ECDSA_SHA1, Algorithm::Refused),
];

/// Looks up an AlgorithmIdentifier by its exact DER bytes.
pub(super) fn lookup(der: &[u8]) -> Option<Algorithm> {
    TABLE
        .iter()
        .find(|(blob, _)| *blob == der)
        .map(|(_, alg)| *alg)
}

/// The exact DER we send for a scheme and hash, if we sign with it.
pub(super) fn encode(scheme: Scheme, hash: SigHash) -> Option<&'static [u8]> {
    let wanted = Algorithm::Supported(scheme, hash);
    TABLE
        .iter()
        .find(|(_, alg)| *alg == wanted)
        .map(|(blob, _)| *blob)
}

/// Splits RFC 7427 authentication data into AlgorithmIdentifier and signature.
/// The length octet must cover exactly one DER element; both parts must be non-empty.
pub(super) fn split_auth_data(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = data.split_first()?;
    let (alg_id, signature) = rest.split_at_checked(usize::from(len))?;
    (!alg_id.is_empty() && !signature.is_empty()).then_some((alg_id, signature))
}

/// Checks that `der` is a canonical DER Ecdsa-Sig-Value whose integers fit a
/// field of `field_len` bytes, and returns r and s without leading zeros.
pub(super) fn parse_ecdsa_sig(der: &[u8], field_len: usize) -> Option<(&[u8], &[u8])> {
    let (body, rest) = read_tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, body) = read_tlv(body, 0x02)?;
    let (s, body) = read_tlv(body, 0x02)?;
    if !body.is_empty() {
        return None;
    }
    Some((
        positive_integer(r, field_len)?,
        positive_integer(s, field_len)?,
    ))
}

/// Reads one DER element with `tag`; returns its contents and what follows.
/// Only short-form lengths: every element here is under 128 bytes, and DER
/// requires the short form then.
fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if t != tag || len >= 0x80 {
        return None;
    }
    rest.split_at_checked(usize::from(len))
}

/// A DER INTEGER's contents as a positive, minimally encoded, non-zero value of
/// at most `field_len` bytes; returns it without the sign octet.
fn positive_integer(bytes: &[u8], field_len: usize) -> Option<&[u8]> {
    let (&first, rest) = bytes.split_first()?;
    let value = match (first, rest.first()) {
        (0x00, Some(&next)) if next >= 0x80 => rest,
        (0x00, _) => return None, // zero, or a redundant leading zero
        (b, _) if b >= 0x80 => return None, // negative
        _ => bytes,
    };
    (value.len() <= field_len).then_some(value)
}

/// Decodes a hex literal at compile time (a bad literal fails the build).
#[allow(clippy::indexing_slicing, clippy::panic)]
const fn hex<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == 2 * N, "hex literal has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = nibble(bytes[2 * i]) << 4 | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

#[allow(clippy::panic)]
const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}
