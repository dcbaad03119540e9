//! A load generator: IKE initiators (one oe-ike endpoint) from many source addresses, each its
//! own IPv6 /64 (so per-source bounds see distinct hosts), driven on one thread inside a
//! namespace. The caller asks for a number of established IKE SAs and gets progress back; the
//! thread keeps every SA answered (liveness, deletes) until the generator is dropped.
//!
//! Sources are `2001:db8:8000::/33` numbered from 0 ([`source`]); the namespace routes that
//! prefix to itself ([`prepare_namespace`]) and the responder's namespace routes it back.

mod bed;
mod flood;
mod procstat;
mod socket;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oe_ike::crypto::PublicKey;
use oe_ike::{Endpoint, Event, SaHandle};
use rand_chacha::rand_core::SeedableRng;

pub use bed::{LoadBed, GEN_ADDR, RESPONDER_ADDR};
pub use flood::{flood, flood_source, FloodReport, FLOOD_SOURCES};
pub use procstat::{cpu_seconds, kib, user_seconds, Sample};
pub use socket::{PktSocket, Received};

use crate::netns::Netns;

/// The prefix the sources come from.
pub const SOURCES: &str = "2001:db8:8000::/33";

/// Source number `n`: `2001:db8:(8000 + n / 65536):(n % 65536)::1`, one /64 each.
pub fn source(n: u64) -> Ipv6Addr {
    let high = 0x8000 | ((n >> 16) & 0x7fff) as u16;
    Ipv6Addr::new(0x2001, 0xdb8, high, (n & 0xffff) as u16, 0, 0, 0, 1)
}

/// Lets `ns` send from and receive for every address of [`SOURCES`] and [`FLOOD_SOURCES`]
/// (AnyIP routes).
pub fn prepare_namespace(ns: &Netns) {
    for prefix in [SOURCES, FLOOD_SOURCES] {
        ns.ip(&["-6", "route", "add", "local", prefix, "dev", "lo"]);
    }
    ns.sysctl("net.ipv6.ip_nonlocal_bind", "1");
}

/// What the generator does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The responder (IKE port).
    pub responder: SocketAddr,
    /// The initiators' engine configuration (proposal, authentication).
    pub ike: oe_ike::Config,
    /// The responder's public key, for a responder that signs (None: only NULL authentication
    /// is accepted from it).
    pub peer_key: Option<PublicKey>,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// The first source number (generators side by side use disjoint ranges).
    pub first_source: u64,
    /// IKE SAs started from one source before the next source is used.
    pub per_source: u64,
    pub seed: u64,
}

/// Counters since the generator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub started: u64,
    /// IKE SAs established (IKE_AUTH done).
    pub established: u64,
    /// Child SAs the responder created with them.
    pub children: u64,
    /// Handshakes that failed or timed out.
    pub failed: u64,
    /// Established IKE SAs closed since (the responder deleted them).
    pub closed: u64,
    /// Datagrams received.
    pub received: u64,
}

enum Order {
    /// Establish IKE SAs until this many are, then report.
    Reach(u64),
    Report,
}

/// A running generator.
#[derive(Debug)]
pub struct LoadGen {
    orders: mpsc::Sender<Order>,
    progress: mpsc::Receiver<Progress>,
    thread: Option<JoinHandle<()>>,
}

impl LoadGen {
    /// Starts the generator's thread inside `ns` (prepared with [`prepare_namespace`]).
    pub fn spawn(ns: Arc<Netns>, config: LoadConfig) -> Self {
        let (orders, rx_orders) = mpsc::channel();
        let (tx_progress, progress) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            ns.run(move || {
                let mut driver = Driver::new(config);
                driver.run(&rx_orders, &tx_progress);
            });
        });
        Self {
            orders,
            progress,
            thread: Some(thread),
        }
    }

    /// Establishes IKE SAs until `total` are (counting earlier ones), or until none succeeded
    /// for `stall`; returns the progress then.
    pub fn reach(&self, total: u64, stall: Duration) -> Progress {
        if self.orders.send(Order::Reach(total)).is_err() {
            return Progress::default();
        }
        let mut last = Progress::default();
        let mut moved = Instant::now();
        // Progress lines come every 200 ms whether or not anything was established: a stall is
        // no new SA for `stall`, not silence.
        while moved.elapsed() < stall {
            match self.progress.recv_timeout(stall) {
                Ok(p) if p.established >= total => return p,
                Ok(p) if p.established > last.established => {
                    last = p;
                    moved = Instant::now();
                }
                Ok(p) => last = p,
                Err(_) => break,
            }
        }
        self.report().unwrap_or(last)
    }

    /// The counters now (or a moment later: progress lines queued before the answer are
    /// skipped, and one sent after it may be taken instead).
    pub fn report(&self) -> Option<Progress> {
        self.orders.send(Order::Report).ok()?;
        let mut last = self.progress.recv_timeout(Duration::from_secs(10)).ok()?;
        while let Ok(p) = self.progress.try_recv() {
            last = p;
        }
        Some(last)
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        let (dead, _) = mpsc::channel();
        self.orders = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The generator's thread: the endpoint, the socket and the bookkeeping.
struct Driver {
    config: LoadConfig,
    ep: Endpoint,
    socket: PktSocket,
    pending: HashSet<SaHandle>,
    up: HashSet<SaHandle>,
    progress: Progress,
    target: u64,
    next_spi: u32,
}

impl Driver {
    fn new(config: LoadConfig) -> Self {
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(config.seed);
        let ep = Endpoint::new(config.ike.clone(), Box::new(rng));
        let socket = PktSocket::bind(config.responder.port())
            .unwrap_or_else(|e| panic!("load generator socket: {e}"));
        Self {
            config,
            ep,
            socket,
            pending: HashSet::new(),
            up: HashSet::new(),
            progress: Progress::default(),
            target: 0,
            next_spi: 0x1000,
        }
    }

    fn run(&mut self, orders: &mpsc::Receiver<Order>, progress: &mpsc::Sender<Progress>) {
        let mut reported = Instant::now();
        loop {
            loop {
                match orders.try_recv() {
                    Ok(Order::Reach(n)) => self.target = n,
                    Ok(Order::Report) => {
                        let _ = progress.send(self.progress);
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            self.start_handshakes();
            self.step();
            let reached = self.progress.established >= self.target && self.target > 0;
            if reached || reported.elapsed() > Duration::from_millis(200) {
                if progress.send(self.progress).is_err() {
                    return;
                }
                reported = Instant::now();
                if reached {
                    self.target = 0;
                }
            }
        }
    }

    /// Keeps `concurrency` handshakes in flight while the target is not reached.
    fn start_handshakes(&mut self) {
        let now = Instant::now();
        while self.pending.len() < self.config.concurrency
            && self.progress.established + (self.pending.len() as u64) < self.target
        {
            let n = self.config.first_source + self.progress.started / self.config.per_source;
            let local = SocketAddr::new(IpAddr::V6(source(n)), self.config.responder.port());
            let h = self.ep.connect(now, local, self.config.responder);
            self.pending.insert(h);
            self.progress.started += 1;
        }
    }

    /// Receives what arrived (waiting a little if nothing did), runs due timers, handles events
    /// and sends.
    fn step(&mut self) {
        let now = Instant::now();
        let wait = self
            .ep
            .poll_timeout()
            .map_or(Duration::from_millis(5), |t| {
                t.saturating_duration_since(now)
            })
            .min(Duration::from_millis(5));
        let mut first = true;
        loop {
            let got = self.socket.recv(if first { wait } else { Duration::ZERO });
            first = false;
            match got {
                Ok(Some(r)) => {
                    let (from, to) = (r.from, r.to);
                    let bytes = r.bytes.to_vec();
                    self.ep.handle_datagram(Instant::now(), from, to, &bytes);
                    self.progress.received += 1;
                    self.events();
                    self.transmit();
                }
                _ => break,
            }
        }
        let now = Instant::now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        self.events();
        self.transmit();
    }

    fn events(&mut self) {
        while let Some((h, e)) = self.ep.poll_event() {
            match e {
                Event::NeedSpi { .. } => {
                    self.next_spi = self.next_spi.wrapping_add(1).max(0x1000);
                    self.ep.supply_spi(Instant::now(), h, self.next_spi);
                }
                Event::NeedPeerKey { .. } => match &self.config.peer_key {
                    Some(key) => self
                        .ep
                        .supply_peer_keys(Instant::now(), h, vec![key.clone()]),
                    None => self.ep.refuse_peer_keys(Instant::now(), h),
                },
                Event::IkeSaEstablished { .. } if self.pending.remove(&h) => {
                    self.up.insert(h);
                    self.progress.established += 1;
                }
                Event::ChildSaReady { .. } => self.progress.children += 1,
                Event::Closed { .. } => {
                    if self.pending.remove(&h) {
                        self.progress.failed += 1;
                    } else if self.up.remove(&h) {
                        self.progress.closed += 1;
                    }
                }
                _ => {}
            }
        }
    }

    fn transmit(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            let _ = self.socket.send(t.local, t.remote, &t.contents);
        }
    }
}
