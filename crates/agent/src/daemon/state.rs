//! What the agent knows about each peer: its policy group, negotiation phase, IKE and child SAs, shunt, and
//! the DNS outcomes that decided its authentication. The status socket reports from here.

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use oe_ike::SaHandle;
use oe_kernel::{PolicySpec, Reqid};

use crate::config::Match;

/// Who started the IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        }
    }
}

/// Where a peer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// IKE is running (since the given instant).
    Negotiating { since: Instant },
    /// At least one child SA is installed.
    Established { since: Instant },
    /// The last attempt failed; a failure shunt may be in place until it expires.
    Failed { at: Instant, reason: String },
}

/// A shunt the agent installed for one peer.
#[derive(Debug, Clone)]
pub(crate) struct ShuntState {
    /// "pass", "hold" or "drop".
    pub(crate) action: &'static str,
    /// "negotiation" or "failure".
    pub(crate) stage: &'static str,
    pub(crate) reason: String,
    pub(crate) installed: Instant,
    pub(crate) expires: Option<Instant>,
    /// The kernel policy, to remove it; `None` for a hold, which is the kernel's larval state itself.
    pub(crate) spec: Option<PolicySpec>,
}

/// One installed child SA pair.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub(crate) inbound_spi: u32,
    pub(crate) outbound_spi: u32,
    pub(crate) esp: String,
    pub(crate) selectors: String,
    pub(crate) installed: Instant,
    pub(crate) rekey_after: std::time::Duration,
    /// Byte counters (in, out) at the last idle check, and when they last changed.
    pub(crate) last_bytes: (u64, u64),
    pub(crate) last_change: Instant,
    pub(crate) packets: (u64, u64),
}

/// A DNS outcome that mattered for this peer, for `explain`.
#[derive(Debug, Clone)]
pub(crate) struct DnsNote {
    pub(crate) name: String,
    pub(crate) outcome: String,
    pub(crate) at: SystemTime,
}

/// Everything about one peer address.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) addr: IpAddr,
    pub(crate) local: IpAddr,
    pub(crate) group: Match,
    pub(crate) reqid: Reqid,
    pub(crate) role: Role,
    pub(crate) phase: Phase,
    /// The IKE SA, in the endpoint of `local`.
    pub(crate) ike: Option<SaHandle>,
    pub(crate) ike_established: Option<Instant>,
    pub(crate) peer_id: Option<String>,
    pub(crate) authentication: Option<String>,
    pub(crate) anonymous: bool,
    pub(crate) children: Vec<Child>,
    pub(crate) shunt: Option<ShuntState>,
    pub(crate) dns: Vec<DnsNote>,
    pub(crate) last_ike: Option<String>,
    /// When the negotiation must have succeeded.
    pub(crate) deadline: Option<Instant>,
    /// The engine waits for this peer's keys: the IKE SA and the identity it presented.
    pub(crate) pending_key: Option<(SaHandle, PendingKey)>,
    /// The `seq` of the ACQUIRE that started the negotiation (its larval state holds the flow).
    pub(crate) acquire_seq: Option<u32>,
    /// The trap policy that caught the flow (the kernel queues held packets on it).
    pub(crate) trap: Option<oe_kernel::PolicyKey>,
    /// Why the agent refused the peer's identity or key, if it did (the engine only knows "refused").
    pub(crate) refusal: Option<String>,
    /// Inbound SPIs allocated (ALLOCSPI) for this peer and not yet used by an installed child: their larval
    /// states are deleted when the negotiation ends without them.
    pub(crate) spare_spis: Vec<u32>,
    /// DNS answers the trigger holds until this negotiation ends.
    pub(crate) waiters: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// What a paused IKE_AUTH needs from DNS before the peer's signature can be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PendingKey {
    /// IPSECKEY of the peer address's reverse name (identity = the address itself).
    Reverse { name: String },
    /// IPSECKEY of an FQDN identity, whose validated addresses must include the peer's (dns-match-id).
    Fqdn {
        name: String,
        key_query: String,
        addr_query: String,
    },
}

impl Peer {
    pub(crate) fn new(
        addr: IpAddr,
        local: IpAddr,
        group: Match,
        reqid: Reqid,
        role: Role,
        now: Instant,
    ) -> Self {
        Self {
            addr,
            local,
            group,
            reqid,
            role,
            phase: Phase::Negotiating { since: now },
            ike: None,
            ike_established: None,
            peer_id: None,
            authentication: None,
            anonymous: false,
            children: Vec::new(),
            shunt: None,
            dns: Vec::new(),
            last_ike: None,
            deadline: None,
            pending_key: None,
            acquire_seq: None,
            trap: None,
            refusal: None,
            waiters: Vec::new(),
            spare_spis: Vec::new(),
        }
    }

    pub(crate) fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Negotiating { .. } => "negotiating",
            Phase::Established { .. } => "established",
            Phase::Failed { .. } => "failed",
        }
    }

    /// Records a DNS outcome (replacing an older one for the same name).
    pub(crate) fn note_dns(&mut self, name: &str, outcome: String) {
        self.dns.retain(|n| n.name != name);
        self.dns.push(DnsNote {
            name: name.to_owned(),
            outcome,
            at: SystemTime::now(),
        });
    }
}
