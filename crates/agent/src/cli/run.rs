//! `oe run`: the background service.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Arguments of `oe run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML); without it the built-in defaults (config/oe.toml) apply.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Runs the agent until SIGTERM/SIGINT; exit status 1 when it cannot start.
pub fn run(args: &RunArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("oe: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::embedded(),
    };
    crate::service::logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oe: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::daemon::run(config, args.config.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("oe: {e}");
            ExitCode::FAILURE
        }
    }
}
