//! Command-line front end: the command tree ([`Cli`]) and one module per subcommand.
//!
//! The tree lives here, in the library, so that `oe generate` can render man pages and shell
//! completions from the very definitions the binary parses (see [`generate`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod control;
pub mod doctor;
pub mod generate;
pub mod ipseckey;
pub mod keygen;
pub mod lookup;
pub mod metrics;
pub mod run;
pub mod show;

/// Opportunistic IPsec for this host: encrypts to every peer that publishes a DNSSEC-signed IPSECKEY.
///
/// When traffic to a new host is first seen, or its name is looked up through the agent's DNS stub,
/// `oe run` fetches the host's IPSECKEY record (RFC 4025), proves it with DNSSEC, negotiates IKEv2
/// (RFC 7296) authenticating the peer with that key, and installs transport-mode ESP SAs. Hosts
/// without a proven key keep working in clear, or are dropped for destinations marked `private`.
/// The other commands ask the running agent (over its status socket) or check this host.
#[derive(Debug, Parser)]
#[command(name = "oe", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the agent's state: kernel capability, identity, counts and counters.
    Status(show::ShowArgs),
    /// Show peers with their IKE and child SAs, algorithms, traffic and idle times.
    Peers(show::ShowArgs),
    /// Show shunts (clear or drop policies for hosts not encrypted), with reasons and expiry.
    Shunts(show::ShowArgs),
    /// Show the agent's cache of validated IPSECKEY lookups.
    DnsCache(show::ShowArgs),
    /// Show recent events; with --follow, keep printing new ones.
    Events(show::EventsArgs),
    /// Explain why traffic to a host is or is not encrypted.
    Explain(show::ExplainArgs),
    /// Drop a host's failure shunt and negotiate with it now (root only).
    Retry(control::HostArgs),
    /// Negotiate with a host now, before any traffic (root only).
    Up(control::HostArgs),
    /// Tear down a host's SAs and keep its traffic in clear (dropped, for private) for a while (root only).
    Down(control::DownArgs),
    /// Make this host's private key (Ed25519 by default; ECDSA P-256 or RSA for older peers).
    Keygen(keygen::KeygenArgs),
    /// Print the IPSECKEY records that publish this host's key, for its names and addresses.
    Ipseckey(ipseckey::IpseckeyArgs),
    /// Run the agent: trap traffic to new hosts, fetch their DNSSEC-proven keys, negotiate IKEv2, install ESP.
    Run(run::RunArgs),
    /// Look up a host's IPSECKEY records and show whether DNSSEC proves them.
    Lookup(lookup::LookupArgs),
    /// Check what opportunistic IPsec needs on this host; print each finding with its fix.
    Doctor(doctor::DoctorArgs),
    /// Print the agent's counters and gauges in OpenMetrics text (for Prometheus).
    Metrics(metrics::MetricsArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Status(args) => show::status(&args),
        Command::Peers(args) => show::peers(&args),
        Command::Shunts(args) => show::shunts(&args),
        Command::DnsCache(args) => show::dns_cache(&args),
        Command::Events(args) => show::events(&args),
        Command::Explain(args) => show::explain(&args),
        Command::Retry(args) => control::retry(&args),
        Command::Up(args) => control::up(&args),
        Command::Down(args) => control::down(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Ipseckey(args) => ipseckey::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Lookup(args) => lookup::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Metrics(args) => metrics::run(&args),
        Command::Generate(args) => generate::run(&args),
    }
}
