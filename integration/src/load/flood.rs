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

/// The port the flood sends from (the clients use 500).
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

/// Floods `responder` from inside `ns` until `stop` is set or `limit` passes.
pub fn flood(
    ns: &Netns,
    responder: SocketAddr,
    stop: &Arc<AtomicBool>,
    limit: Duration,
) -> FloodReport {
    ns.run(|| {
        let mut socket =
            PktSocket::bind(FLOOD_PORT).unwrap_or_else(|e| panic!("flood socket: {e}"));
        let template = request(responder);
        let mut d = template.clone();
        let mut report = FloodReport::default();
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
            for _ in 0..64 {
                report.sent += 1;
                if let Some(spi) = d.get_mut(..8) {
                    spi.copy_from_slice(&(report.sent | 1 << 63).to_be_bytes());
                }
                let from = SocketAddr::new(IpAddr::V6(flood_source(report.sent)), FLOOD_PORT);
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
    })
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
