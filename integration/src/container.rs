//! systemd as PID 1 in a container (systemd-nspawn) whose root is a [`FreshRoot`]: this host's
//! Debian under a tmpfs overlay, so the packages installed here (systemd, the test bed's tools)
//! are there and nothing the container does reaches the host's files.
//!
//! The container has its own network namespace with only loopback (`--private-network`) and
//! shares this machine's kernel. It boots to `oe-test.target` (basic.target and nothing else),
//! so none of the host's enabled services (charon, unbound, nsd...) start inside. Commands run
//! in all of its namespaces through `nsenter`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::package::FreshRoot;
use crate::process::{wait_until, Daemon};
use crate::require;

const TARGET: &str = "\
[Unit]
Description=oe tests: basic.target and nothing else
Requires=basic.target
After=basic.target
AllowIsolate=yes
";

/// A booted container.
#[derive(Debug)]
pub struct Container {
    nspawn: Daemon,
    pid1: u32,
    log: std::path::PathBuf,
}

impl Container {
    /// Boots systemd in `root` and waits (at most 60 s) until start-up is finished.
    pub fn boot(root: &FreshRoot) -> Self {
        require::program("systemd-nspawn", "systemd-container");
        root.write("/etc/systemd/system/oe-test.target", TARGET);
        // A machine ID of its own, so the container's journal is not taken for the host's.
        let id: String = (0..32)
            .map(|i| {
                char::from(b"0123456789abcdef"[(std::process::id() as usize * 7 + i * 13) % 16])
            })
            .collect();
        root.write("/etc/machine-id", &format!("{id}\n"));
        let log = root.host_path("nspawn.log");
        let mut cmd = root.nsenter();
        cmd.args(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit"])
            .args(["--private-network", "--boot", "--directory"])
            .arg(root.root())
            .arg("systemd.unit=oe-test.target");
        let mut nspawn =
            Daemon::spawn("systemd-nspawn", cmd, &log).unwrap_or_else(|e| panic!("{e}"));
        let mut pid1 = None;
        let found = wait_until(Duration::from_secs(30), || {
            pid1 = container_init(nspawn.pid());
            pid1.is_some() || !nspawn.is_running()
        });
        let Some(pid1) = pid1.filter(|_| found) else {
            panic!(
                "systemd did not start in the container:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let container = Self { nspawn, pid1, log };
        let up = wait_until(Duration::from_secs(30), || {
            container
                .sh("test -S /run/systemd/private")
                .status
                .success()
        });
        assert!(up, "systemd did not come up:\n{}", container.boot_log());
        let booted = container.sh("timeout 60 systemctl is-system-running --wait");
        let state = String::from_utf8_lossy(&booted.stdout).trim().to_owned();
        assert!(
            state == "running" || state == "degraded",
            "the container did not finish booting ({state}, {}):\n{}\n{}",
            String::from_utf8_lossy(&booted.stderr),
            container.boot_log(),
            String::from_utf8_lossy(&container.sh("systemctl --failed --no-pager").stdout)
        );
        container
    }

    /// Runs a shell script inside the container (all its namespaces, as root).
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg("--target")
            .arg(self.pid1.to_string())
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd",
            ])
            .args(["--", "sh", "-c", script])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap_or_else(|e| panic!("nsenter: {e}"))
    }

    /// Runs a script inside and panics, with its output, unless it succeeds; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        crate::process::stdout_if_ok(&self.sh(script), "the container", script)
    }

    /// The container's console output so far.
    pub fn boot_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Powers the container off and waits for nspawn to exit.
    pub fn power_off(&mut self) {
        let _ = self.sh("systemctl --no-block poweroff");
        let nspawn = &mut self.nspawn;
        if !wait_until(Duration::from_secs(30), || !nspawn.is_running()) {
            nspawn.stop(Duration::from_secs(5));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.power_off();
    }
}

/// The container's PID 1 (as this machine numbers it): the descendant of nspawn that is PID 1 in
/// its own PID namespace.
fn container_init(nspawn: u32) -> Option<u32> {
    let mut frontier = vec![nspawn];
    while let Some(pid) = frontier.pop() {
        for child in children(pid) {
            if is_namespace_init(child) {
                return Some(child);
            }
            frontier.push(child);
        }
    }
    None
}

fn children(pid: u32) -> Vec<u32> {
    let dir = format!("/proc/{pid}/task");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether `pid` is PID 1 of a nested PID namespace (`NSpid:` lists it as 1 at the end).
fn is_namespace_init(pid: u32) -> bool {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|ids| {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            ids.len() > 1 && ids.last() == Some(&"1")
        })
}
