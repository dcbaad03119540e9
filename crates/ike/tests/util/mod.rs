//! A deterministic two-peer simulator (quinn-proto `tests/util.rs` `Pair` style): two endpoints,
//! a seeded RNG each, injected time, and a wire that can drop, duplicate and reorder datagrams.
//! Events the agent would answer (peer keys, SPIs) are answered here, from the other peer's config.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

pub mod forge;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oe_ike::crypto::{PrivateKey, PublicKey};
use oe_ike::wire::Identity;
use oe_ike::{ChildSa, CloseReason, Config, Endpoint, Event, LocalAuth, SaHandle, Transmit};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const A: &str = "192.0.2.1:500";
pub const B: &str = "192.0.2.2:500";

pub fn key(name: &str) -> Arc<PrivateKey> {
    let path = format!("{}/testdata/keys/{name}.p8", env!("CARGO_MANIFEST_DIR"));
    let der = std::fs::read(path).unwrap();
    Arc::new(PrivateKey::from_pkcs8_der(&der).unwrap())
}

/// A config authenticating with `key` (or NULL auth with None) as an FQDN.
pub fn config(name: &str, key_name: Option<&str>) -> Config {
    let auth = key_name.map_or(LocalAuth::Null, |k| LocalAuth::Key(key(k)));
    let mut c = Config::new(Identity::Fqdn(format!("{name}.example")), auth);
    c.liveness_interval = None;
    c
}

/// What the wire does to datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Perfect,
    /// Drop the datagrams with these sequence numbers (counted over both directions, from 0).
    DropSeq(&'static [usize]),
    /// Deliver each direction's batch in reverse order.
    Reverse,
    /// Drop everything (the peer is gone).
    Blackhole,
    /// A sits behind a NAT: B sees A's datagrams from 198.51.100.1, port + 10000.
    Nat,
    /// The same NAT after it rebound A to new ports: port + 20000.
    NatRebound,
}

/// The NAT's public side for one of A's addresses.
pub fn nat_map(a: SocketAddr) -> SocketAddr {
    SocketAddr::new("198.51.100.1".parse().unwrap(), a.port() + 10000)
}

pub struct Peer {
    pub ep: Endpoint,
    pub addr: SocketAddr,
    /// Keys the simulated agent supplies when asked (the other side's public key).
    pub peer_keys: Option<Vec<PublicKey>>,
    pub events: Vec<(SaHandle, Event)>,
    pub next_spi: u32,
    /// Answer NeedSpi / NeedPeerKey automatically.
    pub auto: bool,
    pub pending_keys: Vec<SaHandle>,
    /// The address the simulated agent assigns a peer that asks for one (RFC 7296 3.15).
    pub lease: Option<std::net::IpAddr>,
}

impl Peer {
    pub fn new(config: Config, addr: &str, seed: u64) -> Self {
        let ep = Endpoint::new(config, Box::new(ChaCha20Rng::seed_from_u64(seed)));
        Self {
            ep,
            addr: addr.parse().unwrap(),
            peer_keys: None,
            events: Vec::new(),
            next_spi: 0xc000_0000 | (seed as u32 & 0xff) << 16,
            auto: true,
            pending_keys: Vec::new(),
            lease: None,
        }
    }

    pub fn children(&self) -> Vec<&ChildSa> {
        self.events
            .iter()
            .filter_map(|(_, e)| {
                if let Event::ChildSaReady { child, .. } = e {
                    Some(&**child)
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn deleted_children(&self) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|(_, e)| {
                if let Event::ChildSaDeleted { inbound_spi, .. } = e {
                    Some(*inbound_spi)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Inbound SPIs of children reported ready and not deleted since.
    pub fn live_children(&self) -> Vec<u32> {
        let dead = self.deleted_children();
        self.children()
            .iter()
            .map(|c| c.inbound_spi)
            .filter(|s| !dead.contains(s))
            .collect()
    }

    pub fn established(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::IkeSaEstablished { .. }))
    }

    pub fn closed(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|(_, e)| {
            if let Event::Closed { reason } = e {
                Some(reason)
            } else {
                None
            }
        })
    }

    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }
}

pub struct Pair {
    pub a: Peer,
    pub b: Peer,
    pub now: Instant,
    pub wire: Wire,
    /// Datagrams put on the wire so far (both directions), with their send time and direction.
    pub log: Vec<(Duration, bool, Vec<u8>)>,
    pub start: Instant,
    seq: usize,
}

impl Pair {
    /// Two peers; each one's agent will supply the other's public key.
    pub fn new(a: Config, b: Config) -> Self {
        let pub_a = match &a.local_auth {
            LocalAuth::Key(k) => Some(vec![k.public_key()]),
            LocalAuth::Null => None,
        };
        let pub_b = match &b.local_auth {
            LocalAuth::Key(k) => Some(vec![k.public_key()]),
            LocalAuth::Null => None,
        };
        let mut a = Peer::new(a, A, 1);
        let mut b = Peer::new(b, B, 2);
        a.peer_keys = pub_b;
        b.peer_keys = pub_a;
        let now = Instant::now();
        Self {
            a,
            b,
            now,
            wire: Wire::Perfect,
            log: Vec::new(),
            start: now,
            seq: 0,
        }
    }

    pub fn connect(&mut self) -> SaHandle {
        self.a.ep.connect(self.now, self.a.addr, self.b.addr)
    }

    /// The handle B uses for its (single) SA.
    pub fn b_handle(&self) -> SaHandle {
        self.b
            .events
            .iter()
            .find_map(|(h, e)| matches!(e, Event::IkeSaEstablished { .. }).then_some(*h))
            .unwrap()
    }

    pub fn answer_events(p: &mut Peer, now: Instant) -> bool {
        let mut any = false;
        while let Some((h, e)) = p.ep.poll_event() {
            any = true;
            if p.auto {
                match &e {
                    Event::NeedSpi { .. } => {
                        p.next_spi += 1;
                        let spi = p.next_spi;
                        p.ep.supply_spi(now, h, spi);
                    }
                    Event::NeedAddress { .. } => p.ep.supply_address(now, h, p.lease),
                    Event::NeedPeerKey { .. } => match p.peer_keys.clone() {
                        Some(k) => p.ep.supply_peer_keys(now, h, k),
                        None => p.ep.refuse_peer_keys(now, h),
                    },
                    _ => {}
                }
            } else if matches!(e, Event::NeedPeerKey { .. }) {
                p.pending_keys.push(h);
            }
            p.events.push((h, e));
        }
        any
    }

    pub fn drain(p: &mut Peer) -> Vec<Transmit> {
        std::iter::from_fn(|| p.ep.poll_transmit()).collect()
    }

    /// Moves datagrams and answers events until nothing moves at the current time.
    pub fn step(&mut self) -> bool {
        let mut moved =
            Self::answer_events(&mut self.a, self.now) | Self::answer_events(&mut self.b, self.now);
        for a_to_b in [true, false] {
            let (from, to) = if a_to_b {
                (&mut self.a, &mut self.b)
            } else {
                (&mut self.b, &mut self.a)
            };
            let mut batch = Self::drain(from);
            if batch.is_empty() {
                continue;
            }
            moved = true;
            if self.wire == Wire::Reverse {
                batch.reverse();
            }
            for t in batch {
                self.log
                    .push((self.now - self.start, a_to_b, t.contents.clone()));
                let seq = self.seq;
                self.seq += 1;
                let dropped = match self.wire {
                    Wire::DropSeq(list) => list.contains(&seq),
                    Wire::Blackhole => true,
                    _ => false,
                };
                let (src, dst) = match (self.wire, a_to_b) {
                    (Wire::Nat, true) => (nat_map(t.local), t.remote),
                    (Wire::Nat, false) => {
                        let inside = SocketAddr::new(to.addr.ip(), t.remote.port() - 10000);
                        assert_eq!(nat_map(inside), t.remote);
                        (t.local, inside)
                    }
                    (Wire::NatRebound, true) => {
                        let m = nat_map(t.local);
                        (SocketAddr::new(m.ip(), m.port() + 10000), t.remote)
                    }
                    // Replies to the old mapping are lost: the NAT forgot it.
                    (Wire::NatRebound, false) if t.remote.port() < 20000 => continue,
                    (Wire::NatRebound, false) => {
                        let inside = SocketAddr::new(to.addr.ip(), t.remote.port() - 20000);
                        (t.local, inside)
                    }
                    _ => (t.local, t.remote),
                };
                assert_eq!(dst.ip(), to.addr.ip());
                if !dropped {
                    to.ep.handle_datagram(self.now, src, dst, &t.contents);
                }
            }
        }
        moved
    }

    /// Answers pending events on both sides without moving datagrams.
    pub fn step_events(&mut self) {
        Self::answer_events(&mut self.a, self.now);
        Self::answer_events(&mut self.b, self.now);
    }

    /// Runs until quiet at the current time.
    pub fn drive_now(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Runs, advancing time to each timer, until `limit` has passed.
    pub fn drive_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..100_000 {
            self.drive_now();
            let next = [self.a.ep.poll_timeout(), self.b.ep.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.ep.handle_timeout(self.now);
                    self.b.ep.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    self.drive_now();
                    return;
                }
            }
        }
        panic!("timers never settle");
    }

    /// Runs for up to a minute of simulated time.
    pub fn drive(&mut self) {
        self.drive_for(Duration::from_secs(60));
    }

    pub fn sent_by_a(&self) -> Vec<&[u8]> {
        self.log
            .iter()
            .filter(|(_, ab, _)| *ab)
            .map(|(_, _, d)| d.as_slice())
            .collect()
    }
}

/// Checks that two views of one child SA pair up: SPIs crossed, keys mirrored.
pub fn assert_paired(x: &ChildSa, y: &ChildSa) {
    assert_paired_ignoring_addresses(x, y);
    assert_eq!(x.local, y.remote);
    assert_eq!(x.local_ts, y.remote_ts);
    assert_eq!(x.remote_ts, y.local_ts);
}

/// As [`assert_paired`], for a pair seen through a NAT (addresses differ on each side).
pub fn assert_paired_ignoring_addresses(x: &ChildSa, y: &ChildSa) {
    assert_eq!(x.inbound_spi, y.outbound_spi);
    assert_eq!(x.outbound_spi, y.inbound_spi);
    assert_eq!(*x.keys.encr_out, *y.keys.encr_in);
    assert_eq!(*x.keys.encr_in, *y.keys.encr_out);
    assert_eq!(*x.keys.integ_out, *y.keys.integ_in);
    assert_eq!(x.encr, y.encr);
    assert_eq!(x.integ, y.integ);
    assert_ne!(*x.keys.encr_out, *x.keys.encr_in);
}
