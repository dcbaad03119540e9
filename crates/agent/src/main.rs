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
    /// Make this host's private key (Ed25519 by default; ECDSA P-256 or RSA for older peers).
    Keygen(cli::keygen::KeygenArgs),
    /// Print the IPSECKEY records that publish this host's key, for its names and addresses.
    Ipseckey(cli::ipseckey::IpseckeyArgs),
    /// Look up a host's IPSECKEY records and show whether DNSSEC proves them.
    Lookup(cli::lookup::LookupArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Keygen(args) => cli::keygen::run(&args),
        Command::Ipseckey(args) => cli::ipseckey::run(&args),
        Command::Lookup(args) => cli::lookup::run(&args),
    }
}
