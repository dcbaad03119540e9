//! `oe run`: the background service.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Arguments of `oe run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML). Default: /etc/oe/oe.toml if it exists, else the built-in defaults
    /// (the text of config/oe.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Where `oe run` looks for its configuration when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/oe/oe.toml";

/// A start that fails still removes what an earlier run left in the kernel (best effort: without
/// CAP_NET_ADMIN there is nothing we could have installed anyway).
fn remove_leftovers() {
    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        runtime.block_on(crate::daemon::remove_leftovers());
    }
}

/// Runs the agent until SIGTERM/SIGINT; exit status 1 when it cannot start.
pub fn run(args: &RunArgs) -> ExitCode {
    let path = args.config.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    });
    let config = match &path {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("oe: {e}");
                remove_leftovers();
                return ExitCode::from(2);
            }
        },
        None => Config::embedded(),
    };
    crate::service::logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oe: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::daemon::run(config, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("oe: {e}");
            ExitCode::FAILURE
        }
    }
}
