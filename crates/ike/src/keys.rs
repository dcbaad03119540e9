//! Key derivation: SKEYSEED and the IKE SA keys (RFC 7296 2.14), IKE SA rekey (2.18) and child
//! SA KEYMAT (2.17), with the additional key exchanges of RFC 9370 2.2.4.

use zeroize::Zeroizing;

use crate::crypto::{CryptoError, PrfAlg, SharedSecret, SkCipher};
use crate::event::ChildKeys;
use crate::proposal::{EspAlgs, IkeAlgs};

/// The keys of one IKE SA, from our point of view.
#[derive(Debug)]
pub(crate) struct IkeKeys {
    pub(crate) prf: PrfAlg,
    pub(crate) sk_d: Zeroizing<Vec<u8>>,
    /// SK_pi / SK_pr: used in AUTH (2.15).
    pub(crate) sk_pi: Zeroizing<Vec<u8>>,
    pub(crate) sk_pr: Zeroizing<Vec<u8>>,
    /// Protects what we send.
    pub(crate) out: SkCipher,
    /// Opens what we receive.
    pub(crate) inbound: SkCipher,
}

fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(parts.concat())
}

/// SKEYSEED = prf(Ni | Nr, g^ir) (2.14).
pub(crate) fn skeyseed(prf: PrfAlg, ni: &[u8], nr: &[u8], shared: &[u8]) -> Zeroizing<Vec<u8>> {
    prf.prf(&concat(&[ni, nr]), shared)
}

/// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (2.18).
pub(crate) fn skeyseed_rekey(
    prf: PrfAlg,
    old_sk_d: &[u8],
    shared: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Zeroizing<Vec<u8>> {
    prf.prf(old_sk_d, &concat(&[shared, ni, nr]))
}

/// The shared secrets of one CREATE_CHILD_SA and the IKE_FOLLOWUP_KE exchanges after it (RFC
/// 9370 2.2.4): SK(0) from its own KE payloads (none for a child rekey without PFS), then
/// SK(1)..SK(n) from the additional key exchanges, in the order they ran.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    pub(crate) first: Option<SharedSecret>,
    pub(crate) more: Vec<SharedSecret>,
}

impl Secrets {
    pub(crate) fn new(first: Option<SharedSecret>) -> Self {
        Self {
            first,
            more: Vec::new(),
        }
    }

    /// `SK(0) | Ni | Nr | SK(1) | ... | SK(n)` (RFC 9370 2.2.4); without additional exchanges
    /// this is RFC 7296's `g^ir (new) | Ni | Nr` (2.17, 2.18), or `Ni | Nr` without PFS.
    fn seed(&self, ni: &[u8], nr: &[u8]) -> Zeroizing<Vec<u8>> {
        let first = self.first.as_ref().map_or(&[][..], SharedSecret::as_bytes);
        let mut parts = vec![first, ni, nr];
        parts.extend(self.more.iter().map(SharedSecret::as_bytes));
        concat(&parts)
    }
}

/// SKEYSEED of an IKE SA rekey: `prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))`
/// (RFC 9370 2.2.4; RFC 7296 2.18 when there is only SK(0)).
pub(crate) fn skeyseed_rekey_all(
    prf: PrfAlg,
    old_sk_d: &[u8],
    secrets: &Secrets,
    ni: &[u8],
    nr: &[u8],
) -> Zeroizing<Vec<u8>> {
    prf.prf(old_sk_d, &secrets.seed(ni, nr))
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
pub(crate) fn derive_ike(
    algs: &IkeAlgs,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spis: (u64, u64),
    initiator: bool,
) -> Result<IkeKeys, CryptoError> {
    let prf = algs.prf;
    let (d, a, e, p) = (
        prf.preferred_key_len(),
        algs.integ.map_or(0, |i| i.key_len()),
        algs.encr.key_material_len(),
        prf.preferred_key_len(),
    );
    let seed = concat(&[ni, nr, &spis.0.to_be_bytes(), &spis.1.to_be_bytes()]);
    let km = prf.prf_plus(skeyseed, &seed, d + 2 * a + 2 * e + 2 * p)?;
    let mut parts = Splitter(&km);
    let sk_d = parts.next(d);
    let (ai, ar) = (parts.next(a), parts.next(a));
    let (ei, er) = (parts.next(e), parts.next(e));
    let (sk_pi, sk_pr) = (parts.next(p), parts.next(p));
    let i_to_r = SkCipher::new(algs.encr, algs.integ, &ei, &ai)?;
    let r_to_i = SkCipher::new(algs.encr, algs.integ, &er, &ar)?;
    let (out, inbound) = if initiator {
        (i_to_r, r_to_i)
    } else {
        (r_to_i, i_to_r)
    };
    Ok(IkeKeys {
        prf,
        sk_d,
        sk_pi,
        sk_pr,
        out,
        inbound,
    })
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), taken as initiator-to-responder encryption and
/// integrity keys, then responder-to-initiator ones (2.17); with additional key exchanges
/// KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)) (RFC 9370 2.2.4).
pub(crate) fn child_keys(
    prf: PrfAlg,
    sk_d: &[u8],
    secrets: &Secrets,
    ni: &[u8],
    nr: &[u8],
    algs: &EspAlgs,
    initiator: bool,
) -> Result<ChildKeys, CryptoError> {
    let e = algs.encr.key_material_len();
    let a = algs.integ.map_or(0, |i| i.key_len());
    let km = prf.prf_plus(sk_d, &secrets.seed(ni, nr), 2 * (e + a))?;
    let mut parts = Splitter(&km);
    let (ei, ai, er, ar) = (parts.next(e), parts.next(a), parts.next(e), parts.next(a));
    Ok(if initiator {
        ChildKeys {
            encr_out: ei,
            integ_out: ai,
            encr_in: er,
            integ_in: ar,
        }
    } else {
        ChildKeys {
            encr_out: er,
            integ_out: ar,
            encr_in: ei,
            integ_in: ai,
        }
    })
}

/// Cuts consecutive keys off key material; prf+ produced exactly the sum of the lengths.
struct Splitter<'a>(&'a [u8]);

impl Splitter<'_> {
    fn next(&mut self, n: usize) -> Zeroizing<Vec<u8>> {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Zeroizing::new(head.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::EncrAlg;

    fn secrets() -> Secrets {
        Secrets {
            first: Some(SharedSecret::from_bytes(b"sk0")),
            more: vec![
                SharedSecret::from_bytes(b"sk1"),
                SharedSecret::from_bytes(b"sk2"),
            ],
        }
    }

    /// RFC 9370 2.2.4: KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)): every secret,
    /// the nonces after SK(0), the additional secrets in the order they ran.
    #[test]
    fn keymat_takes_every_secret_in_rfc_9370_order() {
        let prf = PrfAlg::HmacSha256;
        let algs = EspAlgs {
            encr: EncrAlg::AesGcm16 { key_bits: 128 },
            integ: None,
        };
        let k = child_keys(prf, b"skd", &secrets(), b"ni", b"nr", &algs, true).unwrap();
        let e = algs.encr.key_material_len();
        let expect = prf.prf_plus(b"skd", b"sk0ninrsk1sk2", 2 * e).unwrap();
        assert_eq!(*k.encr_out, expect[..e]);
        assert_eq!(*k.encr_in, expect[e..]);
        let swapped = Secrets {
            first: Some(SharedSecret::from_bytes(b"sk0")),
            more: vec![
                SharedSecret::from_bytes(b"sk2"),
                SharedSecret::from_bytes(b"sk1"),
            ],
        };
        let k2 = child_keys(prf, b"skd", &swapped, b"ni", b"nr", &algs, true).unwrap();
        assert_ne!(*k.encr_out, *k2.encr_out);
    }

    /// RFC 9370 2.2.4: SKEYSEED = prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)); with SK(0)
    /// alone it is RFC 7296 2.18's prf(SK_d, g^ir | Ni | Nr), and without PFS a child's seed is
    /// Ni | Nr (2.17).
    #[test]
    fn skeyseed_of_a_rekey() {
        let prf = PrfAlg::HmacSha256;
        let seed = skeyseed_rekey_all(prf, b"skd", &secrets(), b"ni", b"nr");
        assert_eq!(*seed, *prf.prf(b"skd", b"sk0ninrsk1sk2"));
        let one = Secrets::new(Some(SharedSecret::from_bytes(b"sk0")));
        let seed = skeyseed_rekey_all(prf, b"skd", &one, b"ni", b"nr");
        assert_eq!(*seed, *skeyseed_rekey(prf, b"skd", b"sk0", b"ni", b"nr"));
        assert_eq!(*Secrets::default().seed(b"ni", b"nr"), *b"ninr");
    }
}
