//! The agent's IKE sockets: UDP 500 and 4500 (NAT-T) for IPv4 and IPv6, each marked to bypass IPsec
//! policy so IKE itself never hits the agent's traps, and the 4500 sockets set up for ESP-in-UDP
//! (RFC 3948). Each datagram is received with the local address it was sent to (IP_PKTINFO), so the
//! core knows which of the host's addresses a peer talks to without guessing from the routes.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Msg;

/// The bound sockets, by (is IPv6, local port).
#[derive(Debug, Clone)]
pub(crate) struct Sockets {
    by_key: HashMap<(bool, u16), Arc<UdpSocket>>,
}

impl Sockets {
    /// Binds the wildcard address of both families on `port` and `nat_port`. A family the host
    /// lacks is skipped with a warning; failing to bind IPv4 port 500 is an error.
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
    pub(crate) fn spawn_receivers(&self, tx: &mpsc::Sender<Msg>) {
        for (&(_, port), socket) in &self.by_key {
            let (socket, tx) = (socket.clone(), tx.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_535];
                loop {
                    match receive(&socket, &mut buf).await {
                        Ok((n, remote, Some(local))) => {
                            let input = oe_policy::Input::Datagram {
                                local: SocketAddr::new(local, port),
                                remote: unmap(remote),
                                bytes: buf.get(..n).unwrap_or_default().to_vec(),
                            };
                            if tx.send(Msg::Input(input)).await.is_err() {
                                return;
                            }
                        }
                        Ok((_, remote, None)) => {
                            tracing::debug!("datagram from {remote} without its local address");
                        }
                        Err(e) => tracing::debug!("IKE socket receive error on port {port}: {e}"),
                    }
                }
            });
        }
    }

    /// Sends `bytes` from `local` (RFC 7296 2.11: a response leaves from the address its request
    /// came to; an initiator's datagrams from the address its IKE SA was made from), on the
    /// socket of its family and port. When `local` is no longer the host's (its address was
    /// removed: a Delete for the SAs made from it), the kernel picks the source.
    pub(crate) fn send(&self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let Some(socket) = self.by_key.get(&(remote.is_ipv6(), local.port())) else {
            tracing::warn!("no IKE socket for {local}");
            return;
        };
        let result = match send_from(socket, local.ip(), remote, bytes) {
            // ENETUNREACH, EADDRNOTAVAIL or EINVAL for a source the host no longer has.
            Err(e) => {
                tracing::debug!(
                    "sending from {local} failed ({e}): to {remote} from the kernel's choice"
                );
                socket.try_send_to(bytes, remote).map(drop)
            }
            Ok(()) => Ok(()),
        };
        if let Err(e) = result {
            tracing::debug!("IKE send to {remote} failed: {e}");
        }
    }
}

/// One datagram to `remote` with source address `local` (IP_PKTINFO / IPV6_PKTINFO).
fn send_from(
    socket: &UdpSocket,
    local: IpAddr,
    remote: SocketAddr,
    bytes: &[u8],
) -> nix::Result<()> {
    use nix::libc::{in6_addr, in6_pktinfo, in_addr, in_pktinfo};
    use nix::sys::socket::{sendmsg, ControlMessage, SockaddrIn, SockaddrIn6};
    let iov = [std::io::IoSlice::new(bytes)];
    let fd = socket.as_raw_fd();
    let flags = MsgFlags::MSG_DONTWAIT;
    match (local, remote) {
        (IpAddr::V4(l), SocketAddr::V4(r)) => {
            let info = in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: in_addr {
                    s_addr: u32::from(l).to_be(),
                },
                ipi_addr: in_addr { s_addr: 0 },
            };
            let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
            sendmsg(fd, &iov, &cmsg, flags, Some(&SockaddrIn::from(r))).map(drop)
        }
        (IpAddr::V6(l), SocketAddr::V6(r)) => {
            let info = in6_pktinfo {
                ipi6_addr: in6_addr {
                    s6_addr: l.octets(),
                },
                ipi6_ifindex: 0,
            };
            let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
            sendmsg(fd, &iov, &cmsg, flags, Some(&SockaddrIn6::from(r))).map(drop)
        }
        _ => Err(nix::errno::Errno::EINVAL),
    }
}

fn bind_one(v6: bool, port: u16, nat_t: bool) -> std::io::Result<UdpSocket> {
    let socket = if v6 {
        bind_v6_only(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))?
    } else {
        StdUdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?
    };
    oe_kernel::socket::bypass_ipsec(&socket)?;
    if nat_t {
        oe_kernel::socket::enable_udp_encap(&socket)?;
    }
    if v6 {
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?;
    }
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// An IPv6 socket that does not also take IPv4 (the IPv4 socket has its own bypass settings).
fn bind_v6_only(addr: SocketAddr) -> std::io::Result<StdUdpSocket> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn6};
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
    bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?;
    Ok(StdUdpSocket::from(fd))
}

/// One datagram with its sender and the local address it was sent to.
async fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    socket
        .async_io(Interest::READABLE, || receive_now(socket, buf))
        .await
}

fn receive_now(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )?;
    let local = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::Ipv4PacketInfo(i) => {
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr))))
        }
        ControlMessageOwned::Ipv6PacketInfo(i) => {
            Some(IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr)))
        }
        _ => None,
    });
    let remote = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::new(IpAddr::V4(v4.ip()), v4.port()))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::new(IpAddr::V6(v6.ip()), v6.port()))
                })
        })
        .ok_or_else(|| std::io::Error::other("datagram without a sender address"))?;
    Ok((msg.bytes, remote, local.map(unmap_ip)))
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn unmap(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(unmap_ip(addr.ip()), addr.port())
}

fn unmap_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// The local address the kernel would use to reach `remote` (a routing lookup through a connected
/// UDP socket that bypasses IPsec policy, so the lookup never raises an ACQUIRE; nothing is sent).
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
