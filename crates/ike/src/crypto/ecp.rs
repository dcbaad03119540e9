//! ECP groups 19 and 20 (RFC 5903) on the RustCrypto p256/p384 crates.
//!
//! RFC 5903 section 7: the public value is x || y, each coordinate the field
//! size in big-endian order (no SEC1 0x04 tag), and the shared secret is the x
//! coordinate of the common point. The peer's value is checked to be a point of
//! the curve other than the identity before use (SEC1 decoding does both).

use p256::elliptic_curve::{
    self,
    sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint},
    AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey, SecretKey,
};
use zeroize::Zeroizing;

use super::{CryptoError, CryptoRng};

/// How many times generation draws again when the bytes are not a valid scalar.
/// For P-256 one draw fails with probability below 2^-32, for P-384 below 2^-190.
const MAX_DRAWS: usize = 8;

/// SEC1 tag of an uncompressed point.
const UNCOMPRESSED: u8 = 0x04;

/// Draws a private scalar 0 < k < n as field-size big-endian bytes from `rng`.
pub(super) fn generate<C>(rng: &mut dyn CryptoRng) -> Result<SecretKey<C>, CryptoError>
where
    C: CurveArithmetic,
{
    for _ in 0..MAX_DRAWS {
        let mut bytes = Zeroizing::new(FieldBytes::<C>::default());
        rng.try_fill_bytes(bytes.as_mut_slice())
            .map_err(|_| CryptoError::RngFailure)?;
        if let Ok(k) = SecretKey::<C>::from_bytes(&bytes) {
            return Ok(k);
        }
    }
    Err(CryptoError::RngFailure)
}

/// Our public value x || y (RFC 5903 section 7).
pub(super) fn public_value<C>(secret: &SecretKey<C>) -> Vec<u8>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let point = secret.public_key().to_encoded_point(false);
    point.as_bytes().get(1..).unwrap_or_default().to_vec()
}

/// Validates the peer's x || y and returns the x coordinate of the common point.
pub(super) fn agree<C>(
    secret: &SecretKey<C>,
    peer: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let peer_key = decode_point::<C>(peer).ok_or(CryptoError::InvalidPeerPublicKey)?;
    let shared =
        elliptic_curve::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer_key.as_affine());
    Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
}

/// Decodes x || y into a validated curve point (on the curve, not the identity).
pub(super) fn decode_point<C>(xy: &[u8]) -> Option<PublicKey<C>>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let field_len = FieldBytes::<C>::default().len();
    if xy.len() != 2 * field_len {
        return None;
    }
    let mut sec1 = Vec::with_capacity(1 + xy.len());
    sec1.push(UNCOMPRESSED);
    sec1.extend_from_slice(xy);
    PublicKey::<C>::from_sec1_bytes(&sec1).ok()
}
