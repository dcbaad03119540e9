//! Forwarding-loop checks. An upstream on loopback may forward back to the stub
//! (systemd-resolved with `DNS=127.0.2.53`, dnsmasq or unbound naming the stub as their
//! forwarder): the stub forwarding to it would loop. The check sends a query for a fresh random
//! name (`<random>.oe-loop-check.`) straight to the candidate; if that name then reaches the
//! stub, the candidate forwards to the stub. The stub answers a probe name SERVFAIL at once and
//! never forwards it, so the probe itself cannot loop.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::rr::Name;
use ring::rand::{SecureRandom, SystemRandom};

/// The zone probe names live in (no such top-level domain).
const PROBE_ZONE: &str = "oe-loop-check.";
/// How long a probe waits for the candidate's answer.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// Probe names in flight, and whether the stub has seen each.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    names: Mutex<HashMap<Name, bool>>,
}

impl Probes {
    /// Marks `name` seen if it is a probe in flight; returns whether it is one.
    pub(crate) fn saw(&self, name: &Name) -> bool {
        let Ok(mut names) = self.names.lock() else {
            return false;
        };
        match names.get_mut(&name.to_lowercase()) {
            Some(seen) => {
                *seen = true;
                true
            }
            None => false,
        }
    }

    /// Whether queries sent to `server` come back to the stub.
    pub(crate) async fn loops_through(&self, server: SocketAddr) -> bool {
        let rng = SystemRandom::new();
        let mut label = [0u8; 8];
        if rng.fill(&mut label).is_err() {
            return false;
        }
        let text = format!("{}.{PROBE_ZONE}", hex::encode(label));
        let Ok(name) = Name::from_ascii(&text) else {
            return false;
        };
        if let Ok(mut names) = self.names.lock() {
            names.insert(name.to_lowercase(), false);
        }
        let _ = ask(
            server,
            &query(&text, u16::from_be_bytes([label[0], label[1]])),
        )
        .await;
        self.names
            .lock()
            .ok()
            .and_then(|mut n| n.remove(&name.to_lowercase()))
            .unwrap_or(false)
    }
}

/// An A query for `name` (RD set).
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, 0, 1, 0, 1]);
    out
}

/// Sends `query` to `server` and waits for any answer, at most [`PROBE_WAIT`].
async fn ask(server: SocketAddr, query: &[u8]) -> std::io::Result<()> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.send_to(query, server).await?;
    let mut buf = [0u8; 512];
    let _ = tokio::time::timeout(PROBE_WAIT, socket.recv_from(&mut buf)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_query_is_a_wellformed_a_query() {
        let q = query("0011223344556677.oe-loop-check.", 7);
        let action = super::super::message::inspect_query(&q);
        let super::super::message::QueryAction::Forward(question) = action else {
            panic!("{action:?}")
        };
        assert_eq!(question.id, 7);
        assert_eq!(question.name.to_ascii(), "0011223344556677.oe-loop-check.");
    }
}
