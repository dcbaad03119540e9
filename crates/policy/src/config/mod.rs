//! The agent's configuration (TOML). `config/oe.toml` documents every setting with its default and is built
//! into the binary; [`Config::default`] equals that file, which a unit test checks.

mod groups;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use groups::{proto_name, Entry, Group, GroupError, GroupTable, Match};

/// The documented defaults, as shipped in `config/oe.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../../../config/oe.toml");

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {source}")]
    Groups { path: PathBuf, source: GroupError },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub groups: Groups,
    #[serde(default)]
    pub shunts: Shunts,
    #[serde(default)]
    pub ike: Ike,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub kernel: Kernel,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub log: Log,
}

/// `[identity]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    pub key: PathBuf,
    pub id: String,
    /// What to present instead of an address identity when a NAT translates our address:
    /// "null", or "fqdn:<name>".
    pub behind_nat: String,
}

/// `[groups]`: prefix lists per policy group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Groups {
    pub private: Vec<String>,
    #[serde(rename = "private-or-clear")]
    pub private_or_clear: Vec<String>,
    #[serde(rename = "clear-or-private")]
    pub clear_or_private: Vec<String>,
    pub clear: Vec<String>,
    pub block: Vec<String>,
}

/// What happens to a flow while a negotiation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NegotiationShunt {
    Pass,
    Hold,
}

/// `[shunts]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shunts {
    pub negotiation: NegotiationShunt,
    #[serde(with = "humantime_serde")]
    pub failure_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub negotiation_timeout: Duration,
}

/// `[ike]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ike {
    pub proposals: Vec<String>,
    pub esp_proposals: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub ike_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub child_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub liveness_interval: Duration,
    /// Groups in which unauthenticated (NULL, RFC 7619) encryption is accepted: anonymous clients,
    /// and, as initiator, a responder whose DNS proves it has no key. Never `private`.
    pub anonymous: Vec<String>,
    /// An IKE SA authenticated longer ago than this is authenticated again (a new IKE SA and a
    /// fresh DNS lookup), so a key withdrawn from DNS stops being accepted.
    #[serde(with = "humantime_serde")]
    pub reauth_interval: Duration,
    /// Offer a post-quantum hybrid key exchange (ML-KEM-768 after the classical group, RFC 9370
    /// in IKE_INTERMEDIATE, RFC 9242); peers without it still get the classical exchange.
    pub post_quantum: bool,
    /// Groups in which an IKE SA without the post-quantum exchange is refused.
    pub require_post_quantum: Vec<String>,
    pub port: u16,
    pub nat_port: u16,
    /// Behind a NAT, send a NAT-keepalive this often (RFC 3948); zero turns them off.
    #[serde(with = "humantime_serde")]
    pub nat_keepalive: Duration,
    /// Addresses to assign clients that ask for one (RFC 7296 3.15), one prefix per family
    /// ("100.64.0.0/16", "fd00:6f65::/112"): each client behind a NAT gets its own, and its
    /// tunnel-mode SAs and policies are keyed on it. Empty: no addresses are assigned.
    pub address_pool: Vec<String>,
}

/// `[dns]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    pub upstreams: Vec<String>,
    pub tls_name: String,
    pub trust_anchor: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub cache_size: usize,
}

/// `[kernel]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kernel {
    pub queue_first_packet: bool,
    /// Kernel lifetime of the traps, shunts and SA policies the agent installs outside `private`
    /// and `block`, refreshed while the agent lives: after a crash nothing of ours holds or drops
    /// traffic for longer than this.
    #[serde(with = "humantime_serde")]
    pub policy_lifetime: Duration,
}

/// `[limits]`: what peers can make the agent hold. A source is an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// IKE SAs that peers started, past IKE_AUTH, in total. At the bound the oldest anonymous
    /// one makes room; an authenticated one is never displaced.
    pub ike_sas: usize,
    /// The same, from one source.
    pub ike_sas_per_source: usize,
    /// Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not done) in total.
    pub half_open: usize,
    /// Half-open IKE SAs from one address.
    pub half_open_per_source: usize,
    /// Half-open IKE SAs above which a new IKE_SA_INIT must return a cookie (RFC 7296 2.6).
    pub cookie_threshold: usize,
    /// Child SAs one IKE SA may hold.
    pub children_per_ike_sa: usize,
    /// DNS lookups that peers' identities chose, in flight at once, in total.
    pub peer_lookups: usize,
    /// The same, for peers at one source.
    pub peer_lookups_per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ike_sas: 10_000,
            ike_sas_per_source: 16,
            half_open: 10_000,
            half_open_per_source: 10,
            cookie_threshold: 10,
            children_per_ike_sa: 8,
            peer_lookups: 64,
            peer_lookups_per_source: 4,
        }
    }
}

impl Limits {
    fn check(&self) -> Result<(), String> {
        let all = [
            ("ike_sas", self.ike_sas),
            ("ike_sas_per_source", self.ike_sas_per_source),
            ("half_open", self.half_open),
            ("half_open_per_source", self.half_open_per_source),
            ("children_per_ike_sa", self.children_per_ike_sa),
            ("peer_lookups", self.peer_lookups),
            ("peer_lookups_per_source", self.peer_lookups_per_source),
        ];
        match all.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("limits.{name} must be at least 1")),
            None => Ok(()),
        }
    }
}

/// `[trigger]`: the DNS trigger's local stub resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trigger {
    pub enabled: bool,
    pub listen: Vec<String>,
    /// Resolvers the stub forwards to; empty means `[dns] upstreams`, else /etc/resolv.conf's.
    pub upstreams: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
    pub fail_closed: bool,
}

impl Default for Trigger {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: vec!["127.0.2.53:53".into()],
            upstreams: vec![],
            hold: Duration::from_millis(400),
            fail_closed: false,
        }
    }
}

/// `[status]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Status {
    pub socket: PathBuf,
    pub mode: String,
    pub group: String,
    /// Connections served at once; one more gets a `busy` error.
    pub max_connections: usize,
    /// A connection that sends no request, or leaves an answer unread, this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A loopback address and port where `GET /metrics` answers what `oe metrics` prints; empty:
    /// no HTTP port (the default).
    pub metrics_listen: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            key: PathBuf::from("/etc/oe/key.pem"),
            id: "address".into(),
            behind_nat: "null".into(),
        }
    }
}

impl Default for Groups {
    fn default() -> Self {
        let v = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            private: vec![],
            private_or_clear: v(&["0.0.0.0/0", "::/0"]),
            clear_or_private: vec![],
            clear: v(&[
                "0.0.0.0/8",
                "10.0.0.0/8",
                "100.64.0.0/10",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "224.0.0.0/4",
                "240.0.0.0/4",
                "255.255.255.255/32",
                "::1/128",
                "fe80::/10",
                "fc00::/7",
                "ff00::/8",
            ]),
            block: vec![],
        }
    }
}

impl Default for Shunts {
    fn default() -> Self {
        Self {
            negotiation: NegotiationShunt::Hold,
            failure_lifetime: Duration::from_secs(15 * 60),
            negotiation_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for Ike {
    fn default() -> Self {
        let v = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            proposals: v(&[
                "aes256gcm16-prfsha256-x25519",
                "aes128gcm16-prfsha256-ecp256",
                "chacha20poly1305-prfsha256-x25519",
                "aes256gcm16-prfsha256-modp2048",
                "aes256-sha256-prfsha256-x25519",
            ]),
            esp_proposals: v(&[
                "aes256gcm16",
                "aes128gcm16",
                "chacha20poly1305",
                "aes256-sha256",
            ]),
            ike_lifetime: Duration::from_secs(8 * 3600),
            child_lifetime: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(600),
            liveness_interval: Duration::from_secs(30),
            anonymous: v(&["private-or-clear", "clear-or-private"]),
            reauth_interval: Duration::from_secs(4 * 3600),
            post_quantum: true,
            require_post_quantum: vec![],
            port: 500,
            nat_port: 4500,
            nat_keepalive: Duration::from_secs(20),
            address_pool: vec![],
        }
    }
}

impl Default for Dns {
    fn default() -> Self {
        Self {
            upstreams: vec![],
            tls_name: String::new(),
            trust_anchor: String::new(),
            timeout: Duration::from_secs(5),
            cache_size: 10_000,
        }
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Self {
            queue_first_packet: true,
            policy_lifetime: Duration::from_secs(60),
        }
    }
}

impl Default for Status {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/oe/oe.sock"),
            mode: "0600".into(),
            group: String::new(),
            max_connections: 32,
            idle_timeout: Duration::from_secs(60),
            metrics_listen: String::new(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Parses configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_owned(),
            source,
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The built-in defaults (the text of `config/oe.toml`).
    pub fn embedded() -> Self {
        Self::default()
    }

    /// The policy-group table built from `[groups]`.
    pub fn group_table(&self) -> Result<GroupTable, GroupError> {
        GroupTable::from_config(&self.groups)
    }

    /// The groups named in `ike.anonymous`; `private` and unknown names are refused.
    pub fn anonymous_groups(&self) -> Result<Vec<Group>, String> {
        self.ike
            .anonymous
            .iter()
            .map(|name| match Group::from_name(name) {
                Some(Group::Private) => {
                    Err("ike.anonymous: `private` never accepts unauthenticated peers".into())
                }
                Some(group) => Ok(group),
                None => Err(format!("ike.anonymous: unknown group {name:?}")),
            })
            .collect()
    }

    /// The groups named in `ike.require_post_quantum` (which needs `ike.post_quantum`).
    pub fn post_quantum_groups(&self) -> Result<Vec<Group>, String> {
        let groups: Vec<Group> = self
            .ike
            .require_post_quantum
            .iter()
            .map(|name| {
                Group::from_name(name)
                    .ok_or_else(|| format!("ike.require_post_quantum: unknown group {name:?}"))
            })
            .collect::<Result<_, _>>()?;
        if !groups.is_empty() && !self.ike.post_quantum {
            return Err("ike.require_post_quantum needs ike.post_quantum = true".into());
        }
        Ok(groups)
    }

    /// The metrics HTTP port's address, if one is configured: loopback only, since the metrics
    /// name the peers (`status.metrics_listen`).
    pub fn metrics_listen(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let text = self.status.metrics_listen.trim();
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => Ok(Some(addr)),
            Ok(_) => Err(format!(
                "status.metrics_listen {text:?}: only a loopback address (127.0.0.1:PORT or [::1]:PORT)"
            )),
            Err(_) => Err(format!(
                "status.metrics_listen {text:?} is not ADDRESS:PORT"
            )),
        }
    }

    /// The status socket's permission bits.
    pub fn status_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.status.mode.trim_start_matches("0o"), 8).ok()
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |what: String| ConfigError::Invalid {
            path: origin.to_owned(),
            what,
        };
        self.group_table().map_err(|source| ConfigError::Groups {
            path: origin.to_owned(),
            source,
        })?;
        if self.status_mode().is_none_or(|m| m > 0o777) {
            return Err(invalid(format!(
                "status.mode {:?} is not an octal mode",
                self.status.mode
            )));
        }
        let id = self.identity.id.as_str();
        if !(id == "address"
            || id == "null"
            || id.strip_prefix("fqdn:").is_some_and(|n| !n.is_empty()))
        {
            return Err(invalid(format!(
                "identity.id {id:?}: use \"address\", \"null\" or \"fqdn:<name>\""
            )));
        }
        let nat_id = self.identity.behind_nat.as_str();
        if !(nat_id == "null" || nat_id.strip_prefix("fqdn:").is_some_and(|n| !n.is_empty())) {
            return Err(invalid(format!(
                "identity.behind_nat {nat_id:?}: use \"null\" or \"fqdn:<name>\""
            )));
        }
        if let Err(why) = self.anonymous_groups() {
            return Err(invalid(why));
        }
        if let Err(why) = self.post_quantum_groups() {
            return Err(invalid(why));
        }
        self.limits.check().map_err(invalid)?;
        crate::pool::Pool::from_config(&self.ike.address_pool).map_err(invalid)?;
        self.metrics_listen().map_err(invalid)?;
        if self.status.max_connections == 0 || self.status.idle_timeout.is_zero() {
            return Err(invalid(
                "status.max_connections and status.idle_timeout must not be 0".into(),
            ));
        }
        if self.kernel.policy_lifetime < Duration::from_secs(10) {
            return Err(invalid(
                "kernel.policy_lifetime must be at least 10s".into(),
            ));
        }
        if self.ike.proposals.is_empty() || self.ike.esp_proposals.is_empty() {
            return Err(invalid(
                "ike.proposals and ike.esp_proposals must not be empty".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_equals_the_built_in_defaults() {
        let parsed = Config::parse(DEFAULT_TOML, Path::new("config/oe.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn a_partial_file_keeps_other_defaults() {
        let c = Config::parse("[shunts]\nnegotiation = \"pass\"\n", Path::new("t")).unwrap();
        assert_eq!(c.shunts.negotiation, NegotiationShunt::Pass);
        assert_eq!(c.shunts.failure_lifetime, Duration::from_secs(900));
        assert_eq!(c.groups, Groups::default());
    }

    #[test]
    fn mistakes_are_refused_with_their_place() {
        for bad in [
            "[shunts]\nnegotiation = \"maybe\"\n",
            "[nonsense]\n",
            "[groups]\nprivate = [\"300.0.0.0/8\"]\n",
            "[status]\nmode = \"rw\"\n",
            "[identity]\nid = \"fqdn:\"\n",
            "[shunts]\nfailure_lifetime = \"soon\"\n",
            "[limits]\nike_sas = 0\n",
            "[status]\nmetrics_listen = \"0.0.0.0:9813\"\n",
            "[status]\nmetrics_listen = \"localhost\"\n",
        ] {
            let err = Config::parse(bad, Path::new("my.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("my.toml"), "{bad:?} -> {err}");
        }
    }

    #[test]
    fn the_metrics_port_is_off_by_default_and_loopback_only() {
        let c = Config::default();
        assert_eq!(c.metrics_listen(), Ok(None));
        let on = Config::parse(
            "[status]\nmetrics_listen = \"[::1]:9813\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(on.metrics_listen(), Ok(Some("[::1]:9813".parse().unwrap())));
    }
}
