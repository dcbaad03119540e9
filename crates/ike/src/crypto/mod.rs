//! Cryptographic primitives for IKEv2, behind the contract the engine uses.
//!
//! Everything here is synchronous and free of I/O and clocks. Randomness comes
//! in through [`CryptoRng`], so a seeded generator makes key shares reproducible.
//! Secrets live in zeroizing containers.
//!
//! - Key exchange (RFC 7296 section 3.4): [`DhGroup`], [`KeyShare`], [`SharedSecret`].

mod asn1;
mod auth;
mod dh;
mod ecp;
mod error;
mod keys;
mod modp;
mod prf;
mod sk;
mod sk_aead;
mod sk_cbc;
mod transforms;

pub use auth::{sign_auth, verify_auth, AuthMethod, SigHash};
pub use dh::{DhGroup, KeyShare, SharedSecret};
pub use error::CryptoError;
pub use keys::{PrivateKey, PublicKey};
pub use prf::PrfAlg;
pub use sk::SkCipher;
pub use transforms::{EncrAlg, IntegAlg};

/// Injected randomness: the engine owns a `Box<dyn CryptoRng>`; tests pass a
/// seeded ChaCha generator. Implemented for every cryptographically secure
/// `rand_core` generator.
pub trait CryptoRng: rand_core::RngCore + rand_core::CryptoRng {}

impl<T: rand_core::RngCore + rand_core::CryptoRng + ?Sized> CryptoRng for T {}
