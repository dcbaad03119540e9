//! Policies: traps, shunts and per-host SA policies, and what the kernel reports back.

use std::net::IpAddr;

use netlink_packet_xfrm::{
    Address, Id, LifetimeConfig, Selector, UserPolicyInfo, UserTemplate, XfrmAttrs, IPPROTO_ESP,
    XFRM_MODE_TRANSPORT, XFRM_MODE_TUNNEL, XFRM_POLICY_ALLOW, XFRM_POLICY_BLOCK,
};

use crate::ownership::Ownership;
use crate::priority::{self, Class, Rank};
use crate::types::{Direction, Family, InvalidRequest, Prefix, Reqid, TrafficSelector};

/// What a shunt does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shunt {
    /// Let the traffic through in clear.
    Pass,
    /// Drop it.
    Block,
}

/// What a policy does with matching traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    /// Require ESP transport mode with an SA of this reqid; with no SA the kernel
    /// raises an ACQUIRE (a trap).
    Protect(Reqid),
    /// Require ESP tunnel mode with an SA of this reqid whose outer addresses are
    /// `src` -> `dst` (for an outbound policy: ours -> the peer's).
    ProtectTunnel {
        /// The SA's reqid.
        reqid: Reqid,
        /// Outer source.
        src: IpAddr,
        /// Outer destination.
        dst: IpAddr,
    },
    /// Plain allow.
    Pass,
    /// Plain block.
    Block,
}

/// A policy to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySpec {
    /// Traffic it matches.
    pub selector: TrafficSelector,
    /// Direction.
    pub dir: Direction,
    /// What it does.
    pub action: PolicyAction,
    /// Its place in the priority scheme.
    pub class: Class,
    /// Hard lifetime in seconds since installation: the kernel removes the policy and
    /// raises a POLEXPIRE event. `None` = until removed.
    pub expires: Option<u64>,
}

impl PolicySpec {
    /// A trap: outbound traffic matching `selector` needs an ESP transport SA with
    /// `reqid`; with none, the kernel raises an ACQUIRE.
    pub fn trap(selector: TrafficSelector, reqid: Reqid) -> Self {
        Self {
            selector,
            dir: Direction::Out,
            action: PolicyAction::Protect(reqid),
            class: Class::Group,
            expires: None,
        }
    }

    /// A pass or block shunt for a configured prefix (a `clear` or `block` group).
    pub fn group_shunt(selector: TrafficSelector, dir: Direction, shunt: Shunt) -> Self {
        Self {
            selector,
            dir,
            action: shunt.into(),
            class: Class::Group,
            expires: None,
        }
    }

    /// A pass or block shunt for one peer (negotiation or failure shunt), removed by the
    /// kernel after `seconds` if given.
    pub fn host_shunt(
        selector: TrafficSelector,
        dir: Direction,
        shunt: Shunt,
        seconds: Option<u64>,
    ) -> Self {
        Self {
            selector,
            dir,
            action: shunt.into(),
            class: Class::HostShunt,
            expires: seconds,
        }
    }

    /// The outbound and inbound policies of an SA pair with `peer` (all traffic between
    /// the two hosts, transport mode, `reqid` of both SAs).
    pub fn host_sa_pair(
        local: IpAddr,
        peer: IpAddr,
        reqid: Reqid,
    ) -> Result<[Self; 2], InvalidRequest> {
        let out = TrafficSelector::hosts(local, peer)?;
        let half = |selector, dir| Self {
            selector,
            dir,
            action: PolicyAction::Protect(reqid),
            class: Class::HostSa,
            expires: None,
        };
        Ok([
            half(out, Direction::Out),
            half(out.reversed(), Direction::In),
        ])
    }

    /// The outbound and inbound policies of a tunnel-mode SA pair with `peer` (RFC 4301
    /// section 4.1): `inner` is the traffic from this host to the peer (for example from a
    /// virtual address the peer assigned, `100.64.0.7/32 -> peer/32`), carried between the
    /// outer addresses `local` and `peer`; the inbound half takes `inner` reversed.
    pub fn host_tunnel_pair(
        inner: TrafficSelector,
        local: IpAddr,
        peer: IpAddr,
        reqid: Reqid,
    ) -> Result<[Self; 2], InvalidRequest> {
        if Family::of(&local) != Family::of(&peer) {
            return Err(InvalidRequest::SaFamilies);
        }
        let half = |selector, src, dst, dir| Self {
            selector,
            dir,
            action: PolicyAction::ProtectTunnel { reqid, src, dst },
            class: Class::HostSa,
            expires: None,
        };
        Ok([
            half(inner, local, peer, Direction::Out),
            half(inner.reversed(), peer, local, Direction::In),
        ])
    }

    /// The exemptions for IPv6 neighbour discovery: ICMPv6 router solicitation and
    /// advertisement, neighbour solicitation and advertisement, and redirect (types
    /// 133-137, RFC 4861 section 4), from and to anywhere, in both directions, passing at a
    /// priority that beats every other policy of ours ([`Class::Exempt`]). Without them a
    /// trap for a global prefix holds the kernel's unicast neighbour solicitations to
    /// on-link hosts of that prefix, and their neighbour entries end FAILED.
    pub fn neighbour_discovery() -> Vec<Self> {
        const ND_TYPES: std::ops::RangeInclusive<u8> = 133..=137;
        let any = TrafficSelector::to(Prefix::any(Family::V6));
        ND_TYPES
            .flat_map(|t| [Direction::Out, Direction::In].map(|dir| (t, dir)))
            .map(|(t, dir)| Self {
                selector: any.with_icmp(t, None),
                dir,
                action: PolicyAction::Pass,
                class: Class::Exempt,
                expires: None,
            })
            .collect()
    }

    /// Sets an expiry (hard add-expire lifetime) in seconds.
    pub fn expiring(mut self, seconds: u64) -> Self {
        self.expires = Some(seconds);
        self
    }

    /// The key the kernel identifies this policy by.
    pub fn key(&self) -> PolicyKey {
        PolicyKey::new(self.selector, self.dir)
    }

    /// The priority this policy gets under `ownership`.
    pub fn priority(&self, ownership: &Ownership) -> u32 {
        let rank = match self.action {
            PolicyAction::Block => Rank::Block,
            PolicyAction::Pass => Rank::Pass,
            PolicyAction::Protect(_) | PolicyAction::ProtectTunnel { .. } => Rank::Protect,
        };
        ownership.priority_base() + priority::offset(self.class, &self.selector, rank)
    }

    /// Checks the request against `ownership` (reqids must be ours).
    pub fn validate(&self, ownership: &Ownership) -> Result<(), InvalidRequest> {
        match self.action {
            PolicyAction::Protect(reqid) | PolicyAction::ProtectTunnel { reqid, .. }
                if !ownership.owns_reqid(reqid) =>
            {
                Err(InvalidRequest::ForeignReqid(reqid.0))
            }
            PolicyAction::ProtectTunnel { src, dst, .. }
                if Family::of(&src) != Family::of(&dst) =>
            {
                Err(InvalidRequest::SaFamilies)
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn info(&self, ownership: &Ownership) -> UserPolicyInfo {
        let lifetime_cfg = LifetimeConfig {
            hard_add_expires_seconds: self.expires.unwrap_or(0),
            ..LifetimeConfig::default()
        };
        UserPolicyInfo {
            selector: self.selector.to_xfrm(),
            lifetime_cfg,
            priority: self.priority(ownership),
            direction: self.dir.to_xfrm(),
            action: match self.action {
                PolicyAction::Block => XFRM_POLICY_BLOCK,
                _ => XFRM_POLICY_ALLOW,
            },
            ..UserPolicyInfo::default()
        }
    }

    pub(crate) fn attrs(&self) -> Vec<XfrmAttrs> {
        match self.action {
            PolicyAction::Protect(reqid) => {
                vec![XfrmAttrs::Template(vec![esp_transport(
                    self.selector.family().af(),
                    reqid,
                )])]
            }
            PolicyAction::ProtectTunnel { reqid, src, dst } => {
                vec![XfrmAttrs::Template(vec![esp_tunnel(reqid, src, dst)])]
            }
            _ => Vec::new(),
        }
    }
}

impl From<Shunt> for PolicyAction {
    fn from(s: Shunt) -> Self {
        match s {
            Shunt::Pass => Self::Pass,
            Shunt::Block => Self::Block,
        }
    }
}

/// A template that accepts any ESP transport SA of `reqid` between the flow's
/// addresses (transport mode takes the addresses from the packet).
fn esp_transport(family: u16, reqid: Reqid) -> UserTemplate {
    UserTemplate {
        id: Id {
            daddr: Address::default(),
            spi: 0,
            proto: IPPROTO_ESP,
        },
        family,
        saddr: Address::default(),
        reqid: reqid.0,
        mode: XFRM_MODE_TRANSPORT,
        share: 0,
        optional: 0,
        aalgos: u32::MAX,
        ealgos: u32::MAX,
        calgos: u32::MAX,
    }
}

/// A template that takes only an ESP tunnel SA of `reqid` with outer addresses
/// `src` -> `dst` (tunnel mode names them: the packet's are the inner ones).
fn esp_tunnel(reqid: Reqid, src: IpAddr, dst: IpAddr) -> UserTemplate {
    UserTemplate {
        id: Id {
            daddr: Address::from_ip(&dst),
            spi: 0,
            proto: IPPROTO_ESP,
        },
        family: Family::of(&dst).af(),
        saddr: Address::from_ip(&src),
        reqid: reqid.0,
        mode: XFRM_MODE_TUNNEL,
        share: 0,
        optional: 0,
        aalgos: u32::MAX,
        ealgos: u32::MAX,
        calgos: u32::MAX,
    }
}

/// How the kernel identifies a policy: direction plus the exact selector bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PolicyKey {
    pub(crate) dir: Direction,
    pub(crate) selector: Selector,
}

impl PolicyKey {
    /// The key of a policy for `selector` in `dir`.
    pub fn new(selector: TrafficSelector, dir: Direction) -> Self {
        Self {
            dir,
            selector: selector.to_xfrm(),
        }
    }

    /// Direction.
    pub fn dir(&self) -> Direction {
        self.dir
    }

    /// The selector, if this crate can express it.
    pub fn selector(&self) -> Option<TrafficSelector> {
        TrafficSelector::from_xfrm(&self.selector)
    }
}

impl std::hash::Hash for PolicyKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        use netlink_packet_core::Emitable;
        let mut bytes = [0u8; netlink_packet_xfrm::XFRM_SELECTOR_LEN];
        self.selector.emit(&mut bytes);
        self.dir.hash(state);
        bytes.hash(state);
    }
}

impl std::fmt::Debug for PolicyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.selector() {
            Some(sel) => write!(f, "PolicyKey({:?}, {sel})", self.dir),
            None => write!(f, "PolicyKey({:?}, {:?})", self.dir, self.selector),
        }
    }
}

/// One template of a reported policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateInfo {
    /// IPsec protocol (50 = ESP).
    pub proto: u8,
    /// `XFRM_MODE_*` (0 = transport).
    pub mode: u8,
    /// Request id.
    pub reqid: Reqid,
    /// Whether the template is optional.
    pub optional: bool,
}

impl TemplateInfo {
    /// ESP in transport or tunnel mode (what this crate installs).
    pub fn is_esp(&self) -> bool {
        self.proto == IPPROTO_ESP && matches!(self.mode, XFRM_MODE_TRANSPORT | XFRM_MODE_TUNNEL)
    }
}

/// A policy as the kernel reports it (dumps, GETPOLICY, POLEXPIRE, ACQUIRE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Direction and selector.
    pub key: PolicyKey,
    /// Kernel-assigned index.
    pub index: u32,
    /// Priority (lower wins).
    pub priority: u32,
    /// Whether the action is block (`false` = allow, with or without templates).
    pub block: bool,
    /// Templates (empty for pass/block).
    pub templates: Vec<TemplateInfo>,
    /// Hard add-expire lifetime in seconds, if any.
    pub expires: Option<u64>,
    /// Installation time (seconds since the epoch).
    pub add_time: u64,
    /// Last use (seconds since the epoch), 0 if never used.
    pub use_time: u64,
    /// Whether it carries a mark, interface id or security context (ours never do).
    pub has_mark_or_context: bool,
    /// Whether it is of the main policy type (ours always are).
    pub main_type: bool,
}

impl PolicyInfo {
    /// What the kernel reports for `spec` once installed (index 8), for tests.
    #[cfg(test)]
    pub(crate) fn installed(spec: &PolicySpec, ownership: &Ownership) -> Self {
        let template = |reqid, mode| TemplateInfo {
            proto: IPPROTO_ESP,
            mode,
            reqid,
            optional: false,
        };
        let templates = match spec.action {
            PolicyAction::Protect(r) => vec![template(r, XFRM_MODE_TRANSPORT)],
            PolicyAction::ProtectTunnel { reqid, .. } => vec![template(reqid, XFRM_MODE_TUNNEL)],
            PolicyAction::Pass | PolicyAction::Block => Vec::new(),
        };
        Self {
            key: spec.key(),
            index: 8,
            priority: spec.priority(ownership),
            block: spec.action == PolicyAction::Block,
            templates,
            expires: spec.expires,
            add_time: 0,
            use_time: 0,
            has_mark_or_context: false,
            main_type: true,
        }
    }

    /// Direction.
    pub fn dir(&self) -> Direction {
        self.key.dir
    }

    /// Selector, if this crate can express it.
    pub fn selector(&self) -> Option<TrafficSelector> {
        self.key.selector()
    }

    /// The reqid of its first template, if any.
    pub fn reqid(&self) -> Option<Reqid> {
        self.templates.first().map(|t| t.reqid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn trap_is_outbound_esp_transport_template() {
        let o = Ownership::default();
        let sel = TrafficSelector::to(Prefix::new(ip("198.51.100.0"), 24).unwrap());
        let trap = PolicySpec::trap(sel, o.reqid(1).unwrap());
        let info = trap.info(&o);
        assert_eq!((info.direction, info.action), (1, XFRM_POLICY_ALLOW));
        assert!(o.owns_priority(info.priority));
        let attrs = trap.attrs();
        let [XfrmAttrs::Template(t)] = attrs.as_slice() else {
            panic!("{attrs:?}")
        };
        assert_eq!((t[0].id.proto, t[0].mode, t[0].reqid), (50, 0, 0x6f65_0001));
    }

    #[test]
    fn shunt_expiry_is_a_hard_add_lifetime() {
        let o = Ownership::default();
        let sel = TrafficSelector::to(Prefix::host(ip("192.0.2.9")));
        let s = PolicySpec::host_shunt(sel, Direction::Out, Shunt::Block, Some(15));
        let info = s.info(&o);
        assert_eq!(info.lifetime_cfg.hard_add_expires_seconds, 15);
        assert_eq!(info.action, XFRM_POLICY_BLOCK);
        assert!(s.attrs().is_empty());
    }

    #[test]
    fn host_pair_directions_and_priorities() {
        let o = Ownership::default();
        let [out, inb] =
            PolicySpec::host_sa_pair(ip("192.0.2.1"), ip("192.0.2.2"), Reqid(0x6f65_0009)).unwrap();
        assert_eq!(out.dir, Direction::Out);
        assert_eq!(inb.dir, Direction::In);
        assert_eq!(inb.selector.src().addr(), ip("192.0.2.2"));
        let trap = PolicySpec::trap(
            TrafficSelector::to(Prefix::host(ip("192.0.2.2"))),
            Reqid(0x6f65_0000),
        );
        assert!(out.priority(&o) < trap.priority(&o));
    }

    #[test]
    fn tunnel_pair_names_the_outer_addresses_per_direction() {
        let o = Ownership::default();
        let inner = TrafficSelector::hosts(ip("198.51.100.7"), ip("192.0.2.2")).unwrap();
        let r = o.reqid(3).unwrap();
        let [out, inb] =
            PolicySpec::host_tunnel_pair(inner, ip("192.0.2.1"), ip("192.0.2.2"), r).unwrap();
        assert_eq!((out.selector, inb.selector), (inner, inner.reversed()));
        for (spec, src, dst) in [
            (out, "192.0.2.1", "192.0.2.2"),
            (inb, "192.0.2.2", "192.0.2.1"),
        ] {
            let attrs = spec.attrs();
            let [XfrmAttrs::Template(t)] = attrs.as_slice() else {
                panic!("{attrs:?}")
            };
            assert_eq!((t[0].mode, t[0].reqid, t[0].family), (1, r.0, 2));
            assert_eq!(
                (t[0].saddr, t[0].id.daddr),
                (Address::from_ip(&ip(src)), Address::from_ip(&ip(dst)))
            );
        }
        assert!(
            PolicySpec::host_tunnel_pair(inner, ip("192.0.2.1"), ip("2001:db8::2"), r).is_err()
        );
        assert_eq!(
            out.priority(&o),
            PolicySpec::host_sa_pair(ip("198.51.100.7"), ip("192.0.2.2"), r).unwrap()[0]
                .priority(&o)
        );
    }

    #[test]
    fn key_debug_is_readable() {
        let key = PolicySpec::trap(
            TrafficSelector::to(Prefix::new(ip("192.0.2.0"), 24).unwrap()),
            Reqid(1),
        )
        .key();
        assert_eq!(
            format!("{key:?}"),
            "PolicyKey(Out, 0.0.0.0/0 -> 192.0.2.0/24)"
        );
    }

    #[test]
    fn neighbour_discovery_passes_both_ways_and_is_ours() {
        let o = Ownership::default();
        let specs = PolicySpec::neighbour_discovery();
        assert_eq!(specs.len(), 10);
        for spec in &specs {
            let info = spec.info(&o);
            assert_eq!(info.action, XFRM_POLICY_ALLOW);
            assert!(spec.attrs().is_empty());
            assert_eq!(info.selector.proto, 58);
            assert!((133..=137).contains(&info.selector.sport));
            assert!(o.owns_priority(info.priority));
        }
        let trap = PolicySpec::trap(
            TrafficSelector::to(Prefix::host(ip("2001:db8::2"))),
            o.reqid(0).unwrap(),
        );
        let [sa_out, _] =
            PolicySpec::host_sa_pair(ip("2001:db8::1"), ip("2001:db8::2"), o.reqid(0).unwrap())
                .unwrap();
        let worst = specs.iter().map(|s| s.priority(&o)).max().unwrap();
        assert!(worst < trap.priority(&o) && worst < sa_out.priority(&o));
    }

    #[test]
    fn foreign_reqid_refused() {
        let o = Ownership::default();
        let sel = TrafficSelector::to(Prefix::host(ip("192.0.2.2")));
        assert_eq!(
            PolicySpec::trap(sel, Reqid(5)).validate(&o),
            Err(InvalidRequest::ForeignReqid(5))
        );
    }
}
