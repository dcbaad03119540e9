//! Cryptographic primitives for IKEv2, behind the contract the engine uses.
//!
//! # Contract
//!
//! Everything here is synchronous, with no I/O, threads or clocks. Randomness
//! comes in through [`CryptoRng`]: key shares, IVs and ECDSA nonce hedging draw
//! only from the generator passed in, so a seeded generator reproduces them (the
//! one exception, RSASSA-PSS salts drawn by ring, is documented in [`sign_auth`]).
//! Secret values live in zeroizing containers ([`zeroize::Zeroizing`] or types
//! that wipe themselves on drop); key schedules held inside ring (AEAD, HMAC,
//! Ed25519 and RSA key pairs) are not wiped, a limitation of ring.
//!
//! Input from the peer never panics: every length is checked, and failures come
//! back as [`CryptoError`], whose [`CryptoError::is_peer_fault`] separates the
//! peer's garbage from our own configuration problems.
//!
//! # Map
//!
//! - Key exchange, RFC 7296 section 3.4 ([`DhGroup`], [`KeyShare`], [`SharedSecret`]):
//!   Curve25519 (RFC 8031, x25519-dalek), ECP P-256/P-384 (RFC 5903, p256/p384
//!   crates), MODP-2048 (RFC 3526, constant-time crypto-bigint), and ML-KEM-512/768/1024
//!   (FIPS 203, libcrux-ml-kem; a KEM, see [`KeyShare::respond`]). The KE payload data
//!   is [`KeyShare::public`]; the peer's value is validated by [`KeyShare::agree`].
//! - PRF and prf+, RFC 7296 sections 2.13-2.14 and RFC 4868 ([`PrfAlg`]), on ring.
//! - SK payload protection, RFC 7296 section 3.14 ([`SkCipher`], [`EncrAlg`],
//!   [`IntegAlg`]): AES-GCM-16 (RFC 5282) and ChaCha20-Poly1305 (RFC 7634) on ring,
//!   AES-CBC with HMAC-SHA2-256-128 (RFC 3602, RFC 4868) on the aes/cbc crates.
//!   The same descriptors give ESP key lengths for child SAs (RFC 7296 section 2.17).
//! - Authentication, RFC 7296 section 2.15 and RFC 7427 ([`sign_auth`],
//!   [`verify_auth`], [`PublicKey`], [`PrivateKey`], [`SigHash`], [`AuthMethod`]):
//!   Ed25519 (RFC 8420), ECDSA P-256/P-384, RSA-PSS and PKCS#1 v1.5; strict
//!   AlgorithmIdentifier matching against the RFC 7427 appendix A encodings.
//! - [`floor`]: the crypto one side of a handshake must do, for benchmarks that
//!   report the engine's cost as a ratio to it.
//!
//! # Handshake floor (for the engine's benchmark)
//!
//! One side of IKE_SA_INIT + IKE_AUTH with one child SA costs at least: one
//! [`KeyShare::generate`] + [`KeyShare::agree`]; SKEYSEED ([`PrfAlg::prf`]) and one
//! [`PrfAlg::prf_plus`] for the seven SK keys; two [`SkCipher::new`]; one
//! [`SkCipher::seal`] and one [`SkCipher::open`] of an IKE_AUTH message; two
//! [`PrfAlg::prf`] for the signed octets' prf(SK_p, ID'); one [`sign_auth`] and one
//! [`verify_auth`] (or two NULL-auth MACs); one [`PrfAlg::prf_plus`] for KEYMAT.
//! [`floor::HandshakeFloor::run`] does exactly that list; time it in the same
//! benchmark run as the handshake and report handshake / floor.

mod asn1;
mod auth;
mod dh;
mod ecp;
mod error;
pub mod floor;
mod keys;
mod mlkem;
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
