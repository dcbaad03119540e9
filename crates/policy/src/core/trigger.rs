//! The DNS trigger's agent side (oe-flow "The DNS trigger"): with a SECURE key for a name whose
//! validated addresses the application is about to use, IKE starts to those addresses at once;
//! the stub holds the DNS answer until the child SA is in. The key stays bound to that name and
//! those addresses: it authenticates a peer proving exactly that name, never another name and
//! never an address identity (the reverse zone is the authority for those).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::SystemTime;

use oe_dns::trigger::TriggerEvent;
use oe_dns::{KeyVerdict, Name};

use super::Core;
use crate::identity::dns_key_to_ike;
use crate::input::{Command, TriggerTarget, WaiterId};
use crate::peer::PeerState;

/// Names remembered at most (the oldest go first).
const BOUND_KEYS_MAX: usize = 4096;

/// A name's SECURE keys, bound to its validated addresses.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) keys: Vec<oe_ike::crypto::PublicKey>,
    pub(crate) described: Vec<String>,
    pub(crate) until: SystemTime,
}

/// Keys the trigger learned, by name.
#[derive(Debug, Default)]
pub(crate) struct BoundKeys {
    by_name: HashMap<Name, Bound>,
    order: VecDeque<Name>,
}

impl BoundKeys {
    fn remember(&mut self, name: Name, bound: Bound) {
        let name = canonical(&name);
        if self.by_name.insert(name.clone(), bound).is_none() {
            self.order.push_back(name);
        }
        while self.order.len() > BOUND_KEYS_MAX {
            if let Some(old) = self.order.pop_front() {
                self.by_name.remove(&old);
            }
        }
    }

    /// The keys bound to exactly `name`, if they are still valid and its validated addresses
    /// include `remote`.
    pub(crate) fn usable_for(
        &self,
        name: &Name,
        remote: IpAddr,
        now: SystemTime,
    ) -> Option<&Bound> {
        self.by_name
            .get(&canonical(name))
            .filter(|b| b.until > now && b.addrs.contains(&remote) && !b.keys.is_empty())
    }
}

/// Lower case, fully qualified: one spelling per name.
fn canonical(name: &Name) -> Name {
    let mut n = name.to_lowercase();
    n.set_fqdn(true);
    n
}

impl Core {
    /// A secure key for `name` bound to its addresses: negotiate with each address in an
    /// initiating group that has no SA yet; the stub's answer is released when the first such
    /// negotiation ends (at once if none is needed).
    pub(super) fn on_trigger(
        &mut self,
        name: Name,
        keys: KeyVerdict,
        targets: Vec<TriggerTarget>,
        waiter: WaiterId,
    ) {
        let KeyVerdict::Secure { keys, until, .. } = keys else {
            self.commands.push_back(Command::ReleaseTrigger(waiter));
            return;
        };
        let bound = Bound {
            addrs: targets.iter().map(|t| t.remote).collect(),
            keys: keys.iter().filter_map(|k| dns_key_to_ike(&k.key)).collect(),
            described: keys.iter().map(|k| k.key.kind()).collect(),
            until,
        };
        let described = bound.described.join(", ");
        self.bound.remember(name.clone(), bound);
        let mut waiter = Some(waiter);
        for target in targets {
            let matched = self.table.classify(target.remote, 0, 0);
            if !matched.group.initiates() || self.esp.is_err() || self.stopping {
                continue;
            }
            let mut known = self.peers.owner_of(target.remote);
            if let Some(id) =
                known.filter(|id| self.peers.get(*id).is_some_and(|p| p.local != target.local))
            {
                self.moved(id, target.local);
                known = None;
            }
            let id = match known {
                Some(id) => id,
                None => {
                    let cause = format!("DNS trigger: {name} has a SECURE key ({described})");
                    match self.start_initiator(target.local, target.remote, matched, None, cause) {
                        Some(id) => id,
                        None => continue,
                    }
                }
            };
            let Some(PeerState::Negotiating(n)) = self.peers.get_mut(id).map(|p| &mut p.state)
            else {
                continue;
            };
            if let Some(w) = waiter.take() {
                n.waiters.push(w);
            }
        }
        if let Some(w) = waiter {
            self.commands.push_back(Command::ReleaseTrigger(w));
        }
    }

    /// A trigger decision, for `oe events` and `explain`.
    pub(super) fn on_trigger_record(&mut self, event: TriggerEvent) {
        let detail = format!(
            "{} {} -> {:?}: {} (answer held {} ms{})",
            event.name,
            event.qtype,
            event.answered,
            event.decision.word(),
            event.held_us / 1000,
            if event.hold_expired {
                ", hold expired"
            } else {
                ""
            }
        );
        self.event("trigger", event.answered.first().copied(), detail);
    }
}
