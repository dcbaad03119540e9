//! `oe retry`, `oe up`, `oe down`: the operator's control requests (root only; the agent checks
//! the client's credentials on its status socket).

use std::process::ExitCode;
use std::time::Duration;

use super::show::{one_shot, ShowArgs};
use crate::status::protocol::Request;

/// `oe retry HOST` and `oe up HOST`.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// A host name or an IPv4/IPv6 address.
    pub host: String,
    #[command(flatten)]
    pub show: ShowArgs,
}

/// `oe down HOST [--for DURATION]`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// A host name or an IPv4/IPv6 address.
    pub host: String,
    /// How long its traffic stays in clear (dropped, for private) [default: shunts.failure_lifetime].
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub show: ShowArgs,
}

/// Runs `oe retry`.
pub fn retry(args: &HostArgs) -> ExitCode {
    one_shot(
        &args.show,
        Request::Retry {
            host: args.host.clone(),
        },
    )
}

/// Runs `oe up`.
pub fn up(args: &HostArgs) -> ExitCode {
    one_shot(
        &args.show,
        Request::Up {
            host: args.host.clone(),
        },
    )
}

/// Runs `oe down`.
pub fn down(args: &DownArgs) -> ExitCode {
    one_shot(
        &args.show,
        Request::Down {
            host: args.host.clone(),
            seconds: args.duration.map(|d| d.as_secs().max(1)),
        },
    )
}
