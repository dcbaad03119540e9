//! The core's side of DNS: which negotiations wait for which lookup (each lookup asked once, the
//! peers waiting on it listed), the bounds on lookups peers can make us start, and the latest
//! verdicts by query name: the one place `explain` and `dns-cache` read.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::SystemTime;

use oe_dns::{AddressVerdict, KeyVerdict, LookupTarget, Name};

use crate::ike_bounds::Source;
use crate::peer::PeerId;

/// A lookup the core waits for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Query {
    Key(LookupTarget),
    Addresses(Name),
}

impl Query {
    /// The name shown for it (`7.2.0.192.in-addr.arpa.`, `host.example./addresses`).
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Key(target) => target.query_name().to_string(),
            Self::Addresses(name) => format!("{name}/addresses"),
        }
    }
}

/// A verdict as the status socket shows it.
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    pub(crate) word: &'static str,
    /// DNSSEC proved there is no usable key (absent, insecure, no usable key).
    pub(crate) no_key: bool,
    pub(crate) text: String,
    pub(crate) keys: Vec<String>,
    pub(crate) until: SystemTime,
    pub(crate) at: SystemTime,
}

/// Bounds on the DNS work peers can make us do (their identities choose the names):
/// `[limits] peer_lookups` and `peer_lookups_per_source`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerLookupLimits {
    pub(crate) per_source: usize,
    pub(crate) total: usize,
}

impl PeerLookupLimits {
    pub(crate) fn of(limits: &crate::config::Limits) -> Self {
        Self {
            per_source: limits.peer_lookups_per_source,
            total: limits.peer_lookups,
        }
    }
}

impl Default for PeerLookupLimits {
    fn default() -> Self {
        Self::of(&crate::config::Limits::default())
    }
}

/// How long bogus and failed verdicts are shown (the cache keeps them as long: a minute, seconds).
const BOGUS_SHOWN: std::time::Duration = std::time::Duration::from_secs(60);
const FAILURE_SHOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// Query names remembered for `explain` at most.
const RECENT_MAX: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Dns {
    waiting: HashMap<Query, Vec<PeerId>>,
    /// When each lookup in flight was asked for.
    asked_at: HashMap<Query, std::time::Instant>,
    /// Peer-caused lookups in flight, by the source that caused them.
    peer_lookups: HashMap<Query, Source>,
    per_source: HashMap<Source, usize>,
    limits: PeerLookupLimits,
    recent: HashMap<String, Recent>,
    order: VecDeque<String>,
    pub(crate) lookups: u64,
    /// Lookups refused because peers at one address or all peers had too many in flight.
    pub(crate) refused: u64,
}

/// What [`Dns::ask`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Asked {
    /// A new lookup: send the command.
    Start,
    /// Already in flight: the peer waits with the others.
    Joined,
    /// Over the bounds for peer-caused lookups: not started.
    Refused,
}

impl Dns {
    pub(crate) fn set_limits(&mut self, limits: PeerLookupLimits) {
        self.limits = limits;
    }

    /// Registers `peer` as waiting for `query`. `caused_by` names the remote address when the
    /// peer's own identity chose the name (bounded per address and in total).
    pub(crate) fn ask(
        &mut self,
        query: &Query,
        peer: PeerId,
        caused_by: Option<IpAddr>,
        now: std::time::Instant,
    ) -> Asked {
        if let Some(waiters) = self.waiting.get_mut(query) {
            if !waiters.contains(&peer) {
                waiters.push(peer);
            }
            return Asked::Joined;
        }
        if let Some(source) = caused_by.map(Source::of) {
            let mine = self.per_source.get(&source).copied().unwrap_or(0);
            if mine >= self.limits.per_source || self.peer_lookups.len() >= self.limits.total {
                self.refused += 1;
                return Asked::Refused;
            }
            *self.per_source.entry(source).or_default() += 1;
            self.peer_lookups.insert(query.clone(), source);
        }
        self.waiting.insert(query.clone(), vec![peer]);
        self.asked_at.insert(query.clone(), now);
        self.lookups += 1;
        Asked::Start
    }

    /// A lookup finished: the peers that waited for it, and how long it took.
    pub(crate) fn complete(
        &mut self,
        query: &Query,
        now: std::time::Instant,
    ) -> (Vec<PeerId>, Option<std::time::Duration>) {
        let took = self
            .asked_at
            .remove(query)
            .map(|at| now.saturating_duration_since(at));
        if let Some(source) = self.peer_lookups.remove(query) {
            if let Some(n) = self.per_source.get_mut(&source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_source.remove(&source);
                }
            }
        }
        (self.waiting.remove(query).unwrap_or_default(), took)
    }

    /// Remembers a key verdict for `explain` and `dns-cache`.
    pub(crate) fn remember_key(&mut self, query: &Query, verdict: &KeyVerdict, now: SystemTime) {
        let until = match verdict {
            KeyVerdict::Secure { until, .. }
            | KeyVerdict::NoUsableKey { until, .. }
            | KeyVerdict::Absent { until, .. }
            | KeyVerdict::Insecure { until } => *until,
            KeyVerdict::Bogus { .. } => now + BOGUS_SHOWN,
            KeyVerdict::Failed { .. } => now + FAILURE_SHOWN,
        };
        let keys = verdict
            .keys()
            .map(|k| k.iter().map(|k| k.key.kind()).collect())
            .unwrap_or_default();
        self.remember(
            query.label(),
            Recent {
                word: verdict.word(),
                no_key: verdict.proves_no_key(),
                text: verdict.describe(now),
                keys,
                until,
                at: now,
            },
        );
    }

    /// Remembers an address verdict.
    pub(crate) fn remember_addresses(
        &mut self,
        query: &Query,
        verdict: &AddressVerdict,
        now: SystemTime,
    ) {
        let until = match verdict {
            AddressVerdict::Secure { until, .. }
            | AddressVerdict::Insecure { until }
            | AddressVerdict::Absent { until } => *until,
            AddressVerdict::Bogus { .. } => now + BOGUS_SHOWN,
            AddressVerdict::Failed { .. } => now + FAILURE_SHOWN,
        };
        self.remember(
            query.label(),
            Recent {
                word: verdict.word(),
                no_key: false,
                text: verdict.describe(),
                keys: Vec::new(),
                until,
                at: now,
            },
        );
    }

    fn remember(&mut self, label: String, recent: Recent) {
        if self.recent.insert(label.clone(), recent).is_none() {
            self.order.push_back(label);
        }
        while self.order.len() > RECENT_MAX {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }

    /// The latest verdict for a query name, while it holds.
    pub(crate) fn recent(&self, label: &str, now: SystemTime) -> Option<&Recent> {
        self.recent.get(label).filter(|r| r.until > now)
    }

    /// Every remembered verdict still valid at `now`, for `dns-cache`.
    pub(crate) fn entries(&self, now: SystemTime) -> impl Iterator<Item = (&String, &Recent)> {
        self.recent.iter().filter(move |(_, r)| r.until > now)
    }
}
