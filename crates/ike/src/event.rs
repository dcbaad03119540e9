//! What the engine hands out: datagrams to send and events for the agent.

use std::net::{IpAddr, SocketAddr};

use zeroize::Zeroizing;

use crate::config::Lifetime;
use crate::crypto::{DhGroup, EncrAlg, IntegAlg};
use crate::error::Error;
use crate::wire::{Identity, TrafficSelector};

/// Names one IKE SA (and its successors after IKE SA rekeys) for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaHandle(pub u64);

/// A datagram to send from `local` to `remote`. On the NAT-T port it already starts with the
/// four-byte non-ESP marker (RFC 3948 2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub contents: Vec<u8>,
}

/// How the peer proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAuth {
    /// A signature verified with a key the agent supplied (RFC 7427 or RFC 7296 method 1).
    Signature,
    /// NULL authentication (RFC 7619): anonymous, only the IKE SA's integrity.
    Null,
}

/// Events, in the order they happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The exchange is paused until [`crate::Endpoint::supply_peer_keys`] or
    /// [`crate::Endpoint::refuse_peer_keys`] is called for this SA.
    NeedPeerKey {
        identity: Identity,
        remote: SocketAddr,
    },
    /// The engine needs an inbound ESP SPI for a child SA between these addresses (the kernel
    /// allocates it: XFRM_MSG_ALLOCSPI). Answer with [`crate::Endpoint::supply_spi`].
    NeedSpi { local: IpAddr, remote: IpAddr },
    /// A peer asks for an internal address (CFG_REQUEST, RFC 7296 3.15) of this family. The
    /// exchange is paused until [`crate::Endpoint::supply_address`] answers, with an address or
    /// with none.
    NeedAddress { v6: bool },
    /// The IKE SA is authenticated in both directions.
    IkeSaEstablished {
        peer_id: Identity,
        peer_auth: PeerAuth,
        nat_local: bool,
        nat_remote: bool,
        /// The identity we presented (ID_NULL behind a NAT when `Config::id_behind_nat` says so).
        presented: Identity,
    },
    /// Behind a NAT the peer now sends from another port (RFC 7296 2.23): IKE follows it, and
    /// so must the kernel's UDP encapsulation of every child SA of this IKE SA.
    PeerMoved { remote: SocketAddr },
    /// A child SA's keys and parameters, ready for the kernel. `replaces` is the inbound SPI of
    /// the child this one rekeys: keep the old one until `ChildSaDeleted` for it.
    ChildSaReady {
        child: Box<ChildSa>,
        replaces: Option<u32>,
    },
    /// A child SA could not be created (the IKE SA stays up, RFC 7296 1.2).
    ChildSaFailed { error: Error },
    /// The child with this inbound SPI is gone: remove both its SAs and policies.
    ChildSaDeleted { inbound_spi: u32, outbound_spi: u32 },
    /// The IKE SA was rekeyed (RFC 7296 2.18); children are unaffected.
    IkeSaRekeyed,
    /// The IKE SA is gone; all its children went with it (each reported by `ChildSaDeleted`).
    Closed { reason: CloseReason },
}

/// Why an IKE SA ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We deleted it (`Endpoint::delete`).
    Local,
    /// The peer deleted it.
    PeerDeleted,
    /// The agent refused the peer's identity or keys.
    Refused,
    /// The exchange failed.
    Failed(Error),
}

/// The IPsec mode of a child SA (RFC 7296 1.3.1, RFC 4301 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The peers agreed on transport mode (USE_TRANSPORT_MODE in request and response).
    Transport,
    /// Tunnel mode: the responder did not accept transport mode, or we asked for an address.
    Tunnel,
}

/// Everything the kernel needs for one ESP child SA pair.
///
/// # Traffic selectors
///
/// `local_ts` and `remote_ts` are exactly what both sides agreed (RFC 7296 2.9), in a form one
/// kernel policy pair holds, and the agent must install them as they are (a narrowed child that
/// is installed wider would send traffic the peer drops):
/// - each holds exactly one selector, for the single host `local` (resp. `remote`);
/// - both carry the same `ip_proto`; 0 means every protocol, and then both port ranges are
///   0-65535;
/// - each port range is every port (0-65535) or a single port.
///
/// The engine refuses narrowing it cannot express this way: as responder it answers
/// TS_UNACCEPTABLE; as initiator it reports [`Event::ChildSaFailed`] and deletes the peer's half
/// of the child. Without narrowing (what opportunistic peers do) both are the whole hosts.
#[derive(Debug, Clone)]
pub struct ChildSa {
    /// SPI of the SA the peer sends to us (allocated by the agent).
    pub inbound_spi: u32,
    /// SPI of the SA we send to the peer (chosen by the peer).
    pub outbound_spi: u32,
    pub local: IpAddr,
    pub remote: IpAddr,
    /// Negotiated selectors: one each, see "Traffic selectors" above.
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub encr: EncrAlg,
    pub integ: Option<IntegAlg>,
    /// Keys from KEYMAT (RFC 7296 2.17); AEAD keys include the 4-byte salt.
    pub keys: ChildKeys,
    pub lifetime: Lifetime,
    /// UDP encapsulation ports (local, remote) when a NAT was detected (RFC 3948).
    pub encap: Option<(u16, u16)>,
    pub mode: Mode,
    /// The internal address the responder assigned us (CFG_REPLY, RFC 7296 3.15): `local_ts`
    /// names it, and traffic from it goes through this (tunnel-mode) child.
    pub virtual_ip: Option<IpAddr>,
}

/// Child SA keys, one set per direction.
#[derive(Clone)]
pub struct ChildKeys {
    pub encr_in: Zeroizing<Vec<u8>>,
    pub integ_in: Zeroizing<Vec<u8>>,
    pub encr_out: Zeroizing<Vec<u8>>,
    pub integ_out: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChildKeys(..)")
    }
}

/// A read-only view of one IKE SA, for status displays and the agent's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaInfo {
    pub spi_i: u64,
    pub spi_r: u64,
    /// Whether we initiated it.
    pub initiator: bool,
    /// The negotiated IKE algorithms, e.g. `AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519`, once known.
    pub proposal: Option<String>,
    /// When the IKE SA will be rekeyed, if scheduled.
    pub rekey_at: Option<std::time::Instant>,
    /// Child SAs held (installed, being rekeyed, or awaiting their delete).
    pub children: usize,
    /// The post-quantum key exchanges the IKE SA's keys depend on, in the order they ran: e.g.
    /// `[MlKem768]` after the default hybrid (X25519, then ML-KEM-768 in IKE_INTERMEDIATE,
    /// RFC 9370). Empty for a classical IKE SA. Children take their keys from the IKE SA's
    /// SK_d (RFC 7296 2.17), and IKE SA rekeys from the old SK_d (2.18), so this covers them
    /// too.
    pub post_quantum: Vec<DhGroup>,
    /// Where the peer's messages come from now.
    pub remote: SocketAddr,
    /// How the peer authenticated; `None` until IKE_AUTH is done.
    pub peer_auth: Option<PeerAuth>,
    /// When IKE_AUTH completed. IKE SA rekeys do not change it: they do not re-authenticate.
    pub authenticated_at: Option<std::time::Instant>,
}

impl SaInfo {
    /// Whether the IKE SA and its children are protected against a quantum computer that
    /// records the traffic today.
    pub fn is_post_quantum(&self) -> bool {
        !self.post_quantum.is_empty()
    }
}
