//! The stub's settings and their defaults.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

/// Called on every upstream-facing socket before it connects: the agent marks them to bypass
/// IPsec policy (`oe_kernel::socket::bypass_ipsec`), so DNS never waits for the SA it triggers.
pub type SocketHook = Arc<dyn Fn(BorrowedFd<'_>) -> io::Result<()> + Send + Sync>;

/// Where the stub listens by default: 127.0.2.53 port 53, UDP and TCP.
///
/// 127.0.0.53 is systemd-resolved's stub and 127.0.0.1:53 is often taken by dnsmasq or unbound;
/// 127.0.2.53 is free on common systems and, being in 127/8, needs no address configuration
/// (Linux answers for all of 127/8 on `lo`). Point the workstation's resolver at it:
/// `nameserver 127.0.2.53` in /etc/resolv.conf, or `DNS=127.0.2.53` with `Domains=~.` in a
/// resolved.conf drop-in (then resolved forwards to the stub).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 53)), 53);

/// The stub's settings.
#[derive(Clone)]
pub struct StubConfig {
    /// Addresses to listen on, UDP and TCP (used by [`super::Listeners::bind`]).
    pub listen: Vec<SocketAddr>,
    /// Recursive resolvers every query is forwarded to, tried in order. Must not include the
    /// stub's own addresses (a loop); when /etc/resolv.conf points at the stub, name the real
    /// resolvers here.
    pub upstreams: Vec<SocketAddr>,
    /// Longest time an answer is held past the moment the upstream answered: for the IPSECKEY
    /// and address lookups still running, and for the hook's IKE. Default 400 ms.
    pub hold: Duration,
    /// Wait for one upstream's answer to one attempt.
    pub upstream_timeout: Duration,
    /// Rounds over the upstream list before answering SERVFAIL.
    pub upstream_attempts: usize,
    /// Queries handled at once (UDP and TCP); over it UDP queries are dropped (the client
    /// retries) and TCP connections wait.
    pub max_in_flight: usize,
    /// TCP connections open at once; more are closed at once.
    pub max_tcp_connections: usize,
    /// Queries in flight on one TCP connection (RFC 7766 section 6.2.1.1 pipelining).
    pub max_tcp_pipeline: usize,
    /// A TCP connection with no complete query for this long is closed (RFC 7766 section 6.2.3).
    pub tcp_idle_timeout: Duration,
    /// A TCP connection whose client takes no answer for this long (its receive window stays
    /// shut) is closed; default 5 s.
    pub tcp_write_timeout: Duration,
    /// Largest query accepted, in bytes; larger UDP queries get FORMERR, larger TCP length
    /// prefixes close the connection.
    pub max_query_size: usize,
    /// Applied to each upstream-facing socket before it connects.
    pub upstream_socket: Option<SocketHook>,
}

impl Default for StubConfig {
    fn default() -> Self {
        Self {
            listen: vec![DEFAULT_LISTEN],
            upstreams: Vec::new(),
            hold: Duration::from_millis(400),
            upstream_timeout: Duration::from_millis(1500),
            upstream_attempts: 2,
            max_in_flight: 512,
            max_tcp_connections: 64,
            max_tcp_pipeline: 16,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_write_timeout: Duration::from_secs(5),
            max_query_size: 4096,
            upstream_socket: None,
        }
    }
}

impl fmt::Debug for StubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubConfig")
            .field("listen", &self.listen)
            .field("upstreams", &self.upstreams)
            .field("hold", &self.hold)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("upstream_attempts", &self.upstream_attempts)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_tcp_connections", &self.max_tcp_connections)
            .field("max_tcp_pipeline", &self.max_tcp_pipeline)
            .field("tcp_idle_timeout", &self.tcp_idle_timeout)
            .field("tcp_write_timeout", &self.tcp_write_timeout)
            .field("max_query_size", &self.max_query_size)
            .field("upstream_socket", &self.upstream_socket.is_some())
            .finish()
    }
}

/// A configuration the stub cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StubError {
    /// No upstream resolver.
    #[error("the DNS stub needs at least one upstream resolver")]
    NoUpstream,
    /// An upstream is one of the stub's own addresses.
    #[error("upstream {0} is the stub itself: queries would loop")]
    Loop(SocketAddr),
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

impl StubConfig {
    /// Checks the configuration against the addresses the stub actually listens on.
    pub fn check(&self, listening: &[SocketAddr]) -> Result<(), StubError> {
        if self.upstreams.is_empty() {
            return Err(StubError::NoUpstream);
        }
        if let Some(u) = self.upstreams.iter().find(|u| listening.contains(u)) {
            return Err(StubError::Loop(*u));
        }
        for (value, what) in [
            (self.upstream_attempts, "upstream_attempts"),
            (self.max_in_flight, "max_in_flight"),
            (self.max_tcp_connections, "max_tcp_connections"),
            (self.max_tcp_pipeline, "max_tcp_pipeline"),
            (self.max_query_size, "max_query_size"),
        ] {
            if value == 0 {
                return Err(StubError::Zero(what));
            }
        }
        Ok(())
    }
}
