//! `oe`: the opportunistic-encryption agent and its command-line interface.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oe_agent::cli;

/// Opportunistic IPsec for this host: encrypts to every peer that publishes a DNSSEC-signed IPSECKEY.
#[derive(Debug, Parser)]
#[command(name = "oe", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Look up a host's IPSECKEY records and show whether DNSSEC proves them.
    Lookup(cli::lookup::LookupArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Lookup(args) => cli::lookup::run(&args),
    }
}
