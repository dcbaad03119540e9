#![no_main]
//! The peer's ML-KEM key exchange data (an encapsulation key to a responder, a ciphertext to an
//! initiator; RFC 9370 IKE_INTERMEDIATE) never panics: wrong lengths and unreduced keys are
//! errors (FIPS 203 7.2), any ciphertext of the right length decapsulates (implicit rejection).

use oe_ike::crypto::{DhGroup, KeyShare};
use oe_ike::rand_core::{impls, CryptoRng, Error, RngCore};

/// A counter: enough randomness for a deterministic target.
struct Counter(u64);

impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (self.0 >> 56) as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Counter {}

/// `data` repeated or cut to `len` bytes: random inputs rarely have an ML-KEM length, and the
/// fuzzer grows them slowly, so without this few runs would reach the ML-KEM code itself.
fn fitted(data: &[u8], len: usize) -> Vec<u8> {
    if data.is_empty() {
        return vec![0; len];
    }
    data.iter().copied().cycle().take(len).collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut rng = Counter(1);
    for method in DhGroup::ML_KEM {
        let ek = fitted(data, method.public_len());
        for key in [data, &ek] {
            if let Ok((c, _)) = KeyShare::respond(method, key, &mut rng) {
                assert_eq!(c.len(), method.response_len());
            }
        }
        let share = KeyShare::generate(method, &mut rng).expect("key generation");
        let ok = share.agree(data).is_ok();
        assert_eq!(ok, data.len() == method.response_len());
        let share = KeyShare::generate(method, &mut rng).expect("key generation");
        let ct = fitted(data, method.response_len());
        assert!(
            share.agree(&ct).is_ok(),
            "implicit rejection: any ciphertext decapsulates"
        );
    }
});
