//! Covering proofs: what validated answers already proved about names not yet asked, so that "no
//! key here" costs no lookup once a covering proof is cached (issue 14: almost every host has no
//! key, and its first packet should not wait for its reverse zone).
//!
//! - Insecure cuts ([`insecure`]): a zone the signed parent delegates without DS. Every name at or
//!   below it is insecure, unless a trust anchor sits between the cut and the name. Found by a
//!   background walk ([`walk`]) after the first negative answer from an unsigned zone.
//! - Validated NSEC records ([`nsec`], RFC 8198): a name a cached range proves absent, or an NSEC
//!   at the name without the type, has no such RRset.
//!
//! Both are kept for their validated lifetime only (TTL bounded by the RRSIG expiration, and by
//! the negative TTL of the answer they came in), and bounded in number ([`MAX_CUTS`],
//! [`MAX_NSEC`]): when full, expired entries go first, then the soonest to expire. Only records
//! hickory marked `Secure` are kept, so a proof never comes from an unvalidated or bogus answer,
//! and nothing here can turn a bogus answer into an insecure one.

pub(crate) mod insecure;
pub(crate) mod nsec;
#[cfg(feature = "resolver")]
pub(crate) mod walk;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::Proof;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};

use nsec::{CachedNsec, Chain, Denied};

/// Insecure cuts kept at most.
pub(crate) const MAX_CUTS: usize = 1024;
/// NSEC records kept at most, over all zones.
pub(crate) const MAX_NSEC: usize = 4096;
/// Walks for insecure cuts running at once at most (one per unsigned zone).
pub(crate) const MAX_WALKS: usize = 64;

/// What a covering proof says about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Covered {
    /// The name is at or below this insecure cut.
    Insecure { cut: Name, until: SystemTime },
    /// Cached NSEC records prove the type absent at the name.
    Denied(Denied),
}

/// The covering proofs learnt so far.
#[derive(Debug, Default)]
pub(crate) struct Proofs {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    cuts: HashMap<Name, SystemTime>,
    zones: HashMap<Name, Chain>,
    nsecs: usize,
    walks: HashSet<Name>,
}

impl Proofs {
    /// What the cached proofs say about `rtype` at `qname` at `now`. `anchors` are the owners of
    /// the trust anchors: a cut above an anchor does not cover the names below that anchor.
    pub(crate) fn covering(
        &self,
        qname: &Name,
        rtype: RecordType,
        anchors: &[Name],
        now: SystemTime,
    ) -> Option<Covered> {
        let state = self.lock();
        let mut name = qname.clone();
        loop {
            if let Some(covered) = state.at(&name, qname, rtype, anchors, now) {
                return Some(covered);
            }
            if name.is_root() {
                return None;
            }
            name = name.base_name();
        }
    }

    /// Claims the walk for the insecure cut above the unsigned zone `apex`: false when one is
    /// already running for it, or too many are.
    pub(crate) fn begin_walk(&self, apex: &Name) -> bool {
        let mut state = self.lock();
        state.walks.len() < MAX_WALKS && state.walks.insert(apex.clone())
    }

    /// The walk for `apex` has ended.
    pub(crate) fn end_walk(&self, apex: &Name) {
        self.lock().walks.remove(apex);
    }

    /// Keeps the cut `zone` as insecure until `until`.
    pub(crate) fn insecure_cut(&self, zone: Name, until: SystemTime, now: SystemTime) {
        let mut state = self.lock();
        if !state.cuts.contains_key(&zone) && state.cuts.len() >= MAX_CUTS {
            state.cuts.retain(|_, until| *until > now);
            if state.cuts.len() >= MAX_CUTS {
                if let Some(victim) = soonest(&state.cuts) {
                    state.cuts.remove(&victim);
                }
            }
        }
        state.cuts.insert(zone, until);
    }

    /// Keeps the validated NSEC records of a negative answer until `until` (the answer's
    /// lifetime; each record's own validated TTL bounds it further).
    pub(crate) fn denial(&self, msg: &Message, until: SystemTime, now: SystemTime) {
        let mut state = self.lock();
        for record in &msg.authorities {
            let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &record.data else {
                continue;
            };
            if record.proof != Proof::Secure {
                continue;
            }
            let Some(zone) = signer(msg, &record.name) else {
                continue;
            };
            let ttl = std::time::Duration::from_secs(record.ttl.into());
            let cached = CachedNsec {
                nsec: nsec.clone(),
                until: until.min(now + ttl),
            };
            state.keep(zone, record.name.to_lowercase(), cached, now);
        }
    }

    /// Zones and records held, for tests of the bounds.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.cuts.len(), state.nsecs)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    /// A proof held at `zone` (an ancestor of `qname`, or `qname` itself) that covers `qname`.
    fn at(
        &self,
        zone: &Name,
        qname: &Name,
        rtype: RecordType,
        anchors: &[Name],
        now: SystemTime,
    ) -> Option<Covered> {
        if let Some(until) = self.cuts.get(zone) {
            let anchored = anchors
                .iter()
                .any(|a| a != zone && zone.zone_of(a) && a.zone_of(qname));
            if *until > now && !anchored {
                return Some(Covered::Insecure {
                    cut: zone.clone(),
                    until: *until,
                });
            }
        }
        let chain = self.zones.get(zone)?;
        nsec::denies(chain, qname, rtype, now).map(Covered::Denied)
    }

    fn keep(&mut self, zone: Name, owner: Name, cached: CachedNsec, now: SystemTime) {
        let known = self
            .zones
            .get(&zone)
            .is_some_and(|c| c.contains_key(&owner));
        if !known && self.nsecs >= MAX_NSEC {
            self.make_room(now);
        }
        let chain = self.zones.entry(zone).or_default();
        if chain.insert(owner, cached).is_none() {
            self.nsecs += 1;
        }
    }

    /// Drops expired records; if none expired, the one that expires soonest.
    fn make_room(&mut self, now: SystemTime) {
        for chain in self.zones.values_mut() {
            chain.retain(|_, c| c.until > now);
        }
        self.zones.retain(|_, chain| !chain.is_empty());
        self.nsecs = self.zones.values().map(Chain::len).sum();
        if self.nsecs < MAX_NSEC {
            return;
        }
        let victim = self
            .zones
            .iter()
            .flat_map(|(zone, chain)| chain.iter().map(move |(owner, c)| (c.until, zone, owner)))
            .min_by_key(|(until, ..)| *until)
            .map(|(_, zone, owner)| (zone.clone(), owner.clone()));
        if let Some((zone, owner)) = victim {
            if let Some(chain) = self.zones.get_mut(&zone) {
                chain.remove(&owner);
                self.nsecs -= 1;
            }
        }
    }
}

/// The zone whose validated RRSIG signed the NSEC at `owner`.
fn signer(msg: &Message, owner: &Name) -> Option<Name> {
    msg.authorities.iter().find_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if r.proof == Proof::Secure
                && r.name == *owner
                && sig.input().type_covered == RecordType::NSEC
                && sig.input().signer_name.zone_of(owner) =>
        {
            Some(sig.input().signer_name.to_lowercase())
        }
        _ => None,
    })
}

fn soonest(cuts: &HashMap<Name, SystemTime>) -> Option<Name> {
    cuts.iter()
        .min_by_key(|(_, until)| **until)
        .map(|(zone, _)| zone.clone())
}

#[cfg(test)]
mod tests;
