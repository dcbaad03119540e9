//! Key derivation: SKEYSEED and the IKE SA keys (RFC 7296 2.14), IKE SA rekey (2.18) and child
//! SA KEYMAT (2.17).

use zeroize::Zeroizing;

use crate::crypto::{CryptoError, PrfAlg, SkCipher};
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
/// integrity keys, then responder-to-initiator ones (2.17).
pub(crate) fn child_keys(
    prf: PrfAlg,
    sk_d: &[u8],
    shared: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    algs: &EspAlgs,
    initiator: bool,
) -> Result<ChildKeys, CryptoError> {
    let e = algs.encr.key_material_len();
    let a = algs.integ.map_or(0, |i| i.key_len());
    let seed = concat(&[shared.unwrap_or_default(), ni, nr]);
    let km = prf.prf_plus(sk_d, &seed, 2 * (e + a))?;
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
