//! `oe`: the opportunistic-encryption agent and its command-line interface (the command tree is
//! `oe_agent::cli::Cli`).

fn main() -> std::process::ExitCode {
    oe_agent::cli::main()
}
