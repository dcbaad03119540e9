//! The agent's core: one task that owns every piece of state (the IKE endpoints, the peers, the kernel
//! client, the DNS service) and reacts to inputs one at a time. Handlers for each concern live in sibling
//! modules (`initiator`, `engine_events`, `lifecycle`, `report`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oe_ike::wire::Identity;
use oe_ike::{Endpoint, LocalAuth, SaHandle};
use oe_kernel::{Ownership, Reqid, Xfrm};
use tokio::sync::{broadcast, mpsc};

use super::dnsq::DnsService;
use super::sockets::{local_address_towards, Sockets};
use super::state::Peer;
use super::Input;
use crate::config::{Config, GroupTable};
use crate::status::protocol::{Counters, EventReport};

/// Reqids 1..=TRAP_REQIDS of our range are for trap policies, one picked per run.
pub(crate) const TRAP_REQIDS: u32 = 1024;

/// A trap reqid for this run, different from the last run's.
///
/// An ACQUIRE leaves a larval state (SPI 0, the trap's reqid) that suppresses further ACQUIREs for the flow
/// for `xfrm_acq_expires` (30 s) and cannot be deleted by DELSA. If the agent dies mid-negotiation and the
/// restarted agent reused the same trap reqid, the kernel would match that larval state and stay silent:
/// the flow would hang until it expired. With a fresh reqid the next packet raises a fresh ACQUIRE.
pub(crate) fn trap_reqid_for_this_run(ownership: &Ownership) -> Reqid {
    let mut seed = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let n = 1 + u32::from_le_bytes(seed) % TRAP_REQIDS;
    ownership
        .reqid(n)
        .unwrap_or_else(|| ownership.probe_reqid())
}

/// How many events `oe events` shows from history.
const EVENT_HISTORY: usize = 200;

/// Our identity as configured, resolved at start.
#[derive(Debug, Clone)]
pub(crate) enum LocalId {
    /// The local address of each IKE SA (publish IPSECKEY in the reverse zone).
    Address,
    Fqdn(String),
    /// Anonymous: NULL authentication (RFC 7619).
    Null,
}

/// Everything the core task owns.
pub(crate) struct Agent {
    pub(crate) config: Config,
    pub(crate) config_path: Option<std::path::PathBuf>,
    pub(crate) table: GroupTable,
    pub(crate) kernel: Xfrm,
    pub(crate) ownership: Ownership,
    /// `Err(why)` when the kernel cannot install ESP SAs: no traps are installed then.
    pub(crate) esp: Result<(), String>,
    pub(crate) base_installed: Vec<oe_kernel::PolicySpec>,
    pub(crate) local_id: LocalId,
    pub(crate) key: Option<Arc<oe_ike::crypto::PrivateKey>>,
    pub(crate) key_description: String,
    /// One IKE endpoint per local address (the local identity may be that address).
    pub(crate) endpoints: HashMap<IpAddr, Endpoint>,
    pub(crate) sockets: Sockets,
    pub(crate) dns: DnsService,
    pub(crate) peers: HashMap<IpAddr, Peer>,
    /// (local address, handle) -> peer address.
    pub(crate) sa_index: HashMap<(IpAddr, SaHandle), IpAddr>,
    /// DNS query name -> peers waiting for its outcome (`true`: to answer their NeedPeerKey).
    pub(crate) dns_waiters: HashMap<String, Vec<(IpAddr, bool)>>,
    pub(crate) events: broadcast::Sender<EventReport>,
    pub(crate) history: VecDeque<EventReport>,
    pub(crate) counters: Counters,
    pub(crate) started: Instant,
    pub(crate) next_reqid: u32,
    /// The reqid of this run's trap policies, fresh per start (see [`trap_reqid_for_this_run`]).
    pub(crate) trap_reqid: Reqid,
    pub(crate) stopping: bool,
    /// Keys the DNS trigger learned, by name, bound to the name's validated addresses.
    pub(crate) bound_keys: super::trigger::BoundKeyTable,
    /// The DNS trigger's stub, when enabled.
    pub(crate) stub: Option<oe_dns::trigger::Stub>,
    /// What the stub's hook reads (updated on reload).
    pub(crate) trigger_view: Option<Arc<std::sync::RwLock<super::trigger::View>>>,
    pub(crate) tx: mpsc::Sender<Input>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// The reqid the trap policies carry.
    pub(crate) fn trap_reqid(&self) -> Reqid {
        self.trap_reqid
    }

    /// A fresh reqid for one peer's SAs and host policies (above the trap reqids).
    pub(crate) fn alloc_reqid(&mut self) -> Reqid {
        loop {
            self.next_reqid = self.next_reqid.wrapping_add(1).max(TRAP_REQIDS + 1);
            if let Some(reqid) = self.ownership.reqid(self.next_reqid) {
                if self.peers.values().all(|p| p.reqid != reqid)
                    && reqid != self.ownership.probe_reqid()
                {
                    return reqid;
                }
            } else {
                self.next_reqid = TRAP_REQIDS;
            }
        }
    }

    /// The IKE endpoint for `local`, created on first use.
    pub(crate) fn endpoint(&mut self, local: IpAddr) -> &mut Endpoint {
        let (config, id, auth) = (&self.config, &self.local_id, &self.key);
        self.endpoints.entry(local).or_insert_with(|| {
            let engine_config = super::engine_config::build(config, id, auth.clone(), local);
            Endpoint::new(engine_config, Box::new(rand_core::OsRng))
        })
    }

    /// Where the kernel would send from to reach `remote`: the peer's known local address, or a route lookup.
    pub(crate) fn local_for(&self, remote: IpAddr) -> Option<IpAddr> {
        if let Some(peer) = self.peers.get(&remote) {
            return Some(peer.local);
        }
        local_address_towards(remote).ok()
    }

    /// Handles the events of the endpoint of `local`, then sends what it has queued, until both are empty.
    ///
    /// Events go first so a responder's child SA is in the kernel before its IKE_AUTH (or CREATE_CHILD_SA)
    /// response leaves: the initiator installs its side on that response and may send ESP at once, which
    /// must not reach us before our inbound SA exists.
    pub(crate) async fn drain(&mut self, local: IpAddr) {
        loop {
            let Some(endpoint) = self.endpoints.get_mut(&local) else {
                return;
            };
            if let Some((handle, event)) = endpoint.poll_event() {
                self.on_engine_event(local, handle, event).await;
                continue;
            }
            let mut sent = false;
            while let Some(t) = endpoint.poll_transmit() {
                self.sockets.send(t.local, t.remote, &t.contents);
                sent = true;
            }
            if !sent {
                return;
            }
        }
    }

    /// The earliest instant any endpoint or peer deadline needs attention.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let engines = self.endpoints.values().filter_map(Endpoint::poll_timeout);
        let peers = self.peers.values().filter_map(|p| p.deadline);
        engines.chain(peers).min()
    }

    /// Fires engine timers and negotiation deadlines that are due.
    pub(crate) async fn on_timers(&mut self, now: Instant) {
        let locals: Vec<IpAddr> = self.endpoints.keys().copied().collect();
        for local in locals {
            if let Some(endpoint) = self.endpoints.get_mut(&local) {
                if endpoint.poll_timeout().is_some_and(|t| t <= now) {
                    endpoint.handle_timeout(now);
                }
            }
            self.drain(local).await;
        }
        let overdue: Vec<IpAddr> = self
            .peers
            .values()
            .filter(|p| p.deadline.is_some_and(|d| d <= now))
            .map(|p| p.addr)
            .collect();
        for addr in overdue {
            self.negotiation_timed_out(addr).await;
        }
    }

    /// Records an event for `oe events` and followers.
    pub(crate) fn event(&mut self, kind: &str, peer: Option<IpAddr>, detail: String) {
        tracing::info!(kind, peer = ?peer, "{detail}");
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let report = EventReport {
            time,
            kind: kind.to_owned(),
            peer,
            detail,
        };
        if self.history.len() >= EVENT_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(report.clone());
        let _ = self.events.send(report);
    }

    /// Our identity for the status report.
    pub(crate) fn identity_text(&self) -> String {
        match &self.local_id {
            LocalId::Address => "address (the local address of each flow)".into(),
            LocalId::Fqdn(name) => format!("fqdn:{name}"),
            LocalId::Null => "null (anonymous)".into(),
        }
    }
}

/// Identity and authentication for an endpoint bound to `local`.
pub(crate) fn local_identity(
    id: &LocalId,
    key: Option<&Arc<oe_ike::crypto::PrivateKey>>,
    local: IpAddr,
) -> (Identity, LocalAuth) {
    let Some(key) = key else {
        return (Identity::Null, LocalAuth::Null);
    };
    let identity = match (id, local) {
        (LocalId::Null, _) => return (Identity::Null, LocalAuth::Null),
        (LocalId::Fqdn(name), _) => Identity::Fqdn(name.clone()),
        (LocalId::Address, IpAddr::V4(v4)) => Identity::Ipv4(v4),
        (LocalId::Address, IpAddr::V6(v6)) => Identity::Ipv6(v6),
    };
    (identity, LocalAuth::Key(key.clone()))
}

/// How long the idle check waits between looks at the kernel's counters.
pub(crate) fn idle_check_interval(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}
