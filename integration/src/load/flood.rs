//! A flood of IKE_SA_INIT requests from spoofed sources (RFC 7296 2.6's attacker): one real
//! request, sent again and again with a fresh SPIi from addresses of [`FLOOD_SOURCES`], never
//! returning a cookie. The generator's namespace owns that prefix, so the flood sees the answers
//! and counts them: cookies (stateless) and full IKE_SA_INIT responses (the responder kept
//! state).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oe_ike::wire::{Message, NotifyType, Payload};
use oe_ike::Endpoint;
use rand_chacha::rand_core::SeedableRng;

use super::PktSocket;
use crate::netns::Netns;

/// The spoofed sources: `2001:db8:f000::/36`, one /64 per request.
pub const FLOOD_SOURCES: &str = "2001:db8:f000::/36";

/// The first port the flood sends from (the clients use 500).
const FLOOD_PORT: u16 = 40500;

/// Spoofed source `n`.
pub fn flood_source(n: u64) -> Ipv6Addr {
    let high = 0xf000 | ((n >> 16) & 0x0fff) as u16;
    Ipv6Addr::new(0x2001, 0xdb8, high, (n & 0xffff) as u16, 0, 0, 0, 1)
}

/// What the flood sent and what came back.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FloodReport {
    pub sent: u64,
    pub cookies: u64,
    /// Answers that were not cookies (the responder made state for a spoofed source).
    pub answers: u64,
    pub seconds: f64,
}

/// Floods `responder` from inside `ns` with `senders` threads (each its own port and sources)
/// until `stop` is set or `limit` passes.
pub fn flood(
    ns: &Netns,
    responder: SocketAddr,
    stop: &Arc<AtomicBool>,
    limit: Duration,
    senders: u16,
) -> FloodReport {
    let senders = senders.max(1);
    let reports: Vec<FloodReport> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..senders)
            .map(|k| scope.spawn(move || ns.run(|| send(responder, stop, limit, k, senders))))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    reports
        .iter()
        .fold(FloodReport::default(), |a, r| FloodReport {
            sent: a.sent + r.sent,
            cookies: a.cookies + r.cookies,
            answers: a.answers + r.answers,
            seconds: a.seconds.max(r.seconds),
        })
}

/// Sender `k` of `senders`: port `FLOOD_PORT + k`, sources `k`, `k + senders`, ...
fn send(
    responder: SocketAddr,
    stop: &AtomicBool,
    limit: Duration,
    k: u16,
    senders: u16,
) -> FloodReport {
    let port = FLOOD_PORT + k;
    let mut socket = PktSocket::bind(port).unwrap_or_else(|e| panic!("flood socket: {e}"));
    let mut d = request(responder);
    let mut report = FloodReport::default();
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
        for _ in 0..64 {
            report.sent += 1;
            let n = report.sent * u64::from(senders) + u64::from(k);
            if let Some(spi) = d.get_mut(..8) {
                spi.copy_from_slice(&(n | 1 << 63).to_be_bytes());
            }
            let from = SocketAddr::new(IpAddr::V6(flood_source(n)), port);
            let _ = socket.send(from, responder, &d);
        }
        while let Ok(Some(r)) = socket.recv(Duration::ZERO) {
            match is_cookie(r.bytes) {
                Some(true) => report.cookies += 1,
                Some(false) => report.answers += 1,
                None => {}
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// One IKE_SA_INIT request (X25519, the engine's default proposals) from an initiator.
fn request(responder: SocketAddr) -> Vec<u8> {
    let config = oe_ike::Config::new(oe_ike::wire::Identity::Null, oe_ike::LocalAuth::Null);
    let mut ep = Endpoint::new(
        config,
        Box::new(rand_chacha::ChaCha20Rng::seed_from_u64(99)),
    );
    let local = SocketAddr::new(IpAddr::V6(flood_source(0)), FLOOD_PORT);
    ep.connect(Instant::now(), local, responder);
    ep.poll_transmit().map(|t| t.contents).unwrap_or_default()
}

/// Whether an answer is a cookie request (RFC 7296 2.6); None for what does not parse.
fn is_cookie(bytes: &[u8]) -> Option<bool> {
    let m = Message::parse(bytes).ok()?;
    Some(
        m.payloads
            .iter()
            .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::COOKIE)),
    )
}
