//! Answers for the status socket, built from the core's state. Answers that show byte counters
//! wait for one dump of the kernel's SAs.

use std::net::IpAddr;
use std::time::Instant;

use oe_dns::LookupTarget;

use super::{Core, Pending};
use crate::config::{Group, Match};
use crate::input::{Command, KernelOp, QueryId, TriggerView};
use crate::peer::{NegotiationShunt, Peer, PeerState};
use crate::protocol::{
    AddressExplanation, ChildSaReport, Counters, DnsCacheEntry, ExplainReport, IkeSaReport,
    KernelReport, PeerReport, Report, Request, Response, ShuntReport, StatusReport,
};

use super::kernel_events::report_match;

/// A query waiting for fresh counters.
#[derive(Debug)]
pub(super) struct Waiting {
    id: QueryId,
    what: Asked,
}

#[derive(Debug)]
enum Asked {
    Request(Request, Option<TriggerView>),
    Explain {
        host: String,
        addrs: Vec<IpAddr>,
        trigger: Option<TriggerView>,
    },
}

/// "; tunnel mode, UDP-encapsulated 4500 -> 31000 (NAT), our address 100.64.0.7 assigned by
/// the peer" (or, on a server, "its address ... assigned by us") for the first child of an
/// established peer.
fn transport_note(p: &Peer) -> String {
    let PeerState::Established(e) = &p.state else {
        return String::new();
    };
    let Some(c) = e.children.first() else {
        return String::new();
    };
    let vip = match (c.virtual_ip, p.lease) {
        (Some(a), _) => format!(", our address {a} assigned by the peer"),
        (None, Some(a)) => format!(", its address {a} assigned by us (address pool)"),
        (None, None) => String::new(),
    };
    format!(
        "; {} mode{}{vip}",
        super::install::mode_name(c.mode),
        super::install::encap_text(c.encap)
    )
}

fn secs_since(now: Instant, t: Instant) -> u64 {
    now.saturating_duration_since(t).as_secs()
}

impl Core {
    pub(super) fn on_query(&mut self, id: QueryId, request: Request, trigger: Option<TriggerView>) {
        let fresh = matches!(request, Request::Peers | Request::Status);
        self.answer_or_wait(id, Asked::Request(request, trigger), fresh);
    }

    pub(super) fn on_explain(
        &mut self,
        id: QueryId,
        host: String,
        addrs: Vec<IpAddr>,
        trigger: Option<TriggerView>,
    ) {
        self.answer_or_wait(
            id,
            Asked::Explain {
                host,
                addrs,
                trigger,
            },
            true,
        );
    }

    fn answer_or_wait(&mut self, id: QueryId, what: Asked, fresh: bool) {
        let established = self
            .peers
            .iter()
            .any(|p| matches!(p.state, PeerState::Established(_)));
        if !(fresh && established) {
            return self.answer(id, what);
        }
        if !self
            .pending
            .values()
            .any(|p| matches!(p, Pending::Counters))
        {
            self.kernel(KernelOp::DumpSas, Some(Pending::Counters));
        }
        self.queries.push(Waiting { id, what });
    }

    pub(super) fn answer_waiting_queries(&mut self) {
        for w in std::mem::take(&mut self.queries) {
            self.answer(w.id, w.what);
        }
    }

    fn answer(&mut self, id: QueryId, what: Asked) {
        let report = match what {
            Asked::Request(request, trigger) => match request {
                Request::Status => self.status_report(trigger.as_ref()),
                Request::Peers => self.peers_report(),
                Request::Shunts => self.shunts_report(),
                Request::DnsCache => self.dns_report(),
                Request::Events { .. } => Report::Events {
                    events: self.history.iter().cloned().collect(),
                },
                Request::Explain { host } => {
                    let addrs = host.parse::<IpAddr>().map(|a| vec![a]).unwrap_or_default();
                    self.explain_report(&host, &addrs, trigger.as_ref())
                }
                // Control requests come as `Input::Control` (resolved by the executor).
                Request::Retry { .. } | Request::Up { .. } | Request::Down { .. } => {
                    return self.commands.push_back(Command::Reply {
                        id,
                        response: Response::error(
                            crate::protocol::ErrorCode::BadRequest,
                            "a control request needs its host resolved first",
                        ),
                    });
                }
            },
            Asked::Explain {
                host,
                addrs,
                trigger,
            } => self.explain_report(&host, &addrs, trigger.as_ref()),
        };
        self.commands.push_back(Command::Reply {
            id,
            response: Response::ok(report),
        });
    }

    fn status_report(&self, trigger: Option<&TriggerView>) -> Report {
        let now = self.now.mono;
        let esp_ok = self.esp.is_ok();
        let state = if self.stopping {
            "stopping"
        } else if esp_ok {
            "running"
        } else {
            "degraded"
        };
        Report::Status(StatusReport {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: self.pid,
            uptime_secs: secs_since(now, self.started),
            state: state.into(),
            kernel: KernelReport {
                esp: esp_ok,
                detail: match &self.esp {
                    Ok(()) => "the kernel can install transport-mode ESP SAs".into(),
                    Err(why) => why.clone(),
                },
            },
            traps_installed: !self.traps.is_empty(),
            identity: self.identity.describe(),
            key: self.identity.key_description.clone(),
            peers: self.peers.len(),
            child_sas: self
                .peers
                .iter()
                .map(|p| match &p.state {
                    PeerState::Established(e) => e.children.len(),
                    _ => 0,
                })
                .sum(),
            shunts: self.peers.iter().filter(|p| shunt_of(p, now).is_some()).count(),
            dns_cache_entries: self.dns.entries(self.now.wall).count(),
            counters: Counters {
                dns_lookups: self.dns.lookups,
                ..self.counters.clone()
            },
            degraded_reason: self.esp.as_ref().err().map(|why| {
                format!("{why}; no trap policies are installed, so nothing is encrypted or held; status and lookups work")
            }),
            trigger: trigger.map(|t| t.summary.clone()),
            latency: self.latency.clone(),
        })
    }

    fn peers_report(&self) -> Report {
        let mut peers: Vec<PeerReport> = self
            .peers
            .iter()
            .filter(|p| !matches!(p.state, PeerState::Failed(_)) || !p.ikes.is_empty())
            .map(|p| self.peer_report(p))
            .collect();
        peers.sort_by_key(|p| p.address);
        Report::Peers { peers }
    }

    fn peer_report(&self, p: &Peer) -> PeerReport {
        let now = self.now.mono;
        let auth = p.authentication();
        let main = match &p.state {
            PeerState::Established(e) => e.children.last().map(|c| c.ike),
            _ => None,
        }
        .or_else(|| p.ikes.keys().next().copied());
        let info = main.and_then(|h| self.engines.get(&p.local)?.sa_info(h).map(|i| (h, i)));
        PeerReport {
            address: p.remote,
            state: p.state.name().into(),
            role: p.role().name().into(),
            identity: auth.map(|a| a.identity().to_owned()),
            authentication: auth.map(crate::peer::PeerAuthn::describe),
            ike_sa: info.map(|(h, info)| IkeSaReport {
                spi_i: format!("{:016x}", info.spi_i),
                spi_r: format!("{:016x}", info.spi_r),
                post_quantum: info
                    .post_quantum
                    .iter()
                    .map(|g| g.name().to_owned())
                    .collect(),
                proposal: info.proposal.unwrap_or_default(),
                established_secs_ago: p.ikes.get(&h).map_or(0, |i| secs_since(now, i.since)),
                rekey_in_secs: info
                    .rekey_at
                    .map_or(0, |r| r.saturating_duration_since(now).as_secs()),
            }),
            child_sas: match &p.state {
                PeerState::Established(e) => e
                    .children
                    .iter()
                    .map(|c| ChildSaReport {
                        spi_in: format!("{:08x}", c.inbound_spi),
                        spi_out: format!("{:08x}", c.outbound_spi),
                        esp: c.esp.clone(),
                        mode: super::install::mode_name(c.mode).into(),
                        encapsulation: c
                            .encap
                            .map(|(ours, theirs)| format!("UDP {ours} -> {theirs} (NAT)")),
                        virtual_ip: c.virtual_ip,
                        selectors: c.selectors.clone(),
                        bytes_in: c.counters.bytes.0,
                        bytes_out: c.counters.bytes.1,
                        packets_in: c.counters.packets.0,
                        packets_out: c.counters.packets.1,
                        idle_secs: Some(secs_since(now, c.counters.last_change)),
                        established_secs_ago: secs_since(now, c.installed),
                        rekey_in_secs: c
                            .rekey_after
                            .saturating_sub(now.saturating_duration_since(c.installed))
                            .as_secs(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
            assigned_ip: p.lease,
        }
    }

    fn shunts_report(&self) -> Report {
        let now = self.now.mono;
        let mut shunts: Vec<ShuntReport> = self
            .peers
            .iter()
            .filter_map(|p| {
                let s = shunt_of(p, now)?;
                Some(ShuntReport {
                    peer: p.remote,
                    action: s.action.into(),
                    stage: s.stage.into(),
                    group: p.group.group.name().into(),
                    reason: s.reason,
                    installed_secs_ago: secs_since(now, s.installed),
                    expires_in_secs: Some(s.expires.saturating_duration_since(now).as_secs()),
                })
            })
            .collect();
        shunts.sort_by_key(|s| s.peer);
        Report::Shunts { shunts }
    }

    fn dns_report(&self) -> Report {
        let wall = self.now.wall;
        let mut entries: Vec<DnsCacheEntry> = self
            .dns
            .entries(wall)
            .map(|(name, r)| DnsCacheEntry {
                name: name.clone(),
                outcome: r.word.into(),
                keys: r.keys.clone(),
                expires_in_secs: r.until.duration_since(wall).unwrap_or_default().as_secs(),
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Report::DnsCache { entries }
    }

    /// Why each of `addrs` (what `host` names) is or is not encrypted.
    fn explain_report(
        &self,
        host: &str,
        addrs: &[IpAddr],
        trigger: Option<&TriggerView>,
    ) -> Report {
        let addresses = addrs.iter().map(|a| self.explain_address(*a)).collect();
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let trigger = trigger
            .map(|t| {
                let problem = t
                    .summary
                    .upstream
                    .iter()
                    .filter_map(|u| u.problem.as_ref())
                    .map(|p| format!("the stub has no usable upstream resolver: {p}"));
                problem
                    .chain(
                        t.recent
                            .iter()
                            .filter(|(n, _)| n.trim_end_matches('.').eq_ignore_ascii_case(&name))
                            .map(|(_, line)| line.clone()),
                    )
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
        let peer = self.peers.owner_of(addr).and_then(|id| self.peers.get(id));
        // An address we assigned a client is in the group of the client's own address.
        let matched = match peer {
            Some(p) if p.lease == Some(addr) => p.group,
            _ => self.table.classify(addr, 0, 0),
        };
        let wall = self.now.wall;
        let mut dns: Vec<String> = peer
            .map(|p| {
                p.notes
                    .iter()
                    .map(|n| {
                        let ago = wall.duration_since(n.at).unwrap_or_default().as_secs();
                        format!("{}: {} ({ago}s ago)", n.query, n.outcome)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if dns.is_empty() {
            let reverse = LookupTarget::Reverse(addr).query_name().to_string();
            if let Some(r) = self.dns.recent(&reverse, wall) {
                let ago = wall.duration_since(r.at).unwrap_or_default().as_secs();
                dns.push(format!("{reverse}: {} ({ago}s ago)", r.text));
            }
        }
        AddressExplanation {
            address: addr,
            group: matched.group.name().into(),
            matched_entry: report_match(&matched),
            dns,
            ike: peer.and_then(|p| p.last_ike.clone()),
            current: self.current_state(peer, matched.group.initiates()),
            verdict: self.verdict(peer, &matched),
        }
    }

    fn current_state(&self, peer: Option<&Peer>, trapped: bool) -> String {
        let now = self.now.mono;
        if let Some(p) = peer {
            if let PeerState::Established(e) = &p.state {
                if let Some(child) = e.children.last() {
                    return format!(
                        "ESP SA {} (SPIs {:08x} in / {:08x} out)",
                        child.esp, child.inbound_spi, child.outbound_spi
                    );
                }
            }
            if let Some(s) = shunt_of(p, now) {
                let left = s.expires.saturating_duration_since(now).as_secs();
                return format!(
                    "{} shunt ({}, {left}s left): {}",
                    s.action, s.stage, s.reason
                );
            }
        }
        match (&self.esp, trapped) {
            (Err(_), _) => "nothing (the kernel cannot do ESP; no traps installed)".into(),
            (Ok(()), true) => "the group's trap: the next packet starts a negotiation".into(),
            (Ok(()), false) => "no agent policy (traffic flows per the group)".into(),
        }
    }

    fn verdict(&self, peer: Option<&Peer>, matched: &Match) -> String {
        if let Err(why) = &self.esp {
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
        let nat = p
            .behind_nat
            .as_ref()
            .map_or_else(String::new, |n| format!("; {n}"));
        let how = transport_note(p);
        match (&p.state, p.authentication()) {
            (PeerState::Established(_), Some(auth)) if auth.is_anonymous() => format!(
                "encrypted, unauthenticated: ESP with {} ({}); this protects against passive eavesdroppers only{how}{nat}",
                auth.identity(),
                auth.describe()
            ),
            (PeerState::Established(_), Some(auth)) => format!(
                "encrypted: ESP with {} authenticated by {}{}{how}{nat}",
                auth.identity(),
                auth.describe(),
                self.post_quantum_note(p)
            ),
            (PeerState::Established(_), None) => "encrypted".into(),
            (PeerState::Negotiating(_), _) => "negotiating now".into(),
            (PeerState::Failed(f), _) => {
                let action = match &f.shunt {
                    Some(s) if s.pass => "pass",
                    Some(_) => "drop",
                    None => "none",
                };
                format!("not encrypted: {} (failure shunt: {action})", f.reason)
            }
        }
    }
}

impl Core {
    /// "; post-quantum: ML_KEM_768" or "; not post-quantum".
    fn post_quantum_note(&self, p: &Peer) -> String {
        let pq: Vec<String> = p
            .ikes
            .keys()
            .filter_map(|h| self.engines.get(&p.local)?.sa_info(*h))
            .flat_map(|i| {
                i.post_quantum
                    .iter()
                    .map(|g| g.name().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        match pq.first() {
            Some(name) => format!("; post-quantum key exchange: {name}"),
            None => "; not post-quantum protected (classical key exchange only)".into(),
        }
    }
}

/// A shunt as reported.
struct ShuntView {
    action: &'static str,
    stage: &'static str,
    reason: String,
    installed: Instant,
    expires: Instant,
}

fn shunt_of(p: &Peer, _now: Instant) -> Option<ShuntView> {
    match &p.state {
        PeerState::Negotiating(n) => match &n.shunt {
            NegotiationShunt::Hold => Some(ShuntView {
                action: "hold",
                stage: "negotiation",
                reason: "negotiating; the kernel holds the flow".into(),
                installed: n.since,
                expires: n.deadline,
            }),
            NegotiationShunt::Pass {
                reason, installed, ..
            } => Some(ShuntView {
                action: "pass",
                stage: "negotiation",
                reason: reason.clone(),
                installed: *installed,
                expires: n.deadline,
            }),
            NegotiationShunt::None => None,
        },
        PeerState::Failed(f) => f.shunt.as_ref().map(|s| ShuntView {
            action: if s.pass { "pass" } else { "drop" },
            stage: "failure",
            reason: f.reason.clone(),
            installed: f.at,
            expires: f.until,
        }),
        PeerState::Established(_) => None,
    }
}
