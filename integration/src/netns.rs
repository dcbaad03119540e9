//! Network namespaces as test hosts.
//!
//! Each [`Netns`] is a fresh named namespace (`ip netns add`) with its loopback up, deleted when dropped, even
//! when the test panics. Names embed the creating process's PID, so namespaces left by a killed test run are
//! swept the next time one is created. Only documentation prefixes are used for addresses
//! (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32).

use std::fs::File;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{setns, CloneFlags};

use crate::process::run_ok;
use crate::require;

static COUNTER: AtomicU32 = AtomicU32::new(0);
const PREFIX: &str = "oe";

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A network namespace owned by the test.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace labelled `label` (the label only helps humans reading `ip netns list`).
    pub fn new(label: &str) -> Self {
        require::netns();
        sweep_stale();
        let name = format!("{PREFIX}{}n{}-{label}", std::process::id(), next_id());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // Addresses are usable at once: no duplicate address detection on our private links.
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        ns
    }

    /// The namespace's name as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs a shell script inside the namespace; panics, with its output, unless it succeeds.
    pub fn sh(&self, script: &str) -> Output {
        run_ok(self.cmd("sh").args(["-c", script]))
    }

    /// Runs `ip -n NAME ARGS...`; panics unless it succeeds.
    pub fn ip(&self, args: &[&str]) -> Output {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        run_ok(self.cmd("sysctl").args(["-qw", &format!("{key}={value}")]));
    }

    /// Adds an address (CIDR form) to `ifname`; IPv6 addresses skip duplicate address detection.
    pub fn addr(&self, ifname: &str, cidr: &str) {
        let mut args = vec!["addr", "add", cidr, "dev", ifname];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args);
    }

    /// Runs `f` on a thread that has entered this namespace: sockets and netlink sockets it opens belong
    /// to the namespace. Panics in `f` propagate.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
                f()
            });
            match handle.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Joins `a` and `b` with a veth pair; returns the interface names in `a` and in `b` (both up).
    pub fn veth(a: &Self, b: &Self) -> (String, String) {
        let id = next_id();
        let (ia, ib) = (format!("v{id}a"), format!("v{id}b"));
        run_ok(Command::new("ip").args([
            "link", "add", &ia, "netns", &a.name, "type", "veth", "peer", "name", &ib, "netns",
            &b.name,
        ]));
        a.ip(&["link", "set", &ia, "up"]);
        b.ip(&["link", "set", &ib, "up"]);
        (ia, ib)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete namespace {}", self.name);
        }
    }
}

/// Deletes namespaces that earlier test processes created and could not delete (they were killed).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// The PID embedded in a namespace name made by [`Netns::new`] (`oe<PID>n<N>-<label>`).
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with('n')
        .then(|| digits.parse().ok())
        .flatten()
}

/// Two hosts on one link: `a` is 192.0.2.1 and 2001:db8::1, `b` is 192.0.2.2 and 2001:db8::2.
#[derive(Debug)]
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    /// `a`'s interface towards `b`.
    pub a_if: String,
    /// `b`'s interface towards `a`.
    pub b_if: String,
}

impl Pair {
    pub const A4: &'static str = "192.0.2.1";
    pub const B4: &'static str = "192.0.2.2";
    pub const A6: &'static str = "2001:db8::1";
    pub const B6: &'static str = "2001:db8::2";

    /// Creates the two namespaces, the link and the addresses.
    pub fn new() -> Self {
        let (a, b) = (Netns::new("a"), Netns::new("b"));
        let (a_if, b_if) = Netns::veth(&a, &b);
        a.addr(&a_if, &format!("{}/24", Self::A4));
        a.addr(&a_if, &format!("{}/64", Self::A6));
        b.addr(&b_if, &format!("{}/24", Self::B4));
        b.addr(&b_if, &format!("{}/64", Self::B6));
        Self { a, b, a_if, b_if }
    }
}

impl Default for Pair {
    fn default() -> Self {
        Self::new()
    }
}

/// A shared link (a bridge in a hub namespace) that any number of hosts attach to.
#[derive(Debug)]
pub struct Lan {
    hub: Netns,
}

impl Lan {
    /// Creates the hub namespace and its bridge.
    pub fn new() -> Self {
        let hub = Netns::new("lan");
        hub.ip(&["link", "add", "br0", "type", "bridge"]);
        hub.ip(&["link", "set", "br0", "up"]);
        Self { hub }
    }

    /// Attaches `host` with the given addresses (CIDR form); returns the host's interface name.
    pub fn attach(&self, host: &Netns, cidrs: &[&str]) -> String {
        let (host_if, hub_if) = Netns::veth(host, &self.hub);
        self.hub.ip(&["link", "set", &hub_if, "master", "br0"]);
        for cidr in cidrs {
            host.addr(&host_if, cidr);
        }
        host_if
    }
}

impl Default for Lan {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn owner_pid_parses_our_names_only() {
        assert_eq!(owner_pid("oe123n4-a"), Some(123));
        assert_eq!(owner_pid("oe123x4-a"), None);
        assert_eq!(owner_pid("other"), None);
        assert_eq!(owner_pid("oen4"), None);
    }
}
