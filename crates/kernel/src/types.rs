//! Typed values shared by requests and events: prefixes, selectors, SPIs, reqids.

use std::fmt;
use std::net::IpAddr;

/// IP protocol numbers used in selectors.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// DCCP.
    pub const DCCP: u8 = 33;
    /// ESP (RFC 4303).
    pub const ESP: u8 = 50;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;
}

/// Address family of a selector or SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// Longest prefix length.
    pub fn max_prefix(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }

    pub(crate) fn af(self) -> u16 {
        match self {
            Self::V4 => netlink_packet_xfrm::AF_INET,
            Self::V6 => netlink_packet_xfrm::AF_INET6,
        }
    }

    pub(crate) fn from_af(af: u16) -> Option<Self> {
        match af {
            netlink_packet_xfrm::AF_INET => Some(Self::V4),
            netlink_packet_xfrm::AF_INET6 => Some(Self::V6),
            _ => None,
        }
    }

    /// The unspecified address of this family.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => IpAddr::from([0u8; 4]),
            Self::V6 => IpAddr::from([0u8; 16]),
        }
    }
}

/// A request the caller built wrongly (our fault, not the kernel's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRequest {
    /// Prefix length longer than the address.
    #[error("prefix length {len} is too long for {addr}")]
    PrefixLength {
        /// The address.
        addr: IpAddr,
        /// The requested length.
        len: u8,
    },
    /// Source and destination of different families.
    #[error("selector mixes IPv4 and IPv6")]
    MixedFamilies,
    /// Ports given for a protocol without ports.
    #[error("ports need TCP, UDP, SCTP, DCCP or UDP-Lite (protocol {0:?})")]
    PortsWithoutTransport(Option<u8>),
    /// Key of the wrong length for the algorithm.
    #[error("{alg}: key of {got} bytes, expected one of {expected:?}")]
    KeyLength {
        /// Algorithm name.
        alg: &'static str,
        /// Key length given.
        got: usize,
        /// Accepted key lengths.
        expected: &'static [usize],
    },
    /// A reqid outside the range reserved for us.
    #[error("reqid {0} is outside oe's reqid range")]
    ForeignReqid(u32),
    /// SPI zero is reserved (RFC 4303 section 2.1).
    #[error("SPI 0 is reserved")]
    ZeroSpi,
    /// Replay window too large for the kernel (`XFRMA_REPLAY_ESN_MAX` bits).
    #[error("replay window of {0} packets is too large")]
    ReplayWindow(u32),
    /// A lifetime whose soft limit is not below its hard limit.
    #[error("soft lifetime {what} ({soft}) must be below the hard one ({hard})")]
    Lifetime {
        /// Which limit.
        what: &'static str,
        /// Soft value.
        soft: u64,
        /// Hard value.
        hard: u64,
    },
    /// Addresses of different families.
    #[error("SA addresses mix IPv4 and IPv6")]
    SaFamilies,
    /// An update whose spec names another entry than the one read and checked.
    #[error("the update is for another entry than the one checked")]
    OtherEntry,
    /// A change of UDP encapsulation for an SA without it.
    #[error("the SA is not UDP-encapsulated")]
    NotEncapsulated,
    /// The peer's address changed, not only its port: `XFRM_MSG_UPDSA` cannot move an SA.
    #[error("the peer moved to another address ({0}): the SA cannot follow by an update")]
    PeerAddressChanged(std::net::SocketAddr),
    /// Something of an existing entry this crate does not install.
    #[error("{0} is not one this crate installs")]
    Unsupported(&'static str),
}

/// An address prefix with its host bits cleared (the kernel compares selectors bytewise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// `addr/len`; the host bits of `addr` are cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, InvalidRequest> {
        let family = Family::of(&addr);
        if len > family.max_prefix() {
            return Err(InvalidRequest::PrefixLength { addr, len });
        }
        Ok(Self {
            addr: mask(addr, len),
            len,
        })
    }

    /// A single host (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Self {
        let len = Family::of(&addr).max_prefix();
        Self { addr, len }
    }

    /// Everything of a family (`0.0.0.0/0` or `::/0`).
    pub fn any(family: Family) -> Self {
        Self {
            addr: family.unspecified(),
            len: 0,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is a `/0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this prefix covers exactly one address.
    pub fn is_host(&self) -> bool {
        self.len == self.family().max_prefix()
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether `addr` lies inside the prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(&addr) == self.family() && mask(addr, self.len) == self.addr
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::from(bits.to_be_bytes())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::from(bits.to_be_bytes())
        }
    }
}

/// Which traffic a policy applies to: source and destination prefixes, optionally one
/// protocol and one source and destination port (`struct xfrm_selector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    src: Prefix,
    dst: Prefix,
    proto: Option<u8>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
}

impl TrafficSelector {
    /// All traffic from `src` to `dst` (same family).
    pub fn new(src: Prefix, dst: Prefix) -> Result<Self, InvalidRequest> {
        if src.family() != dst.family() {
            return Err(InvalidRequest::MixedFamilies);
        }
        Ok(Self {
            src,
            dst,
            proto: None,
            src_port: None,
            dst_port: None,
        })
    }

    /// All traffic from any local address to `dst`.
    pub fn to(dst: Prefix) -> Self {
        Self {
            src: Prefix::any(dst.family()),
            dst,
            proto: None,
            src_port: None,
            dst_port: None,
        }
    }

    /// All traffic between two hosts.
    pub fn hosts(src: IpAddr, dst: IpAddr) -> Result<Self, InvalidRequest> {
        Self::new(Prefix::host(src), Prefix::host(dst))
    }

    /// Restricts to one protocol and optionally ports (ports need a transport protocol).
    pub fn with_proto(
        mut self,
        proto: u8,
        src_port: Option<u16>,
        dst_port: Option<u16>,
    ) -> Result<Self, InvalidRequest> {
        let ported = matches!(
            proto,
            proto::TCP | proto::UDP | proto::SCTP | proto::DCCP | proto::UDPLITE
        );
        if (src_port.is_some() || dst_port.is_some()) && !ported {
            return Err(InvalidRequest::PortsWithoutTransport(Some(proto)));
        }
        self.proto = Some(proto);
        self.src_port = src_port;
        self.dst_port = dst_port;
        Ok(self)
    }

    /// Restricts to ICMP (IPv4) or ICMPv6 (IPv6) messages of one type and, if given, one
    /// code. XFRM matches an ICMP message's type in the selector's source port and its code
    /// in the destination port (`xfrm_flowi_sport`/`xfrm_flowi_dport`), so that is where they
    /// go; [`TrafficSelector::src_port`] reads back the type.
    pub fn with_icmp(mut self, icmp_type: u8, code: Option<u8>) -> Self {
        self.proto = Some(match self.family() {
            Family::V4 => proto::ICMP,
            Family::V6 => proto::ICMPV6,
        });
        self.src_port = Some(u16::from(icmp_type));
        self.dst_port = code.map(u16::from);
        self
    }

    /// Source prefix.
    pub fn src(&self) -> Prefix {
        self.src
    }

    /// Destination prefix.
    pub fn dst(&self) -> Prefix {
        self.dst
    }

    /// Protocol, if restricted.
    pub fn proto(&self) -> Option<u8> {
        self.proto
    }

    /// Source port, if restricted.
    pub fn src_port(&self) -> Option<u16> {
        self.src_port
    }

    /// Destination port, if restricted.
    pub fn dst_port(&self) -> Option<u16> {
        self.dst_port
    }

    /// Address family.
    pub fn family(&self) -> Family {
        self.dst.family()
    }

    /// The same selector seen from the other end (for the inbound half of a pair).
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }

    pub(crate) fn to_xfrm(self) -> netlink_packet_xfrm::Selector {
        use netlink_packet_xfrm::{Address, Selector};
        let port_mask = |p: Option<u16>| if p.is_some() { u16::MAX } else { 0 };
        Selector {
            daddr: Address::from_ip(&self.dst.addr),
            saddr: Address::from_ip(&self.src.addr),
            dport: self.dst_port.unwrap_or(0),
            dport_mask: port_mask(self.dst_port),
            sport: self.src_port.unwrap_or(0),
            sport_mask: port_mask(self.src_port),
            family: self.family().af(),
            prefixlen_d: self.dst.len,
            prefixlen_s: self.src.len,
            proto: self.proto.unwrap_or(0),
            ifindex: 0,
            user: 0,
        }
    }

    /// Reads a kernel selector; `None` if it is not one this crate could have written
    /// (unknown family, bad prefix length, partial port masks).
    pub(crate) fn from_xfrm(sel: &netlink_packet_xfrm::Selector) -> Option<Self> {
        let family = Family::from_af(sel.family)?;
        let src = Prefix::new(to_ip(family, &sel.saddr), sel.prefixlen_s).ok()?;
        let dst = Prefix::new(to_ip(family, &sel.daddr), sel.prefixlen_d).ok()?;
        let port = |p: u16, m: u16| match m {
            0 => Some(None),
            u16::MAX => Some(Some(p)),
            _ => None,
        };
        let src_port = port(sel.sport, sel.sport_mask)?;
        let dst_port = port(sel.dport, sel.dport_mask)?;
        let base = Self::new(src, dst).ok()?;
        let byte = |p: Option<u16>| p.map(u8::try_from).transpose().ok();
        match sel.proto {
            0 if src_port.is_none() && dst_port.is_none() => Some(base),
            0 => None,
            proto::ICMP | proto::ICMPV6 if src_port.is_some() => {
                let icmp = base.with_icmp(byte(src_port)??, byte(dst_port)?);
                (icmp.proto == Some(sel.proto)).then_some(icmp)
            }
            p => base.with_proto(p, src_port, dst_port).ok(),
        }
    }
}

impl fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)?;
        if let Some(p) = self.proto {
            write!(f, " proto {p}")?;
        }
        let (src, dst) = match self.proto {
            Some(proto::ICMP | proto::ICMPV6) => ("type", "code"),
            _ => ("sport", "dport"),
        };
        if let Some(p) = self.src_port {
            write!(f, " {src} {p}")?;
        }
        if let Some(p) = self.dst_port {
            write!(f, " {dst} {p}")?;
        }
        Ok(())
    }
}

/// Converts a 16-byte XFRM address of a known family.
pub(crate) fn to_ip(family: Family, addr: &netlink_packet_xfrm::Address) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(addr.to_ipv4()),
        Family::V6 => IpAddr::V6(addr.to_ipv6()),
    }
}

/// A Security Parameter Index, as a number (what `ip xfrm` prints; RFC 4303 section 2.1
/// sends it big-endian on the wire, which the netlink encoding takes care of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spi(pub u32);

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// A request id: ties policies' templates to the SAs that satisfy them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reqid(pub u32);

impl fmt::Display for Reqid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Policy direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Inbound (`XFRM_POLICY_IN`).
    In,
    /// Outbound (`XFRM_POLICY_OUT`).
    Out,
    /// Forwarded (`XFRM_POLICY_FWD`).
    Fwd,
}

impl Direction {
    pub(crate) fn to_xfrm(self) -> u8 {
        match self {
            Self::In => netlink_packet_xfrm::XFRM_POLICY_IN,
            Self::Out => netlink_packet_xfrm::XFRM_POLICY_OUT,
            Self::Fwd => netlink_packet_xfrm::XFRM_POLICY_FWD,
        }
    }

    pub(crate) fn from_xfrm(dir: u8) -> Option<Self> {
        match dir {
            netlink_packet_xfrm::XFRM_POLICY_IN => Some(Self::In),
            netlink_packet_xfrm::XFRM_POLICY_OUT => Some(Self::Out),
            netlink_packet_xfrm::XFRM_POLICY_FWD => Some(Self::Fwd),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_clears_host_bits() {
        let p = Prefix::new(ip("192.0.2.77"), 24).unwrap();
        assert_eq!(p.addr(), ip("192.0.2.0"));
        let p = Prefix::new(ip("2001:db8::ff"), 64).unwrap();
        assert_eq!(p.addr(), ip("2001:db8::"));
        assert_eq!(
            Prefix::new(ip("10.0.0.1"), 0).unwrap().addr(),
            ip("0.0.0.0")
        );
        assert!(Prefix::new(ip("10.0.0.1"), 33).is_err());
        assert!(Prefix::new(ip("::1"), 129).is_err());
    }

    #[test]
    fn prefix_contains() {
        let p = Prefix::new(ip("198.51.100.0"), 24).unwrap();
        assert!(p.contains(ip("198.51.100.9")));
        assert!(!p.contains(ip("198.51.101.9")));
        assert!(!p.contains(ip("::1")));
    }

    #[test]
    fn selector_rules() {
        let v4 = Prefix::host(ip("192.0.2.1"));
        let v6 = Prefix::host(ip("2001:db8::1"));
        assert_eq!(
            TrafficSelector::new(v4, v6),
            Err(InvalidRequest::MixedFamilies)
        );
        let s = TrafficSelector::to(v4);
        assert!(s.with_proto(proto::ICMP, Some(1), None).is_err());
        let s = s.with_proto(proto::TCP, None, Some(22)).unwrap();
        assert_eq!(s.reversed().src_port(), Some(22));
    }

    #[test]
    fn selector_round_trips_through_xfrm() {
        let s = TrafficSelector::new(
            Prefix::new(ip("2001:db8::"), 32).unwrap(),
            Prefix::host(ip("2001:db8:1::7")),
        )
        .unwrap()
        .with_proto(proto::UDP, Some(500), None)
        .unwrap();
        let x = s.to_xfrm();
        assert_eq!((x.sport, x.sport_mask, x.dport_mask), (500, 0xffff, 0));
        assert_eq!(TrafficSelector::from_xfrm(&x), Some(s));
    }

    #[test]
    fn icmp_type_and_code_ride_in_the_ports() {
        let ns = TrafficSelector::to(Prefix::any(Family::V6)).with_icmp(135, None);
        let x = ns.to_xfrm();
        assert_eq!(
            (x.proto, x.sport, x.sport_mask, x.dport_mask),
            (58, 135, 0xffff, 0)
        );
        assert_eq!(TrafficSelector::from_xfrm(&x), Some(ns));
        let echo = TrafficSelector::to(Prefix::any(Family::V4)).with_icmp(8, Some(0));
        assert_eq!(echo.proto(), Some(proto::ICMP));
        assert_eq!(TrafficSelector::from_xfrm(&echo.to_xfrm()), Some(echo));
        // ICMPv4 in an IPv6 selector, or a type above 255, is not something we write.
        let mut wrong = ns.to_xfrm();
        wrong.proto = proto::ICMP;
        assert_eq!(TrafficSelector::from_xfrm(&wrong), None);
        let mut wide = ns.to_xfrm();
        wide.sport = 300;
        assert_eq!(TrafficSelector::from_xfrm(&wide), None);
    }

    #[test]
    fn partial_port_masks_are_not_ours() {
        let mut x = TrafficSelector::to(Prefix::host(ip("192.0.2.1")))
            .with_proto(proto::TCP, None, Some(80))
            .unwrap()
            .to_xfrm();
        x.dport_mask = 0xff00;
        assert_eq!(TrafficSelector::from_xfrm(&x), None);
    }
}
