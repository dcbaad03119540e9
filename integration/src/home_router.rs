//! A home router's DNS forwarder that strips DNSSEC: dnsmasq (what most home routers run), told to
//! drop RRSIG, NSEC, NSEC3 and DS records from its answers (`--filter-rr`), as routers with older
//! or DNSSEC-unaware forwarders do. Behind one, every answer looks bogus to a validating client.
//! (dnsmasq 2.90 with default settings passes DNSSEC records through when the client sets DO.)

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{wait_until, Daemon};
use crate::require;

/// A running dnsmasq.
#[derive(Debug)]
pub struct HomeRouter {
    _daemon: Daemon,
    _dir: tempfile::TempDir,
    listen: IpAddr,
}

impl HomeRouter {
    /// Starts dnsmasq inside `ns` on `listen`:53, forwarding to `upstream`.
    pub fn start(ns: &Netns, listen: IpAddr, upstream: SocketAddr) -> Self {
        require::root();
        require::program("dnsmasq", "dnsmasq-base");
        let dir = tempfile::Builder::new()
            .prefix("oe-dnsmasq.")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let server = format!("--server={}#{}", upstream.ip(), upstream.port());
        let mut cmd = ns.cmd("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
        ])
        .arg(server)
        .arg(format!("--listen-address={listen}"))
        .args(["--port=53", "--user=root", "--log-queries"])
        .arg("--filter-rr=RRSIG,NSEC,NSEC3,DS")
        .arg(format!(
            "--pid-file={}",
            dir.path().join("dnsmasq.pid").display()
        ));
        let log = dir.path().join("dnsmasq.log");
        let daemon = Daemon::spawn("dnsmasq", cmd, &log)
            .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e}"));
        let started = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("using nameserver"))
        });
        assert!(
            started,
            "dnsmasq did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self {
            _daemon: daemon,
            _dir: dir,
            listen,
        }
    }

    /// Where it answers (port 53).
    pub fn address(&self) -> IpAddr {
        self.listen
    }
}
