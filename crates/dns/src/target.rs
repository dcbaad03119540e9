//! What to look up: a host name (forward) or an address (its reverse-zone name).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::Name;
use thiserror::Error;

/// The identity whose IPSECKEY is wanted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LookupTarget {
    /// A fully qualified host name, for FQDN identities.
    Forward(Name),
    /// An address, looked up under in-addr.arpa. or ip6.arpa. (RFC 4025 section 1.2).
    Reverse(IpAddr),
}

/// A target that is neither an address nor a valid domain name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is neither an IP address nor a domain name")]
pub struct BadTarget(pub String);

impl LookupTarget {
    /// The name queried for IPSECKEY, fully qualified and lower case.
    pub fn query_name(&self) -> Name {
        match self {
            Self::Forward(name) => name.to_lowercase(),
            Self::Reverse(addr) => reverse_name(*addr),
        }
    }
}

impl FromStr for LookupTarget {
    type Err = BadTarget;

    /// An IPv4 or IPv6 address gives a reverse lookup; anything else must be a domain name,
    /// taken as fully qualified (no search list: identities are absolute).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self::Reverse(addr));
        }
        let mut name = Name::from_ascii(s).map_err(|_| BadTarget(s.to_owned()))?;
        if name.is_root() || s.is_empty() {
            return Err(BadTarget(s.to_owned()));
        }
        name.set_fqdn(true);
        Ok(Self::Forward(name))
    }
}

impl fmt::Display for LookupTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forward(name) => name.fmt(f),
            Self::Reverse(addr) => addr.fmt(f),
        }
    }
}

/// `4.3.2.1.in-addr.arpa.` (RFC 1035 section 3.5) or the nibble form under `ip6.arpa.`
/// (RFC 3596 section 2.5).
fn reverse_name(addr: IpAddr) -> Name {
    let labels: Vec<String> = match addr {
        IpAddr::V4(v4) => {
            let mut l: Vec<String> = v4.octets().iter().rev().map(u8::to_string).collect();
            l.extend(["in-addr".into(), "arpa".into()]);
            l
        }
        IpAddr::V6(v6) => {
            let mut l: Vec<String> = v6
                .octets()
                .iter()
                .rev()
                .flat_map(|b| [b & 0x0F, b >> 4])
                .map(|nibble| format!("{nibble:x}"))
                .collect();
            l.extend(["ip6".into(), "arpa".into()]);
            l
        }
    };
    // Labels of digits and hex letters under a fixed suffix always form a valid name.
    Name::from_labels(labels.iter().map(String::as_bytes)).unwrap_or_else(|_| Name::root())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        let t: LookupTarget = "192.0.2.38".parse().unwrap();
        assert_eq!(t.query_name().to_string(), "38.2.0.192.in-addr.arpa.");
        let t: LookupTarget = "2001:db8:0:8002::2000:1".parse().unwrap();
        assert_eq!(
            t.query_name().to_string(),
            "1.0.0.0.0.0.0.2.0.0.0.0.0.0.0.0.2.0.0.8.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }

    #[test]
    fn forward_names() {
        let t: LookupTarget = "Host.Example.NET".parse().unwrap();
        assert_eq!(t.query_name().to_string(), "host.example.net.");
        assert_eq!(t.to_string(), "Host.Example.NET.");
        assert!("".parse::<LookupTarget>().is_err());
        assert!(".".parse::<LookupTarget>().is_err());
        assert!("a..b".parse::<LookupTarget>().is_err());
    }
}
