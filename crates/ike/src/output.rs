//! What the endpoint hands out: datagrams and events, in one order.
//!
//! Every datagram remembers how many events were queued before it, and [`Output::poll_transmit`]
//! holds it back until the caller has polled them all. So a datagram never overtakes an event it
//! depends on, whatever order the caller drains in: a responder's IKE_AUTH or CREATE_CHILD_SA
//! response waits for `ChildSaReady`, so the child can be in the kernel before the initiator,
//! which installs its side on that response, sends ESP on it.

use std::collections::VecDeque;

use crate::event::{Event, SaHandle, Transmit};

#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Datagrams, each with the number of events that must be polled before it.
    transmits: VecDeque<(u64, Transmit)>,
    events: VecDeque<(SaHandle, Event)>,
    /// Events handed out so far.
    polled: u64,
}

impl Output {
    pub(crate) fn event(&mut self, handle: SaHandle, event: Event) {
        self.events.push_back((handle, event));
    }

    pub(crate) fn transmit(&mut self, t: Transmit) {
        let queued = u64::try_from(self.events.len()).unwrap_or(u64::MAX);
        self.transmits
            .push_back((self.polled.saturating_add(queued), t));
    }

    pub(crate) fn poll_event(&mut self) -> Option<(SaHandle, Event)> {
        let e = self.events.pop_front()?;
        self.polled += 1;
        Some(e)
    }

    /// The next datagram, unless an event queued before it has not been polled yet.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        let (after, _) = self.transmits.front()?;
        if *after > self.polled {
            return None;
        }
        self.transmits.pop_front().map(|(_, t)| t)
    }
}
