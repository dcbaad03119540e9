//! `trust-anchor`: the configured trust anchor loads, and the chain of trust works from it: the
//! root zone's proof that it has no IPSECKEY (NSEC/NSEC3, RFC 4035 section 5.4) validates through
//! the agent's own validator and resolvers. A chain that fails there fails for every host, so
//! this tells a wrong anchor or a stripping resolver apart from a problem with one zone.

use std::path::Path;

use oe_dns::{
    AnchorSet, Answer, Denial, LookupError, LookupTarget, Name, Upstream, ValidatorConfig,
};

use super::check::{Check, Verdict};
use super::Context;

const ID: &str = "trust-anchor";

/// The anchors the agent would use: the file of `[dns] trust_anchor`, else the IANA root keys.
pub fn anchors(ctx: &Context) -> Result<AnchorSet, String> {
    let file = &ctx.config.dns.trust_anchor;
    if file.is_empty() {
        return Ok(AnchorSet::iana());
    }
    AnchorSet::from_file(Path::new(file)).map_err(|e| e.to_string())
}

/// The validator's settings as the agent derives them from `[dns]`.
pub fn validator_config(ctx: &Context, anchors: AnchorSet) -> Result<ValidatorConfig, String> {
    let mut config = ValidatorConfig {
        lookup_timeout: ctx.config.dns.timeout.min(ctx.timeout * 3),
        anchors,
        ..ValidatorConfig::default()
    };
    if !ctx.config.dns.upstreams.is_empty() {
        let servers = ctx
            .config
            .dns
            .upstreams
            .iter()
            .map(|s| oe_dns::parse_server(s, 53))
            .collect::<Result<Vec<_>, _>>()?;
        config.upstream = Upstream::Servers(servers);
    }
    Ok(config)
}

/// Loads the anchor and validates the root's denial of IPSECKEY from it.
pub fn check(ctx: &Context) -> Check {
    let anchors = match anchors(ctx) {
        Ok(a) => a,
        Err(e) => {
            return Check::new(
                ID,
                Verdict::Fail,
                format!("the trust anchor does not load: {e}"),
            )
            .fix("fix or empty [dns] trust_anchor (empty means the IANA root keys built in)")
        }
    };
    let source = anchors.source.clone();
    let loaded = format!(
        "{} DNSKEY and {} DS anchors",
        anchors.keys.len(),
        anchors.ds.len()
    );
    let config = match validator_config(ctx, anchors) {
        Ok(c) => c,
        Err(e) => return Check::new(ID, Verdict::Fail, format!("[dns] upstreams: {e}")),
    };
    let (outcome, _) = oe_dns::lookup_blocking(config, &LookupTarget::Forward(Name::root()));
    judge(&outcome, &source, ctx.resolvers_pass).details(vec![format!("{source}: {loaded}")])
}

/// The verdict on the root's IPSECKEY lookup; `resolvers_pass` says whether the resolvers pass
/// DNSSEC records, which decides what a failure points to.
pub fn judge(outcome: &Result<Answer, LookupError>, source: &str, resolvers_pass: bool) -> Check {
    if !resolvers_pass && outcome.is_err() {
        return Check::new(
            ID,
            Verdict::Fail,
            format!(
            "validation from {source} fails, as it must while the resolvers drop DNSSEC records"
        ),
        )
        .fix("fix resolver-dnssec first");
    }
    match outcome {
        Ok(Answer::Absent(a)) if a.denial != Denial::Unsigned => Check::new(
            ID,
            Verdict::Ok,
            format!("DNSSEC validates from {source} (the root's signed denial of IPSECKEY)"),
        ),
        Ok(Answer::Secure(_)) => {
            Check::new(ID, Verdict::Ok, format!("DNSSEC validates from {source}"))
        }
        Ok(_) => Check::new(
            ID,
            Verdict::Fail,
            "the root zone looks unsigned: the resolvers drop DNSSEC records (see resolver-dnssec)",
        )
        .fix("use resolvers that pass DNSSEC"),
        Err(LookupError::Bogus(why)) => Check::new(
            ID,
            Verdict::Fail,
            format!("validation from {source} fails ({why}): every key would be bogus"),
        )
        .fix(
            "the resolvers pass DNSSEC records, so the anchor does not match the root they serve: \
              correct [dns] trust_anchor (empty for the IANA root keys)",
        ),
        Err(why) => Check::new(
            ID,
            Verdict::Fail,
            format!("no validated answer could be had: {why}"),
        )
        .fix("check that the resolvers answer (resolver-dnssec)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oe_dns::Absence;
    use std::time::SystemTime;

    fn absent(denial: Denial) -> Result<Answer, LookupError> {
        Ok(Answer::Absent(Absence {
            owner: Name::root(),
            nxdomain: false,
            denial,
            valid_until: SystemTime::now(),
        }))
    }

    #[test]
    fn only_a_proven_denial_is_a_working_chain() {
        assert_eq!(judge(&absent(Denial::Nsec), "a", true).verdict, Verdict::Ok);
        assert_eq!(
            judge(&absent(Denial::Nsec3), "a", true).verdict,
            Verdict::Ok
        );
        assert_eq!(
            judge(&absent(Denial::Unsigned), "a", true).verdict,
            Verdict::Fail
        );
        let bogus = judge(
            &Err(LookupError::Bogus("no trusted key".into())),
            "file x",
            true,
        );
        assert_eq!(bogus.verdict, Verdict::Fail);
        assert!(bogus.summary.contains("file x") && bogus.summary.contains("no trusted key"));
        assert!(bogus.fix.unwrap().contains("trust_anchor"));
        let stripped = judge(&Err(LookupError::Bogus("x".into())), "a", false);
        assert_eq!(stripped.verdict, Verdict::Fail);
        assert!(stripped.fix.unwrap().contains("resolver-dnssec"));
    }
}
