//! `agent`: the agent answers on its status socket, runs this version, and is not degraded. Only
//! the socket's read-only `status` question is asked (docs/status-protocol.md).

use crate::status::protocol::{Report, Request, StatusReport};

use super::check::{Check, Verdict};
use super::Context;
use crate::cli::show::{reports, Failure, ShowArgs};

const ID: &str = "agent";

/// Asks the agent for its status.
pub fn ask(ctx: &Context) -> Result<StatusReport, String> {
    let args = ShowArgs {
        socket: Some(ctx.socket.clone()),
        config: None,
        json: false,
    };
    match reports(&args, vec![Request::Status]) {
        Ok(mut r) => match r.pop() {
            Some(Report::Status(s)) => Ok(s),
            _ => Err("the agent answered with another report".into()),
        },
        Err(
            Failure::NotRunning(m) | Failure::Agent(m) | Failure::Other(m) | Failure::Config(m),
        ) => Err(m),
    }
}

/// Judges the answer (or its absence).
/// `expects_traps`: the configuration has `private` or `private-or-clear` entries.
pub fn judge(
    status: &Result<StatusReport, String>,
    our_version: &str,
    expects_traps: bool,
) -> Check {
    let s = match status {
        Ok(s) => s,
        Err(why) => {
            return Check::new(
                ID,
                Verdict::Warn,
                format!("the agent does not answer: {why}"),
            )
            .fix("start it: systemctl start oe (or oe run)")
        }
    };
    let running = format!("oe {} runs (pid {}, {})", s.version, s.pid, s.state);
    if s.state == "degraded" {
        let why = s
            .degraded_reason
            .clone()
            .unwrap_or_else(|| s.kernel.detail.clone());
        return Check::new(
            ID,
            Verdict::Fail,
            format!("{running}: it encrypts nothing ({why})"),
        )
        .fix("fix kernel-esp, then systemctl restart oe");
    }
    if s.version != our_version {
        return Check::new(
            ID,
            Verdict::Warn,
            format!("{running}, but this oe is {our_version}"),
        )
        .fix("restart the agent to run the installed version: systemctl restart oe");
    }
    if expects_traps && !s.traps_installed && s.state == "running" {
        return Check::new(
            ID,
            Verdict::Warn,
            format!("{running}, but its trap policies are not installed"),
        )
        .fix("see journalctl -u oe for the policies it could not install");
    }
    Check::new(ID, Verdict::Ok, running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::protocol::{Counters, KernelReport};

    fn status(state: &str, version: &str, traps: bool) -> Result<StatusReport, String> {
        Ok(StatusReport {
            version: version.into(),
            pid: 42,
            uptime_secs: 1,
            state: state.into(),
            kernel: KernelReport {
                esp: state != "degraded",
                detail: "no ESP".into(),
            },
            traps_installed: traps,
            identity: "address".into(),
            key: "null".into(),
            peers: 0,
            child_sas: 0,
            shunts: 0,
            dns_cache_entries: 0,
            counters: Counters::default(),
            degraded_reason: None,
            trigger: None,
            latency: Default::default(),
        })
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(&status("running", "1.0", true), "1.0", true).verdict,
            Verdict::Ok
        );
        assert_eq!(
            judge(&status("running", "1.0", false), "1.0", false).verdict,
            Verdict::Ok
        );
        assert_eq!(
            judge(&status("running", "1.0", false), "1.0", true).verdict,
            Verdict::Warn
        );
        let old = judge(&status("running", "0.9", true), "1.0", true);
        assert_eq!(old.verdict, Verdict::Warn);
        assert!(old.fix.unwrap().contains("restart"));
        let degraded = judge(&status("degraded", "1.0", false), "1.0", true);
        assert_eq!(degraded.verdict, Verdict::Fail);
        assert!(degraded.summary.contains("no ESP"));
        assert_eq!(
            judge(&Err("refused".into()), "1.0", true).verdict,
            Verdict::Warn
        );
    }
}
