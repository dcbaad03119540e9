//! The stub's counters and its last trigger events, as the status socket shows them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::hook::{micros, TriggerEvent};

/// Trigger events kept for the snapshot.
const RECENT: usize = 32;

macro_rules! counters {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        /// Live counters (atomics), shared by the stub's tasks.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $field: AtomicU64,)*
        }

        /// The stub's counters since it started.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct StubCounters {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl Counters {
            fn snapshot(&self) -> StubCounters {
                StubCounters {
                    $($field: self.$field.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

counters! {
    /// Queries received over UDP.
    udp_queries,
    /// Queries received over TCP.
    tcp_queries,
    /// TCP connections accepted.
    tcp_connections,
    /// Queries forwarded upstream.
    forwarded,
    /// Answers returned to applications (forwarded or made by the stub).
    answered,
    /// A and AAAA queries (class IN).
    address_queries,
    /// Of those, answers whose addresses the hook wants (an opportunistic group).
    opportunistic,
    /// Secure keys found for wanted answers (the hook's `secure` was called).
    secure_keys,
    /// Of those, keys that arrived after the answer was released.
    late_keys,
    /// Answers held for a trigger decision or the hook.
    held,
    /// Holds that ran out of time.
    hold_expired,
    /// Sum of hold times, microseconds.
    hold_total_us,
    /// Longest hold, microseconds.
    hold_max_us,
    /// Wanted answers without an IPSECKEY.
    no_key,
    /// Wanted answers with insecure IPSECKEYs.
    insecure,
    /// Wanted answers with bogus IPSECKEYs (never used).
    bogus,
    /// IPSECKEY or address lookups that gave no verdict.
    lookup_failures,
    /// Secure keys whose answered addresses were not proven.
    addresses_not_proven,
    /// Malformed queries answered with FORMERR.
    formerr,
    /// Queries with an unsupported opcode answered with NOTIMP.
    notimp,
    /// Messages dropped unanswered (too short, responses, oversized TCP frames).
    dropped,
    /// Queries dropped or connections refused over the concurrency limits.
    shed,
    /// Queries no upstream answered (SERVFAIL returned).
    upstream_failures,
    /// Answers replaced by SERVFAIL because the group fails closed.
    failed_closed,
    /// TCP connections closed because their client took no answer within the write timeout.
    tcp_write_timeouts,
}

/// Counters plus the latest events.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) counters: Counters,
    recent: Mutex<VecDeque<TriggerEvent>>,
}

/// What the status socket shows of the stub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StubStats {
    /// Counters since start.
    pub counters: StubCounters,
    /// Mean hold of held answers, microseconds.
    pub hold_mean_us: u64,
    /// The latest trigger events, newest last.
    pub recent: Vec<TriggerEvent>,
}

impl Stats {
    pub(crate) fn bump(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn hold(&self, held: Duration) {
        let us = micros(held);
        let c = &self.counters;
        c.held.fetch_add(1, Ordering::Relaxed);
        c.hold_total_us.fetch_add(us, Ordering::Relaxed);
        c.hold_max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub(crate) fn event(&self, event: TriggerEvent) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(event);
    }

    pub(crate) fn snapshot(&self) -> StubStats {
        let counters = self.counters.snapshot();
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        StubStats {
            hold_mean_us: counters
                .hold_total_us
                .checked_div(counters.held)
                .unwrap_or(0),
            counters,
            recent,
        }
    }
}
