//! Who may start a lookup: the host's own lookups (ACQUIRE, the DNS trigger) and lookups a peer's
//! identity caused (an IKE_AUTH naming an FQDN) share the in-flight limit, but peers only up to
//! `max_in_flight - host_reserved` in total and `max_per_peer` each, so a flood of identities
//! naming a zone that never answers cannot take the slots the host's own lookups need.
//!
//! Joining a lookup already in flight is always allowed: it adds no work.

use std::collections::HashMap;
use std::net::IpAddr;

use super::CacheConfig;

/// On whose behalf a lookup runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// The host's own traffic (an ACQUIRE, the DNS trigger, the operator): may use every slot.
    Host,
    /// A peer's claim (an identity in IKE_AUTH), counted against the peer share and against
    /// this source address.
    Peer(IpAddr),
}

/// Why a lookup was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every slot is taken.
    Full,
    /// The peers' share is taken (the rest is reserved for the host).
    PeerShare,
    /// This source has as many lookups in flight as one peer may.
    PerPeer,
}

/// Lookups in flight per class; the per-source map holds only sources with lookups in flight,
/// so it is bounded by the in-flight limit.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    total: usize,
    peers: usize,
    per_source: HashMap<IpAddr, usize>,
}

impl Admission {
    /// Takes a slot for a new lookup on behalf of `priority`, or says why not.
    pub(crate) fn admit(&mut self, priority: Priority, c: &CacheConfig) -> Result<(), Refusal> {
        if self.total >= c.max_in_flight {
            return Err(Refusal::Full);
        }
        if let Priority::Peer(source) = priority {
            if self.peers >= c.max_in_flight.saturating_sub(c.host_reserved) {
                return Err(Refusal::PeerShare);
            }
            let mine = self.per_source.entry(source).or_insert(0);
            if *mine >= c.max_per_peer {
                if *mine == 0 {
                    self.per_source.remove(&source);
                }
                return Err(Refusal::PerPeer);
            }
            *mine += 1;
            self.peers += 1;
        }
        self.total += 1;
        Ok(())
    }

    /// Gives back the slot of a finished lookup.
    pub(crate) fn release(&mut self, priority: Priority) {
        self.total = self.total.saturating_sub(1);
        if let Priority::Peer(source) = priority {
            self.peers = self.peers.saturating_sub(1);
            if let Some(mine) = self.per_source.get_mut(&source) {
                *mine = mine.saturating_sub(1);
                if *mine == 0 {
                    self.per_source.remove(&source);
                }
            }
        }
    }

    /// Sources with lookups in flight (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.per_source.len()
    }
}
