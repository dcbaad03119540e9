//! The trap manager: the policies the agent keeps in the kernel for its policy groups, derived
//! from the group table: a trap for every `private` and `private-or-clear` entry, a pass policy
//! (both directions) for every `clear` entry and a block policy for every `block` entry
//! (`clear-or-private` needs none: the agent only answers there).
//!
//! Lifetimes: traps of `private-or-clear` carry the kernel lifetime `kernel.policy_lifetime` and
//! are refreshed while the agent runs, so after a crash they stop catching flows within that
//! bound. `private` traps and `block` policies stay: the operator chose to drop rather than send
//! in clear. `clear` policies stay too: they only ever pass traffic.
//!
//! A reload applies the difference between the old and new sets: additions first, then changes
//! (updated in place), then removals, so no prefix is ever briefly untrapped.

use std::collections::HashMap;
use std::time::Duration;

use oe_kernel::{Direction, PolicyKey, PolicySpec, Prefix, Reqid, Shunt, TrafficSelector};

use crate::config::{Entry, Group, GroupTable};
use crate::input::KernelOp;

/// Reqids 1..=TRAP_REQIDS of our range are for trap policies, one picked per run (a run's larval
/// states carry its trap reqid; a fresh one lets a restarted agent see fresh ACQUIREs).
pub const TRAP_REQIDS: u32 = 1024;

/// The group policies, as installed.
#[derive(Debug)]
pub(crate) struct Traps {
    reqid: Reqid,
    lifetime: Duration,
    installed: HashMap<PolicyKey, PolicySpec>,
}

impl Traps {
    pub(crate) fn new(reqid: Reqid, lifetime: Duration) -> Self {
        Self {
            reqid,
            lifetime,
            installed: HashMap::new(),
        }
    }

    pub(crate) fn reqid(&self) -> Reqid {
        self.reqid
    }

    /// The policies `table` asks for, and the exemptions that keep IPv6 neighbour discovery out
    /// of every trap (RFC 4861 messages pass, as Libreswan lets them).
    pub(crate) fn wanted(&self, table: &GroupTable) -> Vec<PolicySpec> {
        let secs = self.lifetime.as_secs().max(1);
        let mut out = PolicySpec::neighbour_discovery();
        for entry in table.entries() {
            let Some(selector) = selector(entry) else {
                continue;
            };
            match entry.group {
                Group::Private => out.push(PolicySpec::trap(selector, self.reqid)),
                Group::PrivateOrClear => {
                    out.push(PolicySpec::trap(selector, self.reqid).expiring(secs));
                }
                Group::Clear | Group::Block => {
                    let shunt = if entry.group == Group::Clear {
                        Shunt::Pass
                    } else {
                        Shunt::Block
                    };
                    for dir in [Direction::Out, Direction::In] {
                        let sel = if dir == Direction::Out {
                            selector
                        } else {
                            selector.reversed()
                        };
                        out.push(PolicySpec::group_shunt(sel, dir, shunt));
                    }
                }
                Group::ClearOrPrivate => {}
            }
        }
        out
    }

    /// The kernel requests that turn what is installed into `wanted`, and records `wanted` as
    /// installed: additions, then changes in place, then removals.
    pub(crate) fn apply(&mut self, wanted: Vec<PolicySpec>) -> Vec<KernelOp> {
        let mut adds = Vec::new();
        let mut changes = Vec::new();
        let mut next = HashMap::new();
        for spec in wanted {
            match self.installed.remove(&spec.key()) {
                None => adds.push(KernelOp::AddPolicy(spec)),
                Some(old) if old != spec => changes.push(KernelOp::UpdatePolicy(spec)),
                Some(_) => {}
            }
            next.insert(spec.key(), spec);
        }
        let removals: Vec<KernelOp> = self
            .installed
            .drain()
            .map(|(key, _)| KernelOp::DeletePolicy(key))
            .collect();
        self.installed = next;
        adds.into_iter().chain(changes).chain(removals).collect()
    }

    /// Forgets a policy the kernel refused (it is tried again at the next refresh).
    pub(crate) fn refused(&mut self, key: &PolicyKey) {
        self.installed.remove(key);
    }

    /// The installed policy with this key, if it is ours.
    pub(crate) fn get(&self, key: &PolicyKey) -> Option<&PolicySpec> {
        self.installed.get(key)
    }

    /// The trap of the most specific prefix that covers `addr`.
    pub(crate) fn covering(&self, addr: std::net::IpAddr) -> Option<PolicyKey> {
        self.installed
            .values()
            .filter(|p| matches!(p.action, oe_kernel::PolicyAction::Protect(_)))
            .filter(|p| p.selector.dst().contains(addr))
            .max_by_key(|p| p.selector.dst().len())
            .map(PolicySpec::key)
    }

    /// Every installed group policy.
    pub(crate) fn all(&self) -> impl Iterator<Item = &PolicySpec> {
        self.installed.values()
    }

    /// Policies with a kernel lifetime, to re-put before it ends.
    pub(crate) fn expiring(&self) -> impl Iterator<Item = &PolicySpec> {
        self.installed.values().filter(|s| s.expires.is_some())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    /// Forgets everything (the kernel state was flushed).
    pub(crate) fn clear(&mut self) {
        self.installed.clear();
    }
}

/// The selector of a group entry: any source to the entry's prefix, with its protocol and port.
pub(crate) fn selector(entry: &Entry) -> Option<TrafficSelector> {
    let dst = Prefix::new(entry.prefix.network(), entry.prefix.prefix_len()).ok()?;
    let selector = TrafficSelector::new(Prefix::any(dst.family()), dst).ok()?;
    match entry.proto {
        Some(proto) => selector.with_proto(proto, None, entry.port).ok(),
        None => Some(selector),
    }
}

#[cfg(test)]
mod tests;
