//! MODP group 14 (2048-bit MODP, RFC 3526 section 3), constant time with crypto-bigint.
//!
//! The private exponent is 256 bits, inside RFC 3526 section 8's 220-320 bit range
//! for this group's strength. Exponentiation is crypto-bigint's fixed-window
//! Montgomery ladder over all 256 exponent bits, so its timing does not depend
//! on the exponent's value. The peer's value must satisfy 1 < y < p-1 (NIST SP
//! 800-56A partial validation; it excludes the order-1 and order-2 elements),
//! and is RFC 7296 section 3.4's fixed 256-byte big-endian encoding.

use std::sync::OnceLock;

use crypto_bigint::{
    modular::{MontyForm, MontyParams},
    Odd, U2048, U256,
};
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, CryptoRng};

/// Length of a public value and of the shared secret: the modulus length.
pub(super) const PUBLIC_LEN: usize = 256;

/// Private exponent length in bytes (256 bits).
const EXPONENT_LEN: usize = 32;

/// The 2048-bit MODP prime, p = 2^2048 - 2^1984 - 1 + 2^64 * ([2^1918 pi] + 124476).
const PRIME: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The generator, 2.
const GENERATOR: U2048 = U2048::from_u8(2);

/// A private exponent; zeroized on drop.
pub(super) struct Exponent(Zeroizing<[u8; EXPONENT_LEN]>);

fn params() -> Result<MontyParams<{ U2048::LIMBS }>, CryptoError> {
    static PARAMS: OnceLock<Option<MontyParams<{ U2048::LIMBS }>>> = OnceLock::new();
    PARAMS
        .get_or_init(|| Option::from(Odd::new(PRIME)).map(MontyParams::new))
        .ok_or(CryptoError::Internal)
}

/// Draws a 256-bit exponent x and returns it with g^x mod p (256 bytes).
pub(super) fn generate(rng: &mut dyn CryptoRng) -> Result<(Exponent, Vec<u8>), CryptoError> {
    let mut x = Zeroizing::new([0u8; EXPONENT_LEN]);
    rng.try_fill_bytes(x.as_mut())
        .map_err(|_| CryptoError::RngFailure)?;
    let x = Exponent(x);
    let public = pow(&GENERATOR, &x)?;
    // A valid exponent gives a valid public value except for x in {0, 1, (p-1)/2...}
    // with negligible probability; refuse rather than send a degenerate value.
    if !in_open_range(&U2048::from_be_slice(public.as_slice())) {
        return Err(CryptoError::RngFailure);
    }
    Ok((x, public.to_vec()))
}

/// Validates the peer's y and returns y^x mod p as 256 big-endian bytes.
pub(super) fn agree(x: &Exponent, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if peer.len() != PUBLIC_LEN {
        return Err(CryptoError::InvalidPeerPublicKey);
    }
    let y = U2048::from_be_slice(peer);
    if !in_open_range(&y) {
        return Err(CryptoError::InvalidPeerPublicKey);
    }
    let shared = pow(&y, x)?;
    Ok(Zeroizing::new(shared.to_vec()))
}

/// 1 < y < p-1. Public values only, so variable time is fine.
fn in_open_range(y: &U2048) -> bool {
    let p_minus_1 = PRIME.wrapping_sub(&U2048::ONE);
    *y > U2048::ONE && *y < p_minus_1
}

/// base^x mod p in constant time over the exponent's 256 bits.
fn pow(base: &U2048, x: &Exponent) -> Result<Zeroizing<[u8; PUBLIC_LEN]>, CryptoError> {
    let params = params()?;
    let mut exponent = U256::from_be_slice(x.0.as_slice());
    let mut result = MontyForm::new(base, params).pow_bounded_exp(&exponent, U256::BITS);
    let mut value = result.retrieve();
    let bytes = Zeroizing::new(value.to_be_bytes());
    exponent.zeroize();
    value.zeroize();
    result.zeroize();
    Ok(bytes)
}
