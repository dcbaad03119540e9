//! `dns-trigger`: do applications' name lookups reach the agent's DNS stub, and can the stub
//! forward them?
//!
//! The stub sees a lookup only if the host's resolver configuration names it: /etc/resolv.conf
//! directly, or systemd-resolved (resolv.conf naming 127.0.0.53) with the stub as its `DNS=`
//! server. Without it, OE still works from the kernel's ACQUIRE, but the first packets to a new
//! host wait for IKE (or are lost) instead of leaving encrypted. The stub forwards to
//! `[trigger] upstreams`, else `[dns] upstreams`, else resolv.conf's servers minus itself: if that
//! leaves nothing, every lookup on the host fails.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::check::{Check, Verdict};
use super::Context;

const ID: &str = "dns-trigger";
/// The resolver configuration applications use.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's stub listener.
const RESOLVED_STUB: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 53));
/// Where systemd-resolved reads `DNS=` from (resolved.conf(5)), in the order it reads them.
const RESOLVED_CONFS: &[&str] = &[
    "/etc/systemd/resolved.conf",
    "/etc/systemd/resolved.conf.d",
    "/run/systemd/resolved.conf.d",
    "/usr/lib/systemd/resolved.conf.d",
];

/// The `nameserver` addresses of a resolv.conf text, in order.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next().and_then(|a| a.split('%').next()?.parse().ok()))
                .flatten()
        })
        .collect()
}

/// The addresses in `DNS=` lines of resolved.conf texts (a later empty `DNS=` clears the list).
pub fn resolved_dns(texts: &[String]) -> Vec<IpAddr> {
    let mut servers = Vec::new();
    for text in texts {
        for line in text.lines().map(str::trim) {
            let Some(value) = line.strip_prefix("DNS=") else {
                continue;
            };
            if value.trim().is_empty() {
                servers.clear();
            }
            // Entries are ADDRESS[:PORT][%IFACE][#NAME]; a bare IPv6 address has no port.
            for entry in value.split_whitespace() {
                let bare = entry.split(['#', '%']).next().unwrap_or(entry);
                let addr = bare
                    .parse::<IpAddr>()
                    .ok()
                    .or_else(|| bare.parse::<SocketAddr>().ok().map(|s| s.ip()));
                servers.extend(addr);
            }
        }
    }
    servers
}

/// What the host's configuration looks like to the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The stub's listen addresses.
    pub listen: Vec<IpAddr>,
    /// resolv.conf's nameservers.
    pub resolv: Vec<IpAddr>,
    /// systemd-resolved's DNS= servers (read only when resolv.conf names 127.0.0.53).
    pub resolved: Vec<IpAddr>,
    /// Whether `[trigger] upstreams` or `[dns] upstreams` gives the stub somewhere to forward.
    pub configured_upstreams: bool,
}

/// Judges the setup.
pub fn judge(setup: &Setup) -> Check {
    let stub = |servers: &[IpAddr]| servers.iter().any(|s| setup.listen.contains(s));
    let listen = setup
        .listen
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let first = setup
        .listen
        .first()
        .map_or("127.0.2.53".into(), IpAddr::to_string);
    let forwards_elsewhere = setup.resolv.iter().any(|s| !setup.listen.contains(s));
    if stub(&setup.resolv) {
        if !setup.configured_upstreams && !forwards_elsewhere {
            return Check::new(ID, Verdict::Fail, format!(
                "{RESOLV_CONF} names only the stub ({listen}), and no upstream is configured: the stub has nowhere to forward, so every lookup fails"
            ))
            .fix("set [trigger] upstreams (or [dns] upstreams) to the resolvers the host used before");
        }
        return Check::new(
            ID,
            Verdict::Ok,
            format!("{RESOLV_CONF} sends lookups to the stub ({listen})"),
        );
    }
    if setup.resolv.contains(&RESOLVED_STUB) {
        if stub(&setup.resolved) {
            return Check::new(
                ID,
                Verdict::Ok,
                format!("systemd-resolved (127.0.0.53) forwards lookups to the stub ({listen})"),
            );
        }
        return Check::new(ID, Verdict::Warn, format!(
            "{RESOLV_CONF} names systemd-resolved (127.0.0.53), whose DNS= servers do not include the stub ({listen}): lookups bypass the trigger, so first packets to new hosts wait for IKE"
        ))
        .fix(format!(
            "add a drop-in /etc/systemd/resolved.conf.d/oe.conf with \"[Resolve]\\nDNS={first}\\nDomains=~.\", set [trigger] upstreams to the resolvers resolved used, then systemctl restart systemd-resolved"
        ));
    }
    Check::new(ID, Verdict::Warn, format!(
        "{RESOLV_CONF} does not name the stub ({listen}): lookups bypass the trigger, so first packets to new hosts wait for IKE"
    ))
    .fix(format!(
        "put \"nameserver {first}\" first in {RESOLV_CONF}, and the resolvers it named in [trigger] upstreams"
    ))
}

/// Reads the host's configuration and judges it.
pub fn check(ctx: &Context) -> Check {
    let trigger = &ctx.config.trigger;
    if !trigger.enabled {
        return Check::new(
            ID,
            Verdict::Info,
            "the DNS trigger is disabled ([trigger] enabled = false)",
        );
    }
    let listen: Vec<IpAddr> = trigger
        .listen
        .iter()
        .filter_map(|l| oe_dns::parse_server(l, 53).ok().map(|s| s.ip()))
        .collect();
    let resolv = match std::fs::read_to_string(RESOLV_CONF) {
        Ok(text) => nameservers(&text),
        Err(e) => return Check::new(ID, Verdict::Warn, format!("cannot read {RESOLV_CONF}: {e}")),
    };
    let resolved = if resolv.contains(&RESOLVED_STUB) {
        resolved_dns(&resolved_texts())
    } else {
        Vec::new()
    };
    let setup = Setup {
        listen,
        resolv,
        resolved,
        configured_upstreams: !trigger.upstreams.is_empty() || !ctx.config.dns.upstreams.is_empty(),
    };
    let mut check = judge(&setup);
    if let Some(running) = ctx.agent.as_ref() {
        if running.trigger.is_none() && check.verdict == Verdict::Ok {
            check = Check::new(ID, Verdict::Fail, "the host sends lookups to the stub, but the running agent has no DNS trigger: every lookup fails")
                .fix("see the agent's log (journalctl -u oe) for why the stub did not start");
        }
    }
    check
}

/// resolved.conf and its drop-ins, in the order systemd-resolved applies them.
fn resolved_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for place in RESOLVED_CONFS {
        let path = Path::new(place);
        if path.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            files.sort();
            texts.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
        } else if let Ok(text) = std::fs::read_to_string(path) {
            texts.push(text);
        }
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn setup(resolv: &[&str], resolved: &[&str], upstreams: bool) -> Setup {
        Setup {
            listen: vec![ip("127.0.2.53")],
            resolv: resolv.iter().map(|s| ip(s)).collect(),
            resolved: resolved.iter().map(|s| ip(s)).collect(),
            configured_upstreams: upstreams,
        }
    }

    #[test]
    fn reads_nameservers_and_resolved_dns() {
        let text = "# generated\nsearch example\nnameserver 127.0.2.53\nnameserver fe80::1%eth0\nnameserver  192.0.2.1 \noptions edns0\n";
        assert_eq!(
            nameservers(text),
            [ip("127.0.2.53"), ip("fe80::1"), ip("192.0.2.1")]
        );
        let confs = [
            "[Resolve]\nDNS=192.0.2.9 2001:db8::9\n".to_owned(),
            "[Resolve]\nDNS=\nDNS=127.0.2.53:53 192.0.2.1#dns.example\n".to_owned(),
        ];
        assert_eq!(resolved_dns(&confs), [ip("127.0.2.53"), ip("192.0.2.1")]);
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(&setup(&["127.0.2.53"], &[], true)).verdict,
            Verdict::Ok
        );
        assert_eq!(
            judge(&setup(&["127.0.2.53", "192.0.2.1"], &[], false)).verdict,
            Verdict::Ok
        );
        let alone = judge(&setup(&["127.0.2.53"], &[], false));
        assert_eq!(alone.verdict, Verdict::Fail);
        assert!(alone.summary.contains("nowhere to forward"));
        let bypass = judge(&setup(&["192.0.2.1"], &[], true));
        assert_eq!(bypass.verdict, Verdict::Warn);
        assert!(bypass.fix.unwrap().contains("nameserver 127.0.2.53"));
        assert_eq!(
            judge(&setup(&["127.0.0.53"], &["127.0.2.53"], true)).verdict,
            Verdict::Ok
        );
        let resolved = judge(&setup(&["127.0.0.53"], &["192.0.2.1"], true));
        assert_eq!(resolved.verdict, Verdict::Warn);
        assert!(resolved.fix.unwrap().contains("resolved.conf.d"));
    }
}
