//! The `oe` agent as a process in a namespace, with its status socket, for end-to-end tests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{wait_until, Daemon};

/// The `oe` binary of this build (`target/<profile>/oe`, beside the test binary's `deps/` folder),
/// or the one `OE_BINARY` names (a benchmark comparing builds).
pub fn oe_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OE_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no target folder above {}", exe.display()));
    let oe = profile_dir.join("oe");
    if !oe.exists() {
        panic!("{} is missing: build it first (`cargo build -p oe-agent`; integration/test-all.sh does)", oe.display());
    }
    oe
}

/// A running `oe run`.
#[derive(Debug)]
pub struct Agent {
    daemon: Daemon,
    dir: tempfile::TempDir,
    ns: String,
}

impl Agent {
    /// Writes `config` (TOML; `@DIR@` is replaced by the agent's state folder) and starts `oe run` inside
    /// `ns`; waits until the status socket answers.
    pub fn start(ns: &Netns, config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oe-agent.")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = config.replace("@DIR@", &dir.path().display().to_string());
        let text = if text.contains("[status]") {
            text
        } else {
            format!(
                "{text}\n[status]\nsocket = \"{}/oe.sock\"\n",
                dir.path().display()
            )
        };
        std::fs::write(dir.path().join("oe.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = ns.cmd(&oe_binary().to_string_lossy());
        cmd.args(["run", "--config"])
            .arg(dir.path().join("oe.toml"))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,oe_agent=debug".into()),
            );
        let daemon = Daemon::spawn("oe", cmd, &dir.path().join("oe.log"))
            .unwrap_or_else(|e| panic!("cannot start oe: {e}"));
        let mut agent = Self {
            daemon,
            dir,
            ns: ns.name().to_owned(),
        };
        let ready = wait_until(Duration::from_secs(20), || {
            agent.daemon.is_running() && agent.try_request(r#"{"command":"status"}"#).is_ok()
        });
        assert!(ready, "oe did not come up; log:\n{}", agent.log());
        agent
    }

    /// The agent's process ID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The status socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("oe.sock")
    }

    /// Sends one request line and returns the parsed answer; panics on failure.
    pub fn request(&self, line: &str) -> serde_json::Value {
        self.try_request(line)
            .unwrap_or_else(|e| panic!("status request {line}: {e}\nlog:\n{}", self.log()))
    }

    fn try_request(&self, line: &str) -> Result<serde_json::Value, String> {
        let mut stream = UnixStream::connect(self.socket()).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer:?}"))
    }

    /// Runs the `oe` CLI (e.g. `["status"]`, `["explain", "192.0.2.30"]`) against this agent's socket.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(oe_binary())
            .args(args)
            .arg("--socket")
            .arg(self.socket());
        cmd.output().unwrap_or_else(|e| panic!("oe {args:?}: {e}"))
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("oe.log")).unwrap_or_default()
    }

    /// Sends a signal (SIGKILL simulates a crash).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        self.daemon.signal(signal);
    }

    /// Stops the agent with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.daemon.stop(Duration::from_secs(10))
    }

    /// The state folder (config, log, socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
