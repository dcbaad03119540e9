//! Policy groups (Libreswan's opportunistic-encryption names) and "most specific entry wins" matching.
//!
//! An entry is a prefix, optionally with a protocol and a port: `"198.51.100.7/32 udp/53"`. For a
//! destination, the matching entry with the longest prefix wins; among equally long prefixes an entry naming
//! protocol and port beats one naming only a protocol, which beats a bare prefix. Two entries that are equal in
//! all three cannot be told apart and are refused when the table is built.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::Groups;

/// A policy group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Encrypt, or drop.
    Private,
    /// Encrypt when the peer can, else clear.
    PrivateOrClear,
    /// Never initiate; answer peers that ask.
    ClearOrPrivate,
    /// Never encrypt.
    Clear,
    /// Drop.
    Block,
}

impl Group {
    /// The group's configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::PrivateOrClear => "private-or-clear",
            Self::ClearOrPrivate => "clear-or-private",
            Self::Clear => "clear",
            Self::Block => "block",
        }
    }

    /// The group of a configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Private,
            Self::PrivateOrClear,
            Self::ClearOrPrivate,
            Self::Clear,
            Self::Block,
        ]
        .into_iter()
        .find(|g| g.name() == name)
    }

    /// Whether the agent initiates IKE for traffic in this group (a trap policy is installed).
    pub fn initiates(self) -> bool {
        matches!(self, Self::Private | Self::PrivateOrClear)
    }

    /// Whether the agent answers IKE from peers in this group.
    pub fn responds(self) -> bool {
        matches!(
            self,
            Self::Private | Self::PrivateOrClear | Self::ClearOrPrivate
        )
    }

    /// Whether traffic may flow in clear when encryption fails.
    pub fn fails_open(self) -> bool {
        matches!(
            self,
            Self::PrivateOrClear | Self::ClearOrPrivate | Self::Clear
        )
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One configured entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    pub group: Group,
    pub prefix: IpNet,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 ipv6-icmp), if named.
    pub proto: Option<u8>,
    /// Destination port, if named (only with tcp, udp or sctp).
    pub port: Option<u16>,
}

impl Entry {
    fn specificity(&self) -> (u8, u8) {
        let selector = match (self.proto, self.port) {
            (Some(_), Some(_)) => 2,
            (Some(_), None) => 1,
            _ => 0,
        };
        (self.prefix.prefix_len(), selector)
    }

    fn matches(&self, dst: IpAddr, proto: u8, port: u16) -> bool {
        self.prefix.contains(&dst)
            && self.proto.is_none_or(|p| p == proto)
            && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.group, self.prefix)?;
        if let Some(proto) = self.proto {
            write!(f, " {}", proto_name(proto))?;
        }
        if let Some(port) = self.port {
            write!(f, "/{port}")?;
        }
        Ok(())
    }
}

/// A bad entry in `[groups]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("groups.{group}: {entry:?}: {why}")]
    BadEntry {
        group: &'static str,
        entry: String,
        why: String,
    },
    #[error("groups: {a} and {b} match exactly the same traffic")]
    Ambiguous { a: String, b: String },
}

/// The outcome of classifying a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Match {
    pub group: Group,
    /// The entry that decided; `None` when no entry matched (the built-in fallback, `clear`).
    pub entry: Option<Entry>,
}

/// All entries, ready for matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    entries: Vec<Entry>,
}

impl GroupTable {
    /// Builds the table from `[groups]`.
    pub fn from_config(groups: &Groups) -> Result<Self, GroupError> {
        let mut table = Self::default();
        for (group, list) in [
            (Group::Private, &groups.private),
            (Group::PrivateOrClear, &groups.private_or_clear),
            (Group::ClearOrPrivate, &groups.clear_or_private),
            (Group::Clear, &groups.clear),
            (Group::Block, &groups.block),
        ] {
            for text in list {
                table.add(parse_entry(group, text)?)?;
            }
        }
        Ok(table)
    }

    /// Adds an entry (the agent adds its DNS servers to `clear` this way).
    pub fn add(&mut self, entry: Entry) -> Result<(), GroupError> {
        if let Some(twin) = self
            .entries
            .iter()
            .find(|e| e.prefix == entry.prefix && e.proto == entry.proto && e.port == entry.port)
        {
            if twin.group == entry.group {
                return Ok(());
            }
            return Err(GroupError::Ambiguous {
                a: twin.to_string(),
                b: entry.to_string(),
            });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The group for traffic to `dst` with IP protocol `proto` and destination port `port` (0 if none).
    /// Destinations no entry covers are `clear`: the agent never takes connectivity it was not told to.
    pub fn classify(&self, dst: IpAddr, proto: u8, port: u16) -> Match {
        self.entries
            .iter()
            .filter(|e| e.matches(dst, proto, port))
            .max_by_key(|e| e.specificity())
            .map_or(
                Match {
                    group: Group::Clear,
                    entry: None,
                },
                |e| Match {
                    group: e.group,
                    entry: Some(*e),
                },
            )
    }

    /// Every entry, in configuration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

fn parse_entry(group: Group, text: &str) -> Result<Entry, GroupError> {
    let bad = |why: &str| GroupError::BadEntry {
        group: group.name(),
        entry: text.to_owned(),
        why: why.to_owned(),
    };
    let mut words = text.split_whitespace();
    let prefix: IpNet = words
        .next()
        .ok_or_else(|| bad("empty entry"))?
        .parse()
        .map_err(|_| bad("not a CIDR prefix (like 203.0.113.0/24 or 2001:db8::/32)"))?;
    if prefix.trunc() != prefix {
        return Err(bad("host bits are set below the prefix length"));
    }
    let (proto, port) = match words.next() {
        None => (None, None),
        Some(selector) => parse_selector(selector).ok_or_else(|| {
            bad("protocol must be tcp, udp, sctp, icmp, ipv6-icmp or a number, optionally /port")
        })?,
    };
    if words.next().is_some() {
        return Err(bad("trailing words"));
    }
    if port.is_some() && !matches!(proto, Some(6 | 17 | 132)) {
        return Err(bad("a port needs tcp, udp or sctp"));
    }
    Ok(Entry {
        group,
        prefix,
        proto,
        port,
    })
}

fn parse_selector(text: &str) -> Option<(Option<u8>, Option<u16>)> {
    let (proto, port) = match text.split_once('/') {
        Some((proto, port)) => (proto, Some(port.parse::<u16>().ok().filter(|p| *p != 0)?)),
        None => (text, None),
    };
    let proto = match proto {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "icmp" => 1,
        "ipv6-icmp" | "icmpv6" => 58,
        number => number.parse().ok()?,
    };
    Some((Some(proto), port))
}

/// A protocol's usual name.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(groups: Groups) -> GroupTable {
        GroupTable::from_config(&groups).unwrap()
    }

    #[test]
    fn defaults_encrypt_the_internet_and_keep_local_networks_clear() {
        let t = table(Groups::default());
        let g = |a: &str| t.classify(a.parse().unwrap(), 6, 443).group;
        assert_eq!(g("203.0.113.7"), Group::PrivateOrClear);
        assert_eq!(g("2001:db8::7"), Group::PrivateOrClear);
        assert_eq!(g("192.168.1.1"), Group::Clear);
        assert_eq!(g("10.1.2.3"), Group::Clear);
        assert_eq!(g("fe80::1"), Group::Clear);
        assert_eq!(g("127.0.0.1"), Group::Clear);
        assert_eq!(g("224.0.0.251"), Group::Clear);
    }

    #[test]
    fn most_specific_entry_wins() {
        let t = table(Groups {
            private: vec!["198.51.100.0/24".into()],
            private_or_clear: vec!["0.0.0.0/0".into()],
            clear: vec!["198.51.100.7/32".into(), "198.51.100.0/24 udp/53".into()],
            block: vec!["198.51.100.0/24 tcp".into()],
            ..Groups::default()
        });
        let g = |a: &str, proto, port| t.classify(a.parse().unwrap(), proto, port).group;
        assert_eq!(
            g("198.51.100.7", 6, 80),
            Group::Clear,
            "a /32 beats any /24"
        );
        assert_eq!(
            g("198.51.100.8", 17, 53),
            Group::Clear,
            "proto+port beats proto beats prefix"
        );
        assert_eq!(g("198.51.100.8", 6, 22), Group::Block);
        assert_eq!(g("198.51.100.8", 17, 123), Group::Private);
        assert_eq!(g("203.0.113.1", 17, 123), Group::PrivateOrClear);
        assert_eq!(
            t.classify("2001:db8::1".parse().unwrap(), 6, 1).entry,
            None,
            "uncovered means clear"
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        for (entry, fragment) in [
            ("198.51.100.1/24", "host bits"),
            ("nonsense", "CIDR"),
            ("10.0.0.0/8 icmp/7", "port needs"),
            ("10.0.0.0/8 tcp/0", "protocol"),
            ("10.0.0.0/8 tcp/80 extra", "trailing"),
        ] {
            let err = GroupTable::from_config(&Groups {
                private: vec![entry.into()],
                ..Groups::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(fragment), "{entry}: {err}");
        }
        let err = GroupTable::from_config(&Groups {
            private: vec!["192.0.2.0/24".into()],
            block: vec!["192.0.2.0/24".into()],
            ..Groups::default()
        })
        .unwrap_err();
        assert!(matches!(err, GroupError::Ambiguous { .. }));
    }
}
