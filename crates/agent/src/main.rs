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
    /// Show the agent's state: kernel capability, identity, counts and counters.
    Status(cli::show::ShowArgs),
    /// Show peers with their IKE and child SAs, algorithms, traffic and idle times.
    Peers(cli::show::ShowArgs),
    /// Show shunts (clear or drop policies for hosts not encrypted), with reasons and expiry.
    Shunts(cli::show::ShowArgs),
    /// Show the agent's cache of validated IPSECKEY lookups.
    DnsCache(cli::show::ShowArgs),
    /// Show recent events; with --follow, keep printing new ones.
    Events(cli::show::EventsArgs),
    /// Explain why traffic to a host is or is not encrypted.
    Explain(cli::show::ExplainArgs),
    /// Make this host's private key (Ed25519 by default; ECDSA P-256 or RSA for older peers).
    Keygen(cli::keygen::KeygenArgs),
    /// Print the IPSECKEY records that publish this host's key, for its names and addresses.
    Ipseckey(cli::ipseckey::IpseckeyArgs),
    /// Run the agent: trap traffic to new hosts, fetch their DNSSEC-proven keys, negotiate IKEv2, install ESP.
    Run(cli::run::RunArgs),
    /// Look up a host's IPSECKEY records and show whether DNSSEC proves them.
    Lookup(cli::lookup::LookupArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Status(args) => cli::show::status(&args),
        Command::Peers(args) => cli::show::peers(&args),
        Command::Shunts(args) => cli::show::shunts(&args),
        Command::DnsCache(args) => cli::show::dns_cache(&args),
        Command::Events(args) => cli::show::events(&args),
        Command::Explain(args) => cli::show::explain(&args),
        Command::Keygen(args) => cli::keygen::run(&args),
        Command::Ipseckey(args) => cli::ipseckey::run(&args),
        Command::Run(args) => cli::run::run(&args),
        Command::Lookup(args) => cli::lookup::run(&args),
    }
}
