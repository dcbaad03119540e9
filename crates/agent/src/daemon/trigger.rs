//! The DNS trigger's agent side (oe-flow "The DNS trigger"): the hook the stub calls, and the core's
//! reaction. With a SECURE key for a name whose validated addresses the application is about to use, the
//! agent starts IKE to those addresses at once; the stub holds the DNS answer until the child SA is in.
//! The key is bound to the validated addresses, so the peer may prove either the name or that address.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use oe_dns::trigger::{TriggerEvent, TriggerHook};
use oe_dns::SecureKeys;
use tokio::sync::{mpsc, oneshot};

use super::agent::Agent;
use super::state::Phase;
use super::Input;
use crate::config::{Group, GroupTable};

/// Keys the trigger learned, bound to the name's validated addresses.
#[derive(Debug, Clone)]
pub(crate) struct BoundKeys {
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) keys: Vec<oe_ike::crypto::PublicKey>,
    pub(crate) described: Vec<String>,
    pub(crate) until: SystemTime,
}

/// Names remembered at most (expired ones go first).
const BOUND_KEYS_MAX: usize = 4096;

/// What the hook needs to decide without asking the core.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) table: GroupTable,
    /// False when the kernel cannot do ESP: nothing is triggered then.
    pub(crate) active: bool,
    pub(crate) fail_closed: bool,
}

/// The agent's [`TriggerHook`].
#[derive(Debug)]
pub(crate) struct AgentHook {
    pub(crate) view: Arc<RwLock<View>>,
    pub(crate) tx: mpsc::Sender<Input>,
}

impl TriggerHook for AgentHook {
    fn wants(&self, addrs: &[IpAddr]) -> bool {
        let Ok(view) = self.view.read() else {
            return false;
        };
        view.active
            && addrs
                .iter()
                .any(|a| view.table.classify(*a, 0, 0).group.initiates())
    }

    fn secure(
        &self,
        name: oe_dns::Name,
        addrs: Vec<IpAddr>,
        keys: SecureKeys,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (done, finished) = oneshot::channel();
        let usable: Vec<_> = keys
            .records
            .iter()
            .filter_map(|r| r.data.as_ref().ok())
            .collect();
        let bound = BoundKeys {
            addrs,
            keys: usable
                .iter()
                .filter_map(|k| crate::keys::dns_key_to_ike(&k.key))
                .collect(),
            described: usable.iter().map(|k| k.key.kind()).collect(),
            until: keys.usable_until,
        };
        let name = name.to_string().trim_end_matches('.').to_ascii_lowercase();
        if self
            .tx
            .try_send(Input::Trigger { name, bound, done })
            .is_err()
        {
            tracing::warn!("trigger dropped: the agent is busy");
        }
        Box::pin(async move {
            let _ = finished.await;
        })
    }

    fn record(&self, event: TriggerEvent) {
        let _ = self.tx.try_send(Input::TriggerRecord(event));
    }

    fn fail_closed(&self, addrs: &[IpAddr]) -> bool {
        let Ok(view) = self.view.read() else {
            return false;
        };
        view.fail_closed
            && addrs
                .iter()
                .any(|a| view.table.classify(*a, 0, 0).group == Group::Private)
    }
}

impl Agent {
    /// A secure key for `name` bound to its addresses: negotiate with each address in an initiating group
    /// that has no SA yet; `done` fires when the first such negotiation ends (or at once if none is needed).
    pub(crate) async fn on_trigger(
        &mut self,
        name: String,
        bound: BoundKeys,
        done: oneshot::Sender<()>,
    ) {
        self.remember_bound_keys(name.clone(), bound.clone());
        let mut done = Some(done);
        for addr in bound.addrs {
            let matched = self.table.classify(addr, 0, 0);
            if !matched.group.initiates() || self.esp.is_err() {
                continue;
            }
            match self.peers.get_mut(&addr).map(|p| p.phase.clone()) {
                Some(Phase::Established { .. } | Phase::Failed { .. }) => continue,
                Some(Phase::Negotiating { .. }) => {}
                None => {
                    let Some(local) = self.local_for(addr) else {
                        continue;
                    };
                    let cause = format!(
                        "DNS trigger: {name} has a SECURE key ({})",
                        bound.described.join(", ")
                    );
                    self.start_initiator(local, addr, matched, None, cause)
                        .await;
                }
            }
            if let (Some(d), Some(peer)) = (done.take(), self.peers.get_mut(&addr)) {
                peer.waiters.push(d);
            }
        }
        // Anything still in `done` is dropped here: the stub releases the answer at once.
    }

    fn remember_bound_keys(&mut self, name: String, bound: BoundKeys) {
        if self.bound_keys.len() >= BOUND_KEYS_MAX {
            let now = SystemTime::now();
            self.bound_keys.retain(|_, b| b.until > now);
            if self.bound_keys.len() >= BOUND_KEYS_MAX {
                self.bound_keys.clear();
            }
        }
        self.bound_keys.insert(name, bound);
    }

    /// Keys the trigger bound to `remote`, usable for a peer that proves `identity_name` (an FQDN
    /// identity) or the address itself (`None`).
    pub(crate) fn bound_keys_for(
        &self,
        remote: IpAddr,
        identity_name: Option<&str>,
    ) -> Option<(String, BoundKeys)> {
        let now = SystemTime::now();
        let usable =
            |b: &BoundKeys| b.until > now && b.addrs.contains(&remote) && !b.keys.is_empty();
        match identity_name {
            Some(n) => {
                let n = n.trim_end_matches('.').to_ascii_lowercase();
                self.bound_keys
                    .get(&n)
                    .filter(|b| usable(b))
                    .map(|b| (n, b.clone()))
            }
            None => self
                .bound_keys
                .iter()
                .find(|(_, b)| usable(b))
                .map(|(n, b)| (n.clone(), b.clone())),
        }
    }

    /// A trigger decision, for `oe events` and `explain`.
    pub(crate) fn on_trigger_record(&mut self, event: TriggerEvent) {
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

/// Releases every stub answer waiting on this peer's negotiation.
pub(crate) fn release_waiters(waiters: &mut Vec<oneshot::Sender<()>>) {
    for w in waiters.drain(..) {
        let _ = w.send(());
    }
}

/// The bound-keys table type.
pub(crate) type BoundKeyTable = HashMap<String, BoundKeys>;
