//! Why an exchange or an SA failed: the peer's fault kept apart from ours (rustls style).

use crate::crypto::CryptoError;
use crate::wire::{NotifyType, WireError};

/// Something the peer did wrong or refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    #[error("malformed message: {0}")]
    Malformed(#[from] WireError),
    #[error("peer's message did not decrypt or verify")]
    Integrity,
    #[error("missing {0} payload")]
    MissingPayload(&'static str),
    #[error("peer chose a proposal we did not offer")]
    BadProposal,
    #[error("peer's key exchange value is invalid")]
    BadKeyExchange,
    #[error("peer's AUTH does not verify with its key")]
    AuthenticationFailed,
    #[error("peer authenticated with a method our policy does not accept")]
    AuthMethodRefused,
    #[error("peer identity was refused: {0}")]
    IdentityRefused(String),
    #[error("peer answered with error notification {0:?}")]
    Notified(NotifyType),
    #[error("peer's traffic selectors are unacceptable")]
    TrafficSelectors,
    #[error("peer violated the protocol: {0}")]
    Protocol(&'static str),
}

/// Something failed on our side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    #[error("crypto failure: {0}")]
    Crypto(CryptoError),
    #[error("no proposal in common with the peer")]
    NoProposalChosen,
    #[error("peer did not answer after all retransmissions")]
    Timeout,
    #[error("configuration error: {0}")]
    Config(&'static str),
}

/// Why an SA failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("peer error: {0}")]
    Peer(#[from] PeerError),
    #[error("local error: {0}")]
    Local(#[from] LocalError),
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::InvalidPeerPublicKey => Self::Peer(PeerError::BadKeyExchange),
            CryptoError::DecryptFailed => Self::Peer(PeerError::Integrity),
            CryptoError::BadSignature
            | CryptoError::MalformedSignature
            | CryptoError::AlgorithmKeyMismatch
            | CryptoError::InvalidPublicKey
            // The peer signed with SHA-1 or DSA (RFC 8247 deprecates them): its fault, not ours.
            | CryptoError::RefusedSignatureAlgorithm => Self::Peer(PeerError::AuthenticationFailed),
            other => Self::Local(LocalError::Crypto(other)),
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Self::Peer(PeerError::Malformed(e))
    }
}

impl Error {
    /// The error notification to send to the peer about this failure, if any (RFC 7296 3.10.1).
    pub fn notify(&self) -> Option<NotifyType> {
        Some(match self {
            Self::Peer(PeerError::Malformed(w)) => w.answer().0,
            Self::Peer(PeerError::AuthenticationFailed)
            | Self::Peer(PeerError::AuthMethodRefused)
            | Self::Peer(PeerError::IdentityRefused(_)) => NotifyType::AUTHENTICATION_FAILED,
            Self::Peer(PeerError::BadProposal) | Self::Local(LocalError::NoProposalChosen) => {
                NotifyType::NO_PROPOSAL_CHOSEN
            }
            Self::Peer(PeerError::TrafficSelectors) => NotifyType::TS_UNACCEPTABLE,
            // A KE value that does not check is INVALID_SYNTAX too (draft-ietf-ipsecme-ikev2-
            // mlkem section 6 for ML-KEM encapsulation keys).
            Self::Peer(PeerError::MissingPayload(_))
            | Self::Peer(PeerError::Protocol(_))
            | Self::Peer(PeerError::BadKeyExchange) => NotifyType::INVALID_SYNTAX,
            _ => return None,
        })
    }
}
