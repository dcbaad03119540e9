//! What is ours in the kernel, read at once: for a restart's cleanup and for the resync
//! after lost events ([`crate::Event::Lost`]).
//!
//! Events tell the agent what changed; a dump tells it what is. After the event socket
//! overflowed, the agent rebuilds its view from an [`Owned`] snapshot: its policies and SAs
//! as checked proofs of ownership (so stale ones can be removed without another read), and
//! the ACQUIREs it may have missed. Every ACQUIRE leaves a larval state (no SPI, no keys)
//! that carries the packet's flow, the trap's reqid and the ACQUIRE's sequence number until
//! an SA answers it or `net.core.xfrm_acq_expires` passes; a lost ACQUIRE is still there
//! as a [`PendingAcquire`].

use crate::event::Flow;
use crate::ownership::{OwnedPolicy, OwnedSa, Ownership};
use crate::policy::PolicyInfo;
use crate::sa::SaInfo;
use crate::types::Reqid;

/// Our own entries, as found in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owned {
    /// Our policies.
    pub policies: Vec<OwnedPolicy>,
    /// Our SAs, larval ones included.
    pub sas: Vec<OwnedSa>,
}

/// An ACQUIRE the kernel raised and nothing has answered yet, read back from its larval
/// state: what [`crate::Acquire`] carried, but the trap policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingAcquire {
    /// The packet's flow.
    pub flow: Flow,
    /// The trap's reqid.
    pub reqid: Reqid,
    /// The ACQUIRE's sequence number; pass it as [`crate::SaSpec::acquire_seq`].
    pub seq: u32,
}

impl Owned {
    /// Keeps what is ours from two dumps ([`crate::Request::dump_policies`],
    /// [`crate::Request::dump_sas`]).
    pub fn from_dumps(ownership: &Ownership, policies: Vec<PolicyInfo>, sas: Vec<SaInfo>) -> Self {
        Self {
            policies: policies
                .into_iter()
                .filter_map(|p| ownership.check_policy(p).ok())
                .collect(),
            sas: sas
                .into_iter()
                .filter_map(|s| ownership.check_sa(s).ok())
                .collect(),
        }
    }

    /// The ACQUIREs of our traps that no SA has answered yet.
    pub fn pending_acquires(&self) -> Vec<PendingAcquire> {
        self.sas
            .iter()
            .filter_map(|sa| sa.info().pending_acquire())
            .collect()
    }
}
