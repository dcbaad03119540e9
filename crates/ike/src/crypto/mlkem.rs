//! ML-KEM (FIPS 203) as an IKEv2 key exchange method (draft-ietf-ipsecme-ikev2-mlkem,
//! RFC 9370 for its use as an additional key exchange), on libcrux-ml-kem.
//!
//! The initiator's KE data is the encapsulation key `ek`; the responder's is the ciphertext
//! `c` (draft-ietf-ipsecme-ikev2-mlkem section 3). The 32-byte shared secret `K` is what
//! SKEYSEED takes in place of g^ir.
//!
//! Randomness: key generation draws the 64 bytes `d || z` (FIPS 203 algorithm 19) and
//! encapsulation the 32 bytes `m` (algorithm 20) from the injected generator, so a seeded
//! generator gives the same keys and ciphertexts every time.

use libcrux_ml_kem::{mlkem1024, mlkem512, mlkem768, MlKemPrivateKey};
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, CryptoRng};

/// One of the three FIPS 203 parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    L512,
    L768,
    L1024,
}

impl Level {
    /// Length of the encapsulation key (the initiator's KE data).
    pub(super) fn ek_len(self) -> usize {
        match self {
            Self::L512 => 800,
            Self::L768 => 1184,
            Self::L1024 => 1568,
        }
    }

    /// Length of the ciphertext (the responder's KE data).
    pub(super) fn ct_len(self) -> usize {
        match self {
            Self::L512 => 768,
            Self::L768 => 1088,
            Self::L1024 => 1568,
        }
    }
}

/// Our decapsulation key, boxed (up to 3,168 bytes); wiped on drop (libcrux's key types do
/// not wipe themselves).
pub(super) enum DecapsKey {
    L512(Box<mlkem512::MlKem512PrivateKey>),
    L768(Box<mlkem768::MlKem768PrivateKey>),
    L1024(Box<mlkem1024::MlKem1024PrivateKey>),
}

fn wipe<const N: usize>(k: &mut MlKemPrivateKey<N>) {
    k[0..].zeroize();
}

impl Drop for DecapsKey {
    fn drop(&mut self) {
        match self {
            Self::L512(k) => wipe(k),
            Self::L768(k) => wipe(k),
            Self::L1024(k) => wipe(k),
        }
    }
}

fn random<const N: usize>(rng: &mut dyn CryptoRng) -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    rng.try_fill_bytes(bytes.as_mut())
        .map_err(|_| CryptoError::RngFailure)?;
    Ok(bytes)
}

/// ML-KEM.KeyGen (FIPS 203 algorithm 19): our decapsulation key and the encapsulation key.
pub(super) fn generate(
    level: Level,
    rng: &mut dyn CryptoRng,
) -> Result<(DecapsKey, Vec<u8>), CryptoError> {
    let seed = random::<64>(rng)?;
    Ok(match level {
        Level::L512 => {
            let (dk, ek) = mlkem512::generate_key_pair(*seed).into_parts();
            (DecapsKey::L512(Box::new(dk)), ek.as_slice().to_vec())
        }
        Level::L768 => {
            let (dk, ek) = mlkem768::generate_key_pair(*seed).into_parts();
            (DecapsKey::L768(Box::new(dk)), ek.as_slice().to_vec())
        }
        Level::L1024 => {
            let (dk, ek) = mlkem1024::generate_key_pair(*seed).into_parts();
            (DecapsKey::L1024(Box::new(dk)), ek.as_slice().to_vec())
        }
    })
}

/// ML-KEM.Encaps (FIPS 203 algorithm 20) to the peer's encapsulation key, after the input
/// check of FIPS 203 section 7.2 (length and modulus). Returns the ciphertext and `K`.
pub(super) fn encapsulate(
    level: Level,
    ek: &[u8],
    rng: &mut dyn CryptoRng,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
    let bad = |_| CryptoError::InvalidPeerPublicKey;
    let m = random::<32>(rng)?;
    let (c, k) = match level {
        Level::L512 => {
            let ek = mlkem512::MlKem512PublicKey::try_from(ek).map_err(bad)?;
            valid(mlkem512::validate_public_key(&ek))?;
            let (c, k) = mlkem512::encapsulate(&ek, *m);
            (c.as_ref().to_vec(), k)
        }
        Level::L768 => {
            let ek = mlkem768::MlKem768PublicKey::try_from(ek).map_err(bad)?;
            valid(mlkem768::validate_public_key(&ek))?;
            let (c, k) = mlkem768::encapsulate(&ek, *m);
            (c.as_ref().to_vec(), k)
        }
        Level::L1024 => {
            let ek = mlkem1024::MlKem1024PublicKey::try_from(ek).map_err(bad)?;
            valid(mlkem1024::validate_public_key(&ek))?;
            let (c, k) = mlkem1024::encapsulate(&ek, *m);
            (c.as_ref().to_vec(), k)
        }
    };
    let k = Zeroizing::new(k);
    Ok((c, Zeroizing::new(k.to_vec())))
}

fn valid(ok: bool) -> Result<(), CryptoError> {
    ok.then_some(()).ok_or(CryptoError::InvalidPeerPublicKey)
}

/// ML-KEM.Decaps (FIPS 203 algorithm 21). A ciphertext of the right length never fails: a
/// forged one yields the implicit-rejection key, so the handshake fails later at AUTH.
pub(super) fn decapsulate(dk: &DecapsKey, c: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let bad = |_| CryptoError::InvalidPeerPublicKey;
    let k = match dk {
        DecapsKey::L512(dk) => {
            mlkem512::decapsulate(dk, &mlkem512::MlKem512Ciphertext::try_from(c).map_err(bad)?)
        }
        DecapsKey::L768(dk) => {
            mlkem768::decapsulate(dk, &mlkem768::MlKem768Ciphertext::try_from(c).map_err(bad)?)
        }
        DecapsKey::L1024(dk) => mlkem1024::decapsulate(
            dk,
            &mlkem1024::MlKem1024Ciphertext::try_from(c).map_err(bad)?,
        ),
    };
    let k = Zeroizing::new(k);
    Ok(Zeroizing::new(k.to_vec()))
}

#[cfg(test)]
#[path = "mlkem_tests.rs"]
mod tests;
