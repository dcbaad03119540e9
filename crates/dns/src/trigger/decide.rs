//! The trigger for one A/AAAA query: the IPSECKEY and address lookups start with the forwarding;
//! when the answer arrives, the hook says whether its addresses matter; a secure key bound to
//! proven addresses calls the hook; the answer is released when that is done or the hold ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::hook::{micros, unix_now, Decision, TriggerEvent, TriggerHook};
use super::message::{answered_addresses, Question, Rcode};
use super::stats::Stats;
use crate::address::{canonical, AddressAnswer};
use crate::answer::{Answer, SecureKeys};
use crate::cache::{AddressOutcome, KeyCache, Lookup, Outcome};
use crate::outcome::KeyVerdict;
use crate::target::LookupTarget;

/// What the answer path learns from the trigger task.
#[derive(Debug, Clone, Copy)]
struct Release {
    /// Replace the answer with SERVFAIL (a fail-closed group without a secure key).
    fail_closed: bool,
}

/// A trigger started for a query whose answer is on its way.
pub(crate) struct Pending {
    answered: oneshot::Sender<(Vec<IpAddr>, Instant)>,
    release: oneshot::Receiver<Release>,
}

/// What the trigger task needs.
pub(crate) struct Trigger<L, H> {
    pub(crate) cache: KeyCache<L>,
    pub(crate) hook: Arc<H>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) hold: Duration,
}

impl<L: Lookup, H: TriggerHook> Trigger<L, H> {
    /// Starts the lookups for `question` at once (they run in parallel with the forwarding) and
    /// the task that decides once the answer is known.
    pub(crate) fn start(self: &Arc<Self>, question: &Question) -> Pending {
        let name = question.name.clone();
        let keys = spawn_keys(&self.cache, &name);
        let addrs = spawn_addresses(&self.cache, &name);
        let (answered_tx, answered_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let task = Task {
            trigger: self.clone(),
            name,
            qtype: question.qtype.to_string(),
            at: unix_now(),
        };
        tokio::spawn(task.run(keys, addrs, answered_rx, release_tx));
        Pending {
            answered: answered_tx,
            release: release_rx,
        }
    }
}

fn spawn_keys<L: Lookup>(cache: &KeyCache<L>, name: &Name) -> JoinHandle<Outcome> {
    let (cache, target) = (cache.clone(), LookupTarget::Forward(name.clone()));
    tokio::spawn(async move { cache.get(&target).await })
}

fn spawn_addresses<L: Lookup>(cache: &KeyCache<L>, name: &Name) -> JoinHandle<AddressOutcome> {
    let (cache, name) = (cache.clone(), name.clone());
    tokio::spawn(async move { cache.get_addresses(&name).await })
}

impl Pending {
    /// Hands the upstream's answer to the trigger and waits, at most `hold`, for its release.
    /// Returns the bytes to send to the application.
    pub(crate) async fn hold(
        self,
        question: &Question,
        response: Vec<u8>,
        hold: Duration,
        stats: &Stats,
    ) -> Vec<u8> {
        let answered = answered_addresses(question, &response);
        let _ = self.answered.send((answered, Instant::now()));
        match tokio::time::timeout(hold, self.release).await {
            Ok(Ok(Release { fail_closed: true })) => {
                stats.bump(|c| &c.failed_closed);
                question.reply(Rcode::ServFail)
            }
            _ => response,
        }
    }
}

/// The trigger task of one query.
struct Task<L, H> {
    trigger: Arc<Trigger<L, H>>,
    name: Name,
    qtype: String,
    at: u64,
}

/// The IPSECKEY outcome, and the address outcome when the key is usable (else not waited for).
type Outcomes = (
    Result<Outcome, String>,
    Option<Result<AddressOutcome, String>>,
);

/// The hook's IKE, started before the upstream answered (key and addresses were already known).
struct Early {
    future: HookFuture,
}

type HookFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl<L: Lookup, H: TriggerHook> Task<L, H> {
    async fn run(
        self,
        keys: JoinHandle<Outcome>,
        addrs: JoinHandle<AddressOutcome>,
        mut answered: oneshot::Receiver<(Vec<IpAddr>, Instant)>,
        release: oneshot::Sender<Release>,
    ) {
        let lookups = lookups(keys, addrs);
        tokio::pin!(lookups);
        // Usually the forwarded answer comes first. When the lookups finish first (a cached key),
        // IKE starts at once, in parallel with the forwarding.
        let (answer, known, early) = tokio::select! {
            biased;
            answer = &mut answered => (answer, None, None),
            outcomes = &mut lookups => {
                let early = self.start_early(&outcomes);
                ((&mut answered).await, Some(outcomes), early)
            }
        };
        // No answer (the upstreams failed): nothing to hold; the lookups still fill the cache.
        let Ok((answered, ready)) = answer else {
            return;
        };
        let t = &self.trigger;
        if answered.is_empty() || !t.hook.wants(&answered) {
            let _ = release.send(Release { fail_closed: false });
            return;
        }
        t.stats.bump(|c| &c.opportunistic);
        let fail_closed = t.hook.fail_closed(&answered);
        let deadline = ready + t.hold;
        let outcomes = match known {
            Some(outcomes) => outcomes,
            None => lookups.await,
        };
        let decision = self
            .decide(&answered, outcomes, early, &release, deadline)
            .await;
        let secure = matches!(decision, Decision::Secure { .. });
        let released = release
            .send(Release {
                fail_closed: fail_closed && !secure,
            })
            .is_ok();
        let held = ready.elapsed().min(t.hold);
        t.stats.hold(held);
        // The hold ran out first: before the decision, or while the hook's future was pending.
        let hold_expired = !released
            || matches!(
                decision,
                Decision::Secure {
                    completed: false,
                    late: false,
                    ..
                }
            );
        if hold_expired {
            t.stats.bump(|c| &c.hold_expired);
        }
        self.report(TriggerEvent {
            name: self.name.to_string(),
            qtype: self.qtype.clone(),
            answered,
            decision,
            held_us: micros(held),
            hold_expired,
            at: self.at,
        });
    }

    /// Key and addresses known before the answer: the validated addresses of the queried family
    /// are the ones the answer will carry, so IKE can start now (if the hook wants them).
    fn start_early(&self, outcomes: &Outcomes) -> Option<Early> {
        let (Ok(keys), Some(Ok(addrs))) = outcomes else {
            return None;
        };
        let secure = usable(keys)?;
        let v4 = self.qtype == "A";
        let bound: Vec<IpAddr> = addrs
            .as_ref()
            .as_ref()
            .ok()?
            .secure_addrs()
            .iter()
            .copied()
            .filter(|a| a.is_ipv4() == v4)
            .collect();
        if bound.is_empty() || !self.trigger.hook.wants(&bound) {
            return None;
        }
        let future = self
            .trigger
            .hook
            .secure(self.name.clone(), bound, secure.clone());
        Some(Early { future })
    }

    async fn decide(
        &self,
        answered: &[IpAddr],
        (keys, addrs): Outcomes,
        early: Option<Early>,
        release: &oneshot::Sender<Release>,
        deadline: Instant,
    ) -> Decision {
        let outcome = match keys {
            Ok(outcome) => outcome,
            Err(why) => return lookup_failed(why),
        };
        let secure = match usable(&outcome) {
            Some(secure) => secure,
            None => return verdict_decision(&KeyVerdict::of(outcome.as_ref())),
        };
        let keys = outcome
            .as_ref()
            .as_ref()
            .map_or(0, |a| a.usable_keys().len());
        let proven = match addrs {
            Some(Ok(outcome)) => bind(answered, &outcome),
            Some(Err(why)) => Err(why),
            None => Err("no address lookup".into()),
        };
        let bound = match proven {
            Ok(bound) => bound,
            // An early start went to proven addresses of the name: harmless, but not these.
            Err(reason) => return Decision::AddressesNotProven { reason },
        };
        let (future, late) = match early {
            Some(early) => (early.future, false),
            None => {
                let late = release.is_closed();
                let hook = &self.trigger.hook;
                (
                    hook.secure(self.name.clone(), bound.clone(), secure.clone()),
                    late,
                )
            }
        };
        // Late: the answer is out already; IKE starts anyway, nobody waits for it.
        let completed = !late && tokio::time::timeout_at(deadline, future).await.is_ok();
        Decision::Secure {
            owner: secure.owner.to_string(),
            addrs: bound,
            keys,
            completed,
            late,
        }
    }

    fn report(&self, event: TriggerEvent) {
        let stats = &self.trigger.stats;
        match &event.decision {
            Decision::Secure { late, .. } => {
                stats.bump(|c| &c.secure_keys);
                if *late {
                    stats.bump(|c| &c.late_keys);
                }
            }
            Decision::NoKey { .. } | Decision::NoUsableKey => stats.bump(|c| &c.no_key),
            Decision::Insecure => stats.bump(|c| &c.insecure),
            Decision::Bogus { reason } => {
                tracing::warn!(name = %event.name, %reason, "bogus IPSECKEY: not used");
                stats.bump(|c| &c.bogus);
            }
            Decision::LookupFailed { .. } => stats.bump(|c| &c.lookup_failures),
            Decision::AddressesNotProven { .. } => stats.bump(|c| &c.addresses_not_proven),
        }
        tracing::debug!(
            name = %event.name,
            decision = event.decision.word(),
            held_us = event.held_us,
            "DNS trigger"
        );
        stats.event(event.clone());
        self.trigger.hook.record(event);
    }
}

/// The IPSECKEY outcome, then the addresses only when the key is usable.
async fn lookups(keys: JoinHandle<Outcome>, addrs: JoinHandle<AddressOutcome>) -> Outcomes {
    let keys = keys
        .await
        .map_err(|e| format!("the IPSECKEY lookup task failed: {e}"));
    if !keys.as_ref().is_ok_and(|k| usable(k).is_some()) {
        return (keys, None);
    }
    let addrs = addrs
        .await
        .map_err(|e| format!("the address lookup task failed: {e}"));
    (keys, Some(addrs))
}

/// The secure keys of an outcome with at least one usable key.
fn usable(outcome: &Outcome) -> Option<&SecureKeys> {
    match outcome.as_ref() {
        Ok(answer @ Answer::Secure(secure)) if !answer.usable_keys().is_empty() => Some(secure),
        _ => None,
    }
}

fn lookup_failed(reason: String) -> Decision {
    Decision::LookupFailed { reason }
}

/// The stub's decision for a key verdict without a usable key (the shared model of
/// [`crate::outcome`], so the stub and the agent name every outcome alike).
fn verdict_decision(verdict: &KeyVerdict) -> Decision {
    match verdict {
        KeyVerdict::NoUsableKey { .. } | KeyVerdict::Secure { .. } => Decision::NoUsableKey,
        KeyVerdict::Absent { proven, .. } => Decision::NoKey { proven: *proven },
        KeyVerdict::Insecure { .. } => Decision::Insecure,
        KeyVerdict::Bogus { reason } => Decision::Bogus {
            reason: reason.clone(),
        },
        KeyVerdict::Failed { reason } => lookup_failed(reason.clone()),
    }
}

/// The answered addresses that the validated address answer proves: the key is bound to those.
fn bind(answered: &[IpAddr], outcome: &AddressOutcome) -> Result<Vec<IpAddr>, String> {
    let list = |a: &[IpAddr]| {
        a.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match outcome.as_ref() {
        Ok(proven @ AddressAnswer::Secure { .. }) => {
            let bound: Vec<IpAddr> = answered
                .iter()
                .map(|a| canonical(*a))
                .filter(|a| proven.proves(*a))
                .collect();
            if bound.is_empty() {
                Err(format!(
                    "the answered addresses ({}) are not among the validated ones ({})",
                    list(answered),
                    list(proven.secure_addrs())
                ))
            } else {
                Ok(bound)
            }
        }
        Ok(AddressAnswer::Insecure { .. }) => Err("the addresses are in an unsigned zone".into()),
        Ok(AddressAnswer::Absent { .. }) => Err("the validated lookup found no addresses".into()),
        Err(e) => Err(format!("address lookup: {e}")),
    }
}
