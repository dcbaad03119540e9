//! Resync after lost events. An ACQUIRE that some socket received leaves a larval state
//! that blocks new ACQUIREs for the flow until `net.core.xfrm_acq_expires`; if the agent's
//! socket lost it, a dump of what is ours gives it back, typed, with the flow, reqid and
//! sequence number the event carried. An ACQUIRE that reached no socket at all leaves
//! nothing (the kernel's `km_query` fails), so the flow's next packet raises it again.

use std::collections::{HashMap, HashSet};

use super::*;

#[test]
fn acquires_lost_with_the_event_socket_come_back_from_the_dump() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let mut x = Xfrm::open(Ownership::default()).unwrap();
            // Another listener (`ip xfrm monitor`, a second agent socket) receives them all.
            let mut witness = EventSocket::open().unwrap();
            let mut events = EventSocket::with_receive_buffer(0).unwrap();
            let reqid = x.ownership().reqid(1).unwrap();
            let trap = PolicySpec::trap(TrafficSelector::to(prefix("192.0.2.0", 24)), reqid);
            x.add_policy(&trap).await.unwrap();
            // An SPI of ours reserved by ALLOCSPI: larval, but no ACQUIRE.
            let spi = x
                .alloc_spi(ip(Pair::A4), ip(Pair::B4), reqid)
                .await
                .unwrap();
            let mut ports = HashMap::new();
            for host in 3..=120 {
                let dst = format!("192.0.2.{host}");
                ports.insert(ip(&dst), send(Pair::A4, &dst).unwrap());
            }
            let mut seen = Vec::new();
            while let Some(event) = events
                .next_within(Duration::from_millis(500))
                .await
                .unwrap()
            {
                seen.push(event);
            }
            assert!(seen.contains(&Event::Lost), "nothing was lost");

            let owned = x.list_owned().await.unwrap();
            assert_eq!(owned.policies.len(), 1);
            assert_eq!(owned.policies[0].key(), trap.key());
            assert_eq!(owned.sas.len(), 1 + ports.len());
            let pending = owned.pending_acquires();
            let flows: HashSet<_> = pending.iter().map(|p| p.flow).collect();
            let expected: HashSet<_> = ports
                .iter()
                .map(|(dst, port)| oe_kernel::Flow {
                    src: ip(Pair::A4),
                    dst: *dst,
                    proto: proto::UDP,
                    src_port: *port,
                    dst_port: 5000,
                })
                .collect();
            assert_eq!(flows, expected);
            assert!(pending.iter().all(|p| p.reqid == reqid && p.seq != 0));
            assert!(owned
                .sas
                .iter()
                .any(|s| s.id().spi == spi && s.info().pending_acquire().is_none()));
            // The ACQUIREs the witness received carry the same sequence numbers.
            let mut witnessed = 0;
            while let Some(event) = witness
                .next_within(Duration::from_millis(200))
                .await
                .unwrap()
            {
                if let Event::Acquire(a) = event {
                    let p = pending.iter().find(|p| p.flow == a.flow).unwrap();
                    assert_eq!(p.seq, a.seq);
                    witnessed += 1;
                }
            }
            assert_eq!(witnessed, ports.len());
        })
        .unwrap()
    });
}

#[test]
fn acquires_no_socket_received_leave_nothing_and_come_again() {
    let pair = Pair::new();
    pair.a.run(|| {
        block_on(async {
            let mut x = Xfrm::open(Ownership::default()).unwrap();
            let mut events = EventSocket::with_receive_buffer(0).unwrap();
            let reqid = x.ownership().reqid(1).unwrap();
            let trap = PolicySpec::trap(TrafficSelector::to(prefix("192.0.2.0", 24)), reqid);
            x.add_policy(&trap).await.unwrap();
            for host in 3..=120 {
                let _ = send(Pair::A4, &format!("192.0.2.{host}"));
            }
            let mut delivered = HashSet::new();
            let mut lost = false;
            while let Some(event) = events
                .next_within(Duration::from_millis(500))
                .await
                .unwrap()
            {
                match event {
                    Event::Acquire(a) => {
                        delivered.insert(a.flow.dst);
                    }
                    Event::Lost => lost = true,
                    _ => {}
                }
            }
            assert!(lost && delivered.len() < 118, "nothing was lost");
            let pending = x.list_owned().await.unwrap().pending_acquires();
            let larval: HashSet<_> = pending.iter().map(|p| p.flow.dst).collect();
            assert_eq!(larval, delivered);
            // A flow whose ACQUIRE nobody received raises a new one with its next packet.
            let missed = (3..=120)
                .map(|h| ip(&format!("192.0.2.{h}")))
                .find(|d| !delivered.contains(d))
                .unwrap();
            send(Pair::A4, &missed.to_string()).unwrap();
            assert_eq!(next_acquire(&mut events).await.flow.dst, missed);
        })
        .unwrap()
    });
}
