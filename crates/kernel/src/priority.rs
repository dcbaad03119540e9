//! The priority scheme of oe's policies.
//!
//! XFRM picks, among the policies whose selector matches a packet, the one with the
//! **lowest** priority value. All of oe's policies sit in one band of 65,536 values
//! starting at [`crate::Ownership::priority_base`] (default `0x6f65_0000`, "oe"), far
//! above the values other IKE daemons and administrators use (`ip xfrm` defaults to 0,
//! Libreswan and strongSwan stay below 2^20), so a foreign policy always wins over ours
//! and we never capture traffic another daemon handles.
//!
//! Inside the band, the offset is `class + 4 * (258 - specificity) + rank`:
//!
//! | class            | offset   | what                                            |
//! |------------------|----------|-------------------------------------------------|
//! | exempt           | `0x0000` | traffic that must never be trapped or encrypted: IPv6 neighbour discovery (ICMPv6 133-137) |
//! | host SA          | `0x1000` | per-peer policies of an installed SA pair        |
//! | host shunt       | `0x2000` | per-peer pass/block (negotiation, failure)       |
//! | group            | `0x3000` | traps and shunts for configured prefixes         |
//!
//! - **An exemption beats every other policy of ours**: every exempt offset is below every
//!   host offset, so neighbour discovery passes even towards a peer with an SA pair or a
//!   block shunt (Libreswan exempts the same ICMPv6 types).
//! - **A host policy beats any group policy**: every host offset is below every group
//!   offset, whatever the prefixes (each class spans at most `4 * 259 = 1036` values).
//! - **A more specific prefix wins**: `specificity` is the sum of source and destination
//!   prefix lengths (0..=256), plus one for a protocol and one for ports, so a `/24`
//!   trap beats a `/16` pass shunt, and a TCP/22 shunt beats a whole-host trap with the
//!   same prefixes.
//! - **Ties**: at equal specificity, block (rank 0) beats pass (1) beats trap or SA (2).
//!
//! Two policies with the same selector and direction are the same policy to the kernel
//! whatever their priorities (it refuses the second with `EEXIST`); replacing one with
//! another is [`crate::Request::update_policy`]'s job.

use crate::types::TrafficSelector;

/// Width of the band.
pub const BAND: u32 = 0x1_0000;
/// Offset of exemptions (neighbour discovery).
pub const EXEMPT: u32 = 0x0000;
/// Offset of per-host SA policies.
pub const HOST_SA: u32 = 0x1000;
/// Offset of per-host shunts.
pub const HOST_SHUNT: u32 = 0x2000;
/// Offset of group (prefix) policies.
pub const GROUP: u32 = 0x3000;
/// Highest specificity: two `/128` prefixes plus protocol plus ports.
const MAX_SPECIFICITY: u32 = 128 + 128 + 2;

/// Where a policy sits in the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Traffic that passes whatever else is installed (neighbour discovery).
    Exempt,
    /// Policy of an installed SA pair for one peer.
    HostSa,
    /// Shunt for one peer.
    HostShunt,
    /// Trap or shunt for a configured prefix.
    Group,
}

/// Tie-breaker at equal specificity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rank {
    Block = 0,
    Pass = 1,
    Protect = 2,
}

/// How specific a selector is (higher = more specific).
pub fn specificity(sel: &TrafficSelector) -> u32 {
    let ports = u32::from(sel.src_port().is_some() || sel.dst_port().is_some());
    u32::from(sel.src().len())
        + u32::from(sel.dst().len())
        + u32::from(sel.proto().is_some())
        + ports
}

/// The offset inside oe's band (always below [`BAND`]).
pub(crate) fn offset(class: Class, sel: &TrafficSelector, rank: Rank) -> u32 {
    let base = match class {
        Class::Exempt => EXEMPT,
        Class::HostSa => HOST_SA,
        Class::HostShunt => HOST_SHUNT,
        Class::Group => GROUP,
    };
    let generality = MAX_SPECIFICITY.saturating_sub(specificity(sel));
    base + 4 * generality + rank as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{proto, Prefix};

    fn sel(dst: &str, len: u8) -> TrafficSelector {
        TrafficSelector::to(Prefix::new(dst.parse().unwrap(), len).unwrap())
    }

    #[test]
    fn more_specific_prefix_wins() {
        let wide = offset(Class::Group, &sel("10.0.0.0", 8), Rank::Pass);
        let narrow = offset(Class::Group, &sel("10.1.0.0", 16), Rank::Protect);
        assert!(narrow < wide);
        let port = sel("10.1.0.0", 16)
            .with_proto(proto::TCP, None, Some(22))
            .unwrap();
        assert!(offset(Class::Group, &port, Rank::Pass) < narrow);
    }

    #[test]
    fn host_beats_any_group() {
        let most_specific_group = TrafficSelector::hosts(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .unwrap()
        .with_proto(proto::TCP, Some(1), Some(2))
        .unwrap();
        let group = offset(Class::Group, &most_specific_group, Rank::Block);
        let least_specific_host = sel("0.0.0.0", 0);
        assert!(offset(Class::HostShunt, &least_specific_host, Rank::Protect) < group);
        assert!(
            offset(Class::HostSa, &least_specific_host, Rank::Protect)
                < offset(Class::HostShunt, &most_specific_group, Rank::Block)
        );
    }

    #[test]
    fn exemptions_beat_every_host_policy() {
        let widest_exemption =
            TrafficSelector::to(Prefix::any(crate::types::Family::V6)).with_icmp(135, None);
        let narrowest_host = TrafficSelector::hosts(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .unwrap()
        .with_proto(proto::TCP, Some(1), Some(2))
        .unwrap();
        assert!(
            offset(Class::Exempt, &widest_exemption, Rank::Protect)
                < offset(Class::HostSa, &narrowest_host, Rank::Block)
        );
    }

    #[test]
    fn ties_broken_by_rank_and_band_respected() {
        let s = sel("192.0.2.0", 24);
        assert!(offset(Class::Group, &s, Rank::Block) < offset(Class::Group, &s, Rank::Pass));
        assert!(offset(Class::Group, &s, Rank::Pass) < offset(Class::Group, &s, Rank::Protect));
        assert!(offset(Class::Group, &sel("::", 0), Rank::Protect) < BAND);
    }
}
