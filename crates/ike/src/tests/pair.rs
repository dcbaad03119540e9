//! Two NULL-authenticated endpoints wired together, with seeded randomness and injected time.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::event::{Event, SaHandle};
use crate::wire::Identity;
use crate::{Config, Endpoint, LocalAuth};

pub(crate) const A: &str = "192.0.2.1:500";
pub(crate) const B: &str = "192.0.2.2:500";

pub(crate) fn config() -> Config {
    let mut c = Config::new(Identity::Null, LocalAuth::Null);
    c.accept_null_peers = true;
    c.liveness_interval = None;
    // These tests step through the classical exchanges message by message (IKE_SA_INIT, then
    // IKE_AUTH); the hybrid's IKE_INTERMEDIATE has its own tests (tests/pq.rs).
    c.additional_ke = crate::AdditionalKe::off();
    c
}

pub(crate) struct TestPair {
    pub(crate) a: Endpoint,
    pub(crate) b: Endpoint,
    pub(crate) now: Instant,
    pub(crate) events: Vec<(bool, SaHandle, Event)>,
    next_spi: u32,
}

impl TestPair {
    pub(crate) fn new(a: Config, b: Config) -> Self {
        Self {
            a: Endpoint::new(a, Box::new(ChaCha20Rng::seed_from_u64(1))),
            b: Endpoint::new(b, Box::new(ChaCha20Rng::seed_from_u64(2))),
            now: Instant::now(),
            events: Vec::new(),
            next_spi: 0xc000_0000,
        }
    }

    /// An established pair; returns A's and B's handles.
    pub(crate) fn up() -> (Self, SaHandle, SaHandle) {
        let mut p = Self::new(config(), config());
        let ha = p.a.connect(p.now, A.parse().unwrap(), B.parse().unwrap());
        p.run();
        let hb = p
            .events
            .iter()
            .find_map(|(a, h, e)| (!a && matches!(e, Event::IkeSaEstablished { .. })).then_some(*h))
            .unwrap();
        (p, ha, hb)
    }

    /// Answers B's pending events (SPIs) without moving datagrams.
    pub(crate) fn answer_b(&mut self) {
        self.answer(false);
    }

    /// Inbound SPIs of A's children reported ready.
    pub(crate) fn a_children(&self) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|(a, _, e)| match e {
                Event::ChildSaReady { child, .. } if *a => Some(child.inbound_spi),
                _ => None,
            })
            .collect()
    }

    fn answer(&mut self, on_a: bool) -> bool {
        let now = self.now;
        let mut any = false;
        loop {
            let ep = if on_a { &mut self.a } else { &mut self.b };
            let Some((h, e)) = ep.poll_event() else {
                return any;
            };
            any = true;
            if let Event::NeedSpi { .. } = e {
                self.next_spi += 1;
                ep.supply_spi(now, h, self.next_spi);
            }
            self.events.push((on_a, h, e));
        }
    }

    /// Moves events and datagrams until nothing moves.
    pub(crate) fn run(&mut self) {
        let (a, b): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
        for _ in 0..1000 {
            let mut moved = self.answer(true) | self.answer(false);
            while let Some(t) = self.a.poll_transmit() {
                self.b.handle_datagram(self.now, a, b, &t.contents);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit() {
                self.a.handle_datagram(self.now, b, a, &t.contents);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Runs timers and traffic for `d` of simulated time.
    pub(crate) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.run();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return self.run();
                }
            }
        }
    }
}

impl TestPair {
    /// Answers A's pending events (SPIs) without moving datagrams.
    pub(crate) fn answer_a(&mut self) {
        self.answer(true);
    }

    /// Takes the datagrams A has queued, without delivering them.
    pub(crate) fn take_from_a(&mut self) -> Vec<Vec<u8>> {
        self.answer_a();
        std::iter::from_fn(|| self.a.poll_transmit())
            .map(|t| t.contents)
            .collect()
    }

    /// Takes the datagrams B has queued, without delivering them.
    pub(crate) fn take_from_b(&mut self) -> Vec<Vec<u8>> {
        self.answer_b();
        std::iter::from_fn(|| self.b.poll_transmit())
            .map(|t| t.contents)
            .collect()
    }

    pub(crate) fn deliver_to_b(&mut self, datagrams: &[Vec<u8>]) {
        let (a, b) = (A.parse().unwrap(), B.parse().unwrap());
        for d in datagrams {
            self.b.handle_datagram(self.now, a, b, d);
        }
    }

    pub(crate) fn deliver_to_a(&mut self, datagrams: &[Vec<u8>]) {
        let (a, b) = (A.parse().unwrap(), B.parse().unwrap());
        for d in datagrams {
            self.a.handle_datagram(self.now, b, a, d);
        }
    }
}
