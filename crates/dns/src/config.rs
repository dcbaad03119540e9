//! How the validator reaches the DNS: upstream servers, trust anchors, deadlines and limits.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::anchor::AnchorSet;
use crate::guard::WorkLimits;

/// Where queries go. Upstreams are recursive resolvers; they need not validate (we do, and we
/// ask them with CD set so a validating upstream hands us bogus data instead of SERVFAIL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The name servers of /etc/resolv.conf.
    System,
    /// These servers, over UDP with TCP fallback.
    Servers(Vec<SocketAddr>),
    /// DNS-over-TLS (RFC 7858) to these servers, authenticated as `server_name`.
    Tls {
        /// Addresses, port 853 by default.
        servers: Vec<SocketAddr>,
        /// The name the server certificate must carry.
        server_name: String,
        /// PEM file of CA certificates; the system bundle when `None`.
        ca_file: Option<PathBuf>,
    },
}

/// The validator's settings.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// Where queries go.
    pub upstream: Upstream,
    /// What the chain of trust starts from.
    pub anchors: AnchorSet,
    /// Deadline for one whole lookup, chain of trust included.
    pub lookup_timeout: Duration,
    /// Deadline for one query to one server.
    pub query_timeout: Duration,
    /// Tries per query.
    pub attempts: usize,
    /// Limits on the work a hostile zone can cause.
    pub limits: WorkLimits,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            upstream: Upstream::System,
            anchors: AnchorSet::iana(),
            lookup_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(3),
            attempts: 2,
            limits: WorkLimits::default(),
        }
    }
}

/// Parses `ADDR[:PORT]` with `default_port` when the port is omitted: `192.0.2.1`,
/// `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]:5353`.
pub fn parse_server(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| format!("{text:?} is not ADDRESS or ADDRESS:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        assert_eq!(
            parse_server("192.0.2.1", 53).unwrap(),
            "192.0.2.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("192.0.2.1:5353", 53).unwrap(),
            "192.0.2.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("2001:db8::1", 53).unwrap(),
            "[2001:db8::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("[2001:db8::1]", 853).unwrap(),
            "[2001:db8::1]:853".parse().unwrap()
        );
        assert_eq!(
            parse_server("[2001:db8::1]:5353", 53).unwrap(),
            "[2001:db8::1]:5353".parse().unwrap()
        );
        assert!(parse_server("ns.example", 53).is_err());
        assert!(parse_server("192.0.2.1:99999", 53).is_err());
    }
}
