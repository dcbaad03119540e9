//! Policies that live only while the agent does: a hard lifetime renewed by re-putting the
//! policy (`Xfrm::refresh_policies`, batched), and what happens when nobody renews it.

use std::collections::HashSet;
use std::time::Instant;

use oe_kernel::PolicyKey;

use super::*;

const LIFETIME: u64 = 3;

/// `count` traps with a 3-second hard lifetime, for hosts 2001:db8:1::, 2001:db8:1::1, ...
fn traps(x: &Xfrm, count: u32) -> Vec<PolicySpec> {
    (0..count)
        .map(|n| {
            let dst = IpAddr::from(std::net::Ipv6Addr::from(
                0x2001_0db8_0001_u128 << 80 | u128::from(n),
            ));
            let sel = TrafficSelector::to(Prefix::host(dst));
            PolicySpec::trap(sel, x.ownership().reqid(1).unwrap()).expiring(LIFETIME)
        })
        .collect()
}

async fn our_keys(x: &mut Xfrm) -> HashSet<PolicyKey> {
    let o = *x.ownership();
    let dump = x.dump_policies().await.unwrap();
    dump.iter()
        .filter(|p| o.owns_policy(p))
        .map(|p| p.key)
        .collect()
}

/// Hard POLEXPIREs seen within `wait`.
async fn expired_within(events: &mut EventSocket, wait: Duration) -> HashSet<PolicyKey> {
    let deadline = Instant::now() + wait;
    let mut expired = HashSet::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.next_within(left).await.unwrap() {
            Some(Event::PolicyExpire(e)) if e.hard => {
                expired.insert(e.policy.key);
            }
            Some(Event::Lost) => panic!("events lost"),
            Some(_) => {}
            None => break,
        }
    }
    expired
}

#[test]
fn refreshed_policies_outlive_their_lifetime_and_expire_once_left_alone() {
    let ns = Netns::new("life");
    ns.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let wanted = traps(&x, 300);
            let all: HashSet<_> = wanted.iter().map(PolicySpec::key).collect();
            let first = x.refresh_policies(&wanted).await.unwrap();
            assert_eq!((first.added, first.renewed), (300, 0), "{first:?}");
            let before = x.get_policy(&wanted[0].key()).await.unwrap();
            // Renewed every second for twice the lifetime: nothing expires.
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2 * LIFETIME) {
                let expired = expired_within(&mut events, Duration::from_secs(1)).await;
                assert!(expired.is_empty(), "{} expired", expired.len());
                let r = x.refresh_policies(&wanted).await.unwrap();
                assert_eq!((r.renewed, r.added), (300, 0), "{r:?}");
                assert!(r.failed.is_empty() && r.foreign.is_empty(), "{r:?}");
            }
            assert_eq!(our_keys(&mut x).await, all);
            // Renewal is a replacement in place: same index, a new start of life.
            let after = x.get_policy(&wanted[0].key()).await.unwrap();
            assert_eq!(after.index, before.index);
            assert!(
                after.add_time >= before.add_time + 2 * LIFETIME - 1,
                "{after:?}"
            );
            // Left alone: every one expires, with a hard POLEXPIRE, about LIFETIME later.
            let left = Instant::now();
            let expired = expired_within(&mut events, Duration::from_secs(LIFETIME + 3)).await;
            assert_eq!(expired, all);
            assert!(left.elapsed() >= Duration::from_secs(LIFETIME - 1));
            assert!(our_keys(&mut x).await.is_empty());
        })
        .unwrap()
    });
}

#[test]
fn one_policy_refreshed_each_second_survives_six_seconds_unrefreshed_goes_in_three() {
    let ns = Netns::new("life");
    ns.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let specs = traps(&x, 2);
            let (kept, left) = (&specs[..1], &specs[1]);
            x.refresh_policies(&specs).await.unwrap();
            let start = Instant::now();
            let mut expired_at = None;
            while start.elapsed() < Duration::from_secs(6) {
                let expired = expired_within(&mut events, Duration::from_secs(1)).await;
                assert!(
                    !expired.contains(&kept[0].key()),
                    "the refreshed one expired"
                );
                if expired.contains(&left.key()) {
                    expired_at.get_or_insert(start.elapsed());
                }
                x.refresh_policies(kept).await.unwrap();
            }
            let expired_at = expired_at.expect("the unrefreshed policy never expired");
            assert!(
                expired_at >= Duration::from_secs(2) && expired_at <= Duration::from_secs(5),
                "expired after {expired_at:?}"
            );
            assert!(x.get_policy(&kept[0].key()).await.is_ok());
            assert!(x.get_policy(&left.key()).await.unwrap_err().is_not_found());
        })
        .unwrap()
    });
}

#[test]
fn refresh_readds_what_vanished_and_leaves_foreign_policies_alone() {
    let ns = Netns::new("life");
    ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let wanted = traps(&x, 3);
            x.refresh_policies(&wanted).await.unwrap();
            x.delete_policy(&wanted[1].key()).await.unwrap();
        })
        .unwrap()
    });
    // Someone else takes the selector of the first.
    xfrm(&ns, "policy delete dir out dst 2001:db8:1::/128");
    xfrm(
        &ns,
        "policy add dir out dst 2001:db8:1::/128 priority 100 action block",
    );
    ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let wanted = traps(&x, 3);
            let r = x.refresh_policies(&wanted).await.unwrap();
            assert_eq!((r.renewed, r.added), (1, 1), "{r:?}");
            assert_eq!(r.foreign, vec![wanted[0].key()]);
            let foreign = x.get_policy(&wanted[0].key()).await.unwrap();
            assert!(foreign.block && foreign.priority == 100, "{foreign:?}");
        })
        .unwrap()
    });
}
