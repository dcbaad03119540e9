//! The error type of the crypto module.
//!
//! Variants are split the way rustls splits its errors: the first group means the
//! peer sent something wrong (drop the message or fail the exchange and tell the
//! peer), the second that our side cannot do what was asked (configuration, local
//! keys, negotiation). [`CryptoError::is_peer_fault`] tells them apart.

/// Why a cryptographic operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    // ---- the peer's fault ----
    /// The peer's key exchange value has the wrong length, is not on the curve, is
    /// out of range (MODP: not 1 < y < p-1), or gives a non-contributory secret.
    #[error("peer's key exchange value is invalid for its group")]
    InvalidPeerPublicKey,
    /// An SK payload failed its ICV or AEAD tag, has bad padding, or is truncated.
    #[error("SK payload did not decrypt: bad ICV, tag, padding or length")]
    DecryptFailed,
    /// The AUTH signature is well formed but does not verify with the peer's key.
    #[error("AUTH signature does not verify")]
    BadSignature,
    /// The AUTH data is malformed: unknown or non-canonical AlgorithmIdentifier,
    /// inconsistent ASN.1 length byte, trailing data, or a signature length that
    /// cannot fit the key.
    #[error("AUTH data is malformed")]
    MalformedSignature,
    /// The AUTH data names a signature algorithm that does not fit the peer's key
    /// type (e.g. ECDSA with an RSA key).
    #[error("AUTH signature algorithm does not match the peer's key type")]
    AlgorithmKeyMismatch,
    /// The AUTH data names a signature algorithm we refuse: SHA-1 based (RFC 7427
    /// appendix A.1.1, A.3.1, A.4.1, A.4.2) or DSA (RFC 8247 section 3.3).
    #[error("AUTH signature uses a refused algorithm (SHA-1 or DSA)")]
    RefusedSignatureAlgorithm,
    /// The peer's public key (as published in DNS) is malformed or too weak.
    #[error("peer's public key is malformed or too weak")]
    InvalidPublicKey,

    // ---- our side: configuration, local keys, negotiation ----
    /// The algorithm, group or combination is not implemented here.
    #[error("algorithm not supported")]
    UnsupportedAlgorithm,
    /// None of the signature hashes the peer announced can be used with our key.
    #[error("no signature hash in common with the peer")]
    NoCommonHash,
    /// A key given to a constructor has the wrong length for its algorithm.
    #[error("key has the wrong length for its algorithm")]
    BadKeyLength,
    /// Our private key cannot be used for the requested authentication method.
    #[error("our private key cannot be used for this authentication method")]
    UnsuitableKey,
    /// A private key file could not be parsed or names an unsupported algorithm.
    #[error("private key could not be parsed or is not supported")]
    InvalidPrivateKey,
    /// prf+ was asked for more than 255 blocks (RFC 7296 section 2.13).
    #[error("prf+ output length exceeds 255 blocks")]
    OutputTooLong,
    /// The injected random number generator failed.
    #[error("random number generator failed")]
    RngFailure,
    /// A primitive failed in a way that should not happen (a bug or a broken library).
    #[error("internal cryptographic failure")]
    Internal,
}

impl CryptoError {
    /// True when the peer caused the failure (malformed or forged input).
    pub fn is_peer_fault(self) -> bool {
        matches!(
            self,
            Self::InvalidPeerPublicKey
                | Self::DecryptFailed
                | Self::BadSignature
                | Self::MalformedSignature
                | Self::AlgorithmKeyMismatch
                | Self::RefusedSignatureAlgorithm
                | Self::InvalidPublicKey
        )
    }
}
