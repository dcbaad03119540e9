//! The application whose first packets are measured, and the server that receives them.
//!
//! At its start the application (optionally after resolving a name) sends datagram 0 to UDP port
//! 5000 and opens a TCP connection to port 5001, writing a few bytes once connected; it sends a
//! numbered datagram every 10 ms until the server has received one (a first datagram the kernel
//! dropped shows as lost, and the next ones show when the path opened). The server notes when
//! each datagram and the TCP bytes arrived.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oe_integration::netns::Netns;

use crate::clock::now;

pub const UDP_PORT: u16 = 5000;
pub const TCP_PORT: u16 = 5001;
/// How long one round waits for the first datagram and the TCP bytes.
pub const ROUND_DEADLINE: Duration = Duration::from_secs(4);
const TRAIN_INTERVAL: Duration = Duration::from_millis(10);
const TCP_BYTES: &[u8] = b"first bytes over TCP";

/// What the application saw (Unix seconds).
#[derive(Debug, Clone, Default)]
pub struct AppSide {
    /// When it started (the DNS query, or the first datagram when it resolves nothing).
    pub start: f64,
    /// When its DNS answer came (trigger paths).
    pub answer: Option<f64>,
    /// Datagrams sent.
    pub sent: u32,
    /// When connect() returned.
    pub tcp_connected: Option<f64>,
}

/// What the server saw (Unix seconds).
#[derive(Debug, Clone, Default)]
pub struct ServerSide {
    /// (sequence number, arrival) of every datagram received.
    pub datagrams: Vec<(u32, f64)>,
    /// When the TCP bytes arrived.
    pub tcp_bytes: Option<f64>,
}

/// The server's receivers for one round.
pub struct Server {
    udp: std::thread::JoinHandle<Vec<(u32, f64)>>,
    tcp: std::thread::JoinHandle<Option<f64>>,
    got_one: Arc<AtomicBool>,
}

impl Server {
    /// Binds UDP and TCP on `addr` inside `ns` and receives until the round's deadline.
    pub fn start(ns: &Netns, addr: IpAddr) -> Self {
        let (udp, listener) = ns.run(|| {
            let udp = UdpSocket::bind((addr, UDP_PORT)).unwrap();
            let tcp = TcpListener::bind((addr, TCP_PORT)).unwrap();
            (udp, tcp)
        });
        let got_one = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + ROUND_DEADLINE;
        let flag = got_one.clone();
        let udp = std::thread::spawn(move || receive_datagrams(&udp, deadline, &flag));
        let tcp = std::thread::spawn(move || receive_tcp(&listener, deadline));
        Self { udp, tcp, got_one }
    }

    /// Whether any datagram arrived yet.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.got_one.clone()
    }

    /// Waits for the round's end.
    pub fn finish(self) -> ServerSide {
        ServerSide {
            datagrams: self.udp.join().unwrap_or_default(),
            tcp_bytes: self.tcp.join().ok().flatten(),
        }
    }
}

fn receive_datagrams(
    socket: &UdpSocket,
    deadline: Instant,
    got_one: &AtomicBool,
) -> Vec<(u32, f64)> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    // After the first arrival, a short grace for the datagrams still queued behind it.
    let mut end = deadline;
    while Instant::now() < end {
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let at = now();
            if let Some(seq) = buf.get(..n).and_then(|b| b.try_into().ok()) {
                got.push((u32::from_be_bytes(seq), at));
                if !got_one.swap(true, Ordering::SeqCst) {
                    end = end.min(Instant::now() + Duration::from_millis(300));
                }
            }
        }
    }
    got
}

fn receive_tcp(listener: &TcpListener, deadline: Instant) -> Option<f64> {
    // accept() gives up at the deadline (Linux honours SO_RCVTIMEO there): no polling.
    let left = deadline.saturating_duration_since(Instant::now());
    let timeout = nix::sys::time::TimeVal::new(left.as_secs() as i64, left.subsec_micros().into());
    nix::sys::socket::setsockopt(
        listener,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &timeout,
    )
    .ok()?;
    let (mut stream, _) = listener.accept().ok()?;
    let left = deadline.saturating_duration_since(Instant::now());
    stream
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .ok()?;
    let mut buf = [0u8; 64];
    let mut have = Vec::new();
    while have.len() < TCP_BYTES.len() {
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        have.extend_from_slice(buf.get(..n)?);
    }
    Some(now())
}

/// Runs the application inside `ns` from `local` to `remote` (already resolved), starting now.
pub fn run(ns: &Netns, local: IpAddr, remote: IpAddr, got_one: &Arc<AtomicBool>) -> AppSide {
    let start = now();
    ns.run(|| send_and_connect(local, remote, got_one, start, None))
}

/// Resolves `name` through `resolver` (the trigger's stub), then runs the application to the
/// first address of the answer.
pub fn run_after_lookup(
    ns: &Netns,
    local: IpAddr,
    resolver: SocketAddr,
    name: &str,
    got_one: &Arc<AtomicBool>,
) -> (AppSide, IpAddr) {
    ns.run(|| {
        let start = now();
        let addrs = crate::dnsc::resolve_a(resolver, name);
        let answer = now();
        let remote = *addrs
            .first()
            .unwrap_or_else(|| panic!("{name} resolved to nothing"));
        (
            send_and_connect(local, remote, got_one, start, Some(answer)),
            remote,
        )
    })
}

/// Datagram 0, the TCP connection on a thread of the same namespace, then the train.
fn send_and_connect(
    local: IpAddr,
    remote: IpAddr,
    got_one: &Arc<AtomicBool>,
    start: f64,
    answer: Option<f64>,
) -> AppSide {
    let udp = UdpSocket::bind(SocketAddr::new(local, 0)).unwrap();
    // A send can fail while policies change under it; the datagram counts as sent (and lost).
    let _ = udp.send_to(&0u32.to_be_bytes(), (remote, UDP_PORT));
    let connected = Arc::new(Mutex::new(None));
    let app = std::thread::scope(|scope| {
        let c = connected.clone();
        scope.spawn(move || connect_and_write(local, remote, &c));
        let mut sent = 1u32;
        let begun = Instant::now();
        while !got_one.load(Ordering::SeqCst) && begun.elapsed() < ROUND_DEADLINE {
            std::thread::sleep(TRAIN_INTERVAL);
            if got_one.load(Ordering::SeqCst) {
                break;
            }
            let _ = udp.send_to(&sent.to_be_bytes(), (remote, UDP_PORT));
            sent += 1;
        }
        AppSide {
            start,
            answer,
            sent,
            tcp_connected: None,
        }
    });
    let tcp_connected = *connected.lock().unwrap();
    AppSide {
        tcp_connected,
        ..app
    }
}

/// Connects (the socket bound to `local`), writes the bytes, and keeps the connection open
/// briefly so the server reads them before the close.
fn connect_and_write(local: IpAddr, remote: IpAddr, connected: &Mutex<Option<f64>>) {
    let socket = match local {
        IpAddr::V4(_) => nix_socket(false),
        IpAddr::V6(_) => nix_socket(true),
    };
    let Some(socket) = socket else { return };
    // connect() gives up at the round's deadline (Linux honours SO_SNDTIMEO there).
    let timeout = nix::sys::time::TimeVal::new(ROUND_DEADLINE.as_secs() as i64, 0);
    let _ =
        nix::sys::socket::setsockopt(&socket.0, nix::sys::socket::sockopt::SendTimeout, &timeout);
    if socket.bind(SocketAddr::new(local, 0)).is_err() {
        return;
    }
    let Ok(mut stream) = socket.connect(SocketAddr::new(remote, TCP_PORT)) else {
        return;
    };
    *connected.lock().unwrap() = Some(now());
    let _ = stream.write_all(TCP_BYTES);
    std::thread::sleep(Duration::from_millis(200));
}

/// A TCP socket that can be bound before connecting (std's `TcpStream` cannot).
fn nix_socket(v6: bool) -> Option<BoundTcp> {
    BoundTcp::new(v6)
}

/// A TCP socket bound before it connects.
struct BoundTcp(std::os::fd::OwnedFd);

impl BoundTcp {
    fn new(v6: bool) -> Option<Self> {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        let family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .ok()
            .map(Self)
    }

    fn bind(&self, addr: SocketAddr) -> nix::Result<()> {
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&self.0), &sockaddr(addr))
    }

    fn connect(self, addr: SocketAddr) -> nix::Result<TcpStream> {
        nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&self.0), &sockaddr(addr))?;
        Ok(TcpStream::from(self.0))
    }
}

fn sockaddr(addr: SocketAddr) -> nix::sys::socket::SockaddrStorage {
    nix::sys::socket::SockaddrStorage::from(addr)
}

/// TCP segments retransmitted so far in `ns` (`RetransSegs` of /proc/net/snmp).
pub fn tcp_retransmissions(ns: &Netns) -> u64 {
    let out = ns.cmd("cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("Tcp:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (Some(head), Some(values)) = (rows.first(), rows.get(1)) else {
        return 0;
    };
    head.iter()
        .position(|h| *h == "RetransSegs")
        .and_then(|i| values.get(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
