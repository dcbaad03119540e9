//! An address a peer assigned (RFC 7296 3.15) and the host route that uses it, as oe installs
//! them: new flows to the peer leave from the address; only entries with oe's mark are found,
//! replaced or removed; and after the lifetime the kernel removes the address and, with it, the
//! IPv4 route whose source it was, and stops using the expired IPv6 route (its garbage
//! collection removes it later): what bounds their life after the agent is killed.

use oe_kernel::route::{AddressSpec, RouteSpec, Rtnl};

use super::*;

const VIP4: &str = "100.64.0.7";
const VIP6: &str = "fd00:64::7";

/// The source address the kernel picks for a new flow to `dst` (`ip route get`).
fn source_towards(ns: &Netns, dst: &str) -> String {
    let out = String::from_utf8(ns.ip(&["route", "get", dst]).stdout).unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "src")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

fn shown(ns: &Netns, what: &[&str]) -> String {
    String::from_utf8(ns.ip(what).stdout).unwrap()
}

#[test]
fn an_assigned_address_becomes_the_source_towards_its_peer_and_only_ours_is_removed() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let mut rtnl = Rtnl::open().unwrap();
            for (vip, peer) in [(VIP4, Pair::B4), (VIP6, Pair::B6)] {
                let addr = AddressSpec::on_loopback(ip(vip), Some(60));
                rtnl.add_address(&addr).await.unwrap();
                let via = rtnl.route_to(ip(peer)).await.unwrap();
                let route = RouteSpec {
                    expires_secs: Some(60),
                    ..RouteSpec::like(ip(peer), &via, Some(ip(vip)))
                };
                rtnl.add_route(&route).await.unwrap();
                // Renewing is the same request again.
                rtnl.add_address(&addr).await.unwrap();
                rtnl.add_route(&route).await.unwrap();
            }
            assert_eq!(source_towards(&pair.a, Pair::B4), VIP4);
            assert_eq!(source_towards(&pair.a, Pair::B6), VIP6);
            let owned = rtnl.owned().await.unwrap();
            assert_eq!(owned.addresses.len(), 2, "{owned:?}");
            assert_eq!(owned.routes.len(), 2, "{owned:?}");
            assert!(owned
                .addresses
                .iter()
                .all(|a| a.ifindex == AddressSpec::LOOPBACK && a.valid_secs.unwrap() <= 60));

            // A foreign address and a foreign route to the same host are never ours.
            pair.a.ip(&["addr", "add", "100.64.9.9/32", "dev", "lo"]);
            pair.a
                .ip(&["route", "add", "198.51.100.1/32", "dev", &pair.a_if]);
            let foreign = AddressSpec::on_loopback(ip("100.64.9.9"), None);
            assert!(matches!(
                rtnl.delete_address(&foreign).await,
                Err(oe_kernel::Error::Foreign { .. })
            ));
            rtnl.delete_route(ip("198.51.100.1")).await.unwrap();
            assert!(shown(&pair.a, &["route", "show", "198.51.100.1"]).contains("198.51.100.1"));

            let flushed = rtnl.flush_owned().await.unwrap();
            assert_eq!((flushed.addresses.len(), flushed.routes.len()), (2, 2));
            let left = rtnl.owned().await.unwrap();
            assert!(
                left.addresses.is_empty() && left.routes.is_empty(),
                "{left:?}"
            );
            assert_eq!(source_towards(&pair.a, Pair::B4), Pair::A4);
            assert!(shown(&pair.a, &["addr", "show", "dev", "lo"]).contains("100.64.9.9"));
        })
        .unwrap()
    });
}

#[test]
fn the_kernel_removes_an_assigned_address_and_its_routes_when_their_lifetime_ends() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let mut rtnl = Rtnl::open().unwrap();
            for (vip, peer) in [(VIP4, Pair::B4), (VIP6, Pair::B6)] {
                rtnl.add_address(&AddressSpec::on_loopback(ip(vip), Some(2)))
                    .await
                    .unwrap();
                let via = rtnl.route_to(ip(peer)).await.unwrap();
                rtnl.add_route(&RouteSpec {
                    expires_secs: Some(2),
                    ..RouteSpec::like(ip(peer), &via, Some(ip(vip)))
                })
                .await
                .unwrap();
            }
            assert_eq!(source_towards(&pair.a, Pair::B4), VIP4);
        })
        .unwrap()
    });
    let gone = oe_integration::process::wait_until(Duration::from_secs(10), || {
        pair.a.run(|| {
            block_on(async {
                let owned = Rtnl::open().unwrap().owned().await.unwrap();
                owned.addresses.is_empty() && owned.routes.iter().all(|r| r.dst.is_ipv6())
            })
            .unwrap()
        })
    });
    let all = || {
        format!(
            "{}\n{}\n{}",
            shown(&pair.a, &["addr"]),
            shown(&pair.a, &["route"]),
            shown(&pair.a, &["-6", "route"])
        )
    };
    assert!(gone, "{}", all());
    assert_eq!(source_towards(&pair.a, Pair::B4), Pair::A4);
    assert_eq!(source_towards(&pair.a, Pair::B6), Pair::A6, "{}", all());
    assert!(
        !shown(&pair.a, &["-6", "route"]).contains(VIP6),
        "{}",
        all()
    );
}
