//! Engine configuration: proposals, lifetimes, identity and key, timers, policy hooks.

use std::sync::Arc;
use std::time::Duration;

use crate::addke::AdditionalKe;
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg, PrivateKey};
use crate::wire::Identity;

/// One IKE SA proposal (RFC 7296 3.3): all combinations of its key exchange groups with the
/// one cipher/PRF set. The first group is the one the initiator sends a KE for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeProposal {
    pub encr: EncrAlg,
    /// Required with AES-CBC, absent with AEAD ciphers.
    pub integ: Option<IntegAlg>,
    pub prf: PrfAlg,
    pub groups: Vec<DhGroup>,
}

/// One ESP proposal for child SAs (no ESN; transport mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspProposal {
    pub encr: EncrAlg,
    pub integ: Option<IntegAlg>,
}

/// Initiator retransmission schedule: timeout n is `base * factor^n` (strongSwan's
/// `retransmit_timeout`/`retransmit_base`/`retransmit_tries`: 4 s, 1.8, 5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retransmit {
    pub base: Duration,
    pub factor: f64,
    /// Retransmissions after the first transmission before the exchange fails.
    pub tries: u32,
}

impl Retransmit {
    /// Time to wait after transmission number `n` (0 = the first send).
    pub fn timeout(&self, n: u32) -> Duration {
        let exp = i32::try_from(n).unwrap_or(i32::MAX);
        self.base.mul_f64(self.factor.powi(exp).min(1e6))
    }
}

/// Lifetimes with a soft point where we rekey and a hard point where the SA must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub soft: Duration,
    pub hard: Duration,
}

/// What the local side authenticates with.
#[derive(Debug, Clone)]
pub enum LocalAuth {
    /// A signature key (RFC 7427 method 14, or method 1 for RSA with peers lacking RFC 7427).
    Key(Arc<PrivateKey>),
    /// NULL authentication with ID_NULL (RFC 7619): the anonymous side of OE.
    Null,
}

/// When an initiator asks the responder for an internal address (RFC 7296 3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRequest {
    Never,
    /// When NAT detection shows our address is translated: a private address cannot be told
    /// apart from other clients behind the same NAT, an assigned one can.
    BehindNat,
    Always,
}

/// Everything the engine needs to know up front.
#[derive(Debug, Clone)]
pub struct Config {
    pub ike_proposals: Vec<IkeProposal>,
    /// Additional key exchanges (RFC 9370) after the IKE_SA_INIT one, run in IKE_INTERMEDIATE
    /// exchanges (RFC 9242): ML-KEM-768 by default, optional; [`AdditionalKe::off`] or
    /// [`AdditionalKe::required`] change that.
    pub additional_ke: AdditionalKe,
    pub esp_proposals: Vec<EspProposal>,
    /// Our identity (ignored with `LocalAuth::Null`, which always sends ID_NULL).
    pub local_id: Identity,
    pub local_auth: LocalAuth,
    /// Policy hook: accept peers that authenticate with NULL auth (RFC 7619).
    pub accept_null_peers: bool,
    pub ike_lifetime: Lifetime,
    pub child_lifetime: Lifetime,
    pub retransmit: Retransmit,
    /// Half-open IKE SAs above which IKE_SA_INIT requests need a cookie (RFC 7296 2.6); strongSwan
    /// uses 10 too. Default 10.
    pub cookie_threshold: usize,
    /// How long one cookie secret is used while cookies are being sent (RFC 7296 2.6: the secret
    /// changes periodically); a cookie made with the previous secret is accepted for 10 s more.
    /// Default 120 s.
    pub cookie_secret_lifetime: Duration,
    /// Half-open responder IKE SAs (IKE_SA_INIT answered, IKE_AUTH not done) one IP address may
    /// hold; its further IKE_SA_INIT requests are dropped, cookie or not. Default 10 (strongSwan
    /// blocks at 5 per address; a NAT may hide several opportunistic clients).
    pub max_half_open_per_source: usize,
    /// Half-open responder IKE SAs in total; beyond it every new IKE_SA_INIT request is dropped,
    /// even with a valid cookie. Cookies engage first, at `cookie_threshold`, so only sources
    /// that return cookies (real addresses) get this far. Default 10,000 (a few kB each).
    pub max_half_open: usize,
    /// Child SAs one IKE SA may hold (installed, being rekeyed, or replaced and awaiting their
    /// delete); a peer's CREATE_CHILD_SA beyond it is answered NO_ADDITIONAL_SAS. Default 8
    /// (opportunistic encryption needs one per host pair, plus rekey overlaps and collisions).
    pub max_children_per_sa: usize,
    /// How long a responder keeps a child SA or IKE SA the peer rekeyed, waiting for the peer's
    /// delete of it (RFC 7296 2.8, 2.18), before deleting it itself. Default 30 s (the peer's
    /// delete, retransmitted, has had three tries by then).
    pub rekey_delete_grace: Duration,
    /// Largest IKE message (UDP payload) we send before fragmenting encrypted exchanges
    /// (RFC 7383 2.5.1).
    pub fragment_size: usize,
    /// Offer and use IKE fragmentation (RFC 7383).
    pub fragmentation: bool,
    /// Send a liveness check after this much time without a message from the peer.
    pub liveness_interval: Option<Duration>,
    /// Half-open SAs (responder, before IKE_AUTH) are dropped after this long.
    pub half_open_timeout: Duration,
    /// Announce SIGNATURE_HASH_ALGORITHMS (RFC 7427 4). Only turned off to imitate peers that
    /// lack RFC 7427, which then get RSA signatures with method 1.
    pub signature_hashes: bool,
    /// Local UDP port that carries NAT-T (RFC 3948): datagrams there start with a non-ESP marker.
    pub nat_t_port: u16,
    /// Behind a NAT, send a NAT-keepalive (RFC 3948 2.3: one 0xFF byte) this often, so the
    /// NAT's mapping outlives idle periods. Default 20 s (RFC 3948 4).
    pub nat_keepalive: Option<Duration>,
    /// Propose transport mode as initiator and accept it as responder (RFC 7296 1.3.1). With
    /// `false` every child is in tunnel mode (Libreswan's `type=tunnel`). Default `true`.
    pub transport_mode: bool,
    /// When to ask the responder for an internal address (initiator). Default `Never`.
    pub request_address: AddressRequest,
    /// The identity to present instead of an address identity when NAT detection shows our
    /// address is translated (the peer sees another one and cannot check ours);
    /// `Identity::Null` authenticates with NULL (RFC 7619). Default `None`: keep `local_id`.
    pub id_behind_nat: Option<Identity>,
}

impl Config {
    /// Defaults that match what strongSwan and Libreswan offer, for the given identity and key.
    pub fn new(local_id: Identity, local_auth: LocalAuth) -> Self {
        Self {
            ike_proposals: default_ike_proposals(),
            additional_ke: AdditionalKe::hybrid(),
            esp_proposals: default_esp_proposals(),
            local_id,
            local_auth,
            accept_null_peers: false,
            ike_lifetime: Lifetime {
                soft: Duration::from_secs(3 * 3600),
                hard: Duration::from_secs(4 * 3600),
            },
            child_lifetime: Lifetime {
                soft: Duration::from_secs(3600),
                hard: Duration::from_secs(3900),
            },
            retransmit: Retransmit {
                base: Duration::from_secs(4),
                factor: 1.8,
                tries: 5,
            },
            cookie_threshold: 10,
            cookie_secret_lifetime: Duration::from_secs(120),
            max_half_open_per_source: 10,
            max_half_open: 10_000,
            max_children_per_sa: 8,
            rekey_delete_grace: Duration::from_secs(30),
            // RFC 7383 2.5.1: IPv6's minimum MTU (1280) less the IPv6 (40) and UDP (8) headers,
            // so an ML-KEM-768 key (1,184 bytes) in IKE_INTERMEDIATE still crosses any path.
            fragment_size: 1232,
            fragmentation: true,
            liveness_interval: Some(Duration::from_secs(30)),
            half_open_timeout: Duration::from_secs(30),
            signature_hashes: true,
            nat_t_port: 4500,
            nat_keepalive: Some(Duration::from_secs(20)),
            transport_mode: true,
            request_address: AddressRequest::Never,
            id_behind_nat: None,
        }
    }
}

/// AES-GCM-16 and ChaCha20-Poly1305 with SHA-2 PRFs first, AES-CBC + HMAC-SHA2-256 last.
pub fn default_ike_proposals() -> Vec<IkeProposal> {
    let groups = vec![
        DhGroup::Curve25519,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Modp2048,
    ];
    let aead = |encr| IkeProposal {
        encr,
        integ: None,
        prf: PrfAlg::HmacSha256,
        groups: groups.clone(),
    };
    vec![
        aead(EncrAlg::AesGcm16 { key_bits: 256 }),
        aead(EncrAlg::AesGcm16 { key_bits: 128 }),
        aead(EncrAlg::ChaCha20Poly1305),
        IkeProposal {
            encr: EncrAlg::AesCbc { key_bits: 256 },
            integ: Some(IntegAlg::HmacSha2_256_128),
            prf: PrfAlg::HmacSha256,
            groups: groups.clone(),
        },
    ]
}

pub fn default_esp_proposals() -> Vec<EspProposal> {
    vec![
        EspProposal {
            encr: EncrAlg::AesGcm16 { key_bits: 256 },
            integ: None,
        },
        EspProposal {
            encr: EncrAlg::AesGcm16 { key_bits: 128 },
            integ: None,
        },
        EspProposal {
            encr: EncrAlg::ChaCha20Poly1305,
            integ: None,
        },
        EspProposal {
            encr: EncrAlg::AesCbc { key_bits: 128 },
            integ: Some(IntegAlg::HmacSha2_256_128),
        },
    ]
}
