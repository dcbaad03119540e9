//! The endpoint's indexes over its IKE SAs, each kept in step with the SAs after every input so
//! that no datagram or timer needs a scan: SAs by handle, our IKE SPIs (current and retiring) to
//! SA, half-open responder SAs by (peer address, SPIi) with a count per peer IP, and deadlines in
//! order. Routing a datagram is a hash lookup; the next deadline is the first of an ordered set;
//! a timer visits only the SAs that are due.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::config::Config;
use crate::event::SaHandle;
use crate::sa::{IkeSa, Phase};

/// A half-open responder SA's key: where its IKE_SA_INIT came from and its SPIi.
pub(crate) type HalfOpenKey = (SocketAddr, u64);

/// One IKE SA and what the indexes hold for it.
#[derive(Debug)]
struct Entry {
    sa: IkeSa,
    half_open: Option<HalfOpenKey>,
    /// Our SPIs that route to it (the current IKE SA's and a retiring one's).
    routed: [Option<u64>; 2],
    deadline: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    sas: HashMap<SaHandle, Entry>,
    by_spi: HashMap<u64, SaHandle>,
    half_open: HashMap<HalfOpenKey, SaHandle>,
    half_open_per_ip: HashMap<IpAddr, usize>,
    deadlines: BTreeSet<(Instant, SaHandle)>,
}

impl Registry {
    /// Files a new SA; `half_open` for a responder SA made by an IKE_SA_INIT request.
    pub(crate) fn insert(&mut self, sa: IkeSa, half_open: Option<HalfOpenKey>, config: &Config) {
        let handle = sa.handle;
        if let Some(key) = half_open {
            self.half_open.insert(key, handle);
            *self.half_open_per_ip.entry(key.0.ip()).or_default() += 1;
        }
        let entry = Entry {
            sa,
            half_open,
            routed: [None; 2],
            deadline: None,
        };
        self.sas.insert(handle, entry);
        self.refresh(handle, config);
    }

    pub(crate) fn get_mut(&mut self, handle: SaHandle) -> Option<&mut IkeSa> {
        self.sas.get_mut(&handle).map(|e| &mut e.sa)
    }

    pub(crate) fn get(&self, handle: SaHandle) -> Option<&IkeSa> {
        self.sas.get(&handle).map(|e| &e.sa)
    }

    /// The SA one of our IKE SPIs belongs to.
    pub(crate) fn route(&self, spi: u64) -> Option<SaHandle> {
        self.by_spi.get(&spi).copied()
    }

    pub(crate) fn spi_in_use(&self, spi: u64) -> bool {
        self.by_spi.contains_key(&spi)
    }

    pub(crate) fn half_open_sa(&self, key: &HalfOpenKey) -> Option<SaHandle> {
        self.half_open.get(key).copied()
    }

    pub(crate) fn half_open_count(&self) -> usize {
        self.half_open.len()
    }

    pub(crate) fn half_open_from(&self, ip: IpAddr) -> usize {
        self.half_open_per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// How many of our IKE SPIs route somewhere.
    #[cfg(test)]
    pub(crate) fn routes(&self) -> usize {
        self.by_spi.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.sas.len()
    }

    /// The earliest deadline of any SA.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The SAs whose deadline is at or before `now`, earliest first (taken off the index; the
    /// caller refreshes each after running its timers).
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<SaHandle> {
        let mut due = Vec::new();
        while let Some(&(t, h)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(e) = self.sas.get_mut(&h) {
                e.deadline = None;
            }
            due.push(h);
        }
        due
    }

    /// Brings the indexes in step with one SA after it ran; drops it once closed. Costs O(1)
    /// index updates plus the SA's own `next_timeout` (bounded by its children).
    pub(crate) fn refresh(&mut self, handle: SaHandle, config: &Config) {
        let Some(e) = self.sas.get_mut(&handle) else {
            return;
        };
        let closed = e.sa.is_closed();
        let routed = if closed {
            [None; 2]
        } else {
            e.sa.routed_spis()
        };
        for spi in e.routed.iter().flatten() {
            if !routed.contains(&Some(*spi)) {
                self.by_spi.remove(spi);
            }
        }
        for spi in routed.iter().flatten() {
            self.by_spi.insert(*spi, handle);
        }
        e.routed = routed;
        if closed || e.sa.phase != Phase::Connecting || e.sa.core.initiator {
            if let Some(key) = e.half_open.take() {
                self.half_open.remove(&key);
                release(&mut self.half_open_per_ip, key.0.ip());
            }
        }
        let deadline = if closed {
            None
        } else {
            e.sa.next_timeout(config)
        };
        if deadline != e.deadline {
            if let Some(old) = e.deadline {
                self.deadlines.remove(&(old, handle));
            }
            if let Some(new) = deadline {
                self.deadlines.insert((new, handle));
            }
            e.deadline = deadline;
        }
        if closed {
            self.sas.remove(&handle);
        }
    }
}

fn release(counts: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = counts.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&ip);
        }
    }
}
