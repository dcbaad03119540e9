//! `foreign-ipsec`: other IKE daemons in this network namespace, and XFRM policies and SAs that
//! are not the agent's.
//!
//! Two IKE daemons on one host fight over UDP 500/4500 and the kernel's policies. A policy that is
//! not ours (oe-kernel `Ownership`) beats ours for the traffic it matches: foreign policies sit
//! below oe's priority band (oe-kernel `priority`), and the kernel picks the lowest priority
//! value. Left-overs from another daemon can so keep hosts in clear or drop their traffic.

use oe_kernel::{Ownership, PolicyInfo, Xfrm};

use super::check::{Check, Verdict};
use super::procs::{in_our_netns, Process};

const DAEMONS_ID: &str = "ike-daemons";
const POLICIES_ID: &str = "foreign-xfrm";
/// Programs (as /proc/PID/comm names them) that are IKE daemons, and how to stop each.
const IKE_DAEMONS: &[(&str, &str)] = &[
    (
        "charon",
        "strongSwan: systemctl disable --now strongswan-starter (or ipsec stop)",
    ),
    (
        "charon-systemd",
        "strongSwan: systemctl disable --now strongswan",
    ),
    ("pluto", "Libreswan: systemctl disable --now ipsec"),
    ("iked", "OpenIKED: systemctl disable --now iked"),
    ("racoon", "ipsec-tools: systemctl disable --now racoon"),
];
/// Foreign policies listed by name.
const LISTED: usize = 5;

/// Other IKE daemons among `processes`.
pub fn judge_daemons(processes: &[Process]) -> Check {
    let found: Vec<(&Process, &str)> = processes
        .iter()
        .filter_map(|p| {
            IKE_DAEMONS
                .iter()
                .find(|(c, _)| *c == p.comm)
                .map(|(_, fix)| (p, *fix))
        })
        .collect();
    match found.first() {
        None => Check::new(DAEMONS_ID, Verdict::Ok, "no other IKE daemon runs in this network namespace"),
        Some(_) => Check::new(
            DAEMONS_ID,
            Verdict::Fail,
            "another IKE daemon runs here: it competes for UDP 500/4500 and installs policies that take precedence over oe's",
        )
        .details(found.iter().map(|(p, _)| format!("{} (pid {})", p.comm, p.pid)).collect())
        .fix(found.iter().map(|(_, fix)| *fix).collect::<Vec<_>>().join("; ")),
    }
}

/// One line for a policy.
fn describe(p: &PolicyInfo) -> String {
    let selector = p
        .selector()
        .map_or_else(|| "(a selector oe cannot show)".into(), |s| s.to_string());
    let action = match (p.block, p.templates.is_empty()) {
        (true, _) => "block",
        (false, true) => "allow (clear)",
        (false, false) => "ipsec",
    };
    format!("{:?} {selector} priority {} {action}", p.dir(), p.priority)
}

/// The policies that are not the agent's.
pub fn judge_policies(policies: &[PolicyInfo], ownership: &Ownership) -> Check {
    let foreign: Vec<&PolicyInfo> = policies
        .iter()
        .filter(|p| !ownership.owns_policy(p))
        .collect();
    if foreign.is_empty() {
        return Check::new(POLICIES_ID, Verdict::Ok, "no XFRM policy but the agent's");
    }
    let mut details: Vec<String> = foreign.iter().take(LISTED).map(|p| describe(p)).collect();
    if foreign.len() > LISTED {
        details.push(format!(
            "... and {} more (ip xfrm policy)",
            foreign.len() - LISTED
        ));
    }
    Check::new(POLICIES_ID, Verdict::Warn, format!(
        "{} XFRM policies are not the agent's: they take precedence over oe for the traffic they match",
        foreign.len()
    ))
    .details(details)
    .fix("if they are left over from another IPsec setup, remove them (ip xfrm policy delete ...); if another daemon installs them, stop it")
}

/// Both checks (the kernel one needs root).
pub fn checks() -> Vec<Check> {
    let mut out = vec![judge_daemons(&in_our_netns())];
    out.push(policies());
    out
}

fn policies() -> Check {
    let ownership = Ownership::default();
    let dumped = oe_kernel::block_on(async {
        let mut xfrm = Xfrm::open(ownership)?;
        xfrm.dump_policies().await
    });
    let dumped = match dumped {
        Ok(inner) => inner.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match dumped {
        Ok(policies) => judge_policies(&policies, &ownership),
        Err(e) => Check::new(
            POLICIES_ID,
            Verdict::Warn,
            format!("cannot list XFRM policies: {e}"),
        )
        .fix("run oe doctor as root"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemons_are_named_with_their_fix() {
        let p = |pid, comm: &str| Process {
            pid,
            comm: comm.into(),
        };
        assert_eq!(
            judge_daemons(&[p(1, "systemd"), p(2, "oe")]).verdict,
            Verdict::Ok
        );
        let c = judge_daemons(&[p(1, "systemd"), p(7, "charon"), p(8, "pluto")]);
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(c.details, ["charon (pid 7)", "pluto (pid 8)"]);
        assert!(c.fix.unwrap().contains("disable --now ipsec"));
    }
}
