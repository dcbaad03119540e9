//! The initiator path (oe-flow "Initiator"): an ACQUIRE (or the DNS trigger) starts a
//! negotiation: the negotiation shunt, the reverse-zone IPSECKEY lookup and IKE_SA_INIT side by
//! side, and the negotiation deadline. A failure installs the group's failure shunt, whose end
//! (a core timer) makes the trap catch the host again.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use oe_dns::LookupTarget;
use oe_kernel::{Direction, PolicySpec, Shunt};

use super::{Core, Pending};
use crate::config::{Group, Match, NegotiationShunt as ShuntChoice};
use crate::dnsq::{Asked, Query};
use crate::input::{Command, KernelOp};
use crate::kernel_specs::shunt_selector;
use crate::peer::{
    Acquired, Failed, FailureShunt, Ike, Lookup, Negotiating, NegotiationShunt, Peer, PeerId,
    PeerState, Role, Step,
};
use crate::timers::Timer;

impl Core {
    /// Starts negotiating with `remote` from `local`.
    pub(super) fn start_initiator(
        &mut self,
        local: IpAddr,
        remote: IpAddr,
        group: Match,
        acquired: Option<Acquired>,
        cause: String,
    ) -> Option<PeerId> {
        let Some(reqid) = self.peers.alloc_reqid() else {
            self.event(
                "refused",
                Some(remote),
                "no free reqid: too many peers".into(),
            );
            return None;
        };
        let now = self.now.mono;
        let id = self.peers.next_id();
        let port = self.config.ike.port;
        let handle = self.engine(local).connect(
            now,
            SocketAddr::new(local, port),
            SocketAddr::new(remote, port),
        );
        let deadline = now + self.config.shunts.negotiation_timeout;
        let ike = Ike {
            role: Role::Initiator,
            since: now,
            step: Step::Exchanging,
            spare_spis: Vec::new(),
            replaces: None,
        };
        self.peers.insert(Peer {
            id,
            remote,
            local,
            group,
            reqid,
            state: PeerState::Negotiating(Negotiating {
                since: now,
                deadline,
                shunt: NegotiationShunt::None,
                acquired,
                waiters: Vec::new(),
            }),
            ikes: BTreeMap::from([(handle, ike)]),
            reverse: Lookup::NotAsked,
            notes: Vec::new(),
            last_ike: None,
            refusal: None,
            behind_nat: None,
            lease: None,
        });
        self.peers.bind_ike(local, handle, id);
        self.counters.negotiations_started += 1;
        self.event("acquire", Some(remote), format!("{cause}; negotiating"));
        self.timers.set(Timer::Negotiation(id), deadline);
        if acquired.is_some() {
            self.negotiation_shunt(id);
        }
        self.ask_reverse(id);
        self.drain(local);
        Some(id)
    }

    /// Asks for the reverse zone's IPSECKEY of the peer, once per negotiation.
    pub(super) fn ask_reverse(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if peer.reverse != Lookup::NotAsked {
            return;
        }
        peer.reverse = Lookup::Pending;
        let target = LookupTarget::Reverse(peer.remote);
        let caused_by = (peer.role() == Role::Responder).then_some(peer.remote);
        let query = Query::Key(target.clone());
        match self.dns.ask(&query, id, caused_by, self.now.mono) {
            Asked::Start => self.commands.push_back(Command::LookupKey {
                target,
                for_peer: caused_by,
            }),
            Asked::Joined => {}
            Asked::Refused => {
                let verdict = oe_dns::KeyVerdict::Failed {
                    reason: "too many lookups for peers at this address".into(),
                };
                self.reverse_known(id, verdict);
            }
        }
    }

    /// What covers a host's flow while IKE runs. `hold`: nothing; the ACQUIRE's larval state
    /// holds the flow (queued with `xfrm_larval_drop=0`, so the first packets leave as ESP once
    /// the SA is in) until the reverse zone shows there is no key to wait for. `pass`: a pass
    /// policy at once. `private` always holds. A host whose reverse zone is already known to
    /// publish no key is passed at once in a fail-open group: no wait for a lookup whose answer
    /// is known.
    pub(super) fn negotiation_shunt(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let group = peer.group.group;
        let reverse = LookupTarget::Reverse(peer.remote).query_name().to_string();
        let known_keyless = self
            .dns
            .recent(&reverse, self.now.wall)
            .filter(|r| r.no_key)
            .map(|r| r.text.clone());
        let hold = group == Group::Private || self.config.shunts.negotiation == ShuntChoice::Hold;
        match (hold, known_keyless) {
            (_, Some(why)) if group.fails_open() => {
                let reason = format!(
                    "no key in the reverse zone ({why}); IKE goes on, traffic passes meanwhile"
                );
                self.negotiation_pass(id, reason);
            }
            (true, _) => {
                if let Some(PeerState::Negotiating(n)) =
                    self.peers.get_mut(id).map(|p| &mut p.state)
                {
                    n.shunt = NegotiationShunt::Hold;
                }
            }
            (false, _) => self.negotiation_pass(id, "negotiating".into()),
        }
    }

    /// Installs a pass shunt for a negotiating peer.
    pub(super) fn negotiation_pass(&mut self, id: PeerId, reason: String) {
        let Some(spec) = self.shunt_spec(id, Shunt::Pass) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let remote = peer.remote;
        let PeerState::Negotiating(n) = &mut peer.state else {
            return;
        };
        let replacing = matches!(n.shunt, NegotiationShunt::Pass { .. });
        n.shunt = NegotiationShunt::Pass {
            spec,
            reason: reason.clone(),
            installed: self.now.mono,
        };
        let held = n.acquired.map(|a| a.trap);
        let op = if replacing {
            KernelOp::UpdatePolicy(spec)
        } else {
            KernelOp::AddPolicy(spec)
        };
        self.kernel(op, Some(Pending::Shunt(id)));
        // The packets the trap holds leave now, through the pass shunt.
        if let Some(trap) = held {
            self.release_held_packets(trap);
        }
        self.event(
            "shunt",
            Some(remote),
            format!("negotiation shunt: pass ({reason})"),
        );
    }

    /// The reverse zone answered for a held initiator: without a secure key there, holding only
    /// delays the flow; a fail-open group lets it pass while IKE goes on (the peer may still
    /// prove an FQDN identity).
    pub(super) fn release_hold(&mut self, id: PeerId, verdict: &oe_dns::KeyVerdict) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let held = matches!(&peer.state, PeerState::Negotiating(n) if matches!(n.shunt, NegotiationShunt::Hold));
        if !held || !peer.group.group.fails_open() || verdict.keys().is_some() {
            return;
        }
        let reason = format!(
            "no key in the reverse zone ({}); IKE goes on, traffic passes meanwhile",
            verdict.word()
        );
        self.negotiation_pass(id, reason);
    }

    /// A host shunt for the peer's selector.
    pub(super) fn shunt_spec(&self, id: PeerId, shunt: Shunt) -> Option<PolicySpec> {
        let peer = self.peers.get(id)?;
        let selector = shunt_selector(peer.local, peer.remote, &peer.group)?;
        let lifetime = self
            .host_policy_lifetime(peer.group.group)
            .or(Some(self.config.shunts.failure_lifetime.as_secs().max(1)));
        Some(PolicySpec::host_shunt(
            selector,
            Direction::Out,
            shunt,
            lifetime,
        ))
    }

    /// The negotiation took too long: give up on it, naming the root cause.
    pub(super) fn negotiation_timed_out(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        if !matches!(peer.state, PeerState::Negotiating(_)) {
            return;
        }
        let reason = self.timeout_reason(peer);
        self.fail(id, reason);
        self.delete_ikes(id);
    }

    /// Why a negotiation that timed out failed, root cause first.
    fn timeout_reason(&self, peer: &Peer) -> String {
        let secs = self.config.shunts.negotiation_timeout.as_secs();
        let waiting = peer.ikes.values().find_map(|i| match &i.step {
            Step::AwaitingKey { identity, .. } => Some(identity.clone()),
            _ => None,
        });
        if let Some(identity) = waiting {
            return format!("DNS gave no verdict within {secs}s for the key of {identity}");
        }
        match peer.reverse.known() {
            Some(v) if v.proves_no_key() => format!(
                "no key published for {} ({}), and the host did not authenticate otherwise within {secs}s",
                peer.remote,
                v.describe(self.now.wall)
            ),
            Some(v @ oe_dns::KeyVerdict::Bogus { .. }) => v.describe(self.now.wall),
            _ => format!("the negotiation timed out (no IKE answer within {secs}s)"),
        }
    }

    /// Deletes every IKE SA of a peer in its engine (the engine tells the peer).
    pub(super) fn delete_ikes(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let (local, handles): (IpAddr, Vec<_>) = (peer.local, peer.ikes.keys().copied().collect());
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            for handle in handles {
                engine.delete(now, handle);
            }
        }
        self.drain(local);
    }

    /// A negotiation failed: the failure shunt of the group (pass for fail-open groups, drop for
    /// `private`) until the failure lifetime ends. A peer that only ever answered (responder)
    /// trapped nothing: it is forgotten.
    pub(super) fn fail(&mut self, id: PeerId, reason: String) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if matches!(peer.state, PeerState::Failed(_)) {
            return;
        }
        peer.last_ike = Some(format!("failed: {reason}"));
        let (remote, role, group) = (peer.remote, peer.role(), peer.group.group);
        self.counters.negotiations_failed += 1;
        self.event(
            "failed",
            Some(remote),
            format!("negotiation with {remote} failed: {reason}"),
        );
        self.release_spare_spis(id);
        self.release_waiters(id);
        if role == Role::Responder || self.stopping {
            return self.forget_peer(id, "its negotiation failed");
        }
        let pass = group.fails_open();
        let shunt = self.shunt_spec(id, if pass { Shunt::Pass } else { Shunt::Block });
        let until = self.now.mono + self.config.shunts.failure_lifetime;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let had_pass = matches!(&peer.state, PeerState::Negotiating(n) if matches!(n.shunt, NegotiationShunt::Pass { .. }));
        peer.state = PeerState::Failed(Failed {
            at: self.now.mono,
            reason: reason.clone(),
            shunt: shunt.map(|spec| FailureShunt { pass, spec }),
            until,
        });
        self.timers.cancel(Timer::Negotiation(id));
        self.timers.set(Timer::FailureEnds(id), until);
        if let Some(spec) = shunt {
            // Same selector as the negotiation's pass shunt: replaced in place, no gap.
            let op = if had_pass {
                KernelOp::UpdatePolicy(spec)
            } else {
                KernelOp::AddPolicy(spec)
            };
            self.kernel(op, Some(Pending::Shunt(id)));
            let action = if pass { "pass" } else { "drop" };
            let secs = self.config.shunts.failure_lifetime.as_secs();
            self.event(
                "shunt",
                Some(remote),
                format!("failure shunt: {action} for {secs}s ({reason})"),
            );
        }
    }

    /// The kernel refused a shunt or a host policy of a peer.
    pub(super) fn shunt_refused(&mut self, id: PeerId, why: String) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let remote = peer.remote;
        // It is not ours: never refreshed, updated or removed later.
        match &mut peer.state {
            PeerState::Failed(f) => f.shunt = None,
            PeerState::Negotiating(n) if matches!(n.shunt, NegotiationShunt::Pass { .. }) => {
                n.shunt = NegotiationShunt::None;
            }
            _ => {}
        }
        self.event(
            "shunt-failed",
            Some(remote),
            format!("the kernel refused a policy for {remote}: {why}"),
        );
    }

    /// A failed peer's shunt ends: the trap catches the host again.
    pub(super) fn failure_ended(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.get(id) {
            if matches!(peer.state, PeerState::Failed(_)) {
                let remote = peer.remote;
                self.event(
                    "shunt-expired",
                    Some(remote),
                    "failure shunt ended; the trap applies again".into(),
                );
                self.forget_peer(id, "its failure shunt ended");
            }
        }
    }
}
