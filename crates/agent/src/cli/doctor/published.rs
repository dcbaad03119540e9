//! `published-keys`: the IPSECKEY records peers find for this host carry this host's key.
//!
//! Peers look a host's key up under its name (an FQDN identity) and under its addresses' reverse
//! names (RFC 4025 section 1.2; Libreswan and oe look the reverse name up before IKE), and use it
//! only when DNSSEC proves it (RFC 4035). Checked: the name of `[identity] id = "fqdn:..."`, the
//! names and addresses given on the command line, and this host's own addresses in an
//! opportunistic group (at most [`MAX_TARGETS`] in all).

use std::net::IpAddr;

use oe_dns::{Answer, LookupError, LookupTarget, PublicKey};

use super::check::{Check, Verdict};
use super::Context;
use crate::config::Group;

const ID: &str = "published-keys";
/// At most this many names and addresses are looked up.
pub const MAX_TARGETS: usize = 8;

/// How one name's records relate to our key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// A secure record holds our key.
    Matches,
    /// Secure records, none with our key (how many usable keys they hold).
    Differs(usize),
    /// No IPSECKEY (proven, or in an unsigned zone).
    Absent,
    /// Records in a provably unsigned zone: never used.
    Insecure,
    /// Validation failed.
    Bogus(String),
    /// No verdict.
    Failed(String),
}

/// Compares a lookup's outcome with our key.
pub fn compare(outcome: &Result<Answer, LookupError>, ours: &PublicKey) -> Published {
    match outcome {
        Ok(answer @ Answer::Secure(_)) => {
            let keys = answer.usable_keys();
            if keys.iter().any(|k| &k.key == ours) {
                Published::Matches
            } else {
                Published::Differs(keys.len())
            }
        }
        Ok(Answer::Insecure(_)) => Published::Insecure,
        Ok(Answer::Absent(_)) => Published::Absent,
        Err(LookupError::Bogus(why)) => Published::Bogus(why.clone()),
        Err(other) => Published::Failed(other.to_string()),
    }
}

fn verdict(p: &Published) -> Verdict {
    match p {
        Published::Matches => Verdict::Ok,
        Published::Differs(_) | Published::Bogus(_) => Verdict::Fail,
        Published::Absent | Published::Insecure | Published::Failed(_) => Verdict::Warn,
    }
}

fn describe(target: &LookupTarget, p: &Published) -> String {
    let at = target.query_name();
    match p {
        Published::Matches => format!("{at}: SECURE, holds this host's key"),
        Published::Differs(n) => format!("{at}: SECURE, but its {n} usable keys are not this host's key: peers will fail to authenticate it"),
        Published::Absent => format!("{at}: no IPSECKEY"),
        Published::Insecure => format!("{at}: IPSECKEY in an unsigned zone (never used)"),
        Published::Bogus(why) => format!("{at}: BOGUS ({why})"),
        Published::Failed(why) => format!("{at}: lookup failed ({why})"),
    }
}

/// The names and addresses to check.
pub fn targets(ctx: &Context) -> Vec<LookupTarget> {
    let mut names: Vec<String> = ctx.names.clone();
    if let Some(name) = ctx.config.identity.id.strip_prefix("fqdn:") {
        names.insert(0, name.to_owned());
    }
    let mut targets: Vec<LookupTarget> = names.iter().filter_map(|n| n.parse().ok()).collect();
    let mut addresses = ctx.addresses.clone();
    if addresses.is_empty() {
        addresses = own_addresses(ctx);
    }
    targets.extend(addresses.into_iter().map(LookupTarget::Reverse));
    targets.dedup();
    targets.truncate(MAX_TARGETS);
    targets
}

/// This host's unicast addresses that fall in an opportunistic group.
fn own_addresses(ctx: &Context) -> Vec<IpAddr> {
    let Ok(table) = ctx.config.group_table() else {
        return Vec::new();
    };
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = interfaces
        .filter_map(|i| i.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_multicast() && !link_local(ip))
        .filter(|ip| table.classify(*ip, 0, 0).group != Group::Clear)
        .filter(|ip| table.classify(*ip, 0, 0).group != Group::Block)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80),
    }
}

/// Looks every target up (in parallel) and compares it with `key`.
pub fn check(ctx: &Context, key: Option<&oe_ike::crypto::PrivateKey>) -> Check {
    let Some(key) = key else {
        return Check::new(
            ID,
            Verdict::Info,
            "no host key, so no published key to check",
        );
    };
    let ours = crate::keys::ike_key_to_dns(&key.public_key());
    let targets = targets(ctx);
    if targets.is_empty() {
        return Check::new(ID, Verdict::Warn, "no name or address of this host to check (no fqdn identity, no address in an opportunistic group)")
            .fix("give them: oe doctor --name HOST --address ADDR");
    }
    let config = match super::anchor::anchors(ctx)
        .and_then(|a| super::anchor::validator_config(ctx, a))
    {
        Ok(c) => c,
        Err(e) => return Check::new(ID, Verdict::Warn, format!("cannot look anything up: {e}")),
    };
    let outcomes: Vec<Published> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let config = config.clone();
                scope.spawn(move || oe_dns::lookup_blocking(config, t).0)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(outcome) => compare(&outcome, &ours),
                Err(_) => Published::Failed("the lookup panicked".into()),
            })
            .collect()
    });
    summarize(&targets, &outcomes, &ours)
}

/// One finding for all targets, with the records to publish where they are missing or wrong.
pub fn summarize(targets: &[LookupTarget], outcomes: &[Published], ours: &PublicKey) -> Check {
    let worst = outcomes.iter().map(verdict).max().unwrap_or(Verdict::Ok);
    let details = targets
        .iter()
        .zip(outcomes)
        .map(|(t, p)| describe(t, p))
        .collect();
    let wrong: Vec<LookupTarget> = targets
        .iter()
        .zip(outcomes)
        .filter(|(_, p)| {
            matches!(
                p,
                Published::Differs(_) | Published::Absent | Published::Insecure
            )
        })
        .map(|(t, _)| t.clone())
        .collect();
    let summary = match worst {
        Verdict::Ok | Verdict::Info => "every record checked holds this host's key, proven by DNSSEC".to_owned(),
        Verdict::Warn => "some names or addresses of this host have no usable IPSECKEY: peers cannot authenticate it there".to_owned(),
        Verdict::Fail => "records published for this host do not authenticate it (another key, or bogus)".to_owned(),
    };
    let mut fixes = Vec::new();
    if !wrong.is_empty() {
        let records = super::super::ipseckey::render(&wrong, ours, 10);
        let records: Vec<&str> = records.lines().filter(|l| !l.starts_with(';')).collect();
        fixes.push(format!(
            "publish in the DNSSEC-signed zones (oe ipseckey prints them): {}",
            records.join(" / ")
        ));
    }
    if outcomes.iter().any(|p| matches!(p, Published::Bogus(_))) {
        fixes.push(
            "for the BOGUS answers: fix resolver-dnssec and trust-anchor first if they fail, \
                    else re-sign the zones (expired or broken signatures)"
                .to_owned(),
        );
    }
    if outcomes.iter().any(|p| matches!(p, Published::Failed(_))) {
        fixes.push("for the failed lookups: check the resolvers (resolver-dnssec)".to_owned());
    }
    let mut check = Check::new(ID, worst, summary).details(details);
    if !fixes.is_empty() {
        check = check.fix(fixes.join("; "));
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_order() {
        let t: Vec<LookupTarget> = vec!["a.example".parse().unwrap(), "192.0.2.1".parse().unwrap()];
        let ours = PublicKey::Ed25519([7; 32]);
        let ok = summarize(&t, &[Published::Matches, Published::Matches], &ours);
        assert_eq!(ok.verdict, Verdict::Ok);
        assert!(ok.fix.is_none());
        let warn = summarize(&t, &[Published::Matches, Published::Absent], &ours);
        assert_eq!(warn.verdict, Verdict::Warn);
        let fix = warn.fix.unwrap();
        assert!(
            fix.contains("1.2.0.192.in-addr.arpa. IN IPSECKEY 10 0 4 ."),
            "{fix}"
        );
        assert!(!fix.contains("a.example"), "{fix}");
        let fail = summarize(&t, &[Published::Differs(1), Published::Absent], &ours);
        assert_eq!(fail.verdict, Verdict::Fail);
        assert!(fail.details[0].contains("not this host's key"));
        let bogus = summarize(
            &t,
            &[Published::Bogus("x".into()), Published::Matches],
            &ours,
        );
        assert_eq!(bogus.verdict, Verdict::Fail);
        assert!(bogus.fix.unwrap().contains("re-sign"));
    }
}
