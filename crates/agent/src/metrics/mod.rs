//! The agent's state as metrics: counters and gauges built from the status socket's reports
//! (docs/status-protocol.md), written as OpenMetrics text ([`openmetrics`]).
//!
//! A pure function from a [`Snapshot`] (the answers to `status`, `peers`, `shunts` and
//! `dns-cache`) to metric families, so `oe metrics` (and a future HTTP endpoint) need only ask the
//! socket. Series with a fixed set of label values are always written, zeros included, so a
//! state that is absent now still has a series to graph; values outside the documented sets are
//! written too, as they come.

pub mod openmetrics;

use openmetrics::{Family, Kind, Value};

use crate::status::protocol::{
    DnsCacheEntry, PeerReport, Report, Request, ShuntReport, StatusReport, TriggerSummary,
};

/// The reports the metrics are built from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: StatusReport,
    pub peers: Vec<PeerReport>,
    pub shunts: Vec<ShuntReport>,
    pub dns_cache: Vec<DnsCacheEntry>,
}

impl Snapshot {
    /// The requests whose answers make a snapshot, in the order [`Snapshot::from_reports`] takes.
    pub const REQUESTS: [Request; 4] = [
        Request::Status,
        Request::Peers,
        Request::Shunts,
        Request::DnsCache,
    ];

    /// A snapshot from the answers to [`Snapshot::REQUESTS`], in that order.
    pub fn from_reports(reports: impl IntoIterator<Item = Report>) -> Option<Self> {
        let mut it = reports.into_iter();
        match (it.next(), it.next(), it.next(), it.next()) {
            (
                Some(Report::Status(status)),
                Some(Report::Peers { peers }),
                Some(Report::Shunts { shunts }),
                Some(Report::DnsCache { entries }),
            ) => Some(Self {
                status,
                peers,
                shunts,
                dns_cache: entries,
            }),
            _ => None,
        }
    }
}

/// Peer states (`peers[].state`).
const PEER_STATES: &[&str] = &["negotiating", "established", "failed"];
/// Agent states (`status.state`).
const AGENT_STATES: &[&str] = &["running", "degraded", "stopping"];
/// Shunt actions and stages.
const SHUNT_ACTIONS: &[&str] = &["pass", "hold", "drop"];
const SHUNT_STAGES: &[&str] = &["negotiation", "failure"];
/// DNS outcomes (`dns-cache` entries).
const DNS_OUTCOMES: &[&str] = &["secure", "insecure", "absent", "bogus", "failure"];

/// Every family, in a fixed order.
pub fn families(s: &Snapshot) -> Vec<Family> {
    let mut all = agent(&s.status);
    all.extend(negotiations(&s.status));
    all.extend(security_associations(s));
    all.extend(shunts(&s.shunts));
    all.extend(dns(s));
    all.extend(latencies(&s.status));
    if let Some(t) = &s.status.trigger {
        all.extend(trigger(t));
    }
    all
}

/// The snapshot as OpenMetrics text.
pub fn render(s: &Snapshot) -> String {
    openmetrics::render(&families(s))
}

fn int(v: u64) -> Value {
    Value::Int(v)
}

fn count(n: usize) -> Value {
    Value::Int(u64::try_from(n).unwrap_or(u64::MAX))
}

fn flag(b: bool) -> Value {
    Value::Int(u64::from(b))
}

fn agent(s: &StatusReport) -> Vec<Family> {
    vec![
        Family::new("oe_build", Kind::Info, "The agent's version.")
            .sample(&[("version", &s.version)], int(1)),
        stateset(
            "oe_agent_state",
            "The agent's state: running, degraded (no ESP: status and lookups only) or stopping.",
            AGENT_STATES,
            &s.state,
        ),
        Family::new(
            "oe_uptime_seconds",
            Kind::Gauge,
            "Seconds since the agent started.",
        )
        .unit("seconds")
        .value(int(s.uptime_secs)),
        Family::new(
            "oe_kernel_esp",
            Kind::Gauge,
            "1 if the kernel can install ESP SAs.",
        )
        .value(flag(s.kernel.esp)),
        Family::new(
            "oe_traps_installed",
            Kind::Gauge,
            "1 if the opportunistic groups' trap policies are installed.",
        )
        .value(flag(s.traps_installed)),
    ]
}

/// A StateSet: one sample per known state, plus `current` if it is not one of them.
fn stateset(name: &'static str, help: &'static str, known: &[&str], current: &str) -> Family {
    let mut family = Family::new(name, Kind::StateSet, help);
    for state in known {
        family = family.sample(&[(name, state)], flag(*state == current));
    }
    if !known.contains(&current) {
        family = family.sample(&[(name, current)], int(1));
    }
    family
}

fn negotiations(s: &StatusReport) -> Vec<Family> {
    let c = &s.counters;
    vec![
        Family::new(
            "oe_acquires",
            Kind::Counter,
            "Kernel ACQUIREs (first packets to hosts without an SA).",
        )
        .value(int(c.acquires)),
        Family::new(
            "oe_negotiations_started",
            Kind::Counter,
            "IKE negotiations started as initiator.",
        )
        .value(int(c.negotiations_started)),
        Family::new(
            "oe_negotiations",
            Kind::Counter,
            "IKE negotiations finished, by outcome.",
        )
        .sample(&[("outcome", "succeeded")], int(c.negotiations_succeeded))
        .sample(&[("outcome", "failed")], int(c.negotiations_failed)),
        Family::new(
            "oe_responder_sas",
            Kind::Counter,
            "IKE SAs established as responder.",
        )
        .value(int(c.responder_sas)),
        Family::new("oe_rekeys", Kind::Counter, "Rekeyed IKE and child SAs.").value(int(c.rekeys)),
        Family::new(
            "oe_idle_teardowns",
            Kind::Counter,
            "Child SAs torn down for lack of traffic.",
        )
        .value(int(c.idle_teardowns)),
    ]
}

fn security_associations(s: &Snapshot) -> Vec<Family> {
    let mut peers = Family::new("oe_peers", Kind::Gauge, "Peers, by state of their IKE SA.");
    for state in known_then_seen(PEER_STATES, s.peers.iter().map(|p| p.state.as_str())) {
        let n = s.peers.iter().filter(|p| p.state == state).count();
        peers = peers.sample(&[("state", &state)], count(n));
    }
    let children = s.peers.iter().flat_map(|p| &p.child_sas);
    let (bytes_in, bytes_out) = children.clone().fold((0u64, 0u64), |(i, o), c| {
        (i.saturating_add(c.bytes_in), o.saturating_add(c.bytes_out))
    });
    vec![
        peers,
        Family::new("oe_child_sas", Kind::Gauge, "Installed child SA pairs.")
            .value(count(children.count())),
        Family::new(
            "oe_child_sa_traffic_bytes",
            Kind::Gauge,
            "Bytes carried by the installed child SAs (drops when SAs go).",
        )
        .unit("bytes")
        .sample(&[("direction", "in")], int(bytes_in))
        .sample(&[("direction", "out")], int(bytes_out)),
    ]
}

fn shunts(list: &[ShuntReport]) -> Vec<Family> {
    let mut family = Family::new(
        "oe_shunts",
        Kind::Gauge,
        "Shunts (hosts in clear, held or dropped instead of encrypted), by action and stage.",
    );
    let actions = known_then_seen(SHUNT_ACTIONS, list.iter().map(|s| s.action.as_str()));
    let stages = known_then_seen(SHUNT_STAGES, list.iter().map(|s| s.stage.as_str()));
    for action in &actions {
        for stage in &stages {
            let n = list
                .iter()
                .filter(|s| &s.action == action && &s.stage == stage)
                .count();
            family = family.sample(&[("action", action), ("stage", stage)], count(n));
        }
    }
    vec![family]
}

fn dns(s: &Snapshot) -> Vec<Family> {
    let mut cache = Family::new(
        "oe_dns_cache_entries",
        Kind::Gauge,
        "Validated IPSECKEY lookups held in the cache, by DNSSEC outcome.",
    );
    for outcome in known_then_seen(DNS_OUTCOMES, s.dns_cache.iter().map(|e| e.outcome.as_str())) {
        let n = s.dns_cache.iter().filter(|e| e.outcome == outcome).count();
        cache = cache.sample(&[("outcome", &outcome)], count(n));
    }
    vec![
        Family::new(
            "oe_dns_lookups",
            Kind::Counter,
            "Validated DNS lookups made by the agent.",
        )
        .value(int(s.status.counters.dns_lookups)),
        cache,
    ]
}

fn latencies(s: &StatusReport) -> Vec<Family> {
    let h = |name, help, v: &crate::status::protocol::Histogram| {
        Family::new(name, Kind::Histogram, help)
            .unit("seconds")
            .histogram(&v.cumulative(), v.count, v.sum_seconds)
    };
    vec![
        h(
            "oe_dns_lookup_duration_seconds",
            "Validated DNS lookups the agent asked for, from request to verdict.",
            &s.latency.dns_lookup,
        ),
        h(
            "oe_negotiation_duration_seconds",
            "Negotiations from their start (ACQUIRE, DNS trigger, oe up) to the first child SA in the kernel.",
            &s.latency.negotiation,
        ),
    ]
}

fn trigger(t: &TriggerSummary) -> Vec<Family> {
    vec![
        Family::new(
            "oe_trigger_queries",
            Kind::Counter,
            "Queries the DNS trigger's stub received (UDP and TCP).",
        )
        .value(int(t.queries)),
        Family::new(
            "oe_trigger_opportunistic",
            Kind::Counter,
            "A/AAAA answers in an opportunistic group (an IPSECKEY lookup ran beside them).",
        )
        .value(int(t.opportunistic)),
        Family::new(
            "oe_trigger_keys",
            Kind::Counter,
            "The stub's IPSECKEY lookups, by outcome (only secure keys start IKE).",
        )
        .sample(&[("outcome", "secure")], int(t.secure_keys))
        .sample(&[("outcome", "no-key")], int(t.no_key))
        .sample(&[("outcome", "insecure")], int(t.insecure))
        .sample(&[("outcome", "bogus")], int(t.bogus))
        .sample(&[("outcome", "failed")], int(t.lookup_failures)),
        Family::new(
            "oe_trigger_holds",
            Kind::Counter,
            "Answers held until IKE was done.",
        )
        .value(int(t.held)),
        Family::new(
            "oe_trigger_hold_expired",
            Kind::Counter,
            "Holds that ran out of time before the SA was up.",
        )
        .value(int(t.hold_expired)),
        Family::new(
            "oe_trigger_hold_mean_seconds",
            Kind::Gauge,
            "Mean time an answer was held.",
        )
        .unit("seconds")
        .value(Value::Float(t.hold_mean_ms / 1000.0)),
        Family::new(
            "oe_trigger_late_keys",
            Kind::Counter,
            "Secure keys that arrived after the answer was released.",
        )
        .value(int(t.late_keys)),
        Family::new(
            "oe_trigger_addresses_not_proven",
            Kind::Counter,
            "Secure keys whose answered addresses were not proven.",
        )
        .value(int(t.addresses_not_proven)),
        Family::new(
            "oe_trigger_errors",
            Kind::Counter,
            "Queries the stub could not serve normally, by kind.",
        )
        .sample(&[("kind", "formerr")], int(t.formerr))
        .sample(&[("kind", "notimp")], int(t.notimp))
        .sample(&[("kind", "dropped")], int(t.dropped))
        .sample(&[("kind", "shed")], int(t.shed))
        .sample(&[("kind", "upstream-failure")], int(t.upstream_failures)),
    ]
}

/// The known values in order, then any other value seen, once each.
fn known_then_seen<'a>(known: &[&str], seen: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut all: Vec<String> = known.iter().map(|s| (*s).to_owned()).collect();
    for value in seen {
        if !all.iter().any(|v| v == value) {
            all.push(value.to_owned());
        }
    }
    all
}

#[cfg(test)]
mod tests;
