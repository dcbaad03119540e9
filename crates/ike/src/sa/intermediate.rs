//! IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of RFC 9370: one exchange
//! per negotiated ADDKE round, between IKE_SA_INIT and IKE_AUTH.
//!
//! ```text
//! HDR(IKE_INTERMEDIATE), SK {KEi(n)}  -->
//!                                     <--  HDR(IKE_INTERMEDIATE), SK {KEr(n)}
//! ```
//!
//! Each exchange is protected with the keys in effect before it; afterwards both sides update
//! them (RFC 9370 2.2.2):
//!
//! ```text
//! SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//! {SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//! ```
//!
//! Every IKE_INTERMEDIATE message also extends the IntAuth chain that IKE_AUTH signs
//! (RFC 9242 3.3), so an attacker cannot strip or alter these exchanges unnoticed.

use zeroize::Zeroizing;

use super::tasks::{Outcome, Reply, Step, Task};
use super::{Ctx, IkeSa, Phase};
use crate::crypto::{DhGroup, KeyShare, PrfAlg, SharedSecret};
use crate::error::{Error, LocalError, PeerError};
use crate::keys::{derive_ike, skeyseed_rekey, IkeKeys};
use crate::wire::{
    encode_inner, sk_prefix, ExchangeType, Header, KePayload, NotifyPayload, NotifyType, Payload,
    PayloadType, Payloads,
};

/// The IntAuth chain (RFC 9242 3.3):
///
/// ```text
/// IntAuth_i(n) = prf(SK_pi(n), IntAuth_i(n-1) | IntAuth_i(n)A | IntAuth_i(n)P)
/// IntAuth_r(n) = prf(SK_pr(n), IntAuth_r(n-1) | IntAuth_r(n)A | IntAuth_r(n)P)
/// IntAuth      = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID
/// ```
///
/// where SK_p(n) are the keys protecting exchange n, and IntAuth_i(0) is empty.
#[derive(Debug, Default)]
pub(crate) struct IntAuth {
    /// IKE_INTERMEDIATE exchanges completed.
    pub(crate) done: usize,
    i: Zeroizing<Vec<u8>>,
    r: Zeroizing<Vec<u8>>,
    /// The message ID of the IKE_AUTH request.
    pub(crate) auth_mid: u32,
}

impl IntAuth {
    /// What AUTH's signed octets end with: empty without IKE_INTERMEDIATE exchanges.
    pub(crate) fn octets(&self) -> Vec<u8> {
        if self.i.is_empty() {
            return Vec::new();
        }
        [&self.i[..], &self.r[..], &self.auth_mid.to_be_bytes()].concat()
    }

    /// Adds one message: `from_initiator` picks the chain and `sk_p` is SK_pi or SK_pr.
    fn add(&mut self, from_initiator: bool, prf: PrfAlg, sk_p: &[u8], data: &[u8]) {
        let chain = if from_initiator {
            &mut self.i
        } else {
            &mut self.r
        };
        let input = [&chain[..], data].concat();
        *chain = prf.prf(sk_p, &input);
    }
}

/// IntAuth_A | IntAuth_P of one message (RFC 9242 3.3.2): the IKE header and the Encrypted
/// payload header with their lengths counting only the inner payloads (no IV, padding or ICV,
/// and as if not fragmented, RFC 9242 3.3.3), then the inner payloads in clear.
fn signed_data(h: &Header, first_inner: PayloadType, plain: &[u8]) -> Vec<u8> {
    [sk_prefix(h, first_inner, plain.len()), plain.to_vec()].concat()
}

/// Adds a message we send to the IntAuth chain, with the keys that protect it.
fn add_ours(sa: &mut IkeSa, mid: u32, response: bool, payloads: &[Payload]) -> Result<(), Error> {
    let h = super::protect::header(&sa.core, ExchangeType::IKE_INTERMEDIATE, mid, response);
    let (first, plain) = encode_inner(payloads);
    add(sa, &signed_data(&h, first, &plain), sa.core.initiator)
}

/// Adds the message we just opened (kept by `protect::open`) to the IntAuth chain.
fn add_theirs(sa: &mut IkeSa) -> Result<(), Error> {
    let (h, first, plain) = sa
        .handshake
        .last_intermediate
        .take()
        .ok_or(LocalError::Config("IKE_INTERMEDIATE plaintext not kept"))?;
    add(sa, &signed_data(&h, first, &plain), !sa.core.initiator)
}

fn add(sa: &mut IkeSa, data: &[u8], from_initiator: bool) -> Result<(), Error> {
    let keys = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let sk_p = if from_initiator {
        &keys.sk_pi
    } else {
        &keys.sk_pr
    };
    let prf = keys.prf;
    let sk_p = sk_p.clone();
    sa.handshake.int_auth.add(from_initiator, prf, &sk_p, data);
    Ok(())
}

/// The keys after additional key exchange n (RFC 9370 2.2.2).
fn next_keys(sa: &IkeSa, shared: &SharedSecret) -> Result<IkeKeys, Error> {
    let algs = sa.core.algs.ok_or(LocalError::Config("no algorithms"))?;
    let old = sa.core.keys.as_ref().ok_or(LocalError::Config("no keys"))?;
    let (ni, nr) = (&sa.handshake.ni, &sa.handshake.nr);
    let seed = skeyseed_rekey(old.prf, &old.sk_d, shared.as_bytes(), ni, nr);
    let spis = (sa.core.spi_i, sa.core.spi_r);
    Ok(derive_ike(&algs, &seed, ni, nr, spis, sa.core.initiator)?)
}

/// The method of the next additional key exchange, if any remains.
fn pending(sa: &IkeSa) -> Option<DhGroup> {
    let algs = sa.core.algs?;
    algs.addke.nth(sa.handshake.int_auth.done)
}

fn share_group(id: u16) -> Option<DhGroup> {
    DhGroup::from_iana(id)
}

/// Records a post-quantum method among the ones protecting the IKE SA.
pub(crate) fn note_post_quantum(sa: &mut IkeSa, method: Option<DhGroup>) {
    if let Some(m) = method.filter(|m| m.is_post_quantum()) {
        sa.post_quantum.push(m);
    }
}

/// Our additional key exchange number `n` (0-based) in flight.
#[derive(Debug)]
pub(crate) struct Intermediate {
    n: usize,
    share: Option<KeyShare>,
}

impl Intermediate {
    pub(crate) fn new(n: usize) -> Self {
        Self { n, share: None }
    }
}

/// Initiator: `KEi(n)` for the round's negotiated method.
pub(crate) fn build(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    t: &mut Intermediate,
) -> Result<Step, Error> {
    if sa.phase != Phase::Connecting || t.n != sa.handshake.int_auth.done {
        return Ok(Step::Skip);
    }
    let method = pending(sa).ok_or(LocalError::Config("no additional key exchange left"))?;
    let share = KeyShare::generate(method, ctx.rng)?;
    let payloads = vec![Payload::Ke(KePayload {
        group: method.iana(),
        data: share.public().to_vec(),
    })];
    t.share = Some(share);
    add_ours(sa, sa.core.tm.next_mid, false, &payloads)?;
    Ok(Step::Send(ExchangeType::IKE_INTERMEDIATE, payloads))
}

/// Initiator: `KEr(n)`; updates the keys and queues the next round, if any, before IKE_AUTH.
pub(crate) fn on_response(
    sa: &mut IkeSa,
    t: Intermediate,
    p: &[Payload],
) -> Result<Outcome, Error> {
    if let Some(ty) = p.iter().find_map(|x| match x {
        Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    }) {
        return Err(PeerError::Notified(ty).into());
    }
    let share = t.share.ok_or(LocalError::Config("no key share"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    if ke.group != share.group().iana() {
        return Err(PeerError::Protocol("KE method differs from the negotiated one").into());
    }
    add_theirs(sa)?;
    let shared = share.agree(&ke.data)?;
    let keys = next_keys(sa, &shared)?;
    sa.core.keys = Some(keys);
    sa.handshake.int_auth.done += 1;
    note_post_quantum(sa, share_group(ke.group));
    if pending(sa).is_some() {
        let next = Intermediate::new(sa.handshake.int_auth.done);
        sa.core.tm.queue.push_front(Task::Intermediate(next));
    }
    Ok(Outcome::Done)
}

/// Responder: answers `KEi(n)` with `KEr(n)`, then (after sending) moves to the new keys.
/// A KE payload of another method than the one negotiated for the round (RFC 9370 2.2.2: they
/// must match) is a value out of range, INVALID_SYNTAX (RFC 7296 3.10.1), and the IKE SA ends:
/// INVALID_KE_PAYLOAD would invite a retry with another method, but the methods were fixed
/// in IKE_SA_INIT. (strongSwan answers INVALID_SYNTAX too, in IKE_FOLLOWUP_KE.)
pub(crate) fn respond(
    sa: &mut IkeSa,
    ctx: &mut Ctx<'_>,
    mid: u32,
    p: &[Payload],
) -> Result<Reply, Error> {
    if sa.phase != Phase::Connecting || sa.core.initiator {
        return Err(PeerError::Protocol("IKE_INTERMEDIATE after IKE_AUTH").into());
    }
    let method = pending(sa).ok_or(PeerError::Protocol("IKE_INTERMEDIATE not negotiated"))?;
    let ke = p.ke().ok_or(PeerError::MissingPayload("KE"))?;
    if ke.group != method.iana() {
        let refusal = Payload::Notify(NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        let err = PeerError::Protocol("KE method differs from the negotiated one");
        return Ok(Reply::SendThenClose(
            vec![refusal],
            crate::event::CloseReason::Failed(err.into()),
        ));
    }
    add_theirs(sa)?;
    let (public, shared) = KeyShare::respond(method, &ke.data, ctx.rng)?;
    let keys = next_keys(sa, &shared)?;
    let out = vec![Payload::Ke(KePayload {
        group: method.iana(),
        data: public,
    })];
    add_ours(sa, mid, true, &out)?;
    sa.handshake.int_auth.done += 1;
    note_post_quantum(sa, Some(method));
    Ok(Reply::SendThenRekeys(out, Box::new(keys)))
}

#[cfg(test)]
#[path = "intermediate_tests.rs"]
mod tests;
