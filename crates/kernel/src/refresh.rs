//! Keeping policies alive only while the agent lives: hard lifetimes renewed by re-putting
//! the policy, many at a time.
//!
//! # How XFRM policy lifetimes behave (Linux `net/xfrm/xfrm_policy.c`, 6.1 to 6.18)
//! - A hard add-expire lifetime (`hard_add_expires_seconds`, [`PolicySpec::expires`]) counts
//!   from the policy's `curlft.add_time`, which `xfrm_policy_insert` sets to the wall-clock
//!   second on **every** insertion: `XFRM_MSG_NEWPOLICY` and `XFRM_MSG_UPDPOLICY` alike. An
//!   UPDPOLICY of the same selector replaces the policy with a new one that keeps the old
//!   one's index (and its queue of held packets) and starts its lifetime afresh, so
//!   re-putting a policy renews it. At expiry the kernel removes the policy and multicasts
//!   a hard POLEXPIRE.
//! - The expiry timer runs on jiffies (monotonic; stopped during suspend): it first fires
//!   one second after the insertion, then after the remaining time, which it computes from
//!   wall-clock seconds (`add_time + lifetime - now`). So a policy lives its lifetime of
//!   monotonic time, except: a wall clock stepped **back** by `J` seconds keeps it `J`
//!   seconds longer (the timer finds time left and sleeps again); one stepped **forward**
//!   within the first second ends it at that first run, early; one stepped forward later
//!   changes nothing. Suspend does not count. Measured in the UML guest
//!   (`integration/tests/kernel_esp/clock.rs`): a 6 s policy ends after 6.1 s with the
//!   clock stepped +1 h at 3 s, after 1.0 s with it stepped +1 h at 0.2 s, after 12.2 s
//!   with it stepped -6 s at 3 s. The bound on how long a policy outlives the agent is
//!   its lifetime of awake time plus any backward step of the clock meanwhile.
//! - Each insertion also bumps the routing generation of its family (`rt_genid_bump_*`):
//!   cached routes and IPsec bundles of every socket in the namespace are looked up again
//!   on their next packet. Refreshing is cheap for the kernel's tables but not free for
//!   traffic; refresh at a fraction of the lifetime, not continuously.
//! - What a renewal costs depends on the selector's shape (`benches/refresh.rs`, Linux
//!   6.18, a busy two-core machine, medians): host-to-host policies (`/32 -> /32`,
//!   `/128 -> /128`: an SA pair's) are hashed by address, and renewing costs about
//!   20-30 us each, batched (100,000 in 3.2 s, the dump included); policies from anywhere
//!   (`::/0 -> host`: traps, `TrafficSelector::to` shunts) live in the kernel's "inexact"
//!   tree, which each replacement walks: 55 us each among 1,000, 380 us among 10,000.
//!   Keep the renewed set small, or host-to-host.
//!
//! # The refresh
//! [`plan`] turns the policies the agent wants alive and the kernel's current policies (a
//! dump) into requests: our policy present → `UPDPOLICY` (renewed); absent (it expired
//! while the agent was paused or the machine slept) → `NEWPOLICY` (never overwrites);
//! a foreign policy with the same selector and direction → left alone and reported. The
//! requests go out in [`Batch`]es: one datagram and one acknowledgement per 128 policies.

use std::collections::HashMap;

use crate::ownership::Ownership;
use crate::policy::{PolicyInfo, PolicyKey, PolicySpec};
use crate::types::InvalidRequest;
use crate::wire::batch::Batch;
use crate::wire::request::Request;

/// What [`plan`] decided for each wanted policy.
#[derive(Debug, Default)]
pub struct Plan {
    /// The requests, in batches.
    pub batches: Vec<Batch>,
    /// Per batch, the key of each request in order (to name the failures).
    pub keys: Vec<Vec<PolicyKey>>,
    /// Policies present and ours: renewed in place.
    pub renewed: usize,
    /// Policies absent: added again.
    pub added: usize,
    /// Wanted policies whose selector and direction a foreign policy holds: not touched.
    pub foreign: Vec<PolicyKey>,
}

/// Plans the refresh of `wanted` against `current` (a dump of the kernel's policies).
/// Every wanted spec should carry a lifetime ([`PolicySpec::expiring`]), or the refresh
/// renews nothing.
pub fn plan(
    wanted: &[PolicySpec],
    current: Vec<PolicyInfo>,
    ownership: &Ownership,
) -> Result<Plan, InvalidRequest> {
    let mut present: HashMap<PolicyKey, PolicyInfo> =
        current.into_iter().map(|p| (p.key, p)).collect();
    let mut plan = Plan::default();
    for spec in wanted {
        let request = match present.remove(&spec.key()) {
            None => {
                plan.added += 1;
                Request::add_policy(spec, ownership)?
            }
            Some(info) => match ownership.check_policy(info) {
                Ok(owned) => {
                    plan.renewed += 1;
                    Request::update_policy(&owned, spec, ownership)?
                }
                Err(_) => {
                    plan.foreign.push(spec.key());
                    continue;
                }
            },
        };
        plan.push(spec.key(), request);
    }
    Ok(plan)
}

impl Plan {
    fn push(&mut self, key: PolicyKey, request: Request<()>) {
        let request = match (self.batches.last_mut(), self.keys.last_mut()) {
            (Some(batch), Some(keys)) => match batch.push(request) {
                Ok(()) => return keys.push(key),
                Err(request) => request,
            },
            _ => request,
        };
        let mut batch = Batch::new();
        // An empty batch takes any single request.
        let _ = batch.push(request);
        self.batches.push(batch);
        self.keys.push(vec![key]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Prefix, TrafficSelector};

    fn trap(n: u32, o: &Ownership) -> PolicySpec {
        let dst = std::net::IpAddr::from([198, 51, 100, u8::try_from(n % 256).unwrap()]);
        let sel = TrafficSelector::to(Prefix::host(dst));
        PolicySpec::trap(sel, o.reqid(n).unwrap()).expiring(60)
    }

    fn installed(spec: &PolicySpec, o: &Ownership, priority: u32) -> PolicyInfo {
        PolicyInfo {
            priority,
            ..PolicyInfo::installed(spec, o)
        }
    }

    #[test]
    fn ours_renewed_missing_added_foreign_left_alone() {
        let o = Ownership::default();
        let wanted: Vec<_> = (0..3).map(|n| trap(n, &o)).collect();
        let current = vec![
            installed(&wanted[0], &o, wanted[0].priority(&o)),
            installed(&wanted[2], &o, 100),
        ];
        let plan = plan(&wanted, current, &o).unwrap();
        assert_eq!((plan.renewed, plan.added), (1, 1));
        assert_eq!(plan.foreign, vec![wanted[2].key()]);
        assert_eq!(plan.batches.len(), 1);
        assert_eq!(plan.keys, vec![vec![wanted[0].key(), wanted[1].key()]]);
    }

    #[test]
    fn many_policies_fill_bounded_batches_in_order() {
        let o = Ownership::default();
        let wanted: Vec<_> = (0..1000).map(|n| trap(n, &o)).collect();
        let plan = plan(&wanted, Vec::new(), &o).unwrap();
        assert!(plan.batches.len() >= 1000 / crate::wire::batch::MAX_MESSAGES);
        assert!(plan
            .batches
            .iter()
            .all(|b| b.len() <= crate::wire::batch::MAX_MESSAGES));
        let keys: Vec<_> = plan.keys.concat();
        assert_eq!(keys, wanted.iter().map(PolicySpec::key).collect::<Vec<_>>());
        let lens: Vec<_> = plan.batches.iter().map(Batch::len).collect();
        assert_eq!(lens, plan.keys.iter().map(Vec::len).collect::<Vec<_>>());
    }
}
