//! AUTH payloads: the signed octets (RFC 7296 2.15), signatures (RFC 7427, RFC 7296 method 1)
//! and NULL authentication (RFC 7619).

use subtle::ConstantTimeEq;

use crate::config::LocalAuth;
use crate::crypto::{self, AuthMethod, CryptoRng, PrfAlg, PublicKey, SigHash};
use crate::error::{Error, LocalError, PeerError};
use crate::event::PeerAuth;
use crate::wire::{AuthMethodId, AuthPayload, Identity};

/// RFC 7296 2.15: the pad for shared-key style MACs, which NULL auth reuses.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// `RealMessage | NonceData (the peer's nonce) | prf(SK_p, ID')`, where ID' is the ID payload
/// body of the signer (2.15).
pub(crate) fn signed_octets(
    real_message: &[u8],
    peer_nonce: &[u8],
    prf: PrfAlg,
    sk_p: &[u8],
    id: &Identity,
) -> Vec<u8> {
    let mac = prf.prf(sk_p, &id.to_body());
    [real_message, peer_nonce, &mac].concat()
}

/// RFC 7619 3: NULL auth is computed like shared-key auth (2.15) with SK_pi or SK_pr standing in
/// for the shared secret: prf(prf(SK_p, "Key Pad for IKEv2"), signed octets).
fn null_mac(prf: PrfAlg, sk_p: &[u8], octets: &[u8]) -> Vec<u8> {
    let key = prf.prf(sk_p, KEY_PAD);
    prf.prf(&key, octets).to_vec()
}

/// Builds our AUTH payload. Method 14 when the peer announced hash algorithms (RFC 7427 4),
/// method 1 for RSA keys with peers that did not; `sk_p` is our own SK_pi or SK_pr.
pub(crate) fn build(
    local: &LocalAuth,
    peer_hashes: &[SigHash],
    octets: &[u8],
    prf: PrfAlg,
    sk_p: &[u8],
    rng: &mut dyn CryptoRng,
) -> Result<AuthPayload, Error> {
    let key = match local {
        LocalAuth::Null => {
            return Ok(AuthPayload {
                method: AuthMethodId::NULL,
                data: null_mac(prf, sk_p, octets),
            });
        }
        LocalAuth::Key(key) => key,
    };
    let (method, id) = if !peer_hashes.is_empty() {
        (
            AuthMethod::DigitalSignature,
            AuthMethodId::DIGITAL_SIGNATURE,
        )
    } else if matches!(key.public_key(), PublicKey::Rsa { .. }) {
        (AuthMethod::RsaSig, AuthMethodId::RSA_SIG)
    } else {
        return Err(LocalError::Config("peer lacks RFC 7427 and our key is not RSA").into());
    };
    let data = crypto::sign_auth(key, method, peer_hashes, octets, rng)?;
    Ok(AuthPayload { method: id, data })
}

/// Verifies a NULL-auth AUTH payload; `sk_p` is the peer's SK_pi or SK_pr.
pub(crate) fn verify_null(
    auth: &AuthPayload,
    octets: &[u8],
    prf: PrfAlg,
    sk_p: &[u8],
    accept: bool,
) -> Result<PeerAuth, Error> {
    if !accept {
        return Err(PeerError::AuthMethodRefused.into());
    }
    let expected = null_mac(prf, sk_p, octets);
    if bool::from(expected.ct_eq(&auth.data)) {
        Ok(PeerAuth::Null)
    } else {
        Err(PeerError::AuthenticationFailed.into())
    }
}

/// Verifies a signature AUTH payload with any of the keys the agent supplied for the peer.
pub(crate) fn verify_signature(
    auth: &AuthPayload,
    keys: &[PublicKey],
    octets: &[u8],
) -> Result<PeerAuth, Error> {
    let method = match auth.method {
        AuthMethodId::DIGITAL_SIGNATURE => AuthMethod::DigitalSignature,
        AuthMethodId::RSA_SIG => AuthMethod::RsaSig,
        _ => return Err(PeerError::AuthMethodRefused.into()),
    };
    let mut last = Error::Peer(PeerError::AuthenticationFailed);
    for key in keys {
        match crypto::verify_auth(key, method, &auth.data, octets) {
            Ok(()) => return Ok(PeerAuth::Signature),
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// The hash algorithms we announce in SIGNATURE_HASH_ALGORITHMS (RFC 7427 4, RFC 8420).
pub(crate) const OUR_HASHES: [u16; 4] = [2, 3, 4, 5];

/// Parses the peer's announced hash list, keeping those we know.
pub(crate) fn parse_hashes(values: &[u16]) -> Vec<SigHash> {
    values
        .iter()
        .filter_map(|v| match v {
            2 => Some(SigHash::Sha256),
            3 => Some(SigHash::Sha384),
            4 => Some(SigHash::Sha512),
            5 => Some(SigHash::Identity),
            _ => None,
        })
        .collect()
}
