//! A peer's state machines: one for the kernel state it owns (shunt or SA policies), one per IKE
//! SA with it. Each phase carries exactly what is valid in it; a transition consumes the old phase
//! and builds the next.
//!
//! ```text
//!   kernel side:  Negotiating --first child installed--> Established --last child and IKE SA gone--> (peer removed)
//!                      |                                                          (the trap applies again)
//!                      +--failure (initiator)--> Failed --shunt lifetime ends--> (peer removed)
//!   each IKE SA:  Exchanging -> AwaitingKey -> Up(accepted authentication) -> (closed)
//!                           \-> AwaitingVerdict (NULL responder, reverse zone not yet known) -> Up | refused
//! ```

use std::time::{Duration, Instant};

use oe_dns::{AddressVerdict, KeyVerdict, Name};
use oe_ike::{ChildSa, SaHandle};
use oe_kernel::{PolicyKey, PolicySpec};

use super::Role;
use crate::input::WaiterId;

/// The kernel side of a peer.
#[derive(Debug)]
pub(crate) enum PeerState {
    Negotiating(Negotiating),
    Established(Established),
    Failed(Failed),
}

impl PeerState {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Negotiating(_) => "negotiating",
            Self::Established(_) => "established",
            Self::Failed(_) => "failed",
        }
    }
}

/// IKE is running; no child SA is installed yet.
#[derive(Debug)]
pub(crate) struct Negotiating {
    pub(crate) since: Instant,
    /// When the negotiation counts as failed.
    pub(crate) deadline: Instant,
    pub(crate) shunt: NegotiationShunt,
    /// The ACQUIRE that raised this negotiation (its larval state holds the flow), once one came.
    pub(crate) acquired: Option<Acquired>,
    /// DNS answers the trigger holds until this negotiation ends.
    pub(crate) waiters: Vec<WaiterId>,
}

/// The kernel's ACQUIRE for the flow a negotiation serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acquired {
    /// Its sequence number: the outbound SA replaces the larval state it names.
    pub(crate) seq: u32,
    /// The trap policy that caught the flow (the kernel queues held packets on it).
    pub(crate) trap: PolicyKey,
}

/// What covers the flow while IKE runs.
#[derive(Debug)]
pub(crate) enum NegotiationShunt {
    /// Nothing of ours: a responder, or a negotiation the DNS trigger started before any packet.
    None,
    /// No policy: the ACQUIRE's larval state holds the flow (queued with `xfrm_larval_drop=0`).
    Hold,
    /// A pass policy: traffic flows in clear meanwhile.
    Pass {
        spec: PolicySpec,
        reason: String,
        installed: Instant,
    },
}

/// At least one child SA is installed.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) children: Vec<Child>,
    /// The host policies routing the peer's traffic into its SAs, one pair per distinct child
    /// selector (they carry the peer's reqid, so every child of every IKE SA with this peer
    /// matches them).
    pub(crate) policies: Vec<PolicySpec>,
}

/// One installed child SA pair.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    /// The IKE SA it belongs to.
    pub(crate) ike: SaHandle,
    pub(crate) inbound_spi: u32,
    pub(crate) outbound_spi: u32,
    /// The negotiated selector (outbound direction) its host policies carry.
    pub(crate) selector: oe_kernel::TrafficSelector,
    pub(crate) esp: String,
    pub(crate) selectors: String,
    pub(crate) mode: oe_ike::Mode,
    /// UDP encapsulation ports (ours, the peer's) when a NAT is on the path (RFC 3948); the
    /// peer's follows a rebinding NAT.
    pub(crate) encap: Option<(u16, u16)>,
    /// The address the responder assigned us, which this child carries (RFC 7296 3.15).
    pub(crate) virtual_ip: Option<std::net::IpAddr>,
    pub(crate) installed: Instant,
    pub(crate) rekey_after: Duration,
    pub(crate) counters: Counters,
}

/// A child's byte and packet counters as last read from the kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) bytes: (u64, u64),
    pub(crate) packets: (u64, u64),
    /// When the byte counters last moved.
    pub(crate) last_change: Instant,
}

/// The last attempt failed.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) at: Instant,
    pub(crate) reason: String,
    /// The failure shunt, unless the kernel refused it.
    pub(crate) shunt: Option<FailureShunt>,
    /// When the peer is forgotten and the trap applies again.
    pub(crate) until: Instant,
}

/// A failure shunt in the kernel.
#[derive(Debug)]
pub(crate) struct FailureShunt {
    /// `pass` (fail open) or `drop` (private).
    pub(crate) pass: bool,
    pub(crate) spec: PolicySpec,
}

/// One IKE SA with the peer.
#[derive(Debug)]
pub(crate) struct Ike {
    pub(crate) role: Role,
    pub(crate) since: Instant,
    pub(crate) step: Step,
    /// Inbound SPIs reserved (ALLOCSPI) for it and not yet used by an installed child.
    pub(crate) spare_spis: Vec<u32>,
    /// A re-authentication we started: the IKE SA it replaces once its child is in.
    pub(crate) replaces: Option<SaHandle>,
}

/// Progress of one IKE SA.
#[derive(Debug)]
pub(crate) enum Step {
    /// IKE_SA_INIT and IKE_AUTH under way.
    Exchanging,
    /// The engine waits for the peer's keys (`NeedPeerKey`) while DNS answers.
    AwaitingKey {
        /// What the peer presented (`fqdn:...`, `address:...`).
        identity: String,
        pending: PendingKey,
    },
    /// Keys supplied; the engine is verifying the peer's AUTH with them.
    Verifying {
        /// How the keys were found, for `peers` and `explain`.
        how: String,
    },
    /// The core refused this IKE SA's authentication: none of its children reaches the kernel;
    /// the engine is deleting it.
    Refused,
    /// A responder authenticated with NULL before the reverse zone answered: its child SAs wait
    /// for the verdict, and are installed only if DNS proves the host publishes no key.
    AwaitingVerdict {
        identity: String,
        children: Vec<(ChildSa, Option<u32>)>,
    },
    /// Authenticated, and the authentication accepted: its children may be installed.
    Up {
        auth: PeerAuthn,
        /// When the peer authenticated (IKE rekeys do not renew it; re-authentication does).
        at: Instant,
    },
}

/// What a paused IKE_AUTH needs from DNS.
#[derive(Debug)]
pub(crate) enum PendingKey {
    /// The reverse zone's verdict (`Peer::reverse`): the identity is the peer's address.
    Reverse,
    /// An FQDN identity: its key, and its validated addresses, which must include the peer's.
    Fqdn(Box<FqdnLookups>),
}

/// The lookups an FQDN identity needs.
#[derive(Debug)]
pub(crate) struct FqdnLookups {
    pub(crate) name: Name,
    pub(crate) key: Lookup<KeyVerdict>,
    pub(crate) addrs: Lookup<AddressVerdict>,
}

/// A DNS lookup a negotiation depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup<T> {
    NotAsked,
    Pending,
    Known(T),
}

impl<T> Lookup<T> {
    pub(crate) fn known(&self) -> Option<&T> {
        match self {
            Self::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// How the peer authenticated, as the core accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerAuthn {
    /// A signature verified with a SECURE key from DNS.
    Key { identity: String, how: String },
    /// NULL authentication (RFC 7619), accepted for the reason given.
    Anonymous { identity: String, why: String },
}

impl PeerAuthn {
    pub(crate) fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous { .. })
    }

    pub(crate) fn identity(&self) -> &str {
        match self {
            Self::Key { identity, .. } | Self::Anonymous { identity, .. } => identity,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Key { how, .. } => how.clone(),
            Self::Anonymous { why, .. } => {
                format!("none: NULL authentication (anonymous, RFC 7619; {why})")
            }
        }
    }
}
