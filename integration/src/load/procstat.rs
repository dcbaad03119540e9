//! What a process and the kernel use, from /proc: CPU time, resident and peak memory, slab.

use std::time::Instant;

/// One look at a process (and the kernel's slab).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// CPU seconds (user + system) of the process.
    pub cpu: f64,
    /// Of which in user space (the rest is the kernel's work for it; a UML guest charges nearly
    /// everything to user space).
    pub user: f64,
    /// CPU seconds of the calling process (the generator).
    pub own_cpu: f64,
    /// Resident set (VmRSS) and its peak (VmHWM), KiB.
    pub rss_kb: u64,
    pub peak_kb: u64,
    /// The kernel's slab (KiB): where XFRM states and policies live.
    pub slab_kb: u64,
}

impl Sample {
    pub fn of(pid: u32) -> Self {
        let status = format!("/proc/{pid}/status");
        Self {
            at: Instant::now(),
            cpu: cpu_seconds(&pid.to_string()),
            user: user_seconds(&pid.to_string()),
            own_cpu: cpu_seconds("self"),
            rss_kb: kib(&status, "VmRSS:"),
            peak_kb: kib(&status, "VmHWM:"),
            slab_kb: kib("/proc/meminfo", "Slab:"),
        }
    }
}

/// User + system CPU seconds of `/proc/<pid>` (clock ticks of 1/100 s).
pub fn cpu_seconds(pid: &str) -> f64 {
    let (user, system) = times(pid);
    user + system
}

/// User CPU seconds of `/proc/<pid>`.
pub fn user_seconds(pid: &str) -> f64 {
    times(pid).0
}

/// (utime, stime) of `/proc/<pid>/stat` in seconds.
fn times(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command (which may hold spaces and parentheses): state is field 3, utime 14,
    // stime 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    (tick(11) / 100.0, tick(12) / 100.0)
}

/// A "Key: N kB" line of a /proc file, in KiB.
pub fn kib(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
