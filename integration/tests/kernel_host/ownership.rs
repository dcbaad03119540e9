//! Ownership: oe never replaces or removes a policy or SA it does not own. XFRM identifies
//! a policy by selector, direction, mark and interface id, not by priority, so a foreign
//! policy (another daemon's, an administrator's `ip xfrm policy add`) with the same selector
//! and direction as one of ours is the same kernel entry: an unchecked UPDPOLICY would
//! overwrite it and an unchecked DELPOLICY would remove it.

use super::*;

/// The administrator's policy: same selector and direction as our trap for 192.0.2.0/24,
/// another priority and another daemon's reqid.
fn foreign_policy(ns: &Netns) {
    xfrm(
        ns,
        "policy add dir out dst 192.0.2.0/24 priority 100 tmpl proto esp mode transport reqid 5",
    );
}

fn policies_text(ns: &Netns) -> String {
    String::from_utf8(ns.ip(&["xfrm", "policy"]).stdout).unwrap()
}

fn trap(x: &Xfrm) -> PolicySpec {
    PolicySpec::trap(
        TrafficSelector::to(prefix("192.0.2.0", 24)),
        x.ownership().reqid(1).unwrap(),
    )
}

#[test]
fn foreign_policy_with_our_selector_is_neither_replaced_nor_removed() {
    let ns = Netns::new("own");
    foreign_policy(&ns);
    let before = policies_text(&ns);
    ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let trap = trap(&x);
            assert!(x.add_policy(&trap).await.unwrap_err().is_exists());
            let update = x.update_policy(&trap).await;
            assert!(
                matches!(update, Err(oe_kernel::Error::Foreign { .. })),
                "{update:?}"
            );
            let block = PolicySpec::group_shunt(trap.selector, Direction::Out, Shunt::Block);
            let update = x.update_policy(&block).await;
            assert!(
                matches!(update, Err(oe_kernel::Error::Foreign { .. })),
                "{update:?}"
            );
            let delete = x.delete_policy(&trap.key()).await;
            assert!(
                matches!(delete, Err(oe_kernel::Error::Foreign { .. })),
                "{delete:?}"
            );
        })
        .unwrap()
    });
    assert_eq!(policies_text(&ns), before, "the foreign policy changed");
}

#[test]
fn our_own_policy_is_replaced_in_place_and_removed() {
    let ns = Netns::new("own");
    ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let trap = trap(&x);
            // Absent: the checked update adds it.
            x.update_policy(&trap).await.unwrap();
            let added = x.get_policy(&trap.key()).await.unwrap();
            let block = PolicySpec::group_shunt(trap.selector, Direction::Out, Shunt::Block);
            x.update_policy(&block).await.unwrap();
            let replaced = x.get_policy(&trap.key()).await.unwrap();
            assert!(replaced.block, "{replaced:?}");
            assert_eq!(replaced.index, added.index);
            x.delete_policy(&trap.key()).await.unwrap();
            let gone = x.delete_policy(&trap.key()).await.unwrap_err();
            assert!(gone.is_not_found(), "{gone:?}");
        })
        .unwrap()
    });
}

#[test]
fn foreign_sa_is_not_removed() {
    let ns = Netns::new("own");
    // Another daemon's larval SA (reqid 5).
    xfrm(
        &ns,
        "state allocspi src 203.0.113.9 dst 192.0.2.1 proto esp mode transport reqid 5",
    );
    ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let foreign = x.dump_sas().await.unwrap();
            assert_eq!(foreign.len(), 1);
            let delete = x.delete_sa(foreign[0].id).await;
            assert!(
                matches!(delete, Err(oe_kernel::Error::Foreign { .. })),
                "{delete:?}"
            );
            assert_eq!(x.dump_sas().await.unwrap(), foreign);
        })
        .unwrap()
    });
}
