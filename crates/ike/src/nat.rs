//! NAT detection (RFC 7296 2.23): SHA-1(SPIi | SPIr | IP address | port).

use std::net::{IpAddr, SocketAddr};

use ring::digest;

/// The NAT_DETECTION_*_IP notification data for one address.
pub(crate) fn hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

/// Whether any of the received hashes matches `addr` (several SOURCE_IP notifies may come).
pub(crate) fn matches<'a>(
    mut received: impl Iterator<Item = &'a [u8]>,
    spi_i: u64,
    spi_r: u64,
    addr: SocketAddr,
) -> bool {
    let h = hash(spi_i, spi_r, addr);
    received.any(|r| r == h.as_slice())
}
