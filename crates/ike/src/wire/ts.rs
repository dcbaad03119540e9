//! Traffic Selector payloads TSi / TSr (RFC 7296 3.13).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::registry::TsType;
use super::{Reader, WireError, Writer};

/// One traffic selector: an address range, an IP protocol (0 = any) and a port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub ip_proto: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

impl TrafficSelector {
    /// Every port and protocol of one host (what a host-to-host transport SA protects).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            ip_proto: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: addr,
            end: addr,
        }
    }

    pub fn ts_type(&self) -> TsType {
        match self.start {
            IpAddr::V4(_) => TsType::IPV4_ADDR_RANGE,
            IpAddr::V6(_) => TsType::IPV6_ADDR_RANGE,
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let ty = TsType(r.u8("traffic selector")?);
        let ip_proto = r.u8("traffic selector")?;
        let len = usize::from(r.u16("traffic selector")?);
        let mut s = r.sub(
            len.checked_sub(4).ok_or(WireError::BadLength {
                what: "traffic selector",
            })?,
            "traffic selector",
        )?;
        let start_port = s.u16("traffic selector")?;
        let end_port = s.u16("traffic selector")?;
        let (start, end) = match ty {
            TsType::IPV4_ADDR_RANGE => (
                IpAddr::V4(Ipv4Addr::from(s.array::<4>("TS address")?)),
                IpAddr::V4(Ipv4Addr::from(s.array::<4>("TS address")?)),
            ),
            TsType::IPV6_ADDR_RANGE => (
                IpAddr::V6(Ipv6Addr::from(s.array::<16>("TS address")?)),
                IpAddr::V6(Ipv6Addr::from(s.array::<16>("TS address")?)),
            ),
            _ => {
                return Err(WireError::Invalid {
                    what: "traffic selector type",
                })
            }
        };
        s.finish("traffic selector")?;
        Ok(Self {
            ip_proto,
            start_port,
            end_port,
            start,
            end,
        })
    }

    fn emit(&self, w: &mut Writer) {
        w.u8(self.ts_type().0);
        w.u8(self.ip_proto);
        w.u16(u16::try_from(self.buffer_len()).unwrap_or(0));
        w.u16(self.start_port);
        w.u16(self.end_port);
        for a in [self.start, self.end] {
            match a {
                IpAddr::V4(a) => w.bytes(&a.octets()),
                IpAddr::V6(a) => w.bytes(&a.octets()),
            }
        }
    }

    fn buffer_len(&self) -> usize {
        match self.start {
            IpAddr::V4(_) => 16,
            IpAddr::V6(_) => 40,
        }
    }
}

/// A TSi or TSr payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsPayload(pub Vec<TrafficSelector>);

impl TsPayload {
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let count = r.u8("TS payload")?;
        let _reserved = r.take(3, "TS payload")?;
        let mut out = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            out.push(TrafficSelector::parse(&mut r)?);
        }
        r.finish("TS payload")?;
        Ok(Self(out))
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(u8::try_from(self.0.len()).unwrap_or(0));
        w.bytes(&[0; 3]);
        for ts in &self.0 {
            ts.emit(w);
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + self
            .0
            .iter()
            .map(TrafficSelector::buffer_len)
            .sum::<usize>()
    }
}
