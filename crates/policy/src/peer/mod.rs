//! One peer: a remote host the agent negotiates with, is encrypted to, or failed with. A peer
//! owns the kernel state for its address (a shunt, or SA policies and child SAs) and holds every
//! IKE SA with that host, each with its own authentication progress; two IKE SAs with one host
//! (a simultaneous start, a re-authentication, two clients behind one NAT) are told apart.

mod state;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use oe_dns::KeyVerdict;
use oe_ike::SaHandle;
use oe_kernel::Reqid;

use crate::config::Match;

pub(crate) use state::{
    Acquired, Child, Counters, Established, Failed, FailureShunt, FqdnLookups, Ike, Lookup,
    Negotiating, NegotiationShunt, PeerAuthn, PeerState, PendingKey, Step,
};

/// Names one peer for the life of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PeerId(pub(crate) u64);

/// Who started an IKE SA.
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

/// A DNS verdict that mattered for this peer, for `explain`.
#[derive(Debug, Clone)]
pub(crate) struct DnsNote {
    pub(crate) query: String,
    pub(crate) outcome: String,
    pub(crate) at: SystemTime,
}

/// Notes kept per peer at most (one per query name; a peer needs two or three).
const MAX_NOTES: usize = 8;

/// Everything about one peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) remote: IpAddr,
    pub(crate) local: IpAddr,
    pub(crate) group: Match,
    /// The reqid of this peer's SAs and host policies.
    pub(crate) reqid: Reqid,
    pub(crate) state: PeerState,
    pub(crate) ikes: BTreeMap<SaHandle, Ike>,
    /// The reverse zone's verdict for the current negotiation: looked up once (initiators at the
    /// start, responders when the peer presents its address), reset when a new one starts.
    pub(crate) reverse: Lookup<KeyVerdict>,
    pub(crate) notes: Vec<DnsNote>,
    /// The last IKE outcome, for `explain`.
    pub(crate) last_ike: Option<String>,
    /// Why the agent refused the peer's identity or key, if it did (the engine only knows
    /// "refused").
    pub(crate) refusal: Option<String>,
    /// Set when a NAT translates our address towards this peer: what that changed (`explain`).
    pub(crate) behind_nat: Option<String>,
    /// The address we assigned this peer (RFC 7296 3.15): its traffic's inner address, which
    /// the peer's kernel state is keyed on instead of `remote` (a NAT's address that other
    /// clients share).
    pub(crate) lease: Option<IpAddr>,
}

impl Peer {
    /// The address whose kernel state this peer owns: its assigned address, else its own.
    pub(crate) fn key(&self) -> IpAddr {
        self.lease.unwrap_or(self.remote)
    }

    /// Records a DNS verdict for `explain` (replacing an older one for the same query).
    pub(crate) fn note(&mut self, query: &str, outcome: String, at: SystemTime) {
        self.notes.retain(|n| n.query != query);
        if self.notes.len() >= MAX_NOTES {
            self.notes.remove(0);
        }
        self.notes.push(DnsNote {
            query: query.to_owned(),
            outcome,
            at,
        });
    }

    /// The authentication of an IKE SA that is up, preferring one with children.
    pub(crate) fn authentication(&self) -> Option<&PeerAuthn> {
        let up = |h: &SaHandle| match self.ikes.get(h).map(|i| &i.step) {
            Some(Step::Up { auth, .. }) => Some(auth),
            _ => None,
        };
        if let PeerState::Established(e) = &self.state {
            if let Some(auth) = e.children.iter().find_map(|c| up(&c.ike)) {
                return Some(auth);
            }
        }
        self.ikes.keys().find_map(up)
    }

    /// Whether an authenticated (not anonymous) IKE SA with installed children exists.
    pub(crate) fn has_authenticated_children(&self) -> bool {
        let PeerState::Established(e) = &self.state else {
            return false;
        };
        e.children.iter().any(|c| {
            matches!(self.ikes.get(&c.ike).map(|i| &i.step),
                Some(Step::Up { auth, .. }) if !auth.is_anonymous())
        })
    }

    /// The role of the IKE SA that matters most (with children, else the first).
    pub(crate) fn role(&self) -> Role {
        let main = match &self.state {
            PeerState::Established(e) => e.children.first().map(|c| c.ike),
            _ => None,
        };
        main.and_then(|h| self.ikes.get(&h))
            .or_else(|| self.ikes.values().next())
            .map_or(Role::Initiator, |i| i.role)
    }
}
