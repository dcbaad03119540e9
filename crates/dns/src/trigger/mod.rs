//! The DNS trigger: a local DNS stub that starts IKE while the application's name lookup is in
//! flight, so that its first packet finds an SA already installed (none dropped by the kernel's
//! larval state, none in clear).
//!
//! # What the stub does
//! It listens on UDP and TCP ([`StubConfig::listen`], default [`DEFAULT_LISTEN`] =
//! 127.0.2.53:53; point the workstation's resolver at it) and forwards every query to the
//! configured upstream resolvers, returning their answers unchanged: the same bytes, the
//! application's ID restored (the upstream sees a random ID and a fresh source port per query,
//! and only a response with that ID and the same question is accepted). UDP queries go upstream
//! over UDP (a truncated answer is passed on as is), TCP queries over TCP.
//!
//! For an A or AAAA query (class IN), at the moment the query is forwarded, the stub starts in
//! parallel the validated IPSECKEY lookup of the name and the validated A+AAAA lookup (both
//! through the [`KeyCache`](crate::KeyCache), so repeated and concurrent queries coalesce). When
//! the upstream's answer arrives:
//! 1. no addresses in it, or [`TriggerHook::wants`] says no (not an opportunistic group): the
//!    answer is released at once;
//! 2. otherwise it waits for the IPSECKEY outcome. No key, an insecure key, no usable key, a
//!    failed lookup: released as soon as that is known (the only added latency is the IPSECKEY
//!    query's, which ran in parallel). A bogus key is reported (warning log and
//!    [`TriggerHook::record`]) and never used;
//! 3. a SECURE key: the answered addresses must be among the name's validated addresses (the key
//!    is bound to those; an insecure or bogus address answer binds nothing). Then
//!    [`TriggerHook::secure`] is called, and the answer is held until its future completes;
//!
//!    When the key and the addresses are already known before the upstream answers (both cached),
//!    IKE starts at once with the name's validated addresses of the queried family, in parallel
//!    with the forwarding; when the answer arrives it is held for what is left of IKE (if its
//!    addresses are among the validated ones; otherwise it is released and recorded as
//!    `addresses-not-proven`);
//! 4. in every case the answer is released at most [`StubConfig::hold`] (default 400 ms) after
//!    the upstream answered. A key that arrives later still calls `secure` (`late`), without a
//!    hold. Every decision of 2-4 is reported through [`TriggerHook::record`].
//!
//! A failure of the trigger never becomes a DNS failure: the application gets the upstream's
//! answer. The one exception is [`TriggerHook::fail_closed`] (a `private` group whose operator
//! chose it): then a decision without a secure key, reached within the hold, answers SERVFAIL.
//!
//! Malformed queries get FORMERR, other opcodes NOTIMP, messages too short to have a header and
//! responses are dropped ([`message`]); none of them disturbs the stub. Bounded: query size
//! ([`StubConfig::max_query_size`]), queries in flight (UDP over the limit dropped, TCP waits),
//! TCP connections, pipelined queries per connection, idle TCP connections, TCP clients that do
//! not read (closed after [`StubConfig::tcp_write_timeout`]; a query's permit is released once its
//! answer is ready, not when it is written), upstream attempts and their timeouts, and the hold.
//!
//! # How the agent uses it
//! ```ignore
//! let listeners = Listeners::bind(&config.listen).await?;          // or Listeners::from_std(..)
//! let config = StubConfig {
//!     upstreams: vec!["192.0.2.53:53".parse()?],
//!     upstream_socket: Some(Arc::new(|fd| oe_kernel::socket::bypass_ipsec(&fd))),
//!     ..StubConfig::default()
//! };
//! let stub = Stub::serve(config, listeners, key_cache.clone(), Arc::new(AgentHook { .. }))?;
//! // status socket: serde_json::to_value(stub.stats())
//! ```
//! The stub runs as tasks on the caller's tokio runtime (the agent owns it). The upstream-facing
//! sockets are passed to [`StubConfig::upstream_socket`] before they connect, so the agent can
//! exempt them from IPsec policy; the stub's own listening sockets are on loopback. The
//! validator behind the cache opens its own sockets (hickory's): the agent's pass policy for its
//! DNS servers covers those.
//!
//! Contract for [`TriggerHook`]: `wants` and `fail_closed` are called once per answer and must be
//! quick (a policy-group match); `secure` starts IKE without blocking and returns a future that
//! completes when the child SA is installed or the attempt failed; the stub may drop it
//! unfinished, which must not cancel IKE; it is called again for repeated queries (A and AAAA,
//! each within the TTL) and should complete at once when an SA is already up. `record` receives
//! every [`TriggerEvent`]; the stub also keeps the latest in [`StubStats::recent`].

#[cfg(feature = "resolver")]
mod config;
#[cfg(feature = "resolver")]
mod decide;
mod hook;
pub mod message;
#[cfg(feature = "resolver")]
mod serve;
#[cfg(feature = "resolver")]
mod stats;
#[cfg(feature = "resolver")]
mod upstream;

#[cfg(feature = "resolver")]
pub use config::{SocketHook, StubConfig, StubError, DEFAULT_LISTEN};
pub use hook::{Decision, TriggerEvent, TriggerHook};
#[cfg(feature = "resolver")]
pub use serve::{Listeners, Stub};
#[cfg(feature = "resolver")]
pub use stats::{StubCounters, StubStats};

#[cfg(test)]
mod tests;
