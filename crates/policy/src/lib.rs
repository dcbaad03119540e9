//! oe-policy: the agent's decisions, with no I/O inside.
//!
//! Every security promise of oe lives here: only a DNSSEC-SECURE key authenticates a peer; an
//! anonymous (NULL) SA never replaces or downgrades an authenticated one, and is accepted only
//! where the configuration allows unauthenticated encryption; every failure leaves the host with
//! the connectivity it had (except where the operator chose `private`).
//!
//! # Contract
//!
//! A [`Core`] owns the IKE engines (oe-ike [`Endpoint`](oe_ike::Endpoint)s, one per local
//! address), the peers, the traps and the DNS waiters. It never touches a socket, a clock, a
//! thread, netlink or DNS; the executor (the agent's tokio daemon) does all of that:
//!
//! - **Inputs.** [`Core::handle`] takes one [`Input`] (a kernel event, a received datagram, a DNS
//!   verdict, a DNS-trigger request, a status query, a reload, the result of a kernel command)
//!   with the current time [`Now`]; [`Core::handle_timeout`] runs the timers due at `now`
//!   ([`Core::poll_timeout`] says when). Time only moves forward.
//! - **Outputs.** After any input, drain [`Core::poll_command`] and execute each [`Command`] in
//!   order, completely, before the next: kernel requests, datagrams, DNS lookups, answers for the
//!   status socket and the stub. Order is the safety argument: a responder's child SA is
//!   installed by commands queued *before* the IKE response that lets the initiator use it.
//! - **Results.** A kernel command that carries a [`Token`] must be answered with
//!   [`Input::KernelDone`] (success or error) before the next command is executed; DNS lookups
//!   are answered whenever they finish ([`Input::KeyVerdict`], [`Input::AddressVerdict`]).
//! - **Randomness** comes from the RNG given in [`Setup`]: with a seeded RNG and the same inputs
//!   the core is deterministic.
//!
//! # Invariants (each proven by a test in `tests/`)
//!
//! - Only a `Secure` [`KeyVerdict`](oe_dns::KeyVerdict) supplies keys to the engine; an FQDN
//!   identity only when the name's SECURE addresses include the peer; a key the DNS trigger bound
//!   to a name authenticates only that name.
//! - No child SA of an IKE SA reaches the kernel before the core accepted the IKE SA's
//!   authentication; an anonymous SA never replaces an authenticated one.
//! - Every failure path ends in the group's failure shunt (initiator) or in nothing (responder);
//!   a peer never stays failed without a shunt or a timer that ends it.
//! - Everything the core installs carries the agent's ownership marks; it only updates or deletes
//!   kernel policies it installed itself.

pub mod config;
mod core;
mod dnsq;
mod engine_config;
mod identity;
mod ike_bounds;
mod input;
mod kernel_specs;
mod network;
mod now;
mod peer;
mod pool;
pub mod protocol;
mod registry;
mod timers;
mod traps;

pub use crate::core::{Core, Setup};
pub use engine_config::{check_proposals, ProposalError};
pub use identity::{dns_key_to_ike, LocalId, LocalIdentity};
pub use input::{
    Command, Input, KernelOp, KernelReply, QueryId, Token, TriggerTarget, TriggerView, WaiterId,
};
pub use now::Now;
pub use traps::TRAP_REQIDS;
