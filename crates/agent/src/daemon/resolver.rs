//! The system's resolver: where the DNS trigger's stub and the validator send queries, found
//! and followed without a restart.
//!
//! Where the upstreams come from, first found wins:
//! 1. the configuration (`trigger.upstreams`, else `dns.upstreams`): fixed;
//! 2. `/etc/resolv.conf`, less the stub's own addresses: a plain file written by DHCP or
//!    NetworkManager with `nameserver 127.0.2.53` first and the network's servers after it, or
//!    systemd-resolved's `nameserver 127.0.0.53`. When resolved itself forwards to the stub
//!    (its own list, `/run/systemd/resolve/resolv.conf`, names the stub), 127.0.0.53 is a loop
//!    and is replaced by resolved's list;
//! 3. when resolv.conf names only the stub: systemd-resolved's list, then NetworkManager's
//!    (`/run/NetworkManager/no-stub-resolv.conf`, `/run/NetworkManager/resolv.conf`).
//!
//! An upstream on loopback may forward back to the stub (resolved, dnsmasq, unbound): each is
//! checked with a probe query before the stub uses it (`oe_dns::trigger::UpstreamControl`).
//! The files are read again every [`FOLLOW_EVERY`]; a change (a new network's DNS servers)
//! reaches the stub and the validator at once. When no usable upstream is left, the stub keeps
//! forwarding to the last ones it had and the problem is shown by `oe status` and `oe explain`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use oe_dns::trigger::UpstreamControl;
use oe_dns::{AddressAnswer, Answer, LookupError, LookupTarget, Name, Validator, ValidatorConfig};

/// How often the resolver files are read again.
pub(crate) const FOLLOW_EVERY: Duration = Duration::from_secs(2);

pub(crate) const RESOLV_CONF: &str = "/etc/resolv.conf";
pub(crate) const RESOLVED: &str = "/run/systemd/resolve/resolv.conf";
const NM_FILES: [&str; 2] = [
    "/run/NetworkManager/no-stub-resolv.conf",
    "/run/NetworkManager/resolv.conf",
];
/// systemd-resolved's stub listener.
const RESOLVED_STUB: &str = "127.0.0.53:53";

/// Upstreams found, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) servers: Vec<SocketAddr>,
    pub(crate) source: String,
    /// What was passed over and why (a loop through resolved).
    pub(crate) notes: Vec<String>,
    /// The servers systemd-resolved and NetworkManager list (off loopback): where a resolver
    /// on loopback sends queries, which must never wait for IKE either.
    pub(crate) behind: Vec<SocketAddr>,
}

/// Finds the upstreams: `configured` (from the configuration), else the files `read` returns,
/// never one of `own` (the stub's addresses).
pub(crate) fn discover(
    configured: &[SocketAddr],
    own: &[SocketAddr],
    read: impl Fn(&str) -> Option<String>,
) -> Found {
    let not_own = |s: &SocketAddr| !own.contains(s);
    let behind: Vec<SocketAddr> = std::iter::once(RESOLVED)
        .chain(NM_FILES)
        .filter_map(&read)
        .flat_map(|t| nameservers(&t))
        .filter(|s| !s.ip().is_loopback())
        .collect();
    if !configured.is_empty() {
        return Found {
            servers: configured.iter().copied().filter(not_own).collect(),
            source: "the configuration".into(),
            notes: Vec::new(),
            behind,
        };
    }
    let resolved: Vec<SocketAddr> = read(RESOLVED).map(|t| nameservers(&t)).unwrap_or_default();
    let resolved_loops = resolved.iter().any(|s| own.contains(s));
    let mut notes = Vec::new();
    let mut main: Vec<SocketAddr> = read(RESOLV_CONF)
        .map(|t| nameservers(&t))
        .unwrap_or_default();
    main.retain(not_own);
    if resolved_loops && main.iter().any(|s| *s == stub_of_resolved()) {
        notes.push(format!(
            "systemd-resolved ({RESOLVED_STUB}) forwards to this stub ({RESOLVED} names it): its own servers are used instead"
        ));
        main.retain(|s| *s != stub_of_resolved());
        main.extend(resolved.iter().copied().filter(not_own));
    }
    if !main.is_empty() {
        return Found {
            servers: main,
            source: RESOLV_CONF.into(),
            notes,
            behind,
        };
    }
    for path in std::iter::once(RESOLVED).chain(NM_FILES) {
        let servers: Vec<SocketAddr> = read(path)
            .map(|t| nameservers(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(not_own)
            .filter(|s| *s != stub_of_resolved())
            .collect();
        if !servers.is_empty() {
            return Found {
                servers,
                source: path.into(),
                notes,
                behind,
            };
        }
    }
    Found {
        servers: Vec::new(),
        source: String::new(),
        notes,
        behind,
    }
}

fn stub_of_resolved() -> SocketAddr {
    RESOLVED_STUB
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 53], 53)))
}

/// The `nameserver` lines of a resolv.conf, port 53 (a zone index `%eth0` dropped).
pub(crate) fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.split_whitespace().next()?.split('%').next()?.parse().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// What `oe status` and `oe explain` show about the upstreams.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpstreamState {
    pub(crate) servers: Vec<SocketAddr>,
    pub(crate) source: String,
    /// Why no usable upstream was found, when none was.
    pub(crate) problem: Option<String>,
    /// DNS servers to keep in `clear`: the upstreams and the servers behind a loopback one.
    pub(crate) clear: Vec<SocketAddr>,
}

/// The upstreams the stub may use out of `found`: those on loopback only if they do not forward
/// back to the stub.
pub(crate) async fn without_loops(
    control: &UpstreamControl,
    found: &Found,
) -> (Vec<SocketAddr>, Vec<String>) {
    let mut usable = Vec::new();
    let mut notes = found.notes.clone();
    for &server in &found.servers {
        if server.ip().is_loopback() && control.loops_through(server).await {
            notes.push(format!(
                "{server} forwards queries back to this stub (a loop): not used"
            ));
        } else {
            usable.push(server);
        }
    }
    (usable, notes)
}

/// The problem line for a search that left no usable upstream.
pub(crate) fn no_upstream(found: &Found, own: &[SocketAddr], notes: &[String]) -> String {
    let own: Vec<String> = own.iter().map(ToString::to_string).collect();
    let mut why = if found.source.is_empty() {
        format!(
            "no upstream resolver: {RESOLV_CONF} names only the DNS trigger's stub ({}), and neither systemd-resolved nor NetworkManager lists a server",
            own.join(", ")
        )
    } else {
        format!("no usable upstream resolver in {}", found.source)
    };
    for n in notes {
        why.push_str("; ");
        why.push_str(n);
    }
    why
}

/// How to fix a start without an upstream.
pub(crate) const FIX: &str = "list the network's resolvers after `nameserver 127.0.2.53` in /etc/resolv.conf (or let DHCP/NetworkManager add them there), or name them in trigger.upstreams in the configuration, or set trigger.enabled = false";

/// Reads a file, if there is one.
pub(crate) fn read_file(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The validator behind the agent's cache, rebuilt when the upstreams change.
#[derive(Clone)]
pub(crate) struct Following {
    current: Arc<RwLock<Arc<Validator>>>,
    base: ValidatorConfig,
}

impl std::fmt::Debug for Following {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Following").finish_non_exhaustive()
    }
}

impl Following {
    pub(crate) fn new(validator: Validator, base: ValidatorConfig) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(validator))),
            base,
        }
    }

    fn current(&self) -> Arc<Validator> {
        match self.current.read() {
            Ok(v) => v.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }

    /// Sends validated lookups to `servers` from now on (lookups in flight finish as they were).
    pub(crate) fn follow(&self, servers: &[SocketAddr]) {
        let config = ValidatorConfig {
            upstream: oe_dns::Upstream::Servers(servers.to_vec()),
            ..self.base.clone()
        };
        match Validator::new(config) {
            Ok(v) => match self.current.write() {
                Ok(mut c) => *c = Arc::new(v),
                Err(e) => *e.into_inner() = Arc::new(v),
            },
            Err(e) => tracing::warn!("validator not moved to {servers:?}: {e}"),
        }
    }
}

impl oe_dns::Lookup for Following {
    fn lookup(
        &self,
        target: &LookupTarget,
    ) -> impl Future<Output = Result<Answer, LookupError>> + Send {
        let (validator, target) = (self.current(), target.clone());
        async move { validator.lookup(&target).await }
    }

    fn lookup_addresses(
        &self,
        name: &Name,
    ) -> impl Future<Output = Result<AddressAnswer, LookupError>> + Send {
        let (validator, name) = (self.current(), name.clone());
        async move { validator.lookup_addresses(&name).await }
    }
}

#[cfg(test)]
mod tests;
