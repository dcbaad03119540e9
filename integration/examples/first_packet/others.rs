//! The other implementations' first-packet paths:
//! - strongSwan charon with a trap (`start_action=trap`) and the server's key in its
//!   configuration (no DNS on its side), reaching the oe server `srv`, which authenticates charon
//!   by the key in charon's reverse zone; with the kernel's default `xfrm_larval_drop=1` (the
//!   packet that raised the ACQUIRE is dropped) and with `0` (queued);
//! - Libreswan pluto's opportunistic encryption (`right=%opportunisticgroup`, anonymous, the
//!   server's key fetched from DNSSEC on demand), reaching the FQDN server `fq`. A fresh pluto
//!   per round: a failed attempt leaves a failure shunt for 15 minutes.

use std::time::Duration;

use oe_integration::agent::Agent;
use oe_integration::keys_dir;
use oe_integration::peers::{Charon, CharonSetup, Pluto, PlutoSetup};
use oe_integration::process::wait_until;
use oe_integration::scenario::RESOLVER;

use crate::bed::{Bed, FQ, LSW, SRV, SS};
use crate::round::{self, Link, Round, Start};

fn key(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

/// charon on `ss`, its trap towards `srv`.
pub fn start_charon(bed: &Bed) -> Charon {
    Charon::start(
        &bed.ss.ns,
        &CharonSetup {
            swanctl_conf: format!(
                "connections {{ oe {{ version = 2\n mobike = no\n local_addrs = {SS}\n remote_addrs = {SRV}\n\
                 proposals = aes256gcm16-prfsha256-x25519\n\
                 local {{ auth = pubkey\n id = {SS}\n pubkeys = self.pub }}\n\
                 remote {{ auth = pubkey\n id = {SRV}\n pubkeys = oe.pub }}\n\
                 children {{ t {{ mode = transport\n esp_proposals = aes256gcm16\n start_action = trap }} }} }} }}\n"
            ),
            private_keys: vec![("self.pem".into(), key("ws-ed25519.pem"))],
            public_keys: vec![
                ("self.pub".into(), key("ws-ed25519.pub.pem")),
                ("oe.pub".into(), key("host-ed25519.pub.pem")),
            ],
            ..CharonSetup::default()
        },
    )
}

/// One charon round, then its IKE SA terminated (the trap stays).
pub fn charon_round(bed: &Bed, charon: &Charon, row: usize, larval_drop: bool) -> Round {
    bed.ss.ns.sysctl(
        "net.core.xfrm_larval_drop",
        if larval_drop { "1" } else { "0" },
    );
    let round = round::run(row, Link::Ss, &bed.ss, &bed.srv, Start::Address);
    let _ = charon.swanctl(&["--terminate", "--ike", "oe"]);
    wait_forgotten(&bed.srv_agent, SS);
    round
}

/// pluto on `lsw` as an anonymous OE client for the FQDN server's address.
fn start_pluto(bed: &Bed) -> Pluto {
    let conn = format!(
        "conn private-or-clear\n    left={LSW}\n    leftid=%null\n    leftauth=null\n    right=%opportunisticgroup\n    \
         rightid=@srvrsa.rsa.example\n    rightauth=rsasig\n    rightrsasigkey=%dnsondemand\n    type=transport\n    \
         ikev2=insist\n    ike=aes_gcm256-sha2_256;dh31\n    negotiationshunt=hold\n    failureshunt=passthrough\n    \
         keyingtries=1\n    leftupdown=%disabled\n    auto=ondemand\n"
    );
    let pluto = Pluto::start(
        &bed.lsw.ns,
        &PlutoSetup {
            conns: conn,
            setup_extra: format!(
                "    dnssec-enable=yes\n    dnssec-rootkey-file={}\n",
                bed.lan.fixture.trust_anchor_ds().display()
            ),
            resolv_conf: Some(format!("nameserver {RESOLVER}\n")),
            policies: vec![("private-or-clear".into(), format!("{FQ}/32\n"))],
            ..PlutoSetup::default()
        },
    );
    // Its opportunistic policy goes in once the group file is read.
    let loaded = wait_until(Duration::from_secs(10), || {
        pluto.log().contains("loading group")
    });
    if !loaded {
        eprintln!(
            "warning: pluto did not load its policy group:\n{}",
            pluto.log()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    pluto
}

/// One pluto round with a fresh pluto (its DNS cache cold), stopped afterwards.
pub fn pluto_cold_round(bed: &Bed, row: usize) -> (Round, String) {
    let pluto = start_pluto(bed);
    let round = round::run(row, Link::Lsw, &bed.lsw, &bed.fq, Start::Address);
    let log = pluto.log();
    drop(pluto);
    wait_forgotten(&bed.fq_agent, LSW);
    (round, log)
}

/// One pluto round with the server's key in pluto's DNS cache: a first negotiation (ICMP, by
/// `whack --oppohere`) fills the cache, whatever its outcome; the kernel's pending-ACQUIRE
/// state it leaves is let expire after a second (pluto sets 165 s) so the application's flow
/// raises its own ACQUIRE.
pub fn pluto_cached_round(bed: &Bed, row: usize) -> (Round, String) {
    let pluto = start_pluto(bed);
    bed.lsw.ns.sysctl("net.core.xfrm_acq_expires", "1");
    let _ = pluto.whack(&["--oppohere", LSW, "--oppothere", FQ]);
    delete_states(&pluto);
    wait_forgotten(&bed.fq_agent, LSW);
    std::thread::sleep(Duration::from_secs(2));
    let round = round::run(row, Link::Lsw, &bed.lsw, &bed.fq, Start::Address);
    let log = pluto.log();
    drop(pluto);
    wait_forgotten(&bed.fq_agent, LSW);
    (round, log)
}

/// Deletes every state pluto has (children first), so its opportunistic trap applies again.
fn delete_states(pluto: &Pluto) {
    let out = pluto.whack(&["--showstates"]);
    let mut states: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .strip_prefix('#')?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    states.sort_unstable();
    states.dedup();
    for n in states.iter().rev() {
        let _ = pluto.whack(&["--deletestate", &n.to_string()]);
    }
}

/// Waits until a server agent has no peer at `addr`.
fn wait_forgotten(agent: &Agent, addr: &str) {
    let gone = wait_until(Duration::from_secs(15), || {
        let answer = agent.request(r#"{"command":"peers"}"#);
        !answer["result"]["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["address"] == addr))
    });
    if !gone {
        eprintln!("warning: the server still has a peer {addr} after 15 s");
    }
    std::thread::sleep(Duration::from_millis(200));
}
