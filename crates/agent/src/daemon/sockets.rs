//! The agent's IKE sockets: UDP 500 and 4500 (NAT-T) for IPv4 and IPv6, each marked to bypass IPsec policy
//! so IKE itself never hits the agent's traps, and the 4500 sockets set up for ESP-in-UDP (RFC 3948).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Input;

/// One received datagram.
#[derive(Debug)]
pub(crate) struct Datagram {
    /// The local port it arrived on (500 or the NAT-T port).
    pub(crate) local_port: u16,
    pub(crate) remote: SocketAddr,
    pub(crate) bytes: Vec<u8>,
}

/// The bound sockets, by (is IPv6, local port).
#[derive(Debug, Clone)]
pub(crate) struct Sockets {
    by_key: HashMap<(bool, u16), Arc<UdpSocket>>,
}

impl Sockets {
    /// Binds the wildcard address of both families on `port` and `nat_port`. A family the host lacks is
    /// skipped with a warning; failing to bind IPv4 port 500 is an error.
    pub(crate) fn bind(port: u16, nat_port: u16) -> std::io::Result<Self> {
        let mut by_key = HashMap::new();
        for v6 in [false, true] {
            for p in [port, nat_port] {
                match bind_one(v6, p, p == nat_port) {
                    Ok(socket) => {
                        by_key.insert((v6, p), Arc::new(socket));
                    }
                    Err(e) if v6 => tracing::warn!("IKE over IPv6 unavailable (port {p}): {e}"),
                    Err(e) => {
                        return Err(std::io::Error::new(e.kind(), format!("UDP port {p}: {e}")))
                    }
                }
            }
        }
        Ok(Self { by_key })
    }

    /// Starts one receive task per socket, feeding `tx`.
    pub(crate) fn spawn_receivers(&self, tx: &mpsc::Sender<Input>) {
        for (&(_, port), socket) in &self.by_key {
            let (socket, tx) = (socket.clone(), tx.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_535];
                loop {
                    match socket.recv_from(&mut buf).await {
                        Ok((n, remote)) => {
                            let bytes = buf.get(..n).unwrap_or_default().to_vec();
                            let datagram = Datagram {
                                local_port: port,
                                remote: unmap(remote),
                                bytes,
                            };
                            if tx.send(Input::Datagram(datagram)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!("IKE socket receive error on port {port}: {e}"),
                    }
                }
            });
        }
    }

    /// Sends `bytes` from the socket of `local`'s family and port.
    pub(crate) fn send(&self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let Some(socket) = self.by_key.get(&(remote.is_ipv6(), local.port())) else {
            tracing::warn!("no IKE socket for {local}");
            return;
        };
        if let Err(e) = socket.try_send_to(bytes, remote) {
            tracing::debug!("IKE send to {remote} failed: {e}");
        }
    }
}

fn bind_one(v6: bool, port: u16, nat_t: bool) -> std::io::Result<UdpSocket> {
    let addr: SocketAddr = if v6 {
        (IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into()
    } else {
        (IpAddr::V4(Ipv4Addr::UNSPECIFIED), port).into()
    };
    let socket = if v6 {
        bind_v6_only(addr)?
    } else {
        StdUdpSocket::bind(addr)?
    };
    oe_kernel::socket::bypass_ipsec(&socket)?;
    if nat_t {
        oe_kernel::socket::enable_udp_encap(&socket)?;
    }
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// An IPv6 socket that does not also take IPv4 (the IPv4 socket has its own bypass settings).
fn bind_v6_only(addr: SocketAddr) -> std::io::Result<StdUdpSocket> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn6,
    };
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    let SocketAddr::V6(v6) = addr else {
        return Err(std::io::Error::other("not an IPv6 address"));
    };
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn6::from(v6))?;
    Ok(StdUdpSocket::from(fd))
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The local address the kernel would use to reach `remote` (a routing lookup through a connected UDP
/// socket that bypasses IPsec policy, so the lookup never raises an ACQUIRE; nothing is sent).
pub(crate) fn local_address_towards(remote: IpAddr) -> std::io::Result<IpAddr> {
    let unspecified: IpAddr = if remote.is_ipv6() {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let socket = StdUdpSocket::bind((unspecified, 0))?;
    oe_kernel::socket::bypass_ipsec(&socket)?;
    socket.connect((remote, 500))?;
    Ok(socket.local_addr()?.ip())
}
