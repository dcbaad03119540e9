//! The floors, measured in the same run from a host without any agent (`plain`), on the same LAN:
//! the link's round trip, one DNS round trip to the resolver, and the round trips of a cold
//! validated lookup: the answer, then the DS and DNSKEY of each zone up to the root, one level
//! after the other with each level's queries side by side (what a validator that walks the chain
//! needs at least), and everything at once (what one that guesses the zone cuts needs).

use std::net::SocketAddr;

use oe_integration::netns::Netns;

use crate::clock::now;
use crate::dnsc::{ask_all, query, DNSKEY, DS};
use crate::stats::median;

/// A lookup's chain: the name and type asked, and the zones from the name's own up to the root.
#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    pub qtype: u16,
    pub zones: Vec<String>,
}

/// What the floors measured (milliseconds).
#[derive(Debug, Clone, Default)]
pub struct Floors {
    pub link_rtt: f64,
    pub dns_rtt: f64,
    /// Per chain: (levels, walked level by level, all at once).
    pub chains: Vec<(String, usize, f64, f64)>,
}

impl Floors {
    /// The level-by-level time of the chain for `name` (0 when not measured).
    pub fn chain(&self, name: &str) -> f64 {
        self.chains
            .iter()
            .find(|c| c.0 == name)
            .map_or(0.0, |c| c.2)
    }
}

/// Measures every floor from `plain`.
pub fn measure(plain: &Netns, server: &str, resolver: SocketAddr, chains: &[Chain]) -> Floors {
    let link_rtt = ping_ms(plain, server);
    let dns_rtt = plain.run(|| {
        let q = query(1, "host.ed.example.", crate::dnsc::A, false);
        median(
            (0..21)
                .map(|_| timed(|| drop(ask_all(resolver, std::slice::from_ref(&q)))))
                .collect(),
        )
    });
    let chains = chains
        .iter()
        .map(|c| {
            let (walked, at_once) = plain.run(|| chain_ms(resolver, c));
            (c.name.clone(), c.zones.len() + 1, walked, at_once)
        })
        .collect();
    Floors {
        link_rtt,
        dns_rtt,
        chains,
    }
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = now();
    f();
    (now() - t) * 1e3
}

/// The chain walked level by level, and fetched all at once; medians of 11 (the resolver has
/// every record cached after the first).
fn chain_ms(resolver: SocketAddr, chain: &Chain) -> (f64, f64) {
    let levels = levels(chain);
    let mut id = 100u16;
    let mut fresh = |names: &[(String, u16)]| -> Vec<Vec<u8>> {
        names
            .iter()
            .map(|(n, t)| {
                id = id.wrapping_add(1);
                query(id, n, *t, true)
            })
            .collect()
    };
    let mut walked = Vec::new();
    let mut at_once = Vec::new();
    for _ in 0..11 {
        let per_level: Vec<Vec<Vec<u8>>> = levels.iter().map(|l| fresh(l)).collect();
        walked.push(timed(|| {
            for level in &per_level {
                drop(ask_all(resolver, level));
            }
        }));
        let all: Vec<Vec<u8>> = levels.iter().flat_map(|l| fresh(l)).collect();
        at_once.push(timed(|| drop(ask_all(resolver, &all))));
    }
    (median(walked), median(at_once))
}

/// The queries of each level: the answer; then per zone its DS (none for the root) and DNSKEY.
fn levels(chain: &Chain) -> Vec<Vec<(String, u16)>> {
    let mut levels = vec![vec![(chain.name.clone(), chain.qtype)]];
    for zone in &chain.zones {
        let mut level = vec![(zone.clone(), DNSKEY)];
        if zone != "." {
            level.push((zone.clone(), DS));
        }
        levels.push(level);
    }
    levels
}

/// The median of 21 pings, in milliseconds.
fn ping_ms(ns: &Netns, dst: &str) -> f64 {
    let out = ns
        .cmd("ping")
        .args(["-c", "21", "-i", "0.05", dst])
        .output()
        .unwrap();
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split("time=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    median(times)
}
