//! The core's timers, ordered by deadline: the next one is found without scanning.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::peer::PeerId;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The negotiation with a peer must be done by now.
    Negotiation(PeerId),
    /// A failed peer's shunt ends: forget the peer, the trap applies again.
    FailureEnds(PeerId),
    /// Authenticate an established peer again.
    Reauth(PeerId),
    /// Re-put every policy that carries a kernel lifetime.
    Refresh,
    /// Read the SA counters (idle teardown).
    IdleCheck,
    /// Nothing to do but run: a pause of the agent shows as this timer running late.
    Heartbeat,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_deadline: BTreeSet<(Instant, Timer)>,
    deadline_of: HashMap<Timer, Instant>,
}

impl Timers {
    /// Sets (or moves) a timer.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.cancel(timer);
        self.by_deadline.insert((at, timer));
        self.deadline_of.insert(timer, at);
    }

    pub(crate) fn cancel(&mut self, timer: Timer) {
        if let Some(at) = self.deadline_of.remove(&timer) {
            self.by_deadline.remove(&(at, timer));
        }
    }

    /// Cancels every timer of a peer.
    pub(crate) fn cancel_peer(&mut self, id: PeerId) {
        for timer in [
            Timer::Negotiation(id),
            Timer::FailureEnds(id),
            Timer::Reauth(id),
        ] {
            self.cancel(timer);
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Removes and returns the first timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let &(at, timer) = self.by_deadline.first()?;
        if at > now {
            return None;
        }
        self.by_deadline.remove(&(at, timer));
        self.deadline_of.remove(&timer);
        Some(timer)
    }
}
