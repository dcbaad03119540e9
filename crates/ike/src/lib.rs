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
//! - **Outputs.** After any input, take [`Endpoint::poll_event`] (events, in order) and act on
//!   each event before polling further transmits; then send what [`Endpoint::poll_transmit`]
//!   gives (datagrams, in order), and re-read [`Endpoint::poll_timeout`]. `poll_transmit` never
//!   hands out a datagram that was queued after an event not yet polled, so a datagram cannot
//!   overtake the event it depends on whatever order the caller drains in: a responder's
//!   IKE_AUTH or CREATE_CHILD_SA response comes after its [`Event::ChildSaReady`], and the child
//!   must be in the kernel before that response leaves (the initiator installs its side on it
//!   and may send ESP at once). "Act on" means finish: install the SA, then poll on.
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
//!   byte-identical retransmissions of the request, never recomputed (RFC 7296 2.1), and never
//!   sent for any other datagram.
//! - A message that is not authentic (no SK payload, an ICV that fails) changes nothing (RFC 7296
//!   2.4). Only IKE_SA_INIT, unprotected by design, can be disturbed by a forger who sees it
//!   (a forged error notification or a forged response fails the initiator's attempt; RFC 7296
//!   2.21.1); cookies and INVALID_KE_PAYLOAD retries are bounded.
//! - What a peer can make the engine hold is bounded by [`Config`]: half-open SAs per source
//!   address and in total (past `cookie_threshold` only with a cookie bound to address, port and
//!   SPIi), children per IKE SA, fragments per message; what the peer rekeyed and never deleted
//!   is deleted after `rekey_delete_grace`.
//! - Routing a datagram and finding the next deadline take constant work, whatever the number
//!   of SAs (`benches/scale.rs`).
//! - Errors keep the peer's faults ([`PeerError`]) apart from ours ([`LocalError`]).

mod addke;
mod admission;
mod auth;
pub mod config;
mod cookie;
pub mod crypto;
mod endpoint;
pub mod error;
pub mod event;
mod keys;
mod nat;
mod output;
mod proposal;
mod registry;
mod sa;
mod ts;
pub mod wire;

#[cfg(test)]
mod tests;

/// The RNG traits [`Endpoint::new`] takes (re-exported so callers need no matching dependency).
pub use rand_core;

pub use addke::AdditionalKe;
pub use config::{
    AddressRequest, Config, EspProposal, IkeProposal, Lifetime, LocalAuth, Retransmit,
};
pub use endpoint::Endpoint;
pub use error::{Error, LocalError, PeerError};
pub use event::{
    ChildKeys, ChildSa, CloseReason, Event, Mode, PeerAuth, SaHandle, SaInfo, Transmit,
};
