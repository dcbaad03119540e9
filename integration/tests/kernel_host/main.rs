//! oe-kernel against the host's own kernel (XFRM, ACQUIRE and ALLOCSPI; no ESP), each
//! test in throwaway namespaces: traps raise ACQUIREs with the right selector, shunts
//! block and expire, the priority scheme holds in the kernel, flushes touch only our
//! own entries, SPIs read the same as iproute2 prints them, the capability probe says
//! ESP is missing, and bypassed sockets skip policy.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::ErrorKind;
use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use oe_integration::netns::{Netns, Pair};
use oe_kernel::probe::{self, EspUnavailable};
use oe_kernel::types::proto;
use oe_kernel::{
    block_on, Acquire, Direction, Event, EventSocket, Family, Ownership, PolicySpec, Prefix, Shunt,
    TrafficSelector, Xfrm,
};

mod assigned;
mod lifetime;
mod nd;
mod ownership;
mod resync;
mod route;

const WAIT: Duration = Duration::from_secs(5);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ip xfrm ARGS` inside `ns` (the arguments as one string, split at spaces).
fn xfrm(ns: &Netns, args: &str) {
    let args: Vec<&str> = std::iter::once("xfrm")
        .chain(args.split_whitespace())
        .collect();
    ns.ip(&args);
}

fn prefix(s: &str, len: u8) -> Prefix {
    Prefix::new(ip(s), len).unwrap()
}

fn open() -> (Xfrm, EventSocket) {
    (
        Xfrm::open(Ownership::default()).unwrap(),
        EventSocket::open().unwrap(),
    )
}

async fn next_acquire(events: &mut EventSocket) -> Acquire {
    loop {
        match events.next_within(WAIT).await.unwrap() {
            Some(Event::Acquire(a)) => return a,
            Some(_) => continue,
            None => panic!("no ACQUIRE within {WAIT:?}"),
        }
    }
}

/// Sends one UDP datagram; `Err(PermissionDenied)` means a block policy dropped it.
fn send(from: &str, to: &str) -> std::io::Result<u16> {
    let socket = UdpSocket::bind((ip(from), 0))?;
    socket.send_to(b"oe", (ip(to), 5000))?;
    Ok(socket.local_addr()?.port())
}

fn blocked(result: std::io::Result<u16>) -> bool {
    matches!(result, Err(e) if e.kind() == ErrorKind::PermissionDenied)
}

#[test]
fn trap_raises_acquire_with_the_packets_selector() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let reqid = x.ownership().reqid(7).unwrap();
            let trap4 = PolicySpec::trap(TrafficSelector::to(prefix("192.0.2.0", 24)), reqid);
            let trap6 = PolicySpec::trap(TrafficSelector::to(prefix("2001:db8::", 64)), reqid);
            x.add_policy(&trap4).await.unwrap();
            x.add_policy(&trap6).await.unwrap();
            let installed = x.get_policy(&trap4.key()).await.unwrap();

            let port = send(Pair::A4, Pair::B4).unwrap();
            let a = next_acquire(&mut events).await;
            assert_eq!((a.flow.src, a.flow.dst), (ip(Pair::A4), ip(Pair::B4)));
            assert_eq!(
                (a.flow.proto, a.flow.src_port, a.flow.dst_port),
                (proto::UDP, port, 5000)
            );
            assert_eq!(a.policy.index, installed.index);
            assert_eq!(a.policy.priority, trap4.priority(x.ownership()));
            assert_eq!(a.policy.key, trap4.key());
            assert_eq!(a.reqid, Some(reqid));

            let _ = std::net::TcpStream::connect_timeout(
                &(ip(Pair::B6), 443).into(),
                Duration::from_millis(300),
            );
            let a = next_acquire(&mut events).await;
            assert_eq!((a.flow.src, a.flow.dst), (ip(Pair::A6), ip(Pair::B6)));
            assert_eq!((a.flow.proto, a.flow.dst_port), (proto::TCP, 443));
            assert_eq!(a.policy.key, trap6.key());
        })
        .unwrap()
    });
}

#[test]
fn trap_for_one_port_ignores_other_traffic() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let sel = TrafficSelector::to(prefix("192.0.2.0", 24))
                .with_proto(proto::UDP, None, Some(53))
                .unwrap();
            x.add_policy(&PolicySpec::trap(sel, x.ownership().reqid(1).unwrap()))
                .await
                .unwrap();
            send(Pair::A4, Pair::B4).unwrap(); // port 5000: not trapped
            assert_eq!(
                events
                    .next_within(Duration::from_millis(500))
                    .await
                    .unwrap(),
                None
            );
            let socket = UdpSocket::bind((ip(Pair::A4), 0)).unwrap();
            socket.send_to(b"q", (ip(Pair::B4), 53)).unwrap();
            let a = next_acquire(&mut events).await;
            assert_eq!((a.flow.proto, a.flow.dst_port), (proto::UDP, 53));
        })
        .unwrap()
    });
}

#[test]
fn shunt_blocks_then_expires() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let shunt = PolicySpec::host_shunt(
                TrafficSelector::to(Prefix::host(ip(Pair::B4))),
                Direction::Out,
                Shunt::Block,
                Some(1),
            );
            x.add_policy(&shunt).await.unwrap();
            assert!(blocked(send(Pair::A4, Pair::B4)));
            let expired = loop {
                match events.next_within(WAIT).await.unwrap() {
                    Some(Event::PolicyExpire(e)) => break e,
                    Some(_) => continue,
                    None => panic!("shunt did not expire"),
                }
            };
            assert!(expired.hard);
            assert_eq!(expired.policy.key, shunt.key());
            assert!(x.get_policy(&shunt.key()).await.unwrap_err().is_not_found());
            send(Pair::A4, Pair::B4).unwrap();
        })
        .unwrap()
    });
}

#[test]
fn more_specific_prefix_wins_and_host_beats_group() {
    let pair = Pair::new();
    pair.a.addr(&pair.a_if, "198.51.100.1/24");
    pair.a.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let out = |p| TrafficSelector::to(p);
            // A wide group block, a narrower group pass inside it.
            x.add_policy(&PolicySpec::group_shunt(
                out(prefix("198.51.0.0", 16)),
                Direction::Out,
                Shunt::Block,
            ))
            .await
            .unwrap();
            x.add_policy(&PolicySpec::group_shunt(
                out(prefix("198.51.100.0", 28)),
                Direction::Out,
                Shunt::Pass,
            ))
            .await
            .unwrap();
            send("198.51.100.1", "198.51.100.2").unwrap();
            assert!(blocked(send("198.51.100.1", "198.51.100.200")));
            // A host pass shunt beats a group block, however specific the group's prefix.
            let exact = TrafficSelector::hosts(ip("198.51.100.1"), ip("198.51.100.201"))
                .unwrap()
                .with_proto(proto::UDP, None, Some(5000))
                .unwrap();
            x.add_policy(&PolicySpec::group_shunt(
                exact,
                Direction::Out,
                Shunt::Block,
            ))
            .await
            .unwrap();
            assert!(blocked(send("198.51.100.1", "198.51.100.201")));
            let host = PolicySpec::host_shunt(
                out(Prefix::host(ip("198.51.100.201"))),
                Direction::Out,
                Shunt::Pass,
                None,
            );
            x.add_policy(&host).await.unwrap();
            send("198.51.100.1", "198.51.100.201").unwrap();
        })
        .unwrap()
    });
}

#[test]
fn flush_owned_leaves_foreign_entries() {
    let ns = Netns::new("flush");
    // Foreign: an administrator's policy and a larval SA of another daemon's reqid.
    xfrm(
        &ns,
        "policy add dir out dst 203.0.113.0/24 priority 100 tmpl proto esp mode transport reqid 5",
    );
    xfrm(&ns, "policy add dir in src 203.0.113.9/32 action block");
    xfrm(
        &ns,
        "state allocspi src 203.0.113.9 dst 192.0.2.1 proto esp mode transport reqid 5",
    );
    let flushed = ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let o = *x.ownership();
            let reqid = o.reqid(3).unwrap();
            x.add_policy(&PolicySpec::trap(
                TrafficSelector::to(prefix("192.0.2.0", 24)),
                reqid,
            ))
            .await
            .unwrap();
            x.add_policy(&PolicySpec::group_shunt(
                TrafficSelector::to(prefix("198.51.100.0", 24)),
                Direction::Out,
                Shunt::Pass,
            ))
            .await
            .unwrap();
            for p in PolicySpec::host_sa_pair(ip(Pair::A4), ip(Pair::B4), reqid).unwrap() {
                x.add_policy(&p).await.unwrap();
            }
            x.alloc_spi(ip(Pair::A4), ip(Pair::B4), reqid)
                .await
                .unwrap();
            let owned = x.list_owned().await.unwrap();
            assert_eq!((owned.policies.len(), owned.sas.len()), (4, 1));
            let flushed = x.flush_owned().await.unwrap();
            let left = x.list_owned().await.unwrap();
            assert!(left.policies.is_empty() && left.sas.is_empty(), "{left:?}");
            let foreign_policies = x.dump_policies().await.unwrap();
            let foreign_sas = x.dump_sas().await.unwrap();
            assert_eq!(foreign_policies.len(), 2, "{foreign_policies:?}");
            assert!(foreign_policies.iter().all(|p| !o.owns_policy(p)));
            assert_eq!(foreign_sas.len(), 1);
            assert_eq!(foreign_sas[0].reqid.0, 5);
            flushed
        })
        .unwrap()
    });
    assert_eq!((flushed.policies, flushed.sas), (4, 1));
}

#[test]
fn allocated_spis_read_as_iproute2_prints_them() {
    let ns = Netns::new("spi");
    let spis = ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let reqid = x.ownership().reqid(9).unwrap();
            let one = x
                .alloc_spi(ip(Pair::A4), ip(Pair::B4), reqid)
                .await
                .unwrap();
            let two = x
                .alloc_spi(ip(Pair::A6), ip(Pair::B6), reqid)
                .await
                .unwrap();
            assert_ne!(one, two);
            let listed = x.dump_sas().await.unwrap();
            assert!(listed
                .iter()
                .any(|s| s.id.spi == one && s.larval && s.id.dst == ip(Pair::A4)));
            [one, two]
        })
        .unwrap()
    });
    let text = String::from_utf8(ns.ip(&["xfrm", "state"]).stdout).unwrap();
    for spi in spis {
        assert!(
            text.contains(&format!("spi {spi} ")),
            "{spi} not in:\n{text}"
        );
    }
}

#[test]
fn capability_probe_reports_esp_missing_and_leaves_nothing() {
    let ns = Netns::new("probe");
    ns.run(|| {
        block_on(async {
            let (mut x, _) = open();
            let caps = probe::probe(&mut x).await.unwrap();
            assert_eq!(
                caps.esp(Family::V4),
                Err(EspUnavailable::NoEsp(Family::V4)),
                "{caps:?}"
            );
            assert_eq!(
                caps.esp(Family::V6),
                Err(EspUnavailable::NoEsp(Family::V6)),
                "{caps:?}"
            );
            println!("{}", caps.esp(Family::V4).unwrap_err());
            assert!(x.dump_sas().await.unwrap().is_empty());
        })
        .unwrap()
    });
}

#[test]
fn bypassed_sockets_skip_blocks_and_traps() {
    let pair = Pair::new();
    let receiver = pair.b.run(|| {
        let s = UdpSocket::bind((ip(Pair::B4), 5000)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    });
    pair.a.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let everything = TrafficSelector::to(Prefix::any(Family::V4));
            x.add_policy(&PolicySpec::group_shunt(
                everything,
                Direction::Out,
                Shunt::Block,
            ))
            .await
            .unwrap();
            assert!(blocked(send(Pair::A4, Pair::B4)));
            let socket = UdpSocket::bind((ip(Pair::A4), 0)).unwrap();
            oe_kernel::socket::bypass_ipsec(&socket).unwrap();
            socket
                .send_to(b"bypass-block", (ip(Pair::B4), 5000))
                .unwrap();

            let trap = PolicySpec::trap(
                TrafficSelector::to(prefix("192.0.2.0", 24)),
                x.ownership().reqid(1).unwrap(),
            );
            x.flush_owned().await.unwrap();
            x.add_policy(&trap).await.unwrap();
            socket
                .send_to(b"bypass-trap", (ip(Pair::B4), 5000))
                .unwrap();
            assert_eq!(
                events
                    .next_within(Duration::from_millis(500))
                    .await
                    .unwrap(),
                None
            );
        })
        .unwrap()
    });
    let mut buf = [0u8; 64];
    for expected in [&b"bypass-block"[..], b"bypass-trap"] {
        let (len, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], from.ip()), (expected, ip(Pair::A4)));
    }
}

#[test]
fn overflowing_event_socket_reports_lost_events() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let mut x = Xfrm::open(Ownership::default()).unwrap();
            // The smallest buffer the kernel allows holds only a few ACQUIREs.
            let mut events = EventSocket::with_receive_buffer(0).unwrap();
            let trap = PolicySpec::trap(
                TrafficSelector::to(prefix("192.0.2.0", 24)),
                x.ownership().reqid(1).unwrap(),
            );
            x.add_policy(&trap).await.unwrap();
            // Each destination is its own flow, so its own ACQUIRE.
            for host in 3..=120 {
                let _ = send(Pair::A4, &format!("192.0.2.{host}"));
            }
            let mut seen = Vec::new();
            while let Some(event) = events
                .next_within(Duration::from_millis(500))
                .await
                .unwrap()
            {
                seen.push(event);
            }
            assert!(
                seen.contains(&Event::Lost),
                "{} events, none Lost",
                seen.len()
            );
            assert!(
                seen.len() < 118,
                "all {} ACQUIREs fitted: nothing was lost",
                seen.len()
            );
            assert_eq!(events.malformed(), 0);
        })
        .unwrap()
    });
}

#[test]
fn update_policy_turns_a_trap_into_a_shunt_in_place() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let (mut x, mut events) = open();
            let sel = TrafficSelector::to(prefix("192.0.2.0", 24));
            let trap = PolicySpec::trap(sel, x.ownership().reqid(1).unwrap());
            x.add_policy(&trap).await.unwrap();
            // Same selector and direction: NEWPOLICY refuses, UPDPOLICY replaces.
            let block = PolicySpec::group_shunt(sel, Direction::Out, Shunt::Block);
            assert!(x.add_policy(&block).await.unwrap_err().is_exists());
            x.update_policy(&block).await.unwrap();
            let now = x.get_policy(&trap.key()).await.unwrap();
            assert!(now.block && now.templates.is_empty());
            assert_eq!(now.priority, block.priority(x.ownership()));
            assert!(blocked(send(Pair::A4, Pair::B4)));
            assert_eq!(
                events
                    .next_within(Duration::from_millis(300))
                    .await
                    .unwrap(),
                None
            );
            x.update_policy(&trap).await.unwrap();
            send(Pair::A4, Pair::B4).unwrap();
            assert_eq!(next_acquire(&mut events).await.policy.key, trap.key());
            assert_eq!(x.dump_policies().await.unwrap().len(), 1);
        })
        .unwrap()
    });
}
