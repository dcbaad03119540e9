use super::*;
use crate::config::Groups;

fn traps() -> Traps {
    let reqid = oe_kernel::Ownership::default().reqid(1).unwrap();
    Traps::new(reqid, Duration::from_secs(60))
}

fn table(groups: Groups) -> GroupTable {
    GroupTable::from_config(&groups).unwrap()
}

#[test]
fn defaults_trap_the_internet_and_pass_local_networks() {
    let t = traps();
    let wanted = t.wanted(&table(Groups::default()));
    let traps = wanted
        .iter()
        .filter(|p| {
            p.class == oe_kernel::priority::Class::Group
                && matches!(p.action, oe_kernel::PolicyAction::Protect(_))
        })
        .count();
    assert_eq!(traps, 2, "one trap per family");
    let clear = Groups::default().clear.len();
    let group = oe_kernel::priority::Class::Group;
    let passes = wanted
        .iter()
        .filter(|p| p.action == oe_kernel::PolicyAction::Pass && p.class == group)
        .count();
    assert_eq!(passes, 2 * clear, "pass in and out for every clear entry");
    let nd = wanted
        .iter()
        .filter(|p| p.class == oe_kernel::priority::Class::Exempt)
        .count();
    assert_eq!(nd, 10, "ICMPv6 133-137 pass both ways (RFC 4861)");
    let ownership = oe_kernel::Ownership::default();
    assert!(wanted.iter().all(|p| p.validate(&ownership).is_ok()));
}

#[test]
fn only_opportunistic_traps_expire() {
    let groups = Groups {
        private: vec!["198.51.100.0/24".into()],
        block: vec!["203.0.113.0/24".into()],
        ..Groups::default()
    };
    let wanted = traps().wanted(&table(groups));
    for p in &wanted {
        let trap = matches!(p.action, oe_kernel::PolicyAction::Protect(_));
        let opportunistic = trap && p.selector.dst().is_empty();
        assert_eq!(p.expires.is_some(), opportunistic, "{p:?}");
    }
}

#[test]
fn entries_keep_their_protocol_and_port() {
    let groups = Groups {
        private: vec!["198.51.100.0/24 tcp/443".into()],
        ..Groups::default()
    };
    let wanted = traps().wanted(&table(groups));
    let trap = wanted
        .iter()
        .find(|p| p.selector.dst().len() == 24 && p.selector.proto() == Some(6))
        .unwrap();
    assert_eq!(trap.selector.dst_port(), Some(443));
}

#[test]
fn a_reload_adds_before_it_removes_and_never_untraps_what_stays() {
    let mut t = traps();
    let first = Groups {
        private: vec!["198.51.100.0/24".into(), "203.0.113.0/24".into()],
        ..Groups::default()
    };
    let ops = t.apply(t.wanted(&table(first)));
    assert!(ops.iter().all(|op| matches!(op, KernelOp::AddPolicy(_))));
    let second = Groups {
        private: vec!["198.51.100.0/24".into(), "192.0.2.0/24".into()],
        ..Groups::default()
    };
    let ops = t.apply(t.wanted(&table(second)));
    let kinds: Vec<&str> = ops
        .iter()
        .map(|op| match op {
            KernelOp::AddPolicy(_) => "add",
            KernelOp::UpdatePolicy(_) => "update",
            KernelOp::DeletePolicy(_) => "delete",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["add", "delete"],
        "192.0.2.0/24 added, then 203.0.113.0/24 removed"
    );
    // A group change on the same prefix is an update in place.
    let third = Groups {
        private_or_clear: vec!["198.51.100.0/24".into(), "192.0.2.0/24".into()],
        ..Groups::default()
    };
    let ops = t.apply(t.wanted(&table(third)));
    assert!(ops.iter().any(|op| matches!(op, KernelOp::UpdatePolicy(_))));
    assert!(!ops.iter().any(|op| matches!(op, KernelOp::DeletePolicy(k) if k.selector().is_some_and(|s| s.dst().len() == 24))));
}
