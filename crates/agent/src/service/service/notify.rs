//! The sd_notify protocol without libsystemd: newline-separated `KEY=VALUE` assignments sent as
//! one datagram to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (sd_notify(3)). A name starting
//! with `/` is a file-system socket, one starting with `@` an abstract socket. Without the
//! variable (not started by systemd, or a unit without `Type=notify`) nothing is sent.
//!
//! The messages used: `READY=1` when start-up (or a reload) is complete, `STATUS=...` a one-line
//! state for `systemctl status`, `RELOADING=1` with `MONOTONIC_USEC=` when a reload begins (the
//! timestamp lets systemd 253+ match it to its reload job), `STOPPING=1` when shutdown begins.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where notifications go: nowhere, or one socket address.
#[derive(Debug)]
pub struct Notifier {
    target: Option<SocketAddr>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os(NOTIFY_SOCKET).as_deref())
    }

    /// From the value `$NOTIFY_SOCKET` would hold. Unset, empty, or a kind of address this
    /// implementation does not speak (systemd 254's `vsock:`) gives a notifier that sends
    /// nothing; the last case is logged.
    pub fn new(value: Option<&OsStr>) -> Self {
        let target = value
            .filter(|v| !v.is_empty())
            .and_then(|v| match parse(v) {
                Ok(addr) => Some(addr),
                Err(e) => {
                    tracing::warn!("ignoring NOTIFY_SOCKET={}: {e}", v.to_string_lossy());
                    None
                }
            });
        Self { target }
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one notification: `KEY=VALUE` lines. A no-op without a socket.
    pub fn send(&self, state: &str) -> io::Result<()> {
        let Some(addr) = &self.target else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        let sent = socket.send_to_addr(state.as_bytes(), addr)?;
        if sent == state.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification truncated",
            ))
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}\n", one_line(status)))
    }

    /// `STATUS=...` alone.
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}\n", one_line(status)))
    }

    /// `RELOADING=1` with the monotonic clock in microseconds; follow with [`Self::ready`].
    pub fn reloading(&self) -> io::Result<()> {
        self.send(&format!(
            "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC={}\n",
            monotonic_usec()
        ))
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1\nSTATUS=stopping: removing what the agent installed\n")
    }
}

fn parse(value: &OsStr) -> io::Result<SocketAddr> {
    match value.as_bytes() {
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name),
        path @ [b'/', ..] => SocketAddr::from_pathname(OsStr::from_bytes(path)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a path or an abstract socket name",
        )),
    }
}

/// A status is one assignment: line breaks would start new ones.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let micros = u64::try_from(t.tv_nsec / 1000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

/// Tells systemd that start-up is complete, with a status line. Failures are logged, not fatal.
pub fn ready(status: &str) {
    log_failure("READY", Notifier::from_env().ready(status));
}

/// Updates the status line shown by `systemctl status`.
pub fn status(status: &str) {
    log_failure("STATUS", Notifier::from_env().status(status));
}

/// Tells systemd a reload has begun; call [`ready`] when it is done.
pub fn reloading() {
    log_failure("RELOADING", Notifier::from_env().reloading());
}

/// Tells systemd the agent is shutting down.
pub fn stopping() {
    log_failure("STOPPING", Notifier::from_env().stopping());
}

fn log_failure(what: &str, result: io::Result<()>) {
    if let Err(e) = result {
        tracing::warn!("cannot notify systemd ({what}): {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_each_state_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path.as_os_str()));
        assert!(n.is_enabled());
        n.ready("encrypting\nopportunistically").unwrap();
        assert_eq!(
            receive(&systemd),
            "READY=1\nSTATUS=encrypting opportunistically\n"
        );
        n.status("3 peers").unwrap();
        assert_eq!(receive(&systemd), "STATUS=3 peers\n");
        n.stopping().unwrap();
        assert!(receive(&systemd).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let before = monotonic_usec();
        Notifier::new(Some(path.as_os_str())).reloading().unwrap();
        let after = monotonic_usec();
        let text = receive(&systemd);
        assert!(text.starts_with("RELOADING=1\n"), "{text}");
        let usec: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (before..=after).contains(&usec),
            "{before} <= {usec} <= {after}"
        );
    }

    #[test]
    fn abstract_socket_names_start_with_at() {
        let name = format!("oe-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        let value = format!("@{name}");
        Notifier::new(Some(OsStr::new(&value))).ready("up").unwrap();
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=up\n");
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        for value in [None, Some(OsStr::new("")), Some(OsStr::new("vsock:2:1234"))] {
            let n = Notifier::new(value);
            assert!(!n.is_enabled());
            n.ready("up").unwrap();
        }
    }

    #[test]
    fn a_missing_socket_is_an_error_for_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(Some(dir.path().join("gone").as_os_str()));
        assert!(n.ready("up").is_err());
    }
}
