//! `oe status`, `oe peers`, `oe shunts`, `oe dns-cache`, `oe events`, `oe explain HOST`: ask the
//! running agent over its status socket (docs/status-protocol.md) and print a table, or the
//! answer's JSON with `--json`.
//!
//! Rendering is a set of pure functions from the protocol's report types to text
//! ([`render_report`], [`render_event`]), tested on sample reports; the commands only connect,
//! ask and print.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, UNIX_EPOCH};

use super::keygen::config_or_defaults;
use crate::status::client::{Client, ClientError};
use crate::status::protocol::{
    ChildSaReport, DnsCacheEntry, ErrorReport, EventReport, ExplainReport, PeerReport, Report,
    Request, Response, ShuntReport, StatusReport,
};

const EXIT_HELP: &str = "\
Exit status:
  0  the agent answered
  1  the agent answered with an error, sent something unreadable, did not answer in time, or
     closed an --follow stream
  2  bad command-line usage or configuration file
  3  cannot connect to the status socket (the agent is not running, or no permission)";

/// Exit status when the status socket cannot be reached.
const EXIT_NOT_RUNNING: u8 = 3;

/// How long a one-shot question may wait for its answer (`explain` may resolve a name first).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Options every status command takes.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct ShowArgs {
    /// The agent's status socket [default: the configuration's status.socket, /run/oe/oe.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Configuration file (for status.socket).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the agent's answer as JSON instead of a table (JSON lines with --follow).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `oe events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// After the recent events, keep printing new ones until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub show: ShowArgs,
}

/// Arguments of `oe explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A host name or an IPv4/IPv6 address.
    pub host: String,
    #[command(flatten)]
    pub show: ShowArgs,
}

/// Runs `oe status`.
pub fn status(args: &ShowArgs) -> ExitCode {
    one_shot(args, Request::Status)
}

/// Runs `oe peers`.
pub fn peers(args: &ShowArgs) -> ExitCode {
    one_shot(args, Request::Peers)
}

/// Runs `oe shunts`.
pub fn shunts(args: &ShowArgs) -> ExitCode {
    one_shot(args, Request::Shunts)
}

/// Runs `oe dns-cache`.
pub fn dns_cache(args: &ShowArgs) -> ExitCode {
    one_shot(args, Request::DnsCache)
}

/// Runs `oe explain HOST`.
pub fn explain(args: &ExplainArgs) -> ExitCode {
    one_shot(
        &args.show,
        Request::Explain {
            host: args.host.clone(),
        },
    )
}

/// Runs `oe events [--follow]`.
pub fn events(args: &EventsArgs) -> ExitCode {
    let request = Request::Events {
        follow: args.follow,
    };
    if !args.follow {
        return one_shot(&args.show, request);
    }
    let mut client = match connect(&args.show) {
        Ok(client) => client,
        Err(failure) => return failure.report(),
    };
    match client
        .ask(&request)
        .map_err(Failure::from)
        .and_then(expect_report)
    {
        Ok(Report::Events { events }) => events.iter().for_each(|e| print_event(e, args.show.json)),
        Ok(other) => print!("{}", render_report(&other)),
        Err(failure) => return failure.report(),
    }
    loop {
        match client.next() {
            Ok(Response::Event { event, .. }) => print_event(&event, args.show.json),
            Ok(Response::Err { error, .. }) => return Failure::Agent(error_text(&error)).report(),
            Ok(Response::Ok { .. }) => {}
            Err(ClientError::Closed) => {
                return Failure::Other("the agent closed the event stream (stopped?)".into())
                    .report()
            }
            Err(e) => return Failure::from(e).report(),
        }
    }
}

fn print_event(event: &EventReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(event).unwrap_or_default());
    } else {
        println!("{}", render_event(event));
    }
}

/// Why a command got no usable answer.
#[derive(Debug)]
pub(super) enum Failure {
    Config(String),
    NotRunning(String),
    Agent(String),
    Other(String),
}

impl Failure {
    pub(super) fn report(self) -> ExitCode {
        let (message, code) = match self {
            Self::Config(m) => (m, 2),
            Self::NotRunning(m) => (m, EXIT_NOT_RUNNING),
            Self::Agent(m) => (format!("the agent refused: {m}"), 1),
            Self::Other(m) => (m, 1),
        };
        eprintln!("oe: {message}");
        ExitCode::from(code)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Connect { path, source } => {
                let hint = match source.kind() {
                    std::io::ErrorKind::PermissionDenied => {
                        "the socket is mode 0600 by default: run as root, or set status.group"
                    }
                    _ => "is the agent (`oe run`) running? is the path right? see --socket",
                };
                Self::NotRunning(format!(
                    "cannot connect to the agent at {path}: {source} ({hint})"
                ))
            }
            other => Self::Other(other.to_string()),
        }
    }
}

fn connect(args: &ShowArgs) -> Result<Client, Failure> {
    let socket = match &args.socket {
        Some(path) => path.clone(),
        None => {
            let config = config_or_defaults(args.config.as_deref())
                .map_err(|e| Failure::Config(e.to_string()))?;
            config.status.socket
        }
    };
    Client::connect(&socket).map_err(Failure::from)
}

pub(crate) fn one_shot(args: &ShowArgs, request: Request) -> ExitCode {
    let result = connect(args).and_then(|client| ask_in_time(client, request));
    match result.and_then(expect_report) {
        Ok(report) if args.json => match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => Failure::Other(e.to_string()).report(),
        },
        Ok(report) => {
            print!("{}", render_report(&report));
            ExitCode::SUCCESS
        }
        Err(failure) => failure.report(),
    }
}

/// Asks on a helper thread, so an agent that accepts but never answers cannot hang the CLI.
fn ask_in_time(client: Client, request: Request) -> Result<Response, Failure> {
    let mut answers = ask_several(client, vec![request])?;
    answers
        .pop()
        .ok_or_else(|| Failure::Other("the agent sent no answer".into()))
}

/// Asks `requests` one after another on one connection, within one [`ANSWER_TIMEOUT`].
fn ask_several(mut client: Client, requests: Vec<Request>) -> Result<Vec<Response>, Failure> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let answers: Result<Vec<Response>, ClientError> =
            requests.iter().map(|r| client.ask(r)).collect();
        let _ = tx.send(answers);
    });
    match rx.recv_timeout(ANSWER_TIMEOUT) {
        Ok(answers) => answers.map_err(Failure::from),
        Err(_) => Err(Failure::Other(format!(
            "the agent did not answer within {}s",
            ANSWER_TIMEOUT.as_secs()
        ))),
    }
}

/// Connects as `args` say and asks `requests` on one connection; the reports in order.
pub(super) fn reports(args: &ShowArgs, requests: Vec<Request>) -> Result<Vec<Report>, Failure> {
    let answers = connect(args).and_then(|client| ask_several(client, requests))?;
    answers.into_iter().map(expect_report).collect()
}

fn expect_report(response: Response) -> Result<Report, Failure> {
    match response {
        Response::Ok { result, .. } => Ok(result),
        Response::Err { error, .. } => Err(Failure::Agent(error_text(&error))),
        Response::Event { .. } => Err(Failure::Other(
            "the agent sent an event, not an answer".into(),
        )),
    }
}

/// `code: message`, with the code as the protocol writes it (`bad-request`).
fn error_text(error: &ErrorReport) -> String {
    let code = serde_json::to_value(error.code).ok();
    let code = code.as_ref().and_then(|c| c.as_str()).unwrap_or("error");
    format!("{code}: {}", error.message)
}

/// Any report as text.
pub fn render_report(report: &Report) -> String {
    match report {
        Report::Status(s) => render_status(s),
        Report::Peers { peers } => render_peers(peers),
        Report::Shunts { shunts } => render_shunts(shunts),
        Report::DnsCache { entries } => render_dns_cache(entries),
        Report::Explain(e) => render_explain(e),
        Report::Events { events } => render_events(events),
        Report::Control { results } => render_control(results),
    }
}

/// `oe retry/up/down`: one line per address of the host.
pub fn render_control(results: &[oe_policy::protocol::ControlResult]) -> String {
    if results.is_empty() {
        return "no address to act on\n".into();
    }
    results
        .iter()
        .map(|r| format!("{}: {}\n", r.address, r.outcome))
        .collect()
}

/// `oe status`: one aligned `label: value` list.
pub fn render_status(s: &StatusReport) -> String {
    let kernel = if s.kernel.esp {
        "ESP available"
    } else {
        "no ESP"
    };
    let c = &s.counters;
    let mut rows = vec![
        (
            "agent",
            format!(
                "oe {}, pid {}, up {}: {}",
                s.version,
                s.pid,
                duration(s.uptime_secs),
                s.state
            ),
        ),
        ("kernel", format!("{kernel} ({})", s.kernel.detail)),
        (
            "traps",
            if s.traps_installed {
                "installed"
            } else {
                "not installed"
            }
            .to_owned(),
        ),
        ("identity", format!("{} ({} key)", s.identity, s.key)),
        ("peers", format!("{} ({} child SAs)", s.peers, s.child_sas)),
        ("shunts", s.shunts.to_string()),
        ("DNS cache", format!("{} entries", s.dns_cache_entries)),
        ("acquires", c.acquires.to_string()),
        (
            "negotiations",
            format!(
                "{} started, {} succeeded, {} failed",
                c.negotiations_started, c.negotiations_succeeded, c.negotiations_failed
            ),
        ),
        ("responder SAs", c.responder_sas.to_string()),
        ("DNS lookups", c.dns_lookups.to_string()),
        ("rekeys", c.rekeys.to_string()),
        ("idle teardowns", c.idle_teardowns.to_string()),
    ];
    if let Some(reason) = &s.degraded_reason {
        rows.insert(1, ("degraded", reason.clone()));
    }
    if let Some(t) = &s.trigger {
        rows.push(("DNS trigger", format!(
            "on {}: {} queries, {} opportunistic, {} with a secure key, {} held (mean {:.0} ms, {} expired), \
             {} without key, {} insecure, {} bogus, {} late keys, {} lookup failures, {} unproven addresses; \
             {} FORMERR, {} NOTIMP, {} dropped, {} shed, {} upstream failures",
            t.listen.join(" "), t.queries, t.opportunistic, t.secure_keys, t.held, t.hold_mean_ms,
            t.hold_expired, t.no_key, t.insecure, t.bogus, t.late_keys, t.lookup_failures,
            t.addresses_not_proven, t.formerr, t.notimp, t.dropped, t.shed, t.upstream_failures
        )));
        if let Some(u) = &t.upstream {
            let source = u.source.as_deref().unwrap_or("nowhere");
            rows.push((
                "DNS upstreams",
                format!("{} (from {source})", u.servers.join(" ")),
            ));
            if let Some(problem) = &u.problem {
                rows.push(("DNS problem", problem.clone()));
            }
        }
    }
    labelled(&rows)
}

/// `oe peers`: a table of peers and their IKE SAs, then one of child SAs.
pub fn render_peers(peers: &[PeerReport]) -> String {
    if peers.is_empty() {
        return "no peers\n".into();
    }
    let mut table = Table::new(&[
        "PEER",
        "STATE",
        "ROLE",
        "IDENTITY",
        "AUTHENTICATION",
        "IKE SA",
        "POST-QUANTUM",
        "UP",
        "REKEY IN",
    ]);
    let mut children = Table::new(&[
        "PEER",
        "ESP",
        "SPI IN",
        "SPI OUT",
        "SELECTORS",
        ">BYTES IN",
        ">BYTES OUT",
        ">PACKETS IN",
        ">PACKETS OUT",
        ">IDLE",
        ">UP",
        ">REKEY IN",
    ]);
    for p in peers {
        let ike = p.ike_sa.as_ref();
        table.row(vec![
            peer_column(p),
            p.state.clone(),
            p.role.clone(),
            dash(p.identity.as_deref()),
            dash(p.authentication.as_deref()),
            dash(ike.map(|i| i.proposal.as_str()).filter(|p| !p.is_empty())),
            ike.map_or_else(
                || "-".into(),
                |i| match i.post_quantum.as_slice() {
                    [] => "no".into(),
                    names => names.join("+"),
                },
            ),
            ike.map_or_else(|| "-".into(), |i| duration(i.established_secs_ago)),
            ike.map_or_else(|| "-".into(), |i| duration(i.rekey_in_secs)),
        ]);
        for c in &p.child_sas {
            children.row(child_row(p, c));
        }
    }
    let mut text = table.render();
    if !children.is_empty() {
        text.push_str("\nchild SAs\n");
        text.push_str(&children.render());
    }
    text
}

/// "AES_GCM_16_256 tunnel, UDP 4500 -> 31000 (NAT), via 100.64.0.7".
fn esp_column(c: &ChildSaReport) -> String {
    let mut text = c.esp.clone();
    if !c.mode.is_empty() {
        text = format!("{text} {}", c.mode);
    }
    if let Some(e) = &c.encapsulation {
        text = format!("{text}, {e}");
    }
    if let Some(a) = c.virtual_ip {
        text = format!("{text}, via {a}");
    }
    text
}

/// "192.0.2.100 (100.64.0.2)" for a peer we assigned an address, else its address.
fn peer_column(p: &PeerReport) -> String {
    match p.assigned_ip {
        Some(a) => format!("{} ({a})", p.address),
        None => p.address.to_string(),
    }
}

fn child_row(peer: &PeerReport, c: &ChildSaReport) -> Vec<String> {
    vec![
        peer_column(peer),
        esp_column(c),
        c.spi_in.clone(),
        c.spi_out.clone(),
        c.selectors.clone(),
        size(c.bytes_in),
        size(c.bytes_out),
        c.packets_in.to_string(),
        c.packets_out.to_string(),
        c.idle_secs.map_or_else(|| "never used".into(), duration),
        duration(c.established_secs_ago),
        duration(c.rekey_in_secs),
    ]
}

/// `oe shunts`.
pub fn render_shunts(shunts: &[ShuntReport]) -> String {
    if shunts.is_empty() {
        return "no shunts\n".into();
    }
    let mut table = Table::new(&[
        "PEER",
        "ACTION",
        "STAGE",
        "GROUP",
        ">AGE",
        ">EXPIRES IN",
        "REASON",
    ]);
    for s in shunts {
        table.row(vec![
            s.peer.to_string(),
            s.action.clone(),
            s.stage.clone(),
            s.group.clone(),
            duration(s.installed_secs_ago),
            s.expires_in_secs.map_or_else(|| "never".into(), duration),
            s.reason.clone(),
        ]);
    }
    table.render()
}

/// `oe dns-cache`.
pub fn render_dns_cache(entries: &[DnsCacheEntry]) -> String {
    if entries.is_empty() {
        return "the DNS cache is empty\n".into();
    }
    let mut table = Table::new(&["NAME", "OUTCOME", ">EXPIRES IN", "KEYS"]);
    for e in entries {
        let keys = if e.keys.is_empty() {
            "-".to_owned()
        } else {
            e.keys.join(", ")
        };
        table.row(vec![
            e.name.clone(),
            e.outcome.clone(),
            duration(e.expires_in_secs),
            keys,
        ]);
    }
    table.render()
}

/// `oe explain HOST`: for each address, the group, DNS, IKE, what is installed, and a verdict.
pub fn render_explain(report: &ExplainReport) -> String {
    let mut text = format!("{}\n", report.host);
    for t in &report.trigger {
        let _ = writeln!(text, "  DNS trigger: {t}");
    }
    if report.addresses.is_empty() {
        text.push_str("  no addresses: nothing to explain\n");
    }
    for a in &report.addresses {
        let _ = writeln!(text, "  {}", a.address);
        let mut rows = vec![
            ("group", a.group.clone()),
            ("matched", a.matched_entry.clone()),
        ];
        if a.dns.is_empty() {
            rows.push(("DNS", "no lookup".into()));
        }
        rows.extend(a.dns.iter().map(|d| ("DNS", d.clone())));
        rows.push((
            "IKE",
            a.ike.clone().unwrap_or_else(|| "no negotiation".into()),
        ));
        rows.push(("now", a.current.clone()));
        rows.push(("verdict", a.verdict.clone()));
        for line in labelled(&rows).lines() {
            let _ = writeln!(text, "    {line}");
        }
    }
    text
}

/// `oe events`.
pub fn render_events(events: &[EventReport]) -> String {
    if events.is_empty() {
        return "no events\n".into();
    }
    let mut table = Table::new(&["TIME", "KIND", "PEER", "DETAIL"]);
    for e in events {
        table.row(vec![
            time(e.time),
            e.kind.clone(),
            peer(e),
            e.detail.clone(),
        ]);
    }
    table.render()
}

/// One event on one line, for `oe events --follow`.
pub fn render_event(e: &EventReport) -> String {
    format!("{}  {}  {}  {}", time(e.time), e.kind, peer(e), e.detail)
}

fn peer(e: &EventReport) -> String {
    e.peer.map_or_else(|| "-".into(), |p| p.to_string())
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// Seconds since the epoch as UTC, to the second (RFC 3339).
fn time(secs: f64) -> String {
    Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .map_or_else(
            || format!("{secs}"),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
}

/// A duration for people: "42s", "4m12s", "3h05m", "2d04h".
pub fn duration(secs: u64) -> String {
    let (m, s) = (secs / 60, secs % 60);
    let (h, m) = (m / 60, m % 60);
    let (d, h) = (h / 24, h % 24);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// A byte count for people, in SI units: "512 B", "1.2 kB", "3.4 MB".
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut scale: u128 = 1000;
    for unit in UNITS {
        // Tenths of the unit, rounded half up; move on when that rounds to 1000.0 or more.
        let tenths = (u128::from(bytes) * 10 + scale / 2) / scale;
        if tenths < 10_000 {
            return format!("{}.{} {unit}", tenths / 10, tenths % 10);
        }
        scale *= 1000;
    }
    format!("{bytes} B")
}

/// `label: value` lines with the values aligned.
fn labelled(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    rows.iter()
        .map(|(label, value)| format!("{:<width$} {value}\n", format!("{label}:")))
        .collect()
}

/// Columns aligned by padding; titles starting with '>' are right-aligned (numbers, durations).
struct Table {
    titles: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(titles: &[&str]) -> Self {
        Self {
            titles: titles
                .iter()
                .map(|t| t.trim_start_matches('>').to_owned())
                .collect(),
            right: titles.iter().map(|t| t.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self.titles.iter().map(|t| t.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.titles).chain(&self.rows) {
            let mut line = String::new();
            for ((cell, width), right) in row.iter().zip(&widths).zip(&self.right) {
                let width = *width;
                if *right {
                    let _ = write!(line, "{cell:>width$}  ");
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::protocol::{
        AddressExplanation, ChildSaReport, Counters, IkeSaReport, KernelReport,
    };

    fn status_report() -> StatusReport {
        StatusReport {
            version: "0.1.0".into(),
            pid: 4242,
            uptime_secs: 252,
            state: "degraded".into(),
            kernel: KernelReport {
                esp: false,
                detail: "esp4 not available".into(),
            },
            traps_installed: false,
            identity: "fqdn:ws.example.net".into(),
            key: "Ed25519".into(),
            peers: 1,
            child_sas: 1,
            shunts: 2,
            dns_cache_entries: 7,
            counters: Counters {
                acquires: 12,
                negotiations_started: 10,
                negotiations_succeeded: 8,
                negotiations_failed: 2,
                ..Counters::default()
            },
            degraded_reason: Some("the kernel cannot install ESP SAs".into()),
            trigger: None,
            latency: Default::default(),
        }
    }

    pub(super) fn peer() -> PeerReport {
        PeerReport {
            address: "192.0.2.2".parse().unwrap(),
            state: "established".into(),
            role: "initiator".into(),
            identity: Some("fqdn:server.example.org".into()),
            authentication: Some("Ed25519 key from DNSSEC (secure)".into()),
            ike_sa: Some(IkeSaReport {
                spi_i: "1122334455667788".into(),
                spi_r: "99aabbccddeeff00".into(),
                proposal: "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519".into(),
                post_quantum: vec![],
                established_secs_ago: 252,
                rekey_in_secs: 28_000,
            }),
            child_sas: vec![ChildSaReport {
                spi_in: "c0ffee01".into(),
                spi_out: "c0ffee02".into(),
                esp: "AES_GCM_16_256".into(),
                mode: "transport".into(),
                encapsulation: None,
                virtual_ip: None,
                selectors: "192.0.2.1 <-> 192.0.2.2".into(),
                bytes_in: 1_234_567,
                bytes_out: 999,
                packets_in: 900,
                packets_out: 12,
                idle_secs: Some(3),
                established_secs_ago: 252,
                rekey_in_secs: 3000,
            }],
            assigned_ip: None,
        }
    }

    #[test]
    fn durations_and_sizes_for_people() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m00s"),
            (252, "4m12s"),
            (3599, "59m59s"),
            (3600, "1h00m"),
            (28_000, "7h46m"),
            (86_400, "1d00h"),
            (200_000, "2d07h"),
        ];
        for (secs, text) in cases {
            assert_eq!(duration(secs), text, "{secs}");
        }
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (1234, "1.2 kB"),
            (1_250_000, "1.3 MB"),
            (999_949, "999.9 kB"),
            (999_950, "1.0 MB"),
            (u64::MAX, "18.4 EB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(size(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn status_is_an_aligned_list_with_the_degraded_reason_first() {
        let text = render_status(&status_report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "agent:          oe 0.1.0, pid 4242, up 4m12s: degraded"
        );
        assert_eq!(
            lines[1],
            "degraded:       the kernel cannot install ESP SAs"
        );
        assert_eq!(lines[2], "kernel:         no ESP (esp4 not available)");
        assert!(
            text.contains("\nnegotiations:   10 started, 8 succeeded, 2 failed\n"),
            "{text}"
        );
        assert!(
            text.contains("\nidentity:       fqdn:ws.example.net (Ed25519 key)\n"),
            "{text}"
        );
    }

    #[test]
    fn peers_table_then_child_sas() {
        let mut second = peer();
        second.address = "2001:db8::2".parse().unwrap();
        second.state = "negotiating".into();
        second.identity = None;
        second.authentication = None;
        second.ike_sa = None;
        second.child_sas = vec![];
        let text = render_peers(&[peer(), second]);
        let expected = "\
PEER         STATE        ROLE       IDENTITY                 AUTHENTICATION                    IKE SA                                        POST-QUANTUM  UP     REKEY IN
192.0.2.2    established  initiator  fqdn:server.example.org  Ed25519 key from DNSSEC (secure)  AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519  no            4m12s  7h46m
2001:db8::2  negotiating  initiator  -                        -                                 -                                             -             -      -

child SAs
PEER       ESP                       SPI IN    SPI OUT   SELECTORS                BYTES IN  BYTES OUT  PACKETS IN  PACKETS OUT  IDLE     UP  REKEY IN
192.0.2.2  AES_GCM_16_256 transport  c0ffee01  c0ffee02  192.0.2.1 <-> 192.0.2.2    1.2 MB      999 B         900           12    3s  4m12s    50m00s
";
        assert_eq!(text, expected);
        assert_eq!(render_peers(&[]), "no peers\n");
    }

    #[test]
    fn shunts_dns_cache_and_events() {
        let shunt = ShuntReport {
            peer: "198.51.100.9".parse().unwrap(),
            action: "pass".into(),
            stage: "failure".into(),
            group: "private-or-clear".into(),
            reason: "no IPSECKEY (absent, proven by NSEC)".into(),
            installed_secs_ago: 75,
            expires_in_secs: Some(825),
        };
        let text = render_shunts(&[shunt]);
        assert_eq!(
            text,
            "PEER          ACTION  STAGE    GROUP               AGE  EXPIRES IN  REASON\n\
             198.51.100.9  pass    failure  private-or-clear  1m15s      13m45s  no IPSECKEY (absent, proven by NSEC)\n"
        );
        let entry = DnsCacheEntry {
            name: "2.2.0.192.in-addr.arpa.".into(),
            outcome: "secure".into(),
            keys: vec!["Ed25519".into(), "RSA-3072".into()],
            expires_in_secs: 3600,
        };
        let text = render_dns_cache(&[entry]);
        assert!(
            text.ends_with("2.2.0.192.in-addr.arpa.  secure        1h00m  Ed25519, RSA-3072\n"),
            "{text}"
        );
        let event = EventReport {
            time: 1_795_000_000.5,
            kind: "acquire".into(),
            peer: Some("192.0.2.2".parse().unwrap()),
            detail: "udp 192.0.2.1 -> 192.0.2.2:53".into(),
        };
        assert_eq!(
            render_event(&event),
            "2026-11-18T11:06:40Z  acquire  192.0.2.2  udp 192.0.2.1 -> 192.0.2.2:53"
        );
        assert!(render_events(&[event])
            .starts_with("TIME                  KIND     PEER       DETAIL\n"));
        let odd = EventReport {
            time: -1.0,
            kind: "x".into(),
            peer: None,
            detail: String::new(),
        };
        assert_eq!(render_event(&odd).trim_end(), "-1  x  -");
    }

    #[test]
    fn explain_lists_each_address() {
        let report = ExplainReport {
            trigger: vec![],
            host: "server.example.org".into(),
            addresses: vec![AddressExplanation {
                address: "192.0.2.2".parse().unwrap(),
                group: "private-or-clear".into(),
                matched_entry: "0.0.0.0/0".into(),
                dns: vec!["2.2.0.192.in-addr.arpa.: bogus (RRSIG expired)".into()],
                ike: None,
                current: "failure shunt: pass, 14m left".into(),
                verdict: "Not encrypted: the peer's key is bogus and is never used.".into(),
            }],
        };
        let text = render_explain(&report);
        let expected = "\
server.example.org
  192.0.2.2
    group:   private-or-clear
    matched: 0.0.0.0/0
    DNS:     2.2.0.192.in-addr.arpa.: bogus (RRSIG expired)
    IKE:     no negotiation
    now:     failure shunt: pass, 14m left
    verdict: Not encrypted: the peer's key is bogus and is never used.
";
        assert_eq!(text, expected);
        let none = ExplainReport {
            trigger: vec![],
            host: "nowhere.example".into(),
            addresses: vec![],
        };
        assert!(render_explain(&none).contains("no addresses"));
    }
}
