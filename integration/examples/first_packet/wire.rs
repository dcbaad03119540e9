//! What one round put on the initiator's link, from its capture: the first IKE and ESP packets,
//! the IKE exchanges' round trips, and application packets in clear.

use std::net::IpAddr;

use oe_integration::capture::{Kind, Packet};

/// The wire's view of one round (Unix seconds).
#[derive(Debug, Clone, Default)]
pub struct WireView {
    /// The first IKE packet the initiator sent.
    pub first_ike: Option<f64>,
    /// The first ESP packet the initiator sent.
    pub first_esp: Option<f64>,
    /// The summed round trips of the IKE exchanges (request out to response back, fragments
    /// included): what IKE itself costs on this link with this responder.
    pub ike_round_trips: Option<f64>,
    /// IKE exchanges seen.
    pub exchanges: usize,
    /// UDP or TCP packets the initiator sent to the server in clear.
    pub clear: usize,
}

/// The packets between `initiator` and `server` in `[from, to)`.
pub fn view(packets: &[Packet], initiator: IpAddr, server: IpAddr, from: f64, to: f64) -> WireView {
    let flow: Vec<&Packet> = packets
        .iter()
        .filter(|p| p.between(initiator, server) && p.time >= from && p.time < to)
        .collect();
    let out = |p: &&&Packet| p.src == initiator;
    let (ike_round_trips, exchanges) = round_trips(&flow, initiator);
    WireView {
        first_ike: flow
            .iter()
            .filter(out)
            .find(|p| p.kind == Kind::Ike)
            .map(|p| p.time),
        first_esp: flow
            .iter()
            .filter(out)
            .find(|p| matches!(p.kind, Kind::Esp { .. }))
            .map(|p| p.time),
        ike_round_trips,
        exchanges,
        clear: flow
            .iter()
            .filter(out)
            .filter(|p| p.is_cleartext_payload())
            .count(),
    }
}

/// The IKE exchanges in order: a run of requests (the initiator's packets, possibly fragments)
/// then a run of responses; each exchange costs from its first request to its last response.
fn round_trips(flow: &[&Packet], initiator: IpAddr) -> (Option<f64>, usize) {
    let ike = flow.iter().filter(|p| p.kind == Kind::Ike);
    let mut total = 0.0;
    let mut exchanges = 0;
    let mut request: Option<f64> = None;
    let mut response: Option<f64> = None;
    for p in ike {
        if p.src == initiator {
            if let (Some(q), Some(r)) = (request, response) {
                total += r - q;
                exchanges += 1;
                request = None;
                response = None;
            }
            request.get_or_insert(p.time);
        } else if request.is_some() {
            response = Some(p.time);
        }
    }
    if let (Some(q), Some(r)) = (request, response) {
        total += r - q;
        exchanges += 1;
    }
    ((exchanges > 0).then_some(total), exchanges)
}

/// Prints a round's packets between the two hosts, in milliseconds from `start`
/// (`OE_BENCH_DUMP=1`).
pub fn dump(
    label: &str,
    packets: &[Packet],
    initiator: IpAddr,
    server: IpAddr,
    start: f64,
    to: f64,
) {
    println!("-- {label}");
    for p in packets
        .iter()
        .filter(|p| p.between(initiator, server) && p.time >= start - 0.001 && p.time < to)
    {
        let dir = if p.src == initiator { "->" } else { "<-" };
        println!("   {:>8.3} {dir} {:?}", (p.time - start) * 1e3, p.kind);
    }
}
