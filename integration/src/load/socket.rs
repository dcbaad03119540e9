//! One UDP socket for every initiator: it sends from any address of a prefix the namespace
//! routes to itself (an AnyIP `local` route; `net.ipv6.ip_nonlocal_bind` lets IPV6_PKTINFO name
//! it as the source) and learns each reply's destination from IPV6_PKTINFO (RFC 3542 6).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn6,
};

/// The initiators' socket (IPv6 only).
#[derive(Debug)]
pub struct PktSocket {
    socket: UdpSocket,
    buf: Vec<u8>,
}

/// One received datagram: who sent it, to which of our addresses, and its bytes.
#[derive(Debug)]
pub struct Received<'a> {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: &'a [u8],
}

impl PktSocket {
    /// Binds `[::]:port` in the calling thread's namespace, with 32 MiB buffers each way.
    pub fn bind(port: u16) -> std::io::Result<Self> {
        let socket = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port))?;
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        setsockopt(&socket, sockopt::RcvBufForce, &(32 << 20))?;
        setsockopt(&socket, sockopt::SndBufForce, &(32 << 20))?;
        Ok(Self {
            socket,
            buf: vec![0; 65536],
        })
    }

    /// Sends `bytes` from `from` (any address the namespace routes to itself) to `to`.
    pub fn send(&self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
        let (SocketAddr::V6(from), SocketAddr::V6(to)) = (from, to) else {
            return Err(std::io::Error::other("the load generator speaks IPv6 only"));
        };
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: from.ip().octets(),
            },
            ipi6_ifindex: 0,
        };
        let cmsgs = [ControlMessage::Ipv6PacketInfo(&info)];
        let dst = SockaddrIn6::from(to);
        sendmsg(
            self.socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsgs,
            MsgFlags::empty(),
            Some(&dst),
        )?;
        Ok(())
    }

    /// The next datagram, waiting at most `wait` (None: nothing came).
    pub fn recv(&mut self, wait: Duration) -> std::io::Result<Option<Received<'_>>> {
        let wait = wait.max(Duration::from_micros(100));
        self.socket.set_read_timeout(Some(wait))?;
        let port = self.socket.local_addr()?.port();
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo);
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let msg = match recvmsg::<SockaddrIn6>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = msg.bytes;
        let from = msg.address.map(|a| SocketAddr::V6(SocketAddrV6::from(a)));
        let mut to = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::Ipv6PacketInfo(info) = c {
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                to = Some(SocketAddr::new(ip.into(), port));
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            return Ok(None);
        };
        let bytes = self.buf.get(..len).unwrap_or_default();
        Ok(Some(Received { from, to, bytes }))
    }
}
