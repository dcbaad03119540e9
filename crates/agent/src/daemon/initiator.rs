//! The initiator path (oe-flow "Initiator"): an ACQUIRE for a new host installs the negotiation shunt, starts
//! the reverse-zone IPSECKEY lookup and IKE_SA_INIT side by side, and arms the negotiation deadline. Any
//! failure installs the group's failure shunt with a lifetime, after which the trap catches the host again.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use oe_dns::LookupTarget;
use oe_kernel::{Acquire, Direction, PolicySpec, Shunt, TrafficSelector};

use super::agent::Agent;
use super::state::{Peer, Phase, Role, ShuntState};
use crate::config::{Group, NegotiationShunt};

impl Agent {
    /// XFRM ACQUIRE: traffic to a host that has no SA yet.
    pub(crate) async fn on_acquire(&mut self, acquire: Acquire) {
        self.counters.acquires += 1;
        let flow = acquire.flow;
        let matched = self.table.classify(flow.dst, flow.proto, flow.dst_port);
        if let Some(peer) = self.peers.get_mut(&flow.dst) {
            // A negotiation, an SA or a shunt already covers this host; remember the larval state so the
            // SA replaces it (a trigger may have started the negotiation before the first packet).
            peer.acquire_seq.get_or_insert(acquire.seq);
            peer.trap.get_or_insert(acquire.policy.key);
            return;
        }
        if !matched.group.initiates() || self.stopping {
            return;
        }
        let cause = format!(
            "traffic from {} to {} (proto {}, port {}) matched {}",
            flow.src,
            flow.dst,
            flow.proto,
            flow.dst_port,
            describe_match(&matched)
        );
        self.start_initiator(flow.src, flow.dst, matched, Some(acquire.seq), cause)
            .await;
        if let Some(peer) = self.peers.get_mut(&flow.dst) {
            peer.trap = Some(acquire.policy.key);
        }
    }

    /// Starts negotiating with `addr` from `local`: the negotiation shunt, the reverse-zone IPSECKEY lookup
    /// and IKE_SA_INIT side by side, and the negotiation deadline.
    pub(crate) async fn start_initiator(
        &mut self,
        local: IpAddr,
        addr: IpAddr,
        matched: crate::config::Match,
        acquire_seq: Option<u32>,
        cause: String,
    ) {
        let now = Instant::now();
        let reqid = self.alloc_reqid();
        let mut peer = Peer::new(addr, local, matched, reqid, Role::Initiator, now);
        peer.deadline = Some(now + self.config.shunts.negotiation_timeout);
        peer.acquire_seq = acquire_seq;
        self.peers.insert(addr, peer);
        self.counters.negotiations_started += 1;
        self.event("acquire", Some(addr), format!("{cause}; negotiating"));
        self.install_negotiation_shunt(addr).await;
        self.lookup_for_peer(addr, LookupTarget::Reverse(addr));
        let port = self.config.ike.port;
        let handle = self.endpoint(local).connect(
            now,
            SocketAddr::new(local, port),
            SocketAddr::new(addr, port),
        );
        self.sa_index.insert((local, handle), addr);
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.ike = Some(handle);
        }
        self.drain(local).await;
    }

    /// Starts (or reuses) a lookup whose outcome `explain` should show for this peer; keys are not needed yet.
    pub(crate) fn lookup_for_peer(&mut self, addr: IpAddr, target: LookupTarget) {
        let name = super::dnsq::key(&target);
        self.dns.request(&target);
        self.dns_waiters
            .entry(name)
            .or_default()
            .push((addr, false));
    }

    /// What covers a host while IKE runs. "pass": a pass policy, traffic flows in clear meanwhile. "hold":
    /// no policy at all: the ACQUIRE's larval state holds the flow (queued with `xfrm_larval_drop=0`, so the
    /// first packets leave as ESP once the SA is in), until the reverse zone shows there is no key to wait
    /// for ([`Self::release_hold`]). `private` always holds. Pass shunts carry a kernel lifetime, so they
    /// cannot outlive a crashed agent; holds end with the larval state (`xfrm_acq_expires`).
    async fn install_negotiation_shunt(&mut self, addr: IpAddr) {
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        let hold = peer.group.group == Group::Private
            || self.config.shunts.negotiation == NegotiationShunt::Hold;
        if hold {
            let now = Instant::now();
            let reason = "negotiating; the kernel holds the flow".to_owned();
            peer.shunt = Some(ShuntState {
                action: "hold",
                stage: "negotiation",
                reason,
                installed: now,
                expires: peer.deadline,
                spec: None,
            });
            return;
        }
        let seconds = self.config.shunts.negotiation_timeout.as_secs() + 5;
        self.install_shunt(
            addr,
            Shunt::Pass,
            "pass",
            "negotiation",
            "negotiating".into(),
            seconds,
        )
        .await;
    }

    /// The reverse zone answered for a peer we are initiating to. Without a secure key there, holding the
    /// flow only delays it: a fail-open group lets it pass while IKE goes on (the peer may still prove an
    /// FQDN identity).
    pub(crate) async fn release_hold(&mut self, addr: IpAddr, outcome: &super::dnsq::KeyOutcome) {
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        let held = peer.shunt.as_ref().is_some_and(|s| s.action == "hold");
        let negotiating =
            matches!(peer.phase, Phase::Negotiating { .. }) && peer.role == Role::Initiator;
        if !held
            || !negotiating
            || !peer.group.group.fails_open()
            || matches!(outcome, super::dnsq::KeyOutcome::Secure { .. })
        {
            return;
        }
        let seconds = self.config.shunts.negotiation_timeout.as_secs() + 5;
        let reason = format!(
            "no key in the reverse zone ({}); IKE goes on, traffic passes meanwhile",
            outcome.word()
        );
        self.install_shunt(addr, Shunt::Pass, "pass", "negotiation", reason, seconds)
            .await;
    }

    /// Installs a host shunt for the peer's selector, replacing any other in place (an existing policy with
    /// the same selector is updated, so the flow never falls back to the trap in between).
    pub(crate) async fn install_shunt(
        &mut self,
        addr: IpAddr,
        shunt: Shunt,
        action: &'static str,
        stage: &'static str,
        reason: String,
        seconds: u64,
    ) {
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        let old = peer.shunt.take().and_then(|s| s.spec);
        let Some(selector) = host_selector(peer) else {
            return;
        };
        let spec = PolicySpec::host_shunt(selector, Direction::Out, shunt, Some(seconds));
        let installed = match self.kernel.add_policy(&spec).await {
            Ok(()) => Ok(()),
            Err(_) => self.kernel.update_policy(&spec).await,
        };
        if let Some(old) = old.filter(|o| o.key() != spec.key()) {
            let _ = self.kernel.delete_policy(&old.key()).await;
        }
        if let Err(e) = installed {
            tracing::warn!("cannot install {action} shunt for {addr}: {e}");
            return;
        }
        let now = Instant::now();
        let expires = Some(now + std::time::Duration::from_secs(seconds));
        self.event(
            "shunt",
            Some(addr),
            format!("{stage} shunt: {action} for {seconds}s ({reason})"),
        );
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.shunt = Some(ShuntState {
                action,
                stage,
                reason,
                installed: now,
                expires,
                spec: Some(spec),
            });
        }
    }

    /// Removes the peer's shunt, if any.
    pub(crate) async fn remove_shunt(&mut self, addr: IpAddr) {
        let Some(spec) = self
            .peers
            .get_mut(&addr)
            .and_then(|p| p.shunt.take())
            .and_then(|s| s.spec)
        else {
            return;
        };
        if let Err(e) = self.kernel.delete_policy(&spec.key()).await {
            tracing::debug!("removing shunt for {addr}: {e}");
        }
    }

    /// The negotiation took too long: give up on it.
    pub(crate) async fn negotiation_timed_out(&mut self, addr: IpAddr) {
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        peer.deadline = None;
        if !matches!(peer.phase, Phase::Negotiating { .. }) {
            return;
        }
        let (local, handle) = (peer.local, peer.ike);
        if let Some(handle) = handle {
            if let Some(endpoint) = self.endpoints.get_mut(&local) {
                endpoint.delete(Instant::now(), handle);
            }
        }
        self.fail(addr, "the negotiation timed out".into()).await;
        self.drain(local).await;
    }

    /// A negotiation failed: the failure shunt of the group (pass for private-or-clear, drop for private),
    /// for the configured lifetime. Responders install none: they trapped nothing.
    pub(crate) async fn fail(&mut self, addr: IpAddr, reason: String) {
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        if matches!(peer.phase, Phase::Failed { .. }) {
            return;
        }
        peer.phase = Phase::Failed {
            at: Instant::now(),
            reason: reason.clone(),
        };
        peer.deadline = None;
        super::trigger::release_waiters(&mut peer.waiters);
        peer.last_ike = Some(format!("failed: {reason}"));
        let (role, group) = (peer.role, peer.group.group);
        self.counters.negotiations_failed += 1;
        self.event(
            "failed",
            Some(addr),
            format!("negotiation with {addr} failed: {reason}"),
        );
        self.remove_host_policies(addr).await;
        self.release_spare_spis(addr).await;
        if role == Role::Responder {
            self.remove_shunt(addr).await;
            self.peers.remove(&addr);
            return;
        }
        let (shunt, action) = if group.fails_open() {
            (Shunt::Pass, "pass")
        } else {
            (Shunt::Block, "drop")
        };
        let seconds = self.config.shunts.failure_lifetime.as_secs().max(1);
        self.install_shunt(addr, shunt, action, "failure", reason, seconds)
            .await;
    }
}

/// The selector a peer's shunt covers: our address to the peer's, with the matched entry's protocol/port.
pub(crate) fn host_selector(peer: &Peer) -> Option<TrafficSelector> {
    let selector = TrafficSelector::hosts(peer.local, peer.addr).ok()?;
    match peer.group.entry.and_then(|e| e.proto) {
        Some(proto) => selector
            .with_proto(proto, None, peer.group.entry.and_then(|e| e.port))
            .ok(),
        None => Some(selector),
    }
}

/// "private-or-clear (0.0.0.0/0)" for logs.
pub(crate) fn describe_match(m: &crate::config::Match) -> String {
    match &m.entry {
        Some(entry) => format!(
            "{} ({})",
            m.group,
            entry.to_string().trim_start_matches(m.group.name()).trim()
        ),
        None => format!("{} (no entry covers it)", m.group),
    }
}
