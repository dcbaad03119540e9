//! Socket-level helpers: policy bypass for the agent's own IKE and DNS sockets,
//! ESP-in-UDP decapsulation on its NAT-T socket, and registering netlink sockets with
//! tokio.
//!
//! A socket policy (`IP_XFRM_POLICY` / `IPV6_XFRM_POLICY`, see `ip-xfrm(8)` and
//! strongSwan's `kernel_netlink_ipsec.c` bypass_socket) takes precedence over every
//! SPD entry: an "allow, no templates" policy in both directions lets the socket's
//! packets through in clear, so the agent's IKE_SA_INIT to a new peer does not hit its
//! own trap, and its DNS queries are never held by a shunt. Needs `CAP_NET_ADMIN`.
//!
//! This is the one module with `unsafe`: `setsockopt`, `getsockopt`, and
//! `AsyncFd::register` (whose safety rests on the fd staying open, which owning the
//! socket guarantees).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_packet_core::Emitable;
use netlink_packet_xfrm::{UserPolicyInfo, XFRM_POLICY_ALLOW, XFRM_POLICY_IN, XFRM_POLICY_OUT};

use crate::types::Family;

/// `UDP_ENCAP_ESPINUDP` (RFC 3948): ESP in UDP with a non-ESP marker for IKE.
const UDP_ENCAP_ESPINUDP: libc::c_int = 2;

/// Makes `socket` (an `AF_INET` or `AF_INET6` socket) bypass IPsec policy in both
/// directions.
pub fn bypass_ipsec(socket: &impl AsFd) -> io::Result<()> {
    let fd = socket.as_fd();
    let family = socket_family(fd)?;
    let (level, option) = match family {
        Family::V4 => (libc::SOL_IP, libc::IP_XFRM_POLICY),
        Family::V6 => (libc::SOL_IPV6, libc::IPV6_XFRM_POLICY),
    };
    for dir in [XFRM_POLICY_IN, XFRM_POLICY_OUT] {
        set_option(fd, level, option, &allow_policy(family, dir))?;
    }
    Ok(())
}

/// Marks a UDP socket (the agent's port-4500 socket) to decapsulate ESP-in-UDP
/// packets (RFC 3948 section 2.2) and hand only IKE (non-ESP marker) to the program.
pub fn enable_udp_encap(socket: &impl AsFd) -> io::Result<()> {
    let value = UDP_ENCAP_ESPINUDP.to_ne_bytes();
    set_option(socket.as_fd(), libc::SOL_UDP, libc::UDP_ENCAP, &value)
}

/// `struct xfrm_userpolicy_info` for "allow, no templates" in `dir`; the selector's
/// family must be the socket's (the kernel checks it), its prefixes are empty.
fn allow_policy(family: Family, dir: u8) -> Vec<u8> {
    let mut info = UserPolicyInfo {
        direction: dir,
        action: XFRM_POLICY_ALLOW,
        ..UserPolicyInfo::default()
    };
    info.selector.family = family.af();
    let mut bytes = vec![0u8; info.buffer_len()];
    info.emit(&mut bytes);
    bytes
}

fn socket_family(fd: BorrowedFd<'_>) -> io::Result<Family> {
    let mut domain: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<libc::c_int>()).map_err(io::Error::other)?;
    // SAFETY: `fd` is a valid open descriptor for the borrow's lifetime; `domain` and
    // `len` are live locals, and `len` holds the size of `domain`, so the kernel
    // writes at most that many bytes into it.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            std::ptr::addr_of_mut!(domain).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    match domain {
        libc::AF_INET => Ok(Family::V4),
        libc::AF_INET6 => Ok(Family::V6),
        _ => Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    }
}

/// Registers an owned netlink socket with the tokio reactor.
pub(crate) fn register(
    socket: netlink_sys::Socket,
) -> io::Result<tokio::io::unix::AsyncFd<netlink_sys::Socket>> {
    // SAFETY: the `AsyncFd` takes ownership of `socket`, which owns its fd and closes
    // it only on drop, so the fd stays open and the same for the `AsyncFd`'s lifetime;
    // `Socket::as_raw_fd` always returns that fd.
    let registered = unsafe { tokio::io::unix::AsyncFd::register(socket) };
    registered.map_err(io::Error::from)
}

fn set_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len()).map_err(io::Error::other)?;
    // SAFETY: `fd` is a valid open descriptor for the borrow's lifetime; the kernel
    // reads exactly `len` bytes from `value`, which is a live slice of that length.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, option, value.as_ptr().cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_layout() {
        let bytes = allow_policy(Family::V6, XFRM_POLICY_OUT);
        assert_eq!(bytes.len(), 168);
        // selector.family at offset 16 + 16 + 8 = 40, host order.
        assert_eq!(&bytes[40..42], &10u16.to_ne_bytes());
        // lifetime byte limits are "infinite".
        assert_eq!(&bytes[56..64], &[0xff; 8]);
    }

    #[test]
    fn family_of_sockets() {
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(socket_family(v4.as_fd()).unwrap(), Family::V4);
        if let Ok(v6) = std::net::UdpSocket::bind("[::1]:0") {
            assert_eq!(socket_family(v6.as_fd()).unwrap(), Family::V6);
        }
    }
}
