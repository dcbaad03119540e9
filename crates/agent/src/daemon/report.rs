//! Answers for the status socket, built from the agent's state.

use std::net::IpAddr;
use std::time::Instant;

use super::agent::Agent;
use super::initiator::describe_match;
use super::state::{Peer, Phase};
use crate::status::protocol::{
    AddressExplanation, ChildSaReport, DnsCacheEntry, ExplainReport, IkeSaReport, KernelReport,
    PeerReport, Report, ShuntReport, StatusReport,
};

fn secs_since(t: Instant) -> u64 {
    Instant::now().saturating_duration_since(t).as_secs()
}

impl Agent {
    pub(crate) fn status_report(&self) -> Report {
        let esp_ok = self.esp.is_ok();
        Report::Status(StatusReport {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            uptime_secs: secs_since(self.started),
            state: if self.stopping { "stopping" } else if esp_ok { "running" } else { "degraded" }.into(),
            kernel: KernelReport {
                esp: esp_ok,
                detail: match &self.esp {
                    Ok(()) => "the kernel can install transport-mode ESP SAs".into(),
                    Err(why) => why.clone(),
                },
            },
            traps_installed: !self.base_installed.is_empty(),
            identity: self.identity_text(),
            key: self.key_description.clone(),
            peers: self.peers.len(),
            child_sas: self.peers.values().map(|p| p.children.len()).sum(),
            shunts: self.peers.values().filter(|p| p.shunt.is_some()).count(),
            dns_cache_entries: self.dns.entries().len(),
            counters: crate::status::protocol::Counters { dns_lookups: self.dns.lookups, ..self.counters.clone() },
            degraded_reason: self.esp.as_ref().err().map(|why| {
                format!("{why}; no trap policies are installed, so nothing is encrypted or held; status and lookups work")
            }),
            trigger: self.stub.as_ref().map(trigger_summary),
        })
    }

    pub(crate) fn peers_report(&self) -> Report {
        let mut peers: Vec<PeerReport> = self
            .peers
            .values()
            .filter(|p| {
                p.ike.is_some()
                    || !p.children.is_empty()
                    || matches!(p.phase, Phase::Negotiating { .. })
            })
            .map(|p| peer_report(p, self.ike_info(p)))
            .collect();
        peers.sort_by_key(|p| p.address);
        Report::Peers { peers }
    }

    pub(crate) fn shunts_report(&self) -> Report {
        let mut shunts: Vec<ShuntReport> = self
            .peers
            .values()
            .filter_map(|p| {
                let s = p.shunt.as_ref()?;
                Some(ShuntReport {
                    peer: p.addr,
                    action: s.action.into(),
                    stage: s.stage.into(),
                    group: p.group.group.name().into(),
                    reason: s.reason.clone(),
                    installed_secs_ago: secs_since(s.installed),
                    expires_in_secs: s
                        .expires
                        .map(|e| e.saturating_duration_since(Instant::now()).as_secs()),
                })
            })
            .collect();
        shunts.sort_by_key(|s| s.peer);
        Report::Shunts { shunts }
    }

    pub(crate) fn dns_report(&self) -> Report {
        let entries = self
            .dns
            .entries()
            .into_iter()
            .map(|(name, outcome, left)| DnsCacheEntry {
                name,
                outcome: outcome.word().into(),
                keys: match &outcome {
                    super::dnsq::KeyOutcome::Secure { described, .. } => described.clone(),
                    _ => vec![],
                },
                expires_in_secs: left,
            })
            .collect();
        Report::DnsCache { entries }
    }

    pub(crate) fn events_report(&self) -> Report {
        Report::Events {
            events: self.history.iter().cloned().collect(),
        }
    }

    /// Why each of `addrs` (what `host` names) is or is not encrypted.
    pub(crate) fn explain_report(&self, host: &str, addrs: &[IpAddr]) -> Report {
        let addresses = addrs.iter().map(|a| self.explain_address(*a)).collect();
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let trigger = self
            .stub
            .as_ref()
            .map(|stub| {
                stub.stats()
                    .recent
                    .iter()
                    .filter(|e| e.name.trim_end_matches('.').eq_ignore_ascii_case(&name))
                    .map(|e| {
                        format!(
                            "{} {}: {} (answer held {} ms)",
                            e.name,
                            e.qtype,
                            e.decision.word(),
                            e.held_us / 1000
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Report::Explain(ExplainReport {
            host: host.to_owned(),
            trigger,
            addresses,
        })
    }

    fn explain_address(&self, addr: IpAddr) -> AddressExplanation {
        let matched = self.table.classify(addr, 0, 0);
        let peer = self.peers.get(&addr);
        let mut dns: Vec<String> = peer
            .map(|p| {
                p.dns
                    .iter()
                    .map(|n| {
                        format!(
                            "{}: {} ({}s ago)",
                            n.name,
                            n.outcome,
                            n.at.elapsed().unwrap_or_default().as_secs()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let reverse = super::dnsq::key(&oe_dns::LookupTarget::Reverse(addr));
        if dns.is_empty() {
            if let Some(outcome) = self.dns.cached(&reverse) {
                dns.push(format!("{reverse}: {}", outcome.summary()));
            }
        }
        let current = current_state(peer, &self.esp, matched.group.initiates());
        let verdict = verdict(peer, &matched, &self.esp);
        AddressExplanation {
            address: addr,
            group: matched.group.name().into(),
            matched_entry: describe_match(&matched),
            dns,
            ike: peer.and_then(|p| p.last_ike.clone()),
            current,
            verdict,
        }
    }
}

fn trigger_summary(stub: &oe_dns::trigger::Stub) -> crate::status::protocol::TriggerSummary {
    let stats = stub.stats();
    let c = &stats.counters;
    crate::status::protocol::TriggerSummary {
        listen: stub.local_addrs().iter().map(ToString::to_string).collect(),
        queries: c.udp_queries + c.tcp_queries,
        opportunistic: c.opportunistic,
        secure_keys: c.secure_keys,
        held: c.held,
        hold_mean_ms: stats.hold_mean_us as f64 / 1000.0,
        hold_expired: c.hold_expired,
        no_key: c.no_key,
        insecure: c.insecure,
        bogus: c.bogus,
        formerr: c.formerr,
        upstream_failures: c.upstream_failures,
        late_keys: c.late_keys,
        lookup_failures: c.lookup_failures,
        addresses_not_proven: c.addresses_not_proven,
        dropped: c.dropped,
        shed: c.shed,
        notimp: c.notimp,
    }
}

fn current_state(peer: Option<&Peer>, esp: &Result<(), String>, trapped: bool) -> String {
    if let Some(p) = peer {
        if let Some(child) = p.children.first() {
            return format!(
                "ESP SA {} (SPIs {:08x} in / {:08x} out)",
                child.esp, child.inbound_spi, child.outbound_spi
            );
        }
        if let Some(s) = &p.shunt {
            let left = s
                .expires
                .map(|e| e.saturating_duration_since(Instant::now()).as_secs())
                .unwrap_or(0);
            return format!(
                "{} shunt ({}, {left}s left): {}",
                s.action, s.stage, s.reason
            );
        }
    }
    match (esp, trapped) {
        (Err(_), _) => "nothing (the kernel cannot do ESP; no traps installed)".into(),
        (Ok(()), true) => "the group's trap: the next packet starts a negotiation".into(),
        (Ok(()), false) => "no agent policy (traffic flows per the group)".into(),
    }
}

fn verdict(
    peer: Option<&Peer>,
    matched: &crate::config::Match,
    esp: &Result<(), String>,
) -> String {
    use crate::config::Group;
    if let Err(why) = esp {
        return format!("not encrypted: {why}");
    }
    match matched.group {
        Group::Clear => return "not encrypted: the policy group is clear".into(),
        Group::Block => return "blocked by the policy group".into(),
        _ => {}
    }
    let Some(p) = peer else {
        return match matched.group {
            Group::ClearOrPrivate => {
                "not encrypted: clear-or-private only answers peers that ask".into()
            }
            _ => "not encrypted yet: no traffic to it since the agent started (the trap waits)"
                .into(),
        };
    };
    match &p.phase {
        Phase::Established { .. } => format!(
            "encrypted: ESP with {} authenticated by {}",
            p.peer_id.as_deref().unwrap_or("?"),
            p.authentication.as_deref().unwrap_or("?")
        ),
        Phase::Negotiating { .. } => "negotiating now".into(),
        Phase::Failed { reason, .. } => {
            let action = p.shunt.as_ref().map_or("no shunt", |s| s.action);
            format!("not encrypted: {reason} (failure shunt: {action})")
        }
    }
}

impl Agent {
    fn ike_info(&self, p: &Peer) -> Option<oe_ike::SaInfo> {
        self.endpoints.get(&p.local)?.sa_info(p.ike?)
    }
}

fn peer_report(p: &Peer, info: Option<oe_ike::SaInfo>) -> PeerReport {
    PeerReport {
        address: p.addr,
        state: p.state_name().into(),
        role: p.role.name().into(),
        identity: p.peer_id.clone(),
        authentication: p.authentication.clone(),
        ike_sa: p.ike_established.zip(info).map(|(t, info)| IkeSaReport {
            spi_i: format!("{:016x}", info.spi_i),
            spi_r: format!("{:016x}", info.spi_r),
            proposal: info.proposal.unwrap_or_default(),
            established_secs_ago: secs_since(t),
            rekey_in_secs: info
                .rekey_at
                .map_or(0, |r| r.saturating_duration_since(Instant::now()).as_secs()),
        }),
        child_sas: p
            .children
            .iter()
            .map(|c| ChildSaReport {
                spi_in: format!("{:08x}", c.inbound_spi),
                spi_out: format!("{:08x}", c.outbound_spi),
                esp: c.esp.clone(),
                selectors: c.selectors.clone(),
                bytes_in: c.last_bytes.0,
                bytes_out: c.last_bytes.1,
                packets_in: c.packets.0,
                packets_out: c.packets.1,
                idle_secs: Some(secs_since(c.last_change)),
                established_secs_ago: secs_since(c.installed),
                rekey_in_secs: c
                    .rekey_after
                    .saturating_sub(Instant::now().saturating_duration_since(c.installed))
                    .as_secs(),
            })
            .collect(),
    }
}
