//! `oe lookup NAME|ADDRESS`: show the IPSECKEY records of a host and their DNSSEC state.

use std::process::ExitCode;

/// Arguments of `oe lookup`.
#[derive(Debug, clap::Args)]
pub struct LookupArgs {
    /// A domain name (forward lookup) or an IPv4/IPv6 address (reverse-zone lookup).
    pub target: String,
}

/// Runs `oe lookup`.
pub fn run(_args: &LookupArgs) -> ExitCode {
    eprintln!("oe lookup: not implemented yet");
    ExitCode::from(70)
}
