//! `oe doctor`: checks what opportunistic IPsec needs on this host and prints each finding with
//! its verdict and its fix. It reads the configuration, the kernel, DNS, the status socket's
//! read-only `status` answer and /proc; it changes nothing but a throwaway probe SA (as the agent
//! does at start) and a moment's bind of the IKE ports when they are free.
//!
//! One file per concern: [`kernel`] (ESP), [`agent`] (the running agent), [`resolver`] (DNSSEC
//! through the resolvers), [`anchor`] (the chain of trust), [`trigger`] (the DNS trigger's setup),
//! [`key`] and [`published`] (this host's key and its records), [`ports`] (UDP 500/4500),
//! [`foreign`] (other IKE daemons and XFRM policies).

pub mod agent;
pub mod anchor;
pub mod check;
pub mod dnsquery;
pub mod foreign;
pub mod kernel;
pub mod key;
pub mod ports;
pub mod procs;
pub mod published;
pub mod resolver;
pub mod trigger;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use self::check::{Check, Verdict};
use crate::config::Config;
use crate::status::protocol::StatusReport;

const EXIT_HELP: &str = "\
Exit status:
  0  no check failed: OE can work on this host (warnings say what works less well)
  1  at least one check failed: OE cannot work until it is fixed
  2  bad command-line usage

Run it as root: the kernel, the key and other processes' sockets are root's to inspect.";

/// Arguments of `oe doctor`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct DoctorArgs {
    /// Configuration file [default: /etc/oe/oe.toml if it exists, else the built-in defaults].
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The agent's status socket [default: the configuration's status.socket].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// A name of this host whose IPSECKEY must hold its key; repeatable.
    #[arg(long = "name", value_name = "FQDN")]
    pub names: Vec<String>,
    /// An address of this host whose reverse IPSECKEY must hold its key; repeatable (default:
    /// this host's addresses in an opportunistic group).
    #[arg(long = "address", value_name = "ADDR")]
    pub addresses: Vec<IpAddr>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Deadline for each DNS query, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub timeout: u64,
}

/// What the checks share.
#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub socket: PathBuf,
    pub names: Vec<String>,
    pub addresses: Vec<IpAddr>,
    pub timeout: Duration,
    /// The running agent's status, if it answered.
    pub agent: Option<StatusReport>,
    /// Whether every resolver passed DNSSEC records through (`resolver-dnssec`).
    pub resolvers_pass: bool,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether OE can work: no check failed.
    pub ok: bool,
    pub version: &'static str,
    pub checks: Vec<Check>,
}

/// Runs `oe doctor`.
pub fn run(args: &DoctorArgs) -> ExitCode {
    let report = diagnose(args);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render(&report));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every check, in the order a fix is best made.
pub fn diagnose(args: &DoctorArgs) -> Report {
    let (config_check, config) = load_config(args.config.as_deref());
    let mut ctx = Context {
        socket: args
            .socket
            .clone()
            .unwrap_or_else(|| config.status.socket.clone()),
        config,
        names: args.names.clone(),
        addresses: args.addresses.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
        agent: None,
        resolvers_pass: true,
    };
    let mut checks = vec![config_check, kernel::check()];
    let status = agent::ask(&ctx);
    let expects_traps =
        !ctx.config.groups.private.is_empty() || !ctx.config.groups.private_or_clear.is_empty();
    checks.push(agent::judge(
        &status,
        env!("CARGO_PKG_VERSION"),
        expects_traps,
    ));
    ctx.agent = status.ok();
    let resolvers = resolver::check(&ctx);
    ctx.resolvers_pass = resolvers.verdict != Verdict::Fail;
    checks.push(resolvers);
    checks.push(anchor::check(&ctx));
    checks.push(trigger::check(&ctx));
    let (key_check, key) = key::check(&ctx);
    checks.push(key_check);
    checks.push(published::check(&ctx, key.as_ref()));
    checks.push(ports::check(&ctx));
    checks.extend(foreign::checks());
    Report {
        ok: checks.iter().all(|c| c.verdict != Verdict::Fail),
        version: env!("CARGO_PKG_VERSION"),
        checks,
    }
}

/// The configuration `oe run` would use, and a finding about it; the built-in defaults when it
/// does not load (so the other checks still run).
fn load_config(path: Option<&std::path::Path>) -> (Check, Config) {
    const ID: &str = "config";
    let default = PathBuf::from(super::run::DEFAULT_CONFIG_PATH);
    let path = path
        .map(PathBuf::from)
        .or_else(|| default.exists().then_some(default));
    match path {
        None => (
            Check::new(
                ID,
                Verdict::Ok,
                "no configuration file: the built-in defaults apply",
            ),
            Config::embedded(),
        ),
        Some(path) => match Config::load(&path) {
            Ok(config) => (
                Check::new(ID, Verdict::Ok, format!("{} loads", path.display())),
                config,
            ),
            Err(e) => (
                Check::new(
                    ID,
                    Verdict::Fail,
                    format!("{e}; the checks below use the built-in defaults"),
                )
                .fix(format!(
                    "correct {} (config/oe.toml documents every setting)",
                    path.display()
                )),
                Config::embedded(),
            ),
        },
    }
}

/// The report as text: one block per check, then the conclusion.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in &report.checks {
        let _ = writeln!(
            out,
            "{:<4}  {:<width$}  {}",
            c.verdict.word(),
            c.id,
            c.summary
        );
        for d in &c.details {
            let _ = writeln!(out, "{:<4}  {:<width$}    {d}", "", "");
        }
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "{:<4}  {:<width$}  fix: {fix}", "", "");
        }
    }
    let count = |v: Verdict| report.checks.iter().filter(|c| c.verdict == v).count();
    let (fails, warns) = (count(Verdict::Fail), count(Verdict::Warn));
    let _ = if report.ok {
        writeln!(out, "\nOE can work on this host ({warns} warnings).")
    } else {
        writeln!(
            out,
            "\nOE cannot work on this host: {fails} failed checks, {warns} warnings."
        )
    };
    out
}
