//! The operator's control requests (`oe retry`, `oe up`, `oe down`; root only, checked by the
//! executor): the same transitions the agent makes on its own, asked for now.

use std::collections::BTreeMap;
use std::time::Duration;

use oe_kernel::Shunt;

use super::{Core, Pending};
use crate::config::{Group, Match};
use crate::input::{Command, KernelOp, QueryId, TriggerTarget};
use crate::peer::{Failed, FailureShunt, Lookup, Peer, PeerId, PeerState};
use crate::protocol::{ControlResult, Report, Request, Response};
use crate::timers::Timer;

impl Core {
    pub(super) fn on_control(
        &mut self,
        id: QueryId,
        request: &Request,
        targets: Vec<TriggerTarget>,
    ) {
        let results = targets
            .into_iter()
            .map(|t| {
                let outcome = match request {
                    Request::Retry { .. } => self.retry(t),
                    Request::Up { .. } => self.up(t),
                    Request::Down { seconds, .. } => self.down(t, *seconds),
                    _ => "not a control request".into(),
                };
                ControlResult {
                    address: t.remote,
                    outcome,
                }
            })
            .collect();
        self.commands.push_back(Command::Reply {
            id,
            response: Response::ok(Report::Control { results }),
        });
    }

    /// `oe retry`: a failed host's shunt goes and the host is negotiated with now.
    fn retry(&mut self, t: TriggerTarget) -> String {
        let failed = self.peers.owner_of(t.remote).filter(|id| {
            matches!(
                self.peers.get(*id).map(|p| &p.state),
                Some(PeerState::Failed(_))
            )
        });
        if let Some(id) = failed {
            self.event(
                "operator",
                Some(t.remote),
                "oe retry: failure shunt removed".into(),
            );
            self.forget_peer(id, "the operator asked to retry");
        }
        self.up(t)
    }

    /// `oe up`: negotiate now (also in `clear-or-private`, where the agent never starts on its
    /// own: the operator asked).
    fn up(&mut self, t: TriggerTarget) -> String {
        let matched = self.table.classify(t.remote, 0, 0);
        if !matched.group.responds() {
            return format!("not negotiated: its group is {}", matched.group);
        }
        if let Err(why) = &self.esp {
            return format!("not negotiated: {why}");
        }
        match self
            .peers
            .owner_of(t.remote)
            .and_then(|id| self.peers.get(id))
        {
            Some(p) => match &p.state {
                PeerState::Established(_) => "already encrypted".into(),
                PeerState::Negotiating(_) => "already negotiating".into(),
                PeerState::Failed(f) => format!(
                    "failed earlier ({}); `oe retry` drops its failure shunt and tries now",
                    f.reason
                ),
            },
            None => {
                let cause = "oe up: the operator asked".to_owned();
                match self.start_initiator(t.local, t.remote, matched, None, cause) {
                    Some(_) => "negotiating".into(),
                    None => "not negotiated: no free reqid".into(),
                }
            }
        }
    }

    /// `oe down`: every IKE SA with the host is deleted (telling it), its SAs and policies go,
    /// and a shunt keeps its traffic in clear (dropped for `private`) for the given time.
    fn down(&mut self, t: TriggerTarget, seconds: Option<u64>) -> String {
        let matched = self.table.classify(t.remote, 0, 0);
        if !matched.group.responds() {
            return format!("nothing to take down: its group is {}", matched.group);
        }
        let secs = seconds.unwrap_or(self.config.shunts.failure_lifetime.as_secs());
        let id = match self.peers.owner_of(t.remote) {
            Some(id) => {
                self.delete_ikes(id);
                self.forget_kernel_state(id);
                id
            }
            None => match self.new_peer_record(t, matched) {
                Some(id) => id,
                None => return "not taken down: no free reqid".into(),
            },
        };
        let pass = matched.group != Group::Private;
        let reason = format!("taken down by the operator for {secs}s");
        self.shunt_peer(id, pass, reason, Duration::from_secs(secs.max(1)));
        let action = if pass {
            "passes in clear"
        } else {
            "is dropped"
        };
        self.event(
            "operator",
            Some(t.remote),
            format!("oe down: traffic {action} for {secs}s"),
        );
        format!("taken down; its traffic {action} for {secs}s")
    }

    /// A peer record with nothing in the kernel yet.
    fn new_peer_record(&mut self, t: TriggerTarget, group: Match) -> Option<PeerId> {
        let reqid = self.peers.alloc_reqid()?;
        let id = self.peers.next_id();
        let now = self.now.mono;
        self.peers.insert(Peer {
            id,
            remote: t.remote,
            local: t.local,
            group,
            reqid,
            state: PeerState::Failed(Failed {
                at: now,
                reason: String::new(),
                shunt: None,
                until: now,
            }),
            ikes: BTreeMap::new(),
            reverse: Lookup::NotAsked,
            notes: Vec::new(),
            last_ike: None,
            refusal: None,
            behind_nat: None,
            lease: None,
        });
        Some(id)
    }

    /// Puts the peer in the failed state with a shunt for `lifetime`.
    fn shunt_peer(&mut self, id: PeerId, pass: bool, reason: String, lifetime: Duration) {
        let shunt = self.shunt_spec(id, if pass { Shunt::Pass } else { Shunt::Block });
        let now = self.now.mono;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.last_ike = Some(reason.clone());
        peer.state = PeerState::Failed(Failed {
            at: now,
            reason,
            shunt: shunt.map(|spec| FailureShunt { pass, spec }),
            until: now + lifetime,
        });
        self.timers.cancel_peer(id);
        self.timers.set(Timer::FailureEnds(id), now + lifetime);
        if let Some(spec) = shunt {
            self.kernel(KernelOp::AddPolicy(spec), Some(Pending::Shunt(id)));
        }
    }
}
