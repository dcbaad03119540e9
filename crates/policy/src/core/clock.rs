//! Pauses and clock steps. The core's timers run on the executor's monotonic clock (which counts
//! suspended time: the agent's executor takes it from CLOCK_BOOTTIME, as the kernel's SA
//! lifetimes count wall-clock time), so after a suspend or a SIGSTOP the timers that fell due
//! meanwhile are late (a heartbeat falls due every 5 s, so any pause longer than 15 s leaves
//! one). Late by more than [`PAUSE`] means the agent did not run: its peers may
//! have given up on it (their liveness checks went unanswered) and deleted their SAs, while the
//! kernel here still sends into SAs nobody decrypts. Each established peer gets a fresh IKE SA at
//! once (make-before-break: the old one is retired when the new child is in, RFC 7296 2.8.3), so
//! traffic recovers within one round trip instead of after our own liveness check's
//! retransmissions (about 90 s). Failure shunts learned before the pause are cleared (the host
//! may wake up on another network).
//!
//! A step of the wall clock (against the monotonic one) changes no core timer, but the kernel's
//! lifetimes compare wall-clock seconds (`oe_kernel::refresh` docs): our policies are re-put and
//! the kernel's state re-read at once.

use std::time::Duration;

use super::{Core, Pending};
use crate::input::KernelOp;
use crate::now::Now;
use crate::peer::{PeerId, PeerState};

/// A timer this late means the agent did not run (paused, suspended, starved).
pub(super) const PAUSE: Duration = Duration::from_secs(10);
/// How often a timer falls due at least, so that a pause longer than [`PAUSE`] plus this always
/// finds one late.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A wall-clock step this large (either way) is reported and acted on.
const STEP: Duration = Duration::from_secs(5);

impl Core {
    /// Looks at the time of an input against the last one: a pause, a wall-clock step.
    pub(super) fn check_clocks(&mut self, now: Now) {
        if now.mono < self.now.mono {
            return;
        }
        let late = self
            .poll_timeout()
            .map(|due| now.mono.saturating_duration_since(due))
            .unwrap_or_default();
        let expected = self.now.wall + (now.mono - self.now.mono);
        let step = match now.wall.duration_since(expected) {
            Ok(ahead) => (ahead > STEP).then(|| format!("forward by {}s", ahead.as_secs())),
            Err(e) => {
                let behind = e.duration();
                (behind > STEP).then(|| format!("back by {}s", behind.as_secs()))
            }
        };
        self.now = now;
        if late > PAUSE {
            self.resumed(late);
        }
        if let Some(step) = step {
            self.clock_stepped(&step);
        }
    }

    /// Arms the next heartbeat.
    pub(super) fn heartbeat(&mut self) {
        let next = self.now.mono + HEARTBEAT;
        self.timers.set(crate::timers::Timer::Heartbeat, next);
    }

    /// The agent ran again after `late` without running.
    fn resumed(&mut self, late: Duration) {
        let established: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| matches!(p.state, PeerState::Established(_)))
            .filter(|p| p.ikes.values().all(|i| i.replaces.is_none()))
            .map(|p| p.id)
            .collect();
        self.event(
            "resumed",
            None,
            format!(
                "the agent did not run for {}s (paused or suspended): {} peer(s) get a fresh IKE SA",
                late.as_secs(),
                established.len()
            ),
        );
        self.new_network("the host resumed");
        for id in established {
            let Some(peer) = self.peers.get(id) else {
                continue;
            };
            let main = match &peer.state {
                PeerState::Established(e) => e.children.first().map(|c| c.ike),
                _ => None,
            };
            let (local, remote) = (peer.local, peer.remote);
            if let Some(old) = main {
                self.start_reauth(id, local, remote, old, "the agent resumed");
            }
        }
    }

    fn clock_stepped(&mut self, step: &str) {
        self.event(
            "clock",
            None,
            format!("the wall clock stepped {step}: policies re-put, the kernel's state re-read"),
        );
        self.refresh();
        self.kernel(KernelOp::ListOwned, Some(Pending::Resync));
    }
}
