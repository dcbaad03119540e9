//! oe's paths: the ACQUIRE (the application's first packet raises it) and the DNS trigger (the
//! application's lookup through the agent's stub), each with a cold key cache (a freshly
//! started agent) and a cached key (the same agent once the first SA went idle and was torn
//! down: the trap catches the host again).

use std::time::Duration;

use oe_integration::agent::Agent;
use oe_integration::process::wait_until;

use crate::bed::{Bed, Host, STUB};
use crate::round::{self, Link, Round, Start};

/// The workstation's agent: anonymous, `private-or-clear` everywhere (the default), the stub on
/// 127.0.2.53, SAs torn down after a second idle; the post-quantum hybrid on or off.
pub fn ws_config(bed: &Bed, post_quantum: bool) -> String {
    format!(
        "[identity]\nkey = \"@DIR@/no-key.pem\"\n[ike]\nidle_timeout = \"1s\"\npost_quantum = {post_quantum}\n\
         [trigger]\nlisten = [\"{STUB}\"]\nhold = \"2s\"\n{}",
        bed.dns_config()
    )
}

/// Rows of one oe path pair (cold, then cached).
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub cold: usize,
    pub cached: usize,
}

/// Starts a fresh agent, runs the cold round and the cached round to `server`, stops the agent.
/// `name`: resolve it through the stub first (the trigger path).
pub fn cold_then_cached(
    bed: &Bed,
    server: &Host,
    name: Option<&str>,
    post_quantum: bool,
    rows: Pair,
) -> Vec<Round> {
    let mut agent = Agent::start(&bed.ws.ns, &ws_config(bed, post_quantum));
    let stub = STUB.parse().unwrap();
    let start = name.map_or(Start::Address, |n| Start::Resolve(stub, n));
    let mut rounds = Vec::new();
    for row in [rows.cold, rows.cached] {
        let round = round::run(row, Link::Ws, &bed.ws, server, start);
        if round.received.datagrams.is_empty() {
            diagnose(bed, &agent);
        }
        rounds.push(round);
        wait_torn_down(&agent, &server.addr.to_string());
    }
    agent.stop();
    rounds
}

/// Waits until the agent has forgotten the peer (idle teardown), then a little longer for the
/// peer to remove its side.
fn wait_torn_down(agent: &Agent, peer: &str) {
    let gone = wait_until(Duration::from_secs(15), || {
        let answer = agent.request(r#"{"command":"peers"}"#);
        !answer["result"]["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["address"] == peer))
    });
    if !gone {
        eprintln!("warning: the SA to {peer} was not torn down within 15 s");
    }
    std::thread::sleep(Duration::from_millis(300));
}

/// What the agent and the kernel said when a round delivered nothing.
fn diagnose(bed: &Bed, agent: &Agent) {
    let events = agent.request(r#"{"command":"events"}"#);
    let state = bed.ws.ns.ip(&["xfrm", "state"]);
    let policy = bed.ws.ns.ip(&["xfrm", "policy"]);
    eprintln!(
        "nothing delivered; agent events: {events}\nxfrm state:\n{}\nxfrm policy:\n{}",
        String::from_utf8_lossy(&state.stdout),
        String::from_utf8_lossy(&policy.stdout)
    );
}
