//! Following the network through rtnetlink, in namespaces: address, link and default-route
//! changes arrive as typed events; the dumps list what is there; the kernel's own routing
//! decision names the source address towards a host, and follows a default-route switch.

use oe_kernel::route::{NetEvent, NetEventSocket, Rtnl};

use super::*;

/// The next event for which `pick` says yes, within five seconds.
async fn next_matching<T>(
    events: &mut NetEventSocket,
    mut pick: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match events.next_within(left).await.unwrap() {
            Some(NetEvent::Lost) => panic!("events lost"),
            Some(event) => {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
            None => break,
        }
    }
    panic!("no matching event within {WAIT:?}")
}

fn ifindex(ns: &Netns, ifname: &str) -> u32 {
    let text = String::from_utf8(ns.ip(&["-o", "link", "show", "dev", ifname]).stdout).unwrap();
    text.split(':').next().unwrap().trim().parse().unwrap()
}

#[test]
fn address_changes_arrive_as_typed_events_and_in_the_dump() {
    let pair = Pair::new();
    let index = ifindex(&pair.a, &pair.a_if);
    pair.a.run(|| {
        block_on(async {
            let mut events = NetEventSocket::open().unwrap();
            let mut rtnl = Rtnl::open().unwrap();
            let before = rtnl.addresses().await.unwrap();
            assert!(
                before.iter().any(|a| a.addr == ip(Pair::A6) && a.usable()),
                "{before:?}"
            );
            for cidr in ["198.51.100.9/24", "2001:db8:1::9/64"] {
                pair.a.addr(&pair.a_if, cidr);
            }
            for added in ["198.51.100.9", "2001:db8:1::9"] {
                let a = next_matching(&mut events, |e| match e {
                    NetEvent::AddressAdded(a) if a.addr == ip(added) => Some(a),
                    _ => None,
                })
                .await;
                assert_eq!(a.ifindex, index);
                assert!(a.usable(), "{a:?}");
            }
            let dump = rtnl.addresses().await.unwrap();
            assert!(dump
                .iter()
                .any(|a| a.addr == ip("198.51.100.9") && a.prefix_len == 24));
            pair.a
                .ip(&["addr", "del", "198.51.100.9/24", "dev", &pair.a_if]);
            next_matching(&mut events, |e| match e {
                NetEvent::AddressRemoved(a) if a.addr == ip("198.51.100.9") => Some(()),
                _ => None,
            })
            .await;
            let dump = rtnl.addresses().await.unwrap();
            assert!(!dump.iter().any(|a| a.addr == ip("198.51.100.9")));
            assert_eq!(events.malformed(), 0);
        })
        .unwrap()
    });
}

#[test]
fn link_down_and_up_arrive_as_typed_events() {
    let pair = Pair::new();
    let index = ifindex(&pair.a, &pair.a_if);
    pair.a.run(|| {
        block_on(async {
            let mut events = NetEventSocket::open().unwrap();
            let links = Rtnl::open().unwrap().links().await.unwrap();
            let veth = links.iter().find(|l| l.ifindex == index).unwrap();
            assert_eq!(veth.name.as_deref(), Some(pair.a_if.as_str()));
            assert!(veth.up && veth.running, "{veth:?}");
            assert!(links.iter().any(|l| l.loopback));
            pair.a.ip(&["link", "set", &pair.a_if, "down"]);
            let down = next_matching(&mut events, |e| match e {
                NetEvent::LinkChanged(l) if l.ifindex == index && !l.up => Some(l),
                _ => None,
            })
            .await;
            assert!(!down.running);
            // The link's addresses' routes go with it.
            next_matching(&mut events, |e| match e {
                NetEvent::RouteRemoved(r) if r.oif == Some(index) => Some(()),
                _ => None,
            })
            .await;
            pair.a.ip(&["link", "set", &pair.a_if, "up"]);
            next_matching(&mut events, |e| match e {
                NetEvent::LinkChanged(l) if l.ifindex == index && l.up && l.running => Some(()),
                _ => None,
            })
            .await;
        })
        .unwrap()
    });
}

#[test]
fn default_route_switch_is_an_event_and_moves_the_source_address() {
    // A host with two uplinks: 192.0.2.1 towards one router, 198.51.100.1 towards another.
    let host = Netns::new("host");
    let (r1, r2) = (Netns::new("r1"), Netns::new("r2"));
    let (up1, _) = Netns::veth(&host, &r1);
    let (up2, _) = Netns::veth(&host, &r2);
    host.addr(&up1, "192.0.2.1/24");
    host.addr(&up2, "198.51.100.1/24");
    host.addr(&up2, "2001:db8:2::1/64");
    let (i1, i2) = (ifindex(&host, &up1), ifindex(&host, &up2));
    let far = ip("203.0.113.5");
    host.run(|| {
        block_on(async {
            let mut events = NetEventSocket::open().unwrap();
            let mut rtnl = Rtnl::open().unwrap();
            // No default route: the kernel says so.
            let none = rtnl.route_to(far).await.unwrap_err();
            assert_eq!(none.errno(), Some(libc::ENETUNREACH), "{none:?}");
            host.ip(&["route", "add", "default", "via", "192.0.2.254"]);
            let first = next_matching(&mut events, |e| match e {
                NetEvent::RouteAdded(r) if r.is_default() => Some(r),
                _ => None,
            })
            .await;
            assert_eq!(
                (first.gateway, first.oif),
                (Some(ip("192.0.2.254")), Some(i1))
            );
            assert_eq!(rtnl.source_for(far).await.unwrap(), Some(ip("192.0.2.1")));
            host.ip(&["route", "replace", "default", "via", "198.51.100.254"]);
            let second = next_matching(&mut events, |e| match e {
                NetEvent::RouteAdded(r) if r.is_default() => Some(r),
                _ => None,
            })
            .await;
            assert_eq!(
                (second.gateway, second.oif),
                (Some(ip("198.51.100.254")), Some(i2))
            );
            assert_eq!(
                rtnl.source_for(far).await.unwrap(),
                Some(ip("198.51.100.1"))
            );
            let routes = rtnl.routes().await.unwrap();
            let defaults: Vec<_> = routes.iter().filter(|r| r.is_default()).collect();
            assert_eq!(defaults.len(), 1, "{defaults:?}");
            // IPv6: on-link, the source is the link's global address.
            let on_link = rtnl.route_to(ip("2001:db8:2::77")).await.unwrap();
            assert_eq!(
                (on_link.pref_src, on_link.oif),
                (Some(ip("2001:db8:2::1")), Some(i2))
            );
        })
        .unwrap()
    });
}

#[test]
fn overflowing_route_event_socket_reports_lost_events() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let mut events = NetEventSocket::with_receive_buffer(0).unwrap();
            let script: String = (1..=200)
                .map(|n| format!("addr add 2001:db8:3::{n:x}/64 dev {} nodad\n", pair.a_if))
                .collect();
            let batch = std::env::temp_dir().join(format!("oe-route-{}", std::process::id()));
            std::fs::write(&batch, script).unwrap();
            pair.a.ip(&["-batch", batch.to_str().unwrap()]);
            let _ = std::fs::remove_file(&batch);
            let mut seen = Vec::new();
            while let Some(e) = events
                .next_within(Duration::from_millis(300))
                .await
                .unwrap()
            {
                seen.push(e);
            }
            assert!(
                seen.contains(&NetEvent::Lost),
                "{} events, none Lost",
                seen.len()
            );
            assert_eq!(events.malformed(), 0);
        })
        .unwrap()
    });
}
