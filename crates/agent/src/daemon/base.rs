//! The policies the agent keeps in the kernel for its policy groups, derived from the group table:
//! a trap for every `private` and `private-or-clear` entry, a pass policy for every `clear` entry and a block
//! policy for every `block` entry (`clear-or-private` needs none: the agent only answers there).
//!
//! The kernel's priority scheme (oe-kernel `priority`) makes the most specific selector win, so a `clear`
//! prefix inside a trapped one is honoured without ordering them here.

use oe_kernel::{Direction, PolicySpec, Prefix, Reqid, Shunt, TrafficSelector};

use crate::config::{Entry, Group, GroupTable};

/// The kernel policies for `table`; `trap_reqid` is the reqid the traps' templates carry.
pub(crate) fn base_policies(table: &GroupTable, trap_reqid: Reqid) -> Vec<(Entry, PolicySpec)> {
    let mut out = Vec::new();
    for entry in table.entries() {
        let Some(selector) = selector(entry) else {
            continue;
        };
        match entry.group {
            Group::Private | Group::PrivateOrClear => {
                out.push((*entry, PolicySpec::trap(selector, trap_reqid)))
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
                    out.push((*entry, PolicySpec::group_shunt(sel, dir, shunt)));
                }
            }
            Group::ClearOrPrivate => {}
        }
    }
    out
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
mod tests {
    use super::*;
    use crate::config::Groups;

    #[test]
    fn defaults_trap_the_internet_and_pass_local_networks() {
        let table = GroupTable::from_config(&Groups::default()).unwrap();
        let reqid = oe_kernel::Ownership::default().reqid(0).unwrap();
        let policies = base_policies(&table, reqid);
        let traps = policies
            .iter()
            .filter(|(e, _)| e.group == Group::PrivateOrClear)
            .count();
        assert_eq!(traps, 2, "one trap per family");
        let clear = table
            .entries()
            .iter()
            .filter(|e| e.group == Group::Clear)
            .count();
        let passes = policies
            .iter()
            .filter(|(e, _)| e.group == Group::Clear)
            .count();
        assert_eq!(passes, 2 * clear, "pass in and out for every clear entry");
        let ownership = oe_kernel::Ownership::default();
        assert!(policies.iter().all(|(_, p)| p.validate(&ownership).is_ok()));
    }

    #[test]
    fn entries_keep_their_protocol_and_port() {
        let groups = Groups {
            private: vec!["198.51.100.0/24 tcp/443".into()],
            ..Groups::default()
        };
        let table = GroupTable::from_config(&groups).unwrap();
        let (_, trap) = base_policies(&table, oe_kernel::Ownership::default().reqid(0).unwrap())
            .into_iter()
            .find(|(e, _)| e.group == Group::Private)
            .unwrap();
        assert_eq!(trap.selector.proto(), Some(6));
        assert_eq!(trap.selector.dst_port(), Some(443));
        assert_eq!(trap.selector.dst().len(), 24);
    }
}
