use std::collections::HashSet;

use super::openmetrics::{valid_name, Kind, Value};
use super::*;
use crate::status::protocol::{ChildSaReport, Counters, KernelReport};

fn status(trigger: Option<TriggerSummary>) -> StatusReport {
    StatusReport {
        version: "0.1.0".into(),
        pid: 7,
        uptime_secs: 3725,
        state: "running".into(),
        kernel: KernelReport {
            esp: true,
            detail: "ok".into(),
        },
        traps_installed: true,
        identity: "address".into(),
        key: "Ed25519".into(),
        peers: 3,
        child_sas: 2,
        shunts: 3,
        dns_cache_entries: 4,
        counters: Counters {
            acquires: 9,
            negotiations_started: 9,
            negotiations_succeeded: 7,
            negotiations_failed: 2,
            responder_sas: 1,
            dns_lookups: 15,
            rekeys: 3,
            idle_teardowns: 1,
        },
        degraded_reason: None,
        trigger,
        latency: Default::default(),
    }
}

fn child(bytes_in: u64, bytes_out: u64) -> ChildSaReport {
    ChildSaReport {
        spi_in: "c0ffee01".into(),
        spi_out: "c0ffee02".into(),
        esp: "AES_GCM_16_256".into(),
        mode: "transport".into(),
        encapsulation: None,
        virtual_ip: None,
        selectors: "a <-> b".into(),
        bytes_in,
        bytes_out,
        packets_in: 1,
        packets_out: 1,
        idle_secs: None,
        established_secs_ago: 1,
        rekey_in_secs: 1,
    }
}

fn peer(address: &str, state: &str, children: Vec<ChildSaReport>) -> PeerReport {
    PeerReport {
        address: address.parse().unwrap(),
        state: state.into(),
        role: "initiator".into(),
        identity: None,
        authentication: None,
        ike_sa: None,
        child_sas: children,
        assigned_ip: None,
    }
}

fn shunt(action: &str, stage: &str) -> ShuntReport {
    ShuntReport {
        peer: "198.51.100.9".parse().unwrap(),
        action: action.into(),
        stage: stage.into(),
        group: "private-or-clear".into(),
        reason: "no key".into(),
        installed_secs_ago: 1,
        expires_in_secs: Some(5),
    }
}

fn entry(outcome: &str) -> DnsCacheEntry {
    DnsCacheEntry {
        name: "x.".into(),
        outcome: outcome.into(),
        keys: vec![],
        expires_in_secs: 1,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        status: status(Some(TriggerSummary {
            queries: 40,
            secure_keys: 5,
            no_key: 20,
            held: 5,
            hold_mean_ms: 12.5,
            ..TriggerSummary::default()
        })),
        peers: vec![
            peer(
                "192.0.2.2",
                "established",
                vec![child(1000, 10), child(5, 7)],
            ),
            peer("192.0.2.3", "negotiating", vec![]),
            peer("192.0.2.4", "rekeying", vec![]),
        ],
        shunts: vec![
            shunt("pass", "failure"),
            shunt("pass", "failure"),
            shunt("hold", "negotiation"),
        ],
        dns_cache: vec![
            entry("secure"),
            entry("bogus"),
            entry("absent"),
            entry("absent"),
        ],
    }
}

/// (sample name as written, labels) -> value.
fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Value {
    let found: Vec<Value> = families
        .iter()
        .filter(|f| format!("{}{}", f.name, suffix(f.kind)) == name)
        .flat_map(|f| &f.samples)
        .filter(|s| {
            s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
        })
        .map(|s| s.value)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]
}

fn suffix(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "_total",
        Kind::Info => "_info",
        _ => "",
    }
}

#[test]
fn names_are_valid_unique_and_carry_their_unit() {
    let families = families(&snapshot());
    let mut names = HashSet::new();
    for f in &families {
        assert!(
            valid_name(f.name) && f.name.starts_with("oe_"),
            "{}",
            f.name
        );
        assert!(names.insert(f.name), "{} twice", f.name);
        assert!(!f.samples.is_empty(), "{} has no sample", f.name);
        if let Some(unit) = f.unit {
            assert!(f.name.ends_with(&format!("_{unit}")), "{}", f.name);
        }
        for s in &f.samples {
            assert!(s.labels.iter().all(|(k, _)| valid_name(k)), "{}", f.name);
        }
    }
}

#[test]
fn counters_come_from_the_status_report() {
    let f = families(&snapshot());
    assert_eq!(value(&f, "oe_acquires_total", &[]), Value::Int(9));
    assert_eq!(
        value(&f, "oe_negotiations_total", &[("outcome", "succeeded")]),
        Value::Int(7)
    );
    assert_eq!(
        value(&f, "oe_negotiations_total", &[("outcome", "failed")]),
        Value::Int(2)
    );
    assert_eq!(value(&f, "oe_dns_lookups_total", &[]), Value::Int(15));
    assert_eq!(
        value(&f, "oe_build_info", &[("version", "0.1.0")]),
        Value::Int(1)
    );
    assert_eq!(
        value(&f, "oe_agent_state", &[("oe_agent_state", "running")]),
        Value::Int(1)
    );
    assert_eq!(
        value(&f, "oe_agent_state", &[("oe_agent_state", "degraded")]),
        Value::Int(0)
    );
    assert_eq!(
        value(&f, "oe_trigger_keys_total", &[("outcome", "no-key")]),
        Value::Int(20)
    );
    assert_eq!(
        value(&f, "oe_trigger_hold_mean_seconds", &[]),
        Value::Float(0.0125)
    );
}

#[test]
fn gauges_count_the_reports_with_zeros_and_unknown_values() {
    let f = families(&snapshot());
    assert_eq!(
        value(&f, "oe_peers", &[("state", "established")]),
        Value::Int(1)
    );
    assert_eq!(value(&f, "oe_peers", &[("state", "failed")]), Value::Int(0));
    assert_eq!(
        value(&f, "oe_peers", &[("state", "rekeying")]),
        Value::Int(1)
    );
    assert_eq!(value(&f, "oe_child_sas", &[]), Value::Int(2));
    assert_eq!(
        value(&f, "oe_child_sa_traffic_bytes", &[("direction", "in")]),
        Value::Int(1005)
    );
    assert_eq!(
        value(&f, "oe_shunts", &[("action", "pass"), ("stage", "failure")]),
        Value::Int(2)
    );
    assert_eq!(
        value(
            &f,
            "oe_shunts",
            &[("action", "drop"), ("stage", "negotiation")]
        ),
        Value::Int(0)
    );
    assert_eq!(
        value(&f, "oe_dns_cache_entries", &[("outcome", "absent")]),
        Value::Int(2)
    );
    assert_eq!(
        value(&f, "oe_dns_cache_entries", &[("outcome", "insecure")]),
        Value::Int(0)
    );
}

#[test]
fn an_unknown_agent_state_is_still_a_state() {
    let mut s = snapshot();
    s.status.state = "starting".into();
    let f = families(&s);
    assert_eq!(
        value(&f, "oe_agent_state", &[("oe_agent_state", "starting")]),
        Value::Int(1)
    );
    assert_eq!(
        value(&f, "oe_agent_state", &[("oe_agent_state", "running")]),
        Value::Int(0)
    );
}

#[test]
fn without_the_trigger_there_are_no_trigger_families() {
    let mut s = snapshot();
    s.status.trigger = None;
    assert!(families(&s)
        .iter()
        .all(|f| !f.name.starts_with("oe_trigger")));
    assert!(families(&snapshot())
        .iter()
        .any(|f| f.name == "oe_trigger_queries"));
}

#[test]
fn docs_metrics_md_lists_exactly_the_families() {
    let doc = include_str!("../../../../docs/metrics.md");
    let documented: HashSet<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("oe_"))
        .collect();
    let written: HashSet<&str> = families(&snapshot()).iter().map(|f| f.name).collect();
    assert_eq!(documented, written);
}
