//! `oe lookup NAME|ADDRESS`: show the IPSECKEY records of a host and their DNSSEC state, as the
//! agent would judge them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oe_dns::ipseckey::Usability;
use oe_dns::{
    lookup_blocking, parse_server, AnchorSet, Answer, Denial, KeyRecord, LookupError, LookupTarget,
    Upstream, ValidatorConfig,
};
use serde_json::{json, Value};

const EXIT_HELP: &str = "\
Exit status:
  0  secure: the IPSECKEY RRset validated and holds a key the agent can use
  1  invalid input (bad name or address, unreadable trust anchor file, bad server)
  2  bad command-line usage
  3  secure, but no record holds a usable key (Ed448, DSA, short RSA, no key)
  4  insecure: the zone is provably unsigned; its keys are never used
  5  absent: no IPSECKEY record at the name (proven, or in an unsigned zone)
  6  bogus: validation failed (bad or expired signature, broken chain); never used
  7  lookup failed: timeout, server failure or network error

The default trust anchor is the IANA root KSKs; the default servers those of /etc/resolv.conf.";

/// Arguments of `oe lookup`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct LookupArgs {
    /// A domain name (forward lookup) or an IPv4/IPv6 address (reverse-zone lookup).
    pub target: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Recursive resolver to ask, ADDRESS[:PORT] (port 53, or 853 with --tls); repeatable.
    #[arg(long = "server", value_name = "ADDR[:PORT]")]
    pub servers: Vec<String>,
    /// Trust anchor file: DNSKEY or DS records in zone-file form (as unbound's
    /// trust-anchor-file).
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,
    /// Use DNS-over-TLS to the --server addresses, authenticating them as NAME.
    #[arg(long, value_name = "NAME", requires = "servers")]
    pub tls: Option<String>,
    /// CA certificates (PEM) for --tls; the system bundle by default.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// Deadline for the whole lookup, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

/// Exit codes of `oe lookup` (see [`EXIT_HELP`]).
mod exit {
    pub(super) const USABLE: u8 = 0;
    pub(super) const INVALID: u8 = 1;
    pub(super) const UNUSABLE: u8 = 3;
    pub(super) const INSECURE: u8 = 4;
    pub(super) const ABSENT: u8 = 5;
    pub(super) const BOGUS: u8 = 6;
    pub(super) const FAILED: u8 = 7;
}

/// Runs `oe lookup`.
pub fn run(args: &LookupArgs) -> ExitCode {
    let (target, config) = match prepare(args) {
        Ok(v) => v,
        Err(message) => {
            eprintln!("oe lookup: {message}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let anchor = config.anchors.source.clone();
    let (outcome, cost) = lookup_blocking(config, &target);
    let code = exit_code(&outcome);
    let report = Report {
        target: &target,
        outcome: &outcome,
        anchor: &anchor,
        queries: cost.queries,
    };
    if args.json {
        println!("{}", report.json(code));
    } else {
        print!("{}", report.text());
    }
    ExitCode::from(code)
}

fn prepare(args: &LookupArgs) -> Result<(LookupTarget, ValidatorConfig), String> {
    let target: LookupTarget = args.target.parse().map_err(|e| format!("{e}"))?;
    let mut config = ValidatorConfig {
        lookup_timeout: Duration::from_secs(args.timeout.max(1)),
        ..ValidatorConfig::default()
    };
    if let Some(path) = &args.trust_anchor {
        config.anchors = AnchorSet::from_file(path).map_err(|e| format!("trust anchor: {e}"))?;
    }
    let port = if args.tls.is_some() { 853 } else { 53 };
    let servers = args
        .servers
        .iter()
        .map(|s| parse_server(s, port))
        .collect::<Result<Vec<_>, _>>()?;
    config.upstream = match (&args.tls, servers.is_empty()) {
        (_, true) => Upstream::System,
        (Some(name), false) => Upstream::Tls {
            servers,
            server_name: name.clone(),
            ca_file: args.tls_ca.clone(),
        },
        (None, false) => Upstream::Servers(servers),
    };
    Ok((target, config))
}

fn exit_code(outcome: &Result<Answer, LookupError>) -> u8 {
    match outcome {
        Ok(answer @ Answer::Secure(_)) if !answer.usable_keys().is_empty() => exit::USABLE,
        Ok(Answer::Secure(_)) => exit::UNUSABLE,
        Ok(Answer::Insecure(_)) => exit::INSECURE,
        Ok(Answer::Absent(_)) => exit::ABSENT,
        Err(LookupError::Bogus(_)) => exit::BOGUS,
        Err(_) => exit::FAILED,
    }
}

struct Report<'a> {
    target: &'a LookupTarget,
    outcome: &'a Result<Answer, LookupError>,
    anchor: &'a str,
    queries: usize,
}

impl Report<'_> {
    fn heading(&self) -> String {
        match self.target {
            LookupTarget::Forward(name) => name.to_string(),
            LookupTarget::Reverse(addr) => format!("{addr} ({})", self.target.query_name()),
        }
    }

    fn text(&self) -> String {
        let mut out = format!("{} IPSECKEY: ", self.heading());
        match self.outcome {
            Ok(answer @ Answer::Secure(s)) => {
                let usable = !answer.usable_keys().is_empty();
                out += if usable {
                    "SECURE\n"
                } else {
                    "SECURE, but no usable key\n"
                };
                let sig = &s.signature;
                out += &format!(
                    "  chain:  signed by {} ({}, key tag {}), signature valid {} .. {}\n",
                    sig.signer,
                    sig.algorithm,
                    sig.key_tag,
                    rfc3339(sig.inception),
                    rfc3339(sig.expiration)
                );
                out += &format!("          chain of trust verified from {}\n", self.anchor);
                out += &format!(
                    "  TTL {} s; usable until {} ({})\n",
                    s.ttl,
                    rfc3339(s.usable_until),
                    from_now(s.usable_until)
                );
                out += &records_text(&s.records, true);
            }
            Ok(Answer::Insecure(u)) => {
                out += "INSECURE\n  the zone is provably unsigned: these records cannot authenticate a peer\n";
                out += &records_text(&u.records, false);
            }
            Ok(Answer::Absent(a)) => {
                out += "ABSENT\n";
                let what = if a.nxdomain {
                    "the name does not exist (NXDOMAIN)"
                } else {
                    "no IPSECKEY at the name (NODATA)"
                };
                let proof = match a.denial {
                    Denial::Nsec => "proven by validated NSEC records",
                    Denial::Nsec3 => "proven by validated NSEC3 records",
                    Denial::Unsigned => "not proven: the zone is unsigned",
                };
                out += &format!("  {what}, {proof}\n  owner: {}\n", a.owner);
            }
            Err(LookupError::Bogus(why)) => {
                out += &format!("BOGUS\n  {why}\n  no key from this answer is used\n");
            }
            Err(other) => out += &format!("LOOKUP FAILED\n  {other}\n"),
        }
        out += &format!("  ({} upstream queries)\n", self.queries);
        out
    }

    fn json(&self, code: u8) -> Value {
        let mut v = json!({
            "target": self.target.to_string(),
            "query": self.target.query_name().to_string(),
            "trust_anchor": self.anchor,
            "exit_code": code,
            "usable": code == exit::USABLE,
            "queries": self.queries,
        });
        let extra = match self.outcome {
            Ok(Answer::Secure(s)) => json!({
                "state": "secure",
                "owner": s.owner.to_string(),
                "ttl": s.ttl,
                "usable_until": rfc3339(s.usable_until),
                "chain": {
                    "signer": s.signature.signer.to_string(),
                    "algorithm": s.signature.algorithm,
                    "key_tag": s.signature.key_tag,
                    "inception": rfc3339(s.signature.inception),
                    "expiration": rfc3339(s.signature.expiration),
                },
                "records": s.records.iter().map(record_json).collect::<Vec<_>>(),
            }),
            Ok(Answer::Insecure(u)) => json!({
                "state": "insecure",
                "owner": u.owner.to_string(),
                "records": u.records.iter().map(record_json).collect::<Vec<_>>(),
            }),
            Ok(Answer::Absent(a)) => json!({
                "state": "absent",
                "owner": a.owner.to_string(),
                "nxdomain": a.nxdomain,
                "denial": match a.denial { Denial::Nsec => "nsec", Denial::Nsec3 => "nsec3", Denial::Unsigned => "unsigned" },
            }),
            Err(LookupError::Bogus(why)) => json!({ "state": "bogus", "reason": why }),
            Err(other) => json!({ "state": "failure", "reason": other.to_string() }),
        };
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        v
    }
}

fn records_text(records: &[KeyRecord], secure: bool) -> String {
    let mut out = String::new();
    for (i, record) in records.iter().enumerate() {
        match &record.data {
            Ok(k) => {
                let usable = match (secure, k.key.usability()) {
                    (true, Usability::Usable) => "usable".to_owned(),
                    (false, _) => "not usable: unsigned".to_owned(),
                    (true, Usability::Unsupported(why)) => format!("not usable: {why}"),
                };
                out += &format!(
                    "  record {}: precedence {}, gateway {}, {} ({} bits), TTL {} s, {usable}\n            {k}\n",
                    i + 1,
                    k.precedence,
                    gateway_text(k),
                    k.key.kind(),
                    k.key.bits(),
                    record.ttl,
                );
            }
            Err(e) => out += &format!("  record {}: malformed RDATA: {e}\n", i + 1),
        }
    }
    out
}

fn gateway_text(k: &oe_dns::IpsecKey) -> String {
    match &k.gateway {
        oe_dns::Gateway::None => "none (the host itself)".into(),
        other => other.to_string(),
    }
}

fn record_json(record: &KeyRecord) -> Value {
    match &record.data {
        Ok(k) => json!({
            "precedence": k.precedence,
            "gateway_type": k.gateway.gateway_type(),
            "gateway": k.gateway.to_string(),
            "algorithm": k.key.algorithm(),
            "key_type": k.key.kind(),
            "key_bits": k.key.bits(),
            "key_usable": k.key.usability() == Usability::Usable,
            "ttl": record.ttl,
            "rdata": k.to_string(),
        }),
        Err(e) => json!({ "error": e.to_string(), "ttl": record.ttl }),
    }
}

fn from_now(t: SystemTime) -> String {
    match t.duration_since(SystemTime::now()) {
        Ok(d) => format!("in {} s", d.as_secs()),
        Err(_) => "already past".into(),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC), from days since the epoch (H. Hinnant's algorithm).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_580_515_200)),
            "2020-02-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59Z"
        );
    }

    #[test]
    fn arguments() {
        let args = |v: &[&str]| {
            let mut all = vec!["lookup"];
            all.extend_from_slice(v);
            <LookupArgs as clap::Args>::augment_args(clap::Command::new("lookup"))
                .try_get_matches_from(all)
                .and_then(|m| <LookupArgs as clap::FromArgMatches>::from_arg_matches(&m))
        };
        let a = args(&[
            "192.0.2.1",
            "--server",
            "127.0.0.53",
            "--server",
            "[::1]:5353",
        ])
        .unwrap();
        let (target, config) = prepare(&a).unwrap();
        assert!(matches!(target, LookupTarget::Reverse(_)));
        assert_eq!(
            config.upstream,
            Upstream::Servers(vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:5353".parse().unwrap()
            ])
        );
        let a = args(&[
            "host.example",
            "--server",
            "192.0.2.1",
            "--tls",
            "dns.example",
        ])
        .unwrap();
        let (_, config) = prepare(&a).unwrap();
        assert!(
            matches!(config.upstream, Upstream::Tls { ref servers, .. } if servers[0].port() == 853)
        );
        assert!(args(&["host.example", "--tls", "dns.example"]).is_err());
        let a = args(&["host.example", "--trust-anchor", "/nonexistent"]).unwrap();
        assert!(prepare(&a).unwrap_err().contains("trust anchor"));
        let a = args(&["not a name!"]).unwrap();
        assert!(prepare(&a).is_err());
    }
}
