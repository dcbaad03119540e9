//! oe-ike: an IKEv2 (RFC 7296) engine with no I/O inside.
//!
//! # Contract
//!
//! An [`Endpoint`] holds every IKE SA of one host. It never touches a socket, a clock, a thread
//! or the kernel; the caller (the agent) does all I/O and passes time in:
//!
//! - **Inputs.** [`Endpoint::handle_datagram`] for each UDP datagram received on the IKE ports,
//!   [`Endpoint::handle_timeout`] when the instant from [`Endpoint::poll_timeout`] has passed,
//!   [`Endpoint::connect`] to start an IKE SA, and the answers to events:
//!   [`Endpoint::supply_peer_keys`] / [`Endpoint::refuse_peer_keys`] for
//!   [`Event::NeedPeerKey`], [`Endpoint::supply_spi`] for [`Event::NeedSpi`]. Every input takes
//!   `now`; time only moves forward (an earlier `now` is treated as the latest one seen).
//! - **Outputs.** After any input, drain [`Endpoint::poll_transmit`] (datagrams to send, in
//!   order), [`Endpoint::poll_event`] (events, in order), then re-read
//!   [`Endpoint::poll_timeout`].
//! - **Randomness** comes from the `Box<dyn CryptoRng>` given to [`Endpoint::new`]: with a seeded
//!   generator and the same inputs the engine is fully deterministic.
//!
//! # Asynchronous inputs
//!
//! Authentication keys come from DNSSEC: when the peer's AUTH must be verified the engine emits
//! [`Event::NeedPeerKey`] with the peer's identity and pauses that exchange (retransmissions of
//! the paused request are ignored) until the agent supplies the validated keys or refuses.
//!
//! Inbound ESP SPIs are allocated by the kernel (XFRM_MSG_ALLOCSPI), not by the engine: an SPI
//! picked from the RNG could collide with one the kernel (or another daemon) already uses for the
//! same destination, and the install would fail late. The engine asks with [`Event::NeedSpi`]
//! when a child SA needs one (at IKE_AUTH and at each child rekey; a responder asks together with
//! the peer key so both look-ups overlap) and waits for [`Endpoint::supply_spi`].
//!
//! # Invariants
//!
//! - Every byte from the network goes through [`wire`]'s checked parsers; malformed input is a
//!   typed error, never a panic or an allocation larger than the input.
//! - One request in flight per IKE SA (window size 1); responses are cached and replayed for
//!   retransmitted requests, never recomputed (RFC 7296 2.1).
//! - Errors keep the peer's faults ([`PeerError`]) apart from ours ([`LocalError`]).

mod addke;
mod auth;
pub mod config;
mod cookie;
pub mod crypto;
mod endpoint;
pub mod error;
pub mod event;
mod keys;
mod nat;
mod proposal;
mod sa;
mod ts;
pub mod wire;

/// The RNG traits [`Endpoint::new`] takes (re-exported so callers need no matching dependency).
pub use rand_core;

pub use addke::AdditionalKe;
pub use config::{Config, EspProposal, IkeProposal, Lifetime, LocalAuth, Retransmit};
pub use endpoint::Endpoint;
pub use error::{Error, LocalError, PeerError};
pub use event::{ChildKeys, ChildSa, CloseReason, Event, PeerAuth, SaHandle, SaInfo, Transmit};
