//! oe-kernel: the agent's only way to touch the kernel's IPsec state, through XFRM
//! netlink (`netlink-packet-xfrm` for the message layouts), and to follow the host's
//! addresses and routes, through rtnetlink (`netlink-packet-route`).
//!
//! Thin by design: typed requests in, typed events out, no protocol or policy logic.
//! The agent decides *what* to install; this crate says *how*, and reports what the
//! kernel says.
//!
//! # Contract
//! - **Requests** ([`Request`]) are built and checked without I/O, then executed by an
//!   [`Xfrm`] client (tokio). Each call sends one netlink message and waits for its
//!   acknowledgement; the kernel handles XFRM requests synchronously, so calls take
//!   microseconds. Kernel refusals come back as [`Error::Kernel`] with errno and the
//!   kernel's reason; requests we built wrongly as [`Error::Invalid`].
//! - **Events** ([`Event`]) come from an [`EventSocket`] joined to the ACQUIRE, EXPIRE
//!   (SA soft/hard and POLEXPIRE) and MAPPING groups. A malformed kernel message is
//!   logged and skipped, never a panic; a receive-buffer overflow is [`Event::Lost`], after
//!   which [`Owned`] (a dump of what is ours, with the [`PendingAcquire`]s) is the truth
//!   (see [`snapshot`]).
//! - **Lifetimes** ([`refresh`]): policies can carry a hard lifetime and be renewed in
//!   batches while the agent lives, so nothing it installed outlives it by more than that.
//! - **Parsing** of everything the kernel sends is checked ([`wire`]): lengths are
//!   verified before `netlink-packet-xfrm` sees the bytes (its 0.5 parsers panic on
//!   short ACQUIRE, EXPIRE, NEWSA and POLEXPIRE bodies), and only the message types
//!   this crate needs are decoded at all.
//! - **SPIs** are numbers as `ip xfrm` prints them ([`Spi`]); the netlink encoding puts
//!   them in network byte order (`netlink-packet-xfrm` swaps; we never swap again).
//! - **Ownership** ([`Ownership`]): everything installed carries a reqid from oe's range
//!   and a priority from oe's band; [`Xfrm::flush_owned`] and [`Xfrm::list_owned`]
//!   touch nothing else. Requests that update or delete an existing policy or SA take an
//!   [`OwnedPolicy`] / [`OwnedSa`], the entry as read from the kernel and checked to be ours;
//!   the client's `update_*`/`delete_*` read, check, then act, and leave a foreign entry
//!   alone with [`Error::Foreign`] (see [`ownership`] for the remaining race).
//! - **Priorities** ([`priority`]): a more specific prefix wins; a host policy beats
//!   any group policy; foreign policies beat ours.
//! - **Modes** ([`Mode`]): transport by default; tunnel mode for host-to-host SAs whose
//!   inner traffic may use a virtual address ([`PolicySpec::host_tunnel_pair`]).
//! - **NAT** ([`nat`]): an SA pair follows the peer's new UDP port after a MAPPING.
//! - **Neighbour discovery** ([`PolicySpec::neighbour_discovery`]): exemptions no trap of
//!   ours can override.
//! - **The network** ([`route`]): rtnetlink address, link and route events and dumps, and
//!   the source address the kernel would use towards a host.
//! - **Socket bypass** ([`socket::bypass_ipsec`]): the agent's IKE and DNS sockets skip IPsec policy.
//! - **Capabilities** ([`probe`]): whether this kernel can install ESP SAs at all, per
//!   family and algorithm, as a typed answer.
//!
//! Everything is scoped to the network namespace the socket was opened in.
//!
//! # Features
//! The default feature `tokio` holds everything that does I/O: [`Xfrm`], [`EventSocket`],
//! [`probe`], [`socket`] and [`block_on`]. Without it (`default-features = false`) the crate
//! is typed requests, specs, events and checked wire parsing, with no I/O crate in its
//! dependency graph (no tokio, mio, netlink-sys), for a sans-IO core to build on.
//!
//! # Example
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # mod example {
//! use oe_kernel::{probe, Event, EventSocket, Family, Ownership, PolicySpec, Prefix, TrafficSelector, Xfrm};
//! # async fn agent() -> Result<(), Box<dyn std::error::Error>> {
//! let mut xfrm = Xfrm::open(Ownership::default())?;
//! xfrm.flush_owned().await?; // leftovers of a crashed predecessor, ours only
//! if let Err(why) = probe::probe(&mut xfrm).await?.esp(Family::V4) {
//!     eprintln!("not installing traps: {why}");
//!     return Ok(());
//! }
//! let mut events = EventSocket::open()?;
//! let group = TrafficSelector::to(Prefix::new("198.51.100.0".parse()?, 24)?);
//! let trap_reqid = xfrm.ownership().reqid(0).ok_or("no reqid")?;
//! xfrm.add_policy(&PolicySpec::trap(group, trap_reqid)).await?;
//! while let Ok(event) = events.next().await {
//!     if let Event::Acquire(acquire) = event {
//!         // negotiate with acquire.flow.dst, then add_sa / update_sa with
//!         // acquire_seq = Some(acquire.seq) and PolicySpec::host_sa_pair(...)
//!     }
//! }
//! # Ok(())
//! # }
//! # }
//! ```

pub mod alg;
#[cfg(feature = "tokio")]
mod client;
mod error;
pub mod event;
#[cfg(feature = "tokio")]
mod events;
pub mod nat;
#[cfg(feature = "tokio")]
mod netlink;
pub mod ownership;
pub mod policy;
pub mod priority;
#[cfg(feature = "tokio")]
pub mod probe;
pub mod refresh;
pub mod route;
pub mod sa;
pub mod snapshot;
#[cfg(feature = "tokio")]
pub mod socket;
pub mod types;
pub mod wire;

pub use alg::{AlgorithmKind, EspAlgorithm, Key};
#[cfg(feature = "tokio")]
pub use client::{Flushed, Refreshed, Xfrm};
pub use error::Error;
pub use event::{Acquire, Event, Flow, Mapping, PolicyExpire, SaExpire};
#[cfg(feature = "tokio")]
pub use events::EventSocket;
pub use ownership::{OwnedPolicy, OwnedSa, Ownership};
pub use policy::{PolicyAction, PolicyInfo, PolicyKey, PolicySpec, Shunt};
pub use sa::{Counters, Lifetime, Limits, Mode, Replay, SaId, SaInfo, SaSpec, UdpEncap};
pub use snapshot::{Owned, PendingAcquire};
pub use types::{Direction, Family, InvalidRequest, Prefix, Reqid, Spi, TrafficSelector};
pub use wire::batch::{Batch, BatchExchange, BatchOutcome, BatchStep};
pub use wire::request::{Exchange, Request, Step};
pub use wire::ParseError;

/// Runs `future` to completion on a fresh single-threaded tokio runtime, for callers
/// without one (tests, command-line tools, the bench). Sockets opened inside belong
/// to the calling thread's network namespace.
#[cfg(feature = "tokio")]
pub fn block_on<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

#[cfg(all(test, feature = "tokio"))]
mod send_tests {
    fn send<T: Send>() {}

    #[test]
    fn clients_can_move_between_tasks() {
        send::<crate::Xfrm>();
        send::<crate::EventSocket>();
        send::<crate::Request<Vec<crate::SaInfo>>>();
        send::<crate::Event>();
    }
}
