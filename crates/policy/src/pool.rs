//! The addresses this host assigns to clients that ask for one (RFC 7296 3.15,
//! INTERNAL_IP4_ADDRESS / INTERNAL_IP6_ADDRESS): one prefix per family from `[ike]
//! address_pool`. A lease belongs to the IKE SA it was given to and is freed when that SA ends.
//! The pool is the bound: an empty pool answers with no address. Allocation is next-fit from a
//! cursor, so a freed address is not handed out again at once while others are free, and a
//! search never looks at more candidates than there are leases plus one.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oe_ike::SaHandle;

/// The IKE SA a lease belongs to: the engine's local address and its handle.
pub(crate) type Owner = (IpAddr, SaHandle);

/// One family's addresses: `count` of them from `first`, as integers.
#[derive(Debug)]
struct Range {
    v6: bool,
    first: u128,
    count: u128,
    cursor: u128,
    held: u128,
}

#[derive(Debug, Default)]
pub(crate) struct Pool {
    ranges: Vec<Range>,
    leases: BTreeMap<IpAddr, Owner>,
    by_owner: HashMap<Owner, Vec<IpAddr>>,
}

impl Pool {
    /// The pool the configuration names (prefixes "ADDR/LEN", at most one per family).
    pub(crate) fn from_config(prefixes: &[String]) -> Result<Self, String> {
        let mut pool = Self::default();
        for text in prefixes {
            let range = parse(text).map_err(|why| format!("ike.address_pool {text:?}: {why}"))?;
            if pool.ranges.iter().any(|r| r.v6 == range.v6) {
                return Err(format!(
                    "ike.address_pool {text:?}: one prefix per address family"
                ));
            }
            pool.ranges.push(range);
        }
        Ok(pool)
    }

    /// Leases an address of the family to `owner` (the same one again if it holds one), or
    /// `None` when the pool has none of that family free.
    pub(crate) fn lease(&mut self, v6: bool, owner: Owner) -> Option<IpAddr> {
        let held = self.by_owner.get(&owner).into_iter().flatten();
        if let Some(a) = held.copied().find(|a| a.is_ipv6() == v6) {
            return Some(a);
        }
        let range = self.ranges.iter_mut().find(|r| r.v6 == v6)?;
        if range.held >= range.count {
            return None;
        }
        // At most `held` candidates are taken, so one of `held + 1` in a row is free.
        let addr = (0..=range.held).find_map(|i| {
            let offset = (range.cursor + i) % range.count;
            let addr = to_ip(range.v6, range.first + offset);
            (!self.leases.contains_key(&addr)).then_some((offset, addr))
        });
        let (offset, addr) = addr?;
        range.cursor = (offset + 1) % range.count;
        range.held += 1;
        self.leases.insert(addr, owner);
        self.by_owner.entry(owner).or_default().push(addr);
        Some(addr)
    }

    /// Frees the addresses an IKE SA held.
    pub(crate) fn release(&mut self, owner: Owner) {
        for addr in self.by_owner.remove(&owner).unwrap_or_default() {
            self.leases.remove(&addr);
            if let Some(r) = self.ranges.iter_mut().find(|r| r.v6 == addr.is_ipv6()) {
                r.held = r.held.saturating_sub(1);
            }
        }
    }

    /// Addresses leased now.
    #[cfg(test)]
    pub(crate) fn leased(&self) -> usize {
        self.leases.len()
    }
}

/// "ADDR/LEN" as the range of addresses a client may get: an IPv4 prefix without its network
/// and broadcast addresses (up to /30), an IPv6 prefix without its subnet-router anycast
/// address (RFC 4291 2.6.1; up to /126).
fn parse(text: &str) -> Result<Range, String> {
    let (addr, len) = text
        .split_once('/')
        .ok_or("a prefix needs its length (ADDR/LEN)")?;
    let addr: IpAddr = addr.parse().map_err(|_| "not an address")?;
    let len: u32 = len.parse().map_err(|_| "not a prefix length")?;
    let bits = if addr.is_ipv6() { 128 } else { 32 };
    if len > bits {
        return Err(format!("prefix length {len} is longer than {bits}"));
    }
    let host_bits = bits - len;
    let size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    let base = to_int(addr) & !(size.wrapping_sub(1));
    let (skip_first, skip_last) = match (addr.is_ipv6(), host_bits) {
        (false, 2..) => (1, 1),
        (true, 2..) => (1, 0),
        _ => (0, 0),
    };
    Ok(Range {
        v6: addr.is_ipv6(),
        first: base + skip_first,
        count: size - skip_first - skip_last,
        cursor: 0,
        held: 0,
    })
}

fn to_int(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn to_ip(v6: bool, n: u128) -> IpAddr {
    if v6 {
        Ipv6Addr::from(n).into()
    } else {
        Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(n: u64) -> Owner {
        (IpAddr::V4(Ipv4Addr::LOCALHOST), SaHandle(n))
    }

    #[test]
    fn a_v4_prefix_leases_its_hosts_and_no_more() {
        let mut pool = Pool::from_config(&["192.0.2.0/30".into()]).unwrap();
        let a = pool.lease(false, owner(1)).unwrap();
        let b = pool.lease(false, owner(2)).unwrap();
        assert_eq!(
            (a, b),
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
        );
        assert_eq!(pool.lease(false, owner(3)), None);
        assert_eq!(pool.lease(true, owner(3)), None, "no IPv6 pool");
        assert_eq!(
            pool.lease(false, owner(1)),
            Some(a),
            "the same owner, the same"
        );
        pool.release(owner(1));
        assert_eq!(pool.lease(false, owner(3)), Some(a));
        assert_eq!(pool.leased(), 2);
    }

    #[test]
    fn a_huge_v6_prefix_allocates_without_scanning_it() {
        let mut pool = Pool::from_config(&["2001:db8::/0".into()]).unwrap();
        let a = pool.lease(true, owner(1)).unwrap();
        assert_eq!(a, "::1".parse::<IpAddr>().unwrap());
        pool.release(owner(1));
        assert_ne!(pool.lease(true, owner(2)), Some(a), "next fit");
    }
}
