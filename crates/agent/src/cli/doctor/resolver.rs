//! `resolver-dnssec`: does each resolver the agent asks pass DNSSEC records through?
//!
//! The agent validates answers itself, from the trust anchor down (RFC 4035 section 5), so it needs
//! the RRSIG, DNSKEY, DS and NSEC records that a validating stub asks for with the DO bit. Many
//! home routers and some ISP resolvers drop them or answer from local data without them; then
//! every key looks bogus and nothing is ever encrypted. The probe: the root's DNSKEY RRset with DO
//! set must come back with its RRSIG.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::check::{Check, Verdict};
use super::dnsquery;
use super::Context;

const ID: &str = "resolver-dnssec";

/// What one resolver did with the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passes {
    /// DNSKEY records with their RRSIG.
    Yes { keys: usize },
    /// An answer, but not DNSSEC: why.
    Strips(String),
    /// No usable answer at all.
    NoAnswer(String),
}

/// Judges the answer to `. DNSKEY` asked with DO set.
pub fn judge(answer: &Message) -> Passes {
    let rcode = answer.metadata.response_code;
    if rcode != ResponseCode::NoError {
        return Passes::Strips(format!(
            "it answers {rcode} for the root's DNSKEY, which every resolver on the internet can give"
        ));
    }
    let count = |t: RecordType| {
        answer
            .answers
            .iter()
            .filter(|r| r.record_type() == t)
            .count()
    };
    let (keys, sigs) = (count(RecordType::DNSKEY), count(RecordType::RRSIG));
    match (keys, sigs) {
        (0, _) => Passes::Strips("its answer for the root's DNSKEY holds no DNSKEY record".into()),
        (_, 0) => Passes::Strips(format!(
            "its answer holds {keys} DNSKEY records but no RRSIG: it strips DNSSEC signatures"
        )),
        (keys, _) => Passes::Yes { keys },
    }
}

/// The resolvers the agent's validator asks: `[dns] upstreams`, else /etc/resolv.conf's.
pub fn servers(ctx: &Context) -> Result<Vec<SocketAddr>, String> {
    if ctx.config.dns.upstreams.is_empty() {
        let text = std::fs::read_to_string(super::trigger::RESOLV_CONF)
            .map_err(|e| format!("cannot read {}: {e}", super::trigger::RESOLV_CONF))?;
        return Ok(super::trigger::nameservers(&text)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect());
    }
    ctx.config
        .dns
        .upstreams
        .iter()
        .map(|s| oe_dns::parse_server(s, 53))
        .collect()
}

/// Runs the probe against every resolver.
pub fn check(ctx: &Context) -> Check {
    let servers = match servers(ctx) {
        Ok(servers) if servers.is_empty() => {
            return Check::new(ID, Verdict::Fail, "no resolver is configured")
                .fix("set [dns] upstreams, or a nameserver in /etc/resolv.conf")
        }
        Ok(servers) => servers,
        Err(e) => return Check::new(ID, Verdict::Fail, e),
    };
    let results: Vec<(SocketAddr, Passes)> = servers
        .iter()
        .map(|s| (*s, probe(*s, ctx.timeout)))
        .collect();
    summarize(&results)
}

fn probe(server: SocketAddr, timeout: Duration) -> Passes {
    match dnsquery::ask(server, Name::root(), RecordType::DNSKEY, timeout) {
        Ok(answer) => judge(&answer),
        Err(e) => Passes::NoAnswer(e),
    }
}

/// One finding for all resolvers: each must pass (the agent may ask any of them).
pub fn summarize(results: &[(SocketAddr, Passes)]) -> Check {
    let details = results
        .iter()
        .map(|(server, p)| match p {
            Passes::Yes { keys } => {
                format!("{server}: passes DNSSEC ({keys} root DNSKEYs with RRSIG)")
            }
            Passes::Strips(why) => format!("{server}: does not pass DNSSEC: {why}"),
            Passes::NoAnswer(why) => format!("{server}: no answer: {why}"),
        })
        .collect();
    let stripping = results
        .iter()
        .filter(|(_, p)| matches!(p, Passes::Strips(_)))
        .count();
    let silent = results
        .iter()
        .filter(|(_, p)| matches!(p, Passes::NoAnswer(_)))
        .count();
    let check = if stripping > 0 {
        Check::new(ID, Verdict::Fail, format!(
            "{stripping} of {} resolvers do not pass DNSSEC records: every key would look bogus and nothing would be encrypted",
            results.len()
        ))
        .fix("point [dns] upstreams at a resolver that passes DNSSEC (a local unbound, or a public \
              validating resolver); home routers often strip it")
    } else if silent == results.len() {
        Check::new(ID, Verdict::Fail, "no resolver answered")
            .fix("check the network and [dns] upstreams / /etc/resolv.conf")
    } else if silent > 0 {
        Check::new(
            ID,
            Verdict::Warn,
            format!("{silent} of {} resolvers did not answer", results.len()),
        )
        .fix("remove resolvers that do not answer from [dns] upstreams or /etc/resolv.conf")
    } else {
        Check::new(ID, Verdict::Ok, "the resolvers pass DNSSEC records through")
    };
    check.details(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::{RData, Record};

    fn answer(rcode: ResponseCode, types: &[RecordType]) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        for t in types {
            let r = Record::from_rdata(Name::root(), 60, RData::Update0(*t));
            m.add_answer(r);
        }
        m
    }

    #[test]
    fn signatures_make_the_difference() {
        use RecordType::{DNSKEY, RRSIG};
        assert_eq!(
            judge(&answer(ResponseCode::NoError, &[DNSKEY, DNSKEY, RRSIG])),
            Passes::Yes { keys: 2 }
        );
        assert!(
            matches!(judge(&answer(ResponseCode::NoError, &[DNSKEY])), Passes::Strips(w) if w.contains("no RRSIG"))
        );
        assert!(
            matches!(judge(&answer(ResponseCode::NoError, &[])), Passes::Strips(w) if w.contains("no DNSKEY"))
        );
        assert!(
            matches!(judge(&answer(ResponseCode::NXDomain, &[])), Passes::Strips(w) if w.contains("NXDomain") || w.contains("Non-Existent"))
        );
    }

    #[test]
    fn one_stripping_resolver_fails_the_check() {
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:53".parse().unwrap();
        let good = Passes::Yes { keys: 2 };
        assert_eq!(
            summarize(&[(a, good.clone()), (b, good.clone())]).verdict,
            Verdict::Ok
        );
        let bad = summarize(&[(a, good.clone()), (b, Passes::Strips("x".into()))]);
        assert_eq!(bad.verdict, Verdict::Fail);
        assert!(bad.details[1].starts_with("192.0.2.2:53: does not pass"));
        let silent = summarize(&[(a, good), (b, Passes::NoAnswer("t".into()))]);
        assert_eq!(silent.verdict, Verdict::Warn);
        assert_eq!(
            summarize(&[(a, Passes::NoAnswer("t".into()))]).verdict,
            Verdict::Fail
        );
    }
}
