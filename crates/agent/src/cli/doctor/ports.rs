//! `ike-ports`: UDP 500 and 4500 (`[ike] port`, `nat_port`) are the agent's, or free for it.
//!
//! IKE (RFC 7296 section 2) and NAT traversal (RFC 3948) use these ports; another IKE daemon
//! holding them answers our peers instead of the agent. Bound sockets come from
//! /proc/net/udp{,6} (this network namespace) and their owners from /proc/PID/fd. Whether the
//! ports are reachable from outside depends on firewalls this host cannot see.

use std::net::UdpSocket;

use super::check::{Check, Verdict};
use super::procs::{socket_owners, Process};
use super::Context;

const ID: &str = "ike-ports";

/// A UDP socket bound to a port: its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub port: u16,
    pub inode: u64,
}

/// The bound sockets listed in a /proc/net/udp or udp6 text.
pub fn parse_proc_net_udp(text: &str) -> Vec<Bound> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            Some(Bound { port, inode })
        })
        .collect()
}

fn bound_sockets() -> Vec<Bound> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| parse_proc_net_udp(&t))
        .collect()
}

/// Who holds `port`, judged against the agent's PID (when it runs).
pub fn judge_port(port: u16, owners: &[Process], agent_pid: Option<u32>) -> (Verdict, String) {
    let foreign: Vec<&Process> = owners
        .iter()
        .filter(|p| Some(p.pid) != agent_pid && p.comm != "oe")
        .collect();
    if let Some(p) = foreign.first() {
        return (
            Verdict::Fail,
            format!(
                "UDP {port} is held by {} (pid {}): it answers IKE instead of the agent",
                p.comm, p.pid
            ),
        );
    }
    match owners.first() {
        Some(p) => (
            Verdict::Ok,
            format!("UDP {port} is held by the agent (pid {})", p.pid),
        ),
        None => (Verdict::Ok, format!("UDP {port} is free")),
    }
}

/// Checks both ports.
pub fn check(ctx: &Context) -> Check {
    let bound = bound_sockets();
    let agent_pid = ctx.agent.as_ref().map(|s| s.pid);
    let mut verdict = Verdict::Ok;
    let mut details = Vec::new();
    for port in [ctx.config.ike.port, ctx.config.ike.nat_port] {
        let owners: Vec<Process> = bound
            .iter()
            .filter(|b| b.port == port && b.inode != 0)
            .flat_map(|b| socket_owners(b.inode))
            .collect();
        let held = bound.iter().any(|b| b.port == port);
        let (mut v, mut line) = judge_port(port, &owners, agent_pid);
        if held && owners.is_empty() {
            (v, line) = (
                Verdict::Warn,
                format!("UDP {port} is bound by a process oe doctor cannot see (run it as root)"),
            );
        } else if !held {
            if let Err(e) = UdpSocket::bind(("0.0.0.0", port)) {
                (v, line) = (
                    Verdict::Warn,
                    format!("UDP {port} is free, but oe doctor cannot bind it: {e}"),
                );
            }
        }
        verdict = verdict.max(v);
        details.push(line);
    }
    let check = match verdict {
        Verdict::Fail => Check::new(ID, verdict, "another program holds the IKE ports")
            .fix("stop the other IKE daemon (see ike-daemons), then restart oe"),
        Verdict::Warn => Check::new(ID, verdict, "the IKE ports could not be fully checked"),
        _ => Check::new(ID, verdict, "the IKE ports are the agent's or free (reachability from outside is not checked: allow UDP 500, 4500 and ESP in firewalls)"),
    };
    check.details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_udp() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          12: 00000000:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41234 2 0000000000000000 0\n\
          13: 0100007F:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41235 2 0000000000000000 0\n";
        assert_eq!(
            parse_proc_net_udp(text),
            [
                Bound {
                    port: 500,
                    inode: 41234
                },
                Bound {
                    port: 4500,
                    inode: 41235
                }
            ]
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          5: 00000000000000000000000000000000:01F4 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
        assert_eq!(
            parse_proc_net_udp(v6),
            [Bound {
                port: 500,
                inode: 777
            }]
        );
    }

    #[test]
    fn another_daemon_on_the_port_fails() {
        let charon = Process {
            pid: 9,
            comm: "charon".into(),
        };
        let oe = Process {
            pid: 4,
            comm: "oe".into(),
        };
        assert_eq!(
            judge_port(500, std::slice::from_ref(&oe), Some(4)).0,
            Verdict::Ok
        );
        let (v, line) = judge_port(500, &[oe, charon], Some(4));
        assert_eq!(v, Verdict::Fail);
        assert!(line.contains("charon (pid 9)"));
        assert_eq!(judge_port(4500, &[], None).0, Verdict::Ok);
    }
}
