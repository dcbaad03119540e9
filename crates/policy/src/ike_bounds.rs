//! Bounds on the IKE SAs peers make the agent hold once past IKE_AUTH (the engine bounds the
//! half-open ones): per source and in total. A source is what one host controls: an IPv4
//! address, or an IPv6 /64 (RFC 7421: the subnet one host is given, whose addresses it picks
//! at will). Under pressure the oldest anonymous (NULL-authenticated, RFC 7619) SA makes room;
//! an authenticated SA is never displaced, so when every SA in the way is authenticated the
//! newcomer is refused.
//!
//! Only IKE SAs a peer started (we are the responder) count: the host's own negotiations follow
//! its own traffic.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use oe_ike::SaHandle;

use crate::peer::PeerId;

/// One IKE SA: the local address of its engine and the engine's handle.
pub(crate) type IkeRef = (IpAddr, SaHandle);

/// What one host controls: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(IpAddr);

impl Source {
    pub(crate) fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self(addr),
            IpAddr::V6(a) => {
                let bits = u128::from(a) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(bits.into()))
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// The bounds (`[limits]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) per_source: usize,
    pub(crate) total: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    source: Source,
    peer: PeerId,
    /// For an anonymous SA, its place in the pruning order (oldest first).
    anonymous: Option<(Instant, u64)>,
}

/// An SA that must go to make room: its engine, handle and peer.
pub(crate) type Victim = (IkeRef, PeerId);

/// The IKE SAs held, by source, with the anonymous ones in pruning order.
#[derive(Debug)]
pub(crate) struct Held {
    bounds: Bounds,
    sas: HashMap<IkeRef, Entry>,
    by_source: HashMap<Source, Vec<IkeRef>>,
    anonymous: BTreeMap<(Instant, u64), IkeRef>,
    next_seq: u64,
    /// SAs pruned and newcomers refused, for the status report.
    pub(crate) pruned: u64,
    pub(crate) refused: u64,
}

impl Held {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            sas: HashMap::new(),
            by_source: HashMap::new(),
            anonymous: BTreeMap::new(),
            next_seq: 0,
            pruned: 0,
            refused: 0,
        }
    }

    pub(crate) fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = bounds;
    }

    /// Whether a new SA from `remote` could be admitted at all (perhaps after pruning): checked
    /// before any DNS work is spent on it.
    pub(crate) fn has_room_for(&self, remote: IpAddr) -> bool {
        let source = Source::of(remote);
        let here = self.by_source.get(&source).map_or(0, Vec::len);
        let source_ok = here < self.bounds.per_source || self.oldest_in(source).is_some();
        let total_ok = self.sas.len() < self.bounds.total || !self.anonymous.is_empty();
        source_ok && total_ok
    }

    /// Admits an SA from `remote`, pruning the oldest anonymous SAs in the way (returned: the
    /// caller deletes them), or says why it cannot be held.
    pub(crate) fn admit(
        &mut self,
        ike: IkeRef,
        peer: PeerId,
        remote: IpAddr,
        anonymous: bool,
        now: Instant,
    ) -> Result<Vec<Victim>, String> {
        if self.sas.contains_key(&ike) {
            return Ok(Vec::new());
        }
        let source = Source::of(remote);
        let victims = match self.victims(source) {
            Ok(v) => v,
            Err(why) => {
                self.refused += 1;
                return Err(why);
            }
        };
        let victims: Vec<Victim> = victims
            .into_iter()
            .filter_map(|v| self.release(v).map(|peer| (v, peer)))
            .collect();
        self.pruned += victims.len() as u64;
        let anonymous = anonymous.then(|| {
            self.next_seq += 1;
            let key = (now, self.next_seq);
            self.anonymous.insert(key, ike);
            key
        });
        self.sas.insert(
            ike,
            Entry {
                source,
                peer,
                anonymous,
            },
        );
        self.by_source.entry(source).or_default().push(ike);
        Ok(victims)
    }

    /// The SAs that must go before one more from `source` fits.
    fn victims(&self, source: Source) -> Result<Vec<IkeRef>, String> {
        let mut victims = Vec::new();
        let here = self.by_source.get(&source).map_or(0, Vec::len);
        if here >= self.bounds.per_source {
            let oldest = self.oldest_in(source).ok_or_else(|| {
                format!(
                    "{here} IKE SAs from {source} are held (the bound), all authenticated: \
                     an authenticated SA is never displaced"
                )
            })?;
            victims.push(oldest);
        }
        if self.sas.len() - victims.len() >= self.bounds.total {
            let oldest = self
                .anonymous
                .values()
                .find(|v| !victims.contains(v))
                .copied()
                .ok_or_else(|| {
                    format!(
                        "{} IKE SAs are held (the bound), all authenticated: an authenticated \
                         SA is never displaced",
                        self.sas.len()
                    )
                })?;
            victims.push(oldest);
        }
        Ok(victims)
    }

    /// The oldest anonymous SA from `source`.
    fn oldest_in(&self, source: Source) -> Option<IkeRef> {
        self.by_source
            .get(&source)?
            .iter()
            .filter_map(|ike| Some((self.sas.get(ike)?.anonymous?, *ike)))
            .min()
            .map(|(_, ike)| ike)
    }

    /// Forgets an SA (closed, or pruned); returns its peer.
    pub(crate) fn release(&mut self, ike: IkeRef) -> Option<PeerId> {
        let entry = self.sas.remove(&ike)?;
        if let Some(key) = entry.anonymous {
            self.anonymous.remove(&key);
        }
        if let Some(list) = self.by_source.get_mut(&entry.source) {
            list.retain(|i| *i != ike);
            if list.is_empty() {
                self.by_source.remove(&entry.source);
            }
        }
        Some(entry.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ike(n: u64) -> IkeRef {
        ("192.0.2.1".parse().unwrap(), SaHandle(n))
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_source_is_its_64() {
        assert_eq!(
            Source::of(addr("2001:db8::1")),
            Source::of(addr("2001:db8::ffff:1"))
        );
        assert_ne!(
            Source::of(addr("2001:db8::1")),
            Source::of(addr("2001:db8:0:1::1"))
        );
        assert_ne!(Source::of(addr("192.0.2.1")), Source::of(addr("192.0.2.2")));
        assert_eq!(Source::of(addr("2001:db8::1")).to_string(), "2001:db8::/64");
    }

    #[test]
    fn the_oldest_anonymous_sa_of_the_source_makes_room_then_refusal() {
        let now = Instant::now();
        let mut held = Held::new(Bounds {
            per_source: 2,
            total: 100,
        });
        let src = addr("192.0.2.7");
        assert!(held
            .admit(ike(1), PeerId(1), src, false, now)
            .unwrap()
            .is_empty());
        assert!(held
            .admit(ike(2), PeerId(1), src, true, now)
            .unwrap()
            .is_empty());
        let pruned = held.admit(ike(3), PeerId(1), src, true, now).unwrap();
        assert_eq!(pruned, vec![(ike(2), PeerId(1))]);
        let pruned = held.admit(ike(4), PeerId(1), src, false, now).unwrap();
        assert_eq!(pruned, vec![(ike(3), PeerId(1))]);
        assert!(!held.has_room_for(src));
        assert!(held.admit(ike(5), PeerId(1), src, true, now).is_err());
        assert_eq!(held.sas.len(), 2);
        assert_eq!((held.pruned, held.refused), (2, 1));
        held.release(ike(1));
        assert!(held.has_room_for(src));
    }

    #[test]
    fn in_total_the_oldest_anonymous_anywhere_goes_first() {
        let t0 = Instant::now();
        let later = t0 + std::time::Duration::from_secs(1);
        let mut held = Held::new(Bounds {
            per_source: 10,
            total: 3,
        });
        held.admit(ike(1), PeerId(1), addr("192.0.2.1"), true, later)
            .unwrap();
        held.admit(ike(2), PeerId(2), addr("192.0.2.2"), true, t0)
            .unwrap();
        held.admit(ike(3), PeerId(3), addr("192.0.2.3"), false, t0)
            .unwrap();
        let pruned = held.admit(ike(4), PeerId(4), addr("192.0.2.4"), false, later);
        assert_eq!(pruned.unwrap(), vec![(ike(2), PeerId(2))]);
        let pruned = held.admit(ike(5), PeerId(5), addr("192.0.2.5"), true, later);
        assert_eq!(pruned.unwrap(), vec![(ike(1), PeerId(1))]);
        let pruned = held.admit(ike(6), PeerId(6), addr("192.0.2.6"), true, later);
        assert_eq!(pruned.unwrap(), vec![(ike(5), PeerId(5))]);
        // Now two authenticated and one anonymous: one more anonymous replaces it; once all
        // are authenticated, nobody gets in.
        held.release(ike(6));
        held.admit(ike(7), PeerId(7), addr("192.0.2.7"), false, later)
            .unwrap();
        assert!(held
            .admit(ike(8), PeerId(8), addr("192.0.2.8"), false, later)
            .is_err());
        assert!(held
            .admit(ike(9), PeerId(9), addr("192.0.2.9"), true, later)
            .is_err());
        assert_eq!(held.sas.len(), 3);
    }

    #[test]
    fn one_newcomer_may_prune_one_from_its_source_and_one_elsewhere() {
        let now = Instant::now();
        let mut held = Held::new(Bounds {
            per_source: 1,
            total: 2,
        });
        held.admit(ike(1), PeerId(1), addr("192.0.2.1"), true, now)
            .unwrap();
        held.admit(ike(2), PeerId(2), addr("192.0.2.2"), true, now)
            .unwrap();
        // Source full (ike 1) and total full: ike 1 goes for both.
        let pruned = held
            .admit(ike(3), PeerId(3), addr("192.0.2.1"), true, now)
            .unwrap();
        assert_eq!(pruned, vec![(ike(1), PeerId(1))]);
        assert_eq!(held.sas.len(), 2);
    }
}
