//! The status socket's protocol: one JSON object per line each way (see `docs/status-protocol.md`).
//!
//! A client sends a [`Request`]; the agent answers with one [`Response`] line, except for
//! `{"command":"events","follow":true}`, which is answered by a stream of `{"ok":true,"event":...}` lines
//! until the client closes the connection.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The longest request line the agent reads; longer lines get an error and the connection is closed.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// What a client asks. Unknown fields are ignored, so newer clients can add optional ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Agent state, kernel capability, counts.
    Status,
    /// Peers with their IKE and child SAs.
    Peers,
    /// Shunts with reasons and expiry.
    Shunts,
    /// The validated-DNS cache.
    DnsCache,
    /// Why a host is or is not encrypted.
    Explain { host: String },
    /// Recent events; with `follow`, a stream of new ones.
    Events {
        #[serde(default)]
        follow: bool,
    },
    /// Control (root only): drop the host's failure shunt and negotiate with it now.
    Retry { host: String },
    /// Control (root only): negotiate with the host now, before any traffic.
    Up { host: String },
    /// Control (root only): tear down what the host has (telling it) and keep its traffic in
    /// clear (dropped, for `private`) for `seconds` (default: `shunts.failure_lifetime`).
    Down {
        host: String,
        #[serde(default)]
        seconds: Option<u64>,
    },
}

impl Request {
    /// Whether the request changes the agent's state (only root may send those).
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            Self::Retry { .. } | Self::Up { .. } | Self::Down { .. }
        )
    }

    /// The host a request names, if it names one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Explain { host }
            | Self::Retry { host }
            | Self::Up { host }
            | Self::Down { host, .. } => Some(host),
            _ => None,
        }
    }
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // one per request line; boxing would only add noise
pub enum Response {
    Ok { ok: Ok, result: Report },
    Event { ok: Ok, event: EventReport },
    Err { ok: Fail, error: ErrorReport },
}

/// `true` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "bool", into = "bool")]
pub struct Ok;

/// `false` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "bool", into = "bool")]
pub struct Fail;

impl TryFrom<bool> for Ok {
    type Error = &'static str;
    fn try_from(v: bool) -> Result<Self, Self::Error> {
        if v {
            Result::Ok(Self)
        } else {
            Err("expected true")
        }
    }
}
impl From<Ok> for bool {
    fn from(_: Ok) -> Self {
        true
    }
}
impl TryFrom<bool> for Fail {
    type Error = &'static str;
    fn try_from(v: bool) -> Result<Self, Self::Error> {
        if v {
            Err("expected false")
        } else {
            Result::Ok(Self)
        }
    }
}
impl From<Fail> for bool {
    fn from(_: Fail) -> Self {
        false
    }
}

impl Response {
    /// A successful answer.
    pub fn ok(result: Report) -> Self {
        Self::Ok { ok: Ok, result }
    }

    /// An error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Err {
            ok: Fail,
            error: ErrorReport {
                code,
                message: message.into(),
            },
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Not JSON, or not a known request.
    BadRequest,
    /// A control request from a client that is not root.
    Forbidden,
    /// The request line exceeded [`MAX_REQUEST_LINE`].
    TooLong,
    /// The agent could not answer (shutting down, internal failure).
    Unavailable,
    /// The agent serves as many connections as it allows (`[status] max_connections`).
    Busy,
}

/// An error answer's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
}

/// A successful answer's body, by request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[allow(clippy::large_enum_variant)] // built once per request; boxing would only add noise
pub enum Report {
    Status(StatusReport),
    Peers {
        peers: Vec<PeerReport>,
    },
    Shunts {
        shunts: Vec<ShuntReport>,
    },
    DnsCache {
        entries: Vec<DnsCacheEntry>,
    },
    Explain(ExplainReport),
    Events {
        events: Vec<EventReport>,
    },
    /// What a control request did, per address of the host.
    Control {
        results: Vec<ControlResult>,
    },
}

/// `status`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub pid: u32,
    pub uptime_secs: u64,
    /// "running", "degraded" (serving status and lookups only), or "stopping".
    pub state: String,
    /// Whether the kernel can install ESP SAs, and what the probe found.
    pub kernel: KernelReport,
    /// Whether trap policies are installed (they are not when the kernel cannot do ESP).
    pub traps_installed: bool,
    /// Our identity as presented in IKE_AUTH, and the key type ("null" when anonymous).
    pub identity: String,
    pub key: String,
    pub peers: usize,
    pub child_sas: usize,
    pub shunts: usize,
    pub dns_cache_entries: usize,
    pub counters: Counters,
    /// Why the agent is degraded, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<String>,
    /// The DNS trigger's stub, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerSummary>,
    /// How long validated lookups and negotiations took (left out while nothing was measured).
    #[serde(default, skip_serializing_if = "Latencies::is_empty")]
    pub latency: Latencies,
}

impl Latencies {
    /// Whether nothing was measured yet.
    pub fn is_empty(&self) -> bool {
        self.dns_lookup.count == 0 && self.negotiation.count == 0
    }
}

/// Latency histograms since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// From the core asking for a validated lookup to its verdict.
    pub dns_lookup: Histogram,
    /// From the start of a negotiation (ACQUIRE, trigger, `oe up`) to its first child SA in the
    /// kernel.
    pub negotiation: Histogram,
}

/// A histogram with fixed bucket bounds ([`Histogram::BOUNDS`], seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative), one per bound.
    pub buckets: Vec<u64>,
    /// Every observation, including those above the last bound.
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// Upper bounds of the buckets, in seconds.
    pub const BOUNDS: [f64; 12] = [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    /// Counts one observation.
    pub fn observe(&mut self, seconds: f64) {
        if self.buckets.len() != Self::BOUNDS.len() {
            self.buckets = vec![0; Self::BOUNDS.len()];
        }
        if let Some(i) = Self::BOUNDS.iter().position(|b| seconds <= *b) {
            if let Some(b) = self.buckets.get_mut(i) {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    /// Observations at or below each bound, cumulative (OpenMetrics buckets).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        Self::BOUNDS
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                total += self.buckets.get(i).copied().unwrap_or(0);
                (*bound, total)
            })
            .collect()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; Self::BOUNDS.len()],
            count: 0,
            sum_seconds: 0.0,
        }
    }
}

/// The DNS trigger's stub in `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerSummary {
    pub listen: Vec<String>,
    /// Queries received (UDP and TCP).
    pub queries: u64,
    /// A/AAAA answers in an opportunistic group (an IPSECKEY lookup ran beside them).
    pub opportunistic: u64,
    /// Of those, names with a SECURE key (IKE started from the answer).
    pub secure_keys: u64,
    /// Answers held for IKE, and their mean hold in milliseconds.
    pub held: u64,
    pub hold_mean_ms: f64,
    /// Holds that ran out of time before the SA was up.
    pub hold_expired: u64,
    /// Names without keys, with insecure keys, with bogus keys (never used).
    pub no_key: u64,
    pub insecure: u64,
    pub bogus: u64,
    /// Malformed queries answered FORMERR.
    pub formerr: u64,
    /// Queries no upstream answered.
    pub upstream_failures: u64,
    /// Keys that arrived after the answer was released (IKE started anyway).
    #[serde(default)]
    pub late_keys: u64,
    /// IPSECKEY or address lookups without a verdict.
    #[serde(default)]
    pub lookup_failures: u64,
    /// Secure keys whose answered addresses were not proven (nothing bound).
    #[serde(default)]
    pub addresses_not_proven: u64,
    /// Messages dropped, queries shed over the limits, other opcodes (NOTIMP).
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub shed: u64,
    #[serde(default)]
    pub notimp: u64,
    /// Where queries are forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Box<UpstreamSummary>>,
}

/// The resolvers the stub forwards to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamSummary {
    /// The resolvers queries are forwarded to now.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Where they were found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why no usable upstream is found (the stub keeps the last ones it had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What the kernel can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelReport {
    pub esp: bool,
    pub detail: String,
}

/// Running totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub acquires: u64,
    pub negotiations_started: u64,
    pub negotiations_succeeded: u64,
    pub negotiations_failed: u64,
    pub responder_sas: u64,
    pub dns_lookups: u64,
    pub rekeys: u64,
    pub idle_teardowns: u64,
}

/// One peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    pub address: IpAddr,
    /// "negotiating", "established", "failed".
    pub state: String,
    /// Who we started it as: "initiator" or "responder".
    pub role: String,
    /// The peer's authenticated identity ("fqdn:...", "address:...", or "null" for anonymous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// How the peer authenticated: e.g. "Ed25519 key from DNSSEC (secure)", "NULL (anonymous)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_sa: Option<IkeSaReport>,
    pub child_sas: Vec<ChildSaReport>,
    /// The address this host assigned the peer from its pool (RFC 7296 3.15), which its child
    /// SAs carry; `address` is then the outer one (its NAT's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_ip: Option<IpAddr>,
}

impl PeerReport {
    /// Whether the IKE SA's keys include a post-quantum key exchange.
    pub fn is_post_quantum(&self) -> bool {
        self.ike_sa
            .as_ref()
            .is_some_and(|i| !i.post_quantum.is_empty())
    }
}

/// An IKE SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSaReport {
    pub spi_i: String,
    pub spi_r: String,
    /// e.g. "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ML_KEM_768".
    pub proposal: String,
    /// The post-quantum key exchanges in its keys (e.g. "ML_KEM_768"); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_quantum: Vec<String>,
    pub established_secs_ago: u64,
    pub rekey_in_secs: u64,
}

/// A child SA pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSaReport {
    pub spi_in: String,
    pub spi_out: String,
    /// e.g. "AES_GCM_16_256".
    pub esp: String,
    /// "transport" or "tunnel" (RFC 7296 1.3.1).
    #[serde(default)]
    pub mode: String,
    /// UDP encapsulation behind a NAT (RFC 3948), e.g. "UDP 4500 -> 31000 (NAT)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encapsulation: Option<String>,
    /// The address the peer assigned us, which this child carries (RFC 7296 3.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_ip: Option<IpAddr>,
    pub selectors: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Seconds since traffic last used either direction (None: never used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
    pub established_secs_ago: u64,
    pub rekey_in_secs: u64,
}

/// A shunt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuntReport {
    pub peer: IpAddr,
    /// "pass", "hold" or "drop".
    pub action: String,
    /// "negotiation" or "failure".
    pub stage: String,
    pub group: String,
    pub reason: String,
    pub installed_secs_ago: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
}

/// A cached validated lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCacheEntry {
    pub name: String,
    /// "secure", "insecure", "absent", "bogus", "failure".
    pub outcome: String,
    pub keys: Vec<String>,
    pub expires_in_secs: u64,
}

/// `explain HOST`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainReport {
    pub host: String,
    /// The DNS trigger's latest decisions for this name, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trigger: Vec<String>,
    /// The addresses explained (the host itself, or what its name resolved to).
    pub addresses: Vec<AddressExplanation>,
}

/// Why one address is or is not encrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressExplanation {
    pub address: IpAddr,
    /// The policy group and the configuration entry that chose it.
    pub group: String,
    pub matched_entry: String,
    /// The DNS outcome for the address's reverse name (and the peer's name, if it presented one).
    pub dns: Vec<String>,
    /// The last IKE outcome with this peer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike: Option<String>,
    /// What is in the kernel now: an SA, a shunt, the trap, or nothing.
    pub current: String,
    /// One sentence for humans.
    pub verdict: String,
}

/// What a control request did for one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResult {
    pub address: IpAddr,
    /// One sentence: "negotiating", "already encrypted", "taken down; its traffic passes in clear
    /// for 600s"...
    pub outcome: String,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventReport {
    /// Seconds since the epoch.
    pub time: f64,
    /// e.g. "acquire", "dns", "ike-established", "child-installed", "shunt", "rekey", "deleted", "idle".
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_their_documented_form() {
        let r: Request =
            serde_json::from_str(r#"{"command":"explain","host":"example.org"}"#).unwrap();
        assert_eq!(
            r,
            Request::Explain {
                host: "example.org".into()
            }
        );
        let r: Request = serde_json::from_str(r#"{"command":"events","follow":true}"#).unwrap();
        assert_eq!(r, Request::Events { follow: true });
        let r: Request = serde_json::from_str(r#"{"command":"events"}"#).unwrap();
        assert_eq!(r, Request::Events { follow: false });
        let r: Request = serde_json::from_str(r#"{"command":"status","since":1}"#).unwrap();
        assert_eq!(r, Request::Status);
        for bad in [r#"{"command":"reboot"}"#, "[]", r#"{"host":"x"}"#] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_carry_ok_true_or_false() {
        let err = serde_json::to_string(&Response::error(ErrorCode::BadRequest, "nope")).unwrap();
        assert_eq!(
            err,
            r#"{"ok":false,"error":{"code":"bad-request","message":"nope"}}"#
        );
        let ok = Response::ok(Report::Shunts { shunts: vec![] });
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            text,
            r#"{"ok":true,"result":{"kind":"shunts","shunts":[]}}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), ok);
        let back: Response = serde_json::from_str(&err).unwrap();
        assert!(matches!(back, Response::Err { .. }));
    }
}
