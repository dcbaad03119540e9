//! `oe metrics`: the agent's counters and gauges in OpenMetrics text, for Prometheus and its
//! kin (see [`crate::metrics`]). It asks the status socket's read-only questions (`status`,
//! `peers`, `shunts`, `dns-cache`) on one connection and prints the families, ending with
//! `# EOF`.

use std::process::ExitCode;

use super::show::{reports, Failure, ShowArgs};
use crate::metrics::{render, Snapshot};

const EXIT_HELP: &str = "\
Exit status:
  0  the metrics were printed
  1  the agent answered with an error, sent something unreadable or did not answer in time
  2  bad command-line usage or configuration file
  3  cannot connect to the status socket (the agent is not running, or no permission)

The output is OpenMetrics 1.0 text (media type application/openmetrics-text; version=1.0.0).
For Prometheus to scrape the agent itself, set status.metrics_listen (a loopback address and
port: `GET /metrics` answers the same text); nothing is printed when the agent cannot be asked,
so no stale values.";

/// Arguments of `oe metrics`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct MetricsArgs {
    /// The agent's status socket [default: the configuration's status.socket, /run/oe/oe.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,
    /// Configuration file (for status.socket).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Runs `oe metrics`.
pub fn run(args: &MetricsArgs) -> ExitCode {
    let show = ShowArgs {
        socket: args.socket.clone(),
        config: args.config.clone(),
        json: false,
    };
    match snapshot(&show) {
        Ok(snapshot) => {
            print!("{}", render(&snapshot));
            ExitCode::SUCCESS
        }
        Err(failure) => failure.report(),
    }
}

fn snapshot(args: &ShowArgs) -> Result<Snapshot, Failure> {
    let answers = reports(args, Snapshot::REQUESTS.to_vec())?;
    Snapshot::from_reports(answers)
        .ok_or_else(|| Failure::Other("the agent answered with reports of the wrong kinds".into()))
}
