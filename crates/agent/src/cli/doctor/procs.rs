//! Processes as /proc shows them: their names, network namespaces and open sockets. Only what
//! `oe doctor` needs to say who holds a port or which IKE daemon runs beside the agent.

use std::path::Path;

/// A process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/comm` (at most 15 bytes of the program name).
    pub comm: String,
}

/// The network namespace of `/proc/<who>` (`self` or a PID), as its `net:[inode]` link.
fn netns(who: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{who}/ns/net")).ok()
}

/// Every process in this process's network namespace (those whose namespace cannot be read,
/// other users' when not root, are left out).
pub fn in_our_netns() -> Vec<Process> {
    let Some(ours) = netns("self") else {
        return Vec::new();
    };
    all_pids()
        .filter(|pid| netns(&pid.to_string()).as_ref() == Some(&ours))
        .filter_map(process)
        .collect()
}

/// The processes that hold the socket with this inode open.
pub fn socket_owners(inode: u64) -> Vec<Process> {
    let target = format!("socket:[{inode}]");
    all_pids()
        .filter(|pid| holds(*pid, &target))
        .filter_map(process)
        .collect()
}

fn holds(pid: u32, target: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link == Path::new(target)))
}

fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

fn process(pid: u32) -> Option<Process> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(Process {
        pid,
        comm: comm.trim_end().to_owned(),
    })
}
