//! The first-packet benchmark: every path from an application's first packet to a new host to
//! that packet delivered through ESP, in one UML run (real ESP), with each path's floor measured
//! in the same run. Paths: oe's ACQUIRE path and its DNS-trigger path, each with a cold and a
//! cached key, against a server authenticated by its reverse zone (Ed25519) and one presenting
//! an FQDN identity (RSA-3072); with oe's post-quantum hybrid off (for the comparison: charon and
//! pluto lack it) and on; strongSwan charon's trap; Libreswan pluto's opportunistic encryption.
//! Then the cost for hosts without a key. `bed.rs` lists the hosts; `app.rs` says what the
//! application does. Prints medians and floors; asserts nothing (a measurement, not a test).
//!
//! Run (as root): `cargo build --release -p oe-agent && cargo run --release -p oe-integration
//! --example first_packet -- [ROUNDS] [PATHS]` where PATHS is a comma-separated subset of
//! `oe,pq,fqdn,charon,pluto,keyless` (default: all).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    unreachable_pub
)] // a measurement program

mod app;
mod bed;
mod clock;
mod dnsc;
mod floors;
mod keyless;
mod oe;
mod others;
mod round;
mod stats;
mod wire;

use oe_integration::capture::Packet;
use oe_integration::uml;

use bed::{Bed, Captures, FQ_NAME, SRV, SRV_NAME};
use floors::{Chain, Floors};
use round::{Link, Round};
use stats::{Row, Sample};

/// Which groups of paths to run.
struct Selection(Vec<String>);

impl Selection {
    fn has(&self, what: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|w| w == what)
    }
}

/// The rows, in the table's order.
const ROWS: &[&str] = &[
    "oe ACQUIRE -> srv (reverse zone), cold",
    "oe ACQUIRE -> srv (reverse zone), cached",
    "oe trigger -> srv (reverse zone), cold",
    "oe trigger -> srv (reverse zone), cached",
    "oe ACQUIRE -> fq (FQDN id), cold",
    "oe ACQUIRE -> fq (FQDN id), cached",
    "oe trigger -> fq (FQDN id), cold",
    "oe trigger -> fq (FQDN id), cached",
    "oe+PQ ACQUIRE -> srv, cold",
    "oe+PQ ACQUIRE -> srv, cached",
    "oe+PQ trigger -> srv, cold",
    "oe+PQ trigger -> srv, cached",
    "charon trap -> srv (larval_drop=1)",
    "charon trap -> srv (larval_drop=0)",
    "pluto OE -> fq (cold)",
    "pluto OE -> fq (key in pluto's cache)",
];

fn main() {
    if !uml::in_guest() {
        std::process::exit(uml::exec_self_in_guest().code().unwrap_or(1));
    }
    if std::env::var_os("RUST_LOG").is_none() {
        // The agents log as in production (debug lines cost time).
        std::env::set_var("RUST_LOG", "info");
    }
    let mut args = std::env::args().skip(1);
    let rounds: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let selection = Selection(
        args.next()
            .map(|a| a.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    );
    let bed = Bed::start();
    warm_up(&bed);
    let mut rows: Vec<Row> = ROWS.iter().map(|l| Row::new(l)).collect();
    let captures = Captures::start(&bed);
    let rounds_done = run_paths(&bed, &selection, rounds);
    let packets = stop(captures);
    let dump = std::env::var_os("OE_BENCH_DUMP").is_some();
    for round in rounds_done {
        if dump {
            wire::dump(
                ROWS[round.row],
                packets_of(&packets, round.link),
                round.initiator,
                round.server,
                round.app.start,
                round.to,
            );
        }
        let wire = wire::view(
            packets_of(&packets, round.link),
            round.initiator,
            round.server,
            round.from,
            round.to,
        );
        rows[round.row].samples.push(Sample::new(
            &round.app,
            &round.received,
            &wire,
            round.retransmissions,
        ));
    }
    let floors = floors::measure(&bed.plain.ns, SRV, bed.resolver(), &chains());
    set_floors(&mut rows, &floors);
    rows.retain(|r| !r.samples.is_empty());
    print_report(&rows, &floors, rounds);
    if selection.has("keyless") {
        let config = oe::ws_config(&bed, false);
        println!(
            "\n{}",
            keyless::measure(&bed, &config, rounds.min(5)).table()
        );
    }
}

/// Every path's rounds, interleaved round by round so drifts in the machine's load hit all alike.
fn run_paths(bed: &Bed, selection: &Selection, rounds: u8) -> Vec<Round> {
    let charon = (selection.has("charon")).then(|| others::start_charon(bed));
    let mut done = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        if selection.has("oe") {
            done.extend(oe::cold_then_cached(
                bed,
                &bed.srv,
                None,
                false,
                oe::Pair { cold: 0, cached: 1 },
            ));
            done.extend(oe::cold_then_cached(
                bed,
                &bed.srv,
                Some(SRV_NAME),
                false,
                oe::Pair { cold: 2, cached: 3 },
            ));
        }
        if selection.has("fqdn") {
            done.extend(oe::cold_then_cached(
                bed,
                &bed.fq,
                None,
                false,
                oe::Pair { cold: 4, cached: 5 },
            ));
            done.extend(oe::cold_then_cached(
                bed,
                &bed.fq,
                Some(FQ_NAME),
                false,
                oe::Pair { cold: 6, cached: 7 },
            ));
        }
        if selection.has("pq") {
            done.extend(oe::cold_then_cached(
                bed,
                &bed.srv,
                None,
                true,
                oe::Pair { cold: 8, cached: 9 },
            ));
            done.extend(oe::cold_then_cached(
                bed,
                &bed.srv,
                Some(SRV_NAME),
                true,
                oe::Pair {
                    cold: 10,
                    cached: 11,
                },
            ));
        }
        if let Some(charon) = &charon {
            done.push(others::charon_round(bed, charon, 12, true));
            done.push(others::charon_round(bed, charon, 13, false));
        }
        if selection.has("pluto") {
            for (r, log) in [
                others::pluto_cold_round(bed, 14),
                others::pluto_cached_round(bed, 15),
            ] {
                if r.received.datagrams.is_empty() {
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    eprintln!(
                        "pluto: nothing delivered in round {round}; its log ends:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                done.push(r);
            }
        }
    }
    done
}

/// The first SA of each cipher makes the guest kernel load its crypto (0.3-1.3 s): one
/// throwaway negotiation from each initiator before anything is measured.
fn warm_up(bed: &Bed) {
    // The resolver's cache too: every chain the floors and the cold lookups ask for.
    let _ = floors::measure(&bed.plain.ns, SRV, bed.resolver(), &chains());
    let mut agent = oe_integration::agent::Agent::start(&bed.ws.ns, &oe::ws_config(bed, false));
    let _ = round::run(0, Link::Ws, &bed.ws, &bed.srv, round::Start::Address);
    agent.stop();
}

struct AllPackets {
    ws: Vec<Packet>,
    ss: Vec<Packet>,
    lsw: Vec<Packet>,
}

fn stop(c: Captures) -> AllPackets {
    AllPackets {
        ws: c.ws.stop(),
        ss: c.ss.stop(),
        lsw: c.lsw.stop(),
    }
}

fn packets_of(all: &AllPackets, link: Link) -> &[Packet] {
    match link {
        Link::Ws => &all.ws,
        Link::Ss => &all.ss,
        Link::Lsw => &all.lsw,
    }
}

/// The lookups whose chains the floors need.
fn chains() -> Vec<Chain> {
    let chain = |name: &str, zone: &str| Chain {
        name: name.into(),
        qtype: dnsc::IPSECKEY,
        zones: vec![zone.into(), ".".into()],
    };
    vec![
        chain("30.2.0.192.in-addr.arpa.", "2.0.192.in-addr.arpa."),
        chain(SRV_NAME, "ed.example."),
        chain(FQ_NAME, "rsa.example."),
    ]
}

/// Each row's floor from the floors and its own IKE round trips on the wire.
fn set_floors(rows: &mut [Row], f: &Floors) {
    let rev = f.chain("30.2.0.192.in-addr.arpa.");
    let (srv, fq) = (f.chain(SRV_NAME), f.chain(FQ_NAME));
    for (i, row) in rows.iter_mut().enumerate() {
        let ike = row.ike();
        row.floor = Some(match i {
            0 | 8 => (
                format!("max(IKE {ike:.1}, reverse chain {rev:.1})"),
                ike.max(rev),
            ),
            1 | 5 | 9 | 12 | 13 => (format!("IKE {ike:.1}"), ike),
            2 | 10 => (format!("chain {srv:.1} + IKE {ike:.1}"), srv + ike),
            3 | 7 | 11 => (
                format!("DNS {:.1} + IKE {ike:.1}", f.dns_rtt),
                f.dns_rtt + ike,
            ),
            4 | 14 => (
                format!("max(IKE {ike:.1}, name's chain {fq:.1})"),
                ike.max(fq),
            ),
            15 => (format!("IKE {ike:.1}"), ike),
            6 => (format!("chain {fq:.1} + IKE {ike:.1}"), fq + ike),
            _ => continue,
        });
    }
}

fn print_report(rows: &[Row], f: &Floors, rounds: u8) {
    println!("\nfirst-packet benchmark, {rounds} rounds per path (UML, real ESP)");
    println!(
        "floors: link RTT {:.3} ms; one DNS round trip {:.3} ms",
        f.link_rtt, f.dns_rtt
    );
    for (name, levels, walked, at_once) in &f.chains {
        println!(
            "  cold chain of {name}: {levels} levels, {walked:.2} ms level by level, {at_once:.2} ms all at once"
        );
    }
    println!("\n{}", stats::table(rows));
    println!(
        "floors per path (ms from the app's start):\n{}",
        stats::floor_notes(rows)
    );
    print_goals(rows);
}

fn row<'a>(rows: &'a [Row], label: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.label == label)
}

/// The goals as ratios (reported, not asserted).
fn print_goals(rows: &[Row]) {
    let esp = |l: &str| row(rows, l).map_or(f64::NAN, Row::first_esp);
    let charon = esp(ROWS[12]);
    let pluto = esp(ROWS[15]);
    println!("goals (first ESP packet, medians):");
    for (oe_row, other, name, goal) in [
        (ROWS[0], charon, "charon (larval_drop=1)", 0.5),
        (ROWS[1], charon, "charon (larval_drop=1)", 0.5),
        (ROWS[4], pluto, "pluto (key cached)", 0.25),
        (ROWS[5], pluto, "pluto (key cached)", 0.25),
    ] {
        let ratio = esp(oe_row) / other;
        println!("  {oe_row}: {ratio:.2}x {name} (goal <= {goal})");
    }
    for l in [ROWS[2], ROWS[3], ROWS[6], ROWS[7]] {
        if let Some(r) = row(rows, l) {
            if let Some((_, floor)) = r.floor {
                let esp = r.first_esp();
                println!(
                    "  {l}: first ESP {esp:.1} = floor {floor:.1} + {:.1} ({:.2}x)",
                    esp - floor,
                    esp / floor
                );
            }
        }
    }
}
