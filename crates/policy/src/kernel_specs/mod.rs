//! What the kernel gets for a negotiated child SA: the SA pair and the host policies, built from
//! exactly what was negotiated (RFC 7296 2.9: the selectors after narrowing). A narrowing the
//! kernel cannot express as one selector per direction is refused, never widened. In tunnel mode
//! (RFC 4301 4.1) the selectors name the inner hosts (an address a responder assigned, 3.15)
//! and the SAs and policy templates the outer ones.

use oe_ike::crypto::{EncrAlg, IntegAlg};
use oe_ike::wire::TrafficSelector as IkeTs;
use oe_ike::{ChildSa, Mode};
use oe_kernel::{
    EspAlgorithm, Key, Lifetime, Limits, PolicySpec, Replay, Reqid, SaSpec, Spi, TrafficSelector,
    UdpEncap,
};

/// Replay window of the SAs we install (packets).
const REPLAY_WINDOW: u32 = 128;

/// The selector (outbound direction) a child's traffic selectors negotiate, or why the kernel
/// cannot enforce them.
pub(crate) fn child_selector(child: &ChildSa) -> Result<TrafficSelector, String> {
    let (Some(local), Some(remote), 1, 1) = (
        child.local_ts.first(),
        child.remote_ts.first(),
        child.local_ts.len(),
        child.remote_ts.len(),
    ) else {
        return Err(format!(
            "{} local and {} remote traffic selectors (one each is supported)",
            child.local_ts.len(),
            child.remote_ts.len()
        ));
    };
    let hosts_ok = match child.mode {
        Mode::Transport => covers_only(local, child.local) && covers_only(remote, child.remote),
        // A tunnel's inner hosts may differ from its ends: an assigned address (3.15).
        Mode::Tunnel => local.start == local.end && remote.start == remote.end,
    };
    if !hosts_ok {
        return Err(format!(
            "traffic selectors {}-{} === {}-{} are not the two hosts",
            local.start, local.end, remote.start, remote.end
        ));
    }
    let hosts = TrafficSelector::hosts(local.start, remote.start).map_err(|e| e.to_string())?;
    let proto = match (local.ip_proto, remote.ip_proto) {
        (0, 0) => return Ok(hosts),
        (a, b) if a == b || b == 0 => a,
        (0, b) => b,
        (a, b) => return Err(format!("traffic selectors name protocols {a} and {b}")),
    };
    let (src, dst) = (port(local)?, port(remote)?);
    hosts
        .with_proto(proto, src, dst)
        .map_err(|e| format!("protocol {proto} with ports: {e}"))
}

/// A selector covering exactly one address.
fn covers_only(ts: &IkeTs, addr: std::net::IpAddr) -> bool {
    ts.start == addr && ts.end == addr
}

/// One port, any port, or an error for a range the kernel's selector cannot hold.
fn port(ts: &IkeTs) -> Result<Option<u16>, String> {
    match (ts.start_port, ts.end_port) {
        (0, u16::MAX) => Ok(None),
        (a, b) if a == b => Ok(Some(a)),
        (a, b) => Err(format!("port range {a}-{b}")),
    }
}

/// The host policies (out, in) of a tunnel-mode child: `selector` carried between the outer
/// hosts `ends` (ours, the peer's); with `lifetime`, they expire unless refreshed.
pub(crate) fn tunnel_policies(
    selector: TrafficSelector,
    ends: (std::net::IpAddr, std::net::IpAddr),
    reqid: Reqid,
    lifetime: Option<u64>,
) -> Result<Vec<PolicySpec>, String> {
    let pair =
        PolicySpec::host_tunnel_pair(selector, ends.0, ends.1, reqid).map_err(|e| e.to_string())?;
    Ok(pair
        .into_iter()
        .map(|p| match lifetime {
            Some(secs) => p.expiring(secs),
            None => p,
        })
        .collect())
}

/// The host policies (out, in) routing a child's selector into SAs with `reqid`; with
/// `lifetime`, they expire unless refreshed.
pub(crate) fn host_policies(
    selector: TrafficSelector,
    reqid: Reqid,
    lifetime: Option<u64>,
) -> Vec<PolicySpec> {
    let pair = |sel: TrafficSelector, dir| {
        let mut spec = PolicySpec {
            selector: sel,
            dir,
            action: oe_kernel::PolicyAction::Protect(reqid),
            class: oe_kernel::priority::Class::HostSa,
            expires: None,
        };
        if let Some(secs) = lifetime {
            spec = spec.expiring(secs);
        }
        spec
    };
    vec![
        pair(selector, oe_kernel::Direction::Out),
        pair(selector.reversed(), oe_kernel::Direction::In),
    ]
}

/// The inbound and outbound SA of a child, or `None` if the kernel has no equivalent of its
/// algorithm.
pub(crate) fn sa_specs(
    child: &ChildSa,
    reqid: Reqid,
    selector: TrafficSelector,
) -> Option<(SaSpec, SaSpec)> {
    let k = &child.keys;
    let alg = |encr: &[u8], integ: &[u8]| esp_algorithm(child.encr, child.integ, encr, integ);
    let lifetime = Lifetime {
        // The engine rekeys at the soft lifetime; the kernel's soft limit is a late backstop,
        // its hard limit the SA's end.
        soft: Limits {
            add_seconds: Some(child.lifetime.hard.as_secs().saturating_sub(30).max(1)),
            ..Limits::default()
        },
        hard: Limits {
            add_seconds: Some(child.lifetime.hard.as_secs().max(2)),
            ..Limits::default()
        },
    };
    let spec = |src, dst, spi, algorithm, encap: Option<(u16, u16)>, sel| SaSpec {
        src,
        dst,
        spi: Spi(spi),
        reqid,
        algorithm,
        lifetime,
        replay: Replay {
            window: REPLAY_WINDOW,
            esn: false,
        },
        encap: encap.map(|(src_port, dst_port)| UdpEncap {
            src_port,
            dst_port,
            mapping_threshold: None,
        }),
        selector: Some(sel),
        acquire_seq: None,
    };
    let inbound = spec(
        child.remote,
        child.local,
        child.inbound_spi,
        alg(&k.encr_in, &k.integ_in)?,
        child.encap.map(|(o, t)| (t, o)),
        selector.reversed(),
    );
    let outbound = spec(
        child.local,
        child.remote,
        child.outbound_spi,
        alg(&k.encr_out, &k.integ_out)?,
        child.encap,
        selector,
    );
    Some((inbound, outbound))
}

fn esp_algorithm(
    encr: EncrAlg,
    integ: Option<IntegAlg>,
    encr_key: &[u8],
    integ_key: &[u8],
) -> Option<EspAlgorithm> {
    Some(match (encr, integ) {
        (EncrAlg::AesGcm16 { .. }, None) => EspAlgorithm::AesGcm16 {
            key: Key::new(encr_key.to_vec()),
        },
        (EncrAlg::ChaCha20Poly1305, None) => EspAlgorithm::ChaCha20Poly1305 {
            key: Key::new(encr_key.to_vec()),
        },
        (EncrAlg::AesCbc { .. }, Some(IntegAlg::HmacSha2_256_128)) => {
            EspAlgorithm::AesCbcHmacSha256 {
                enc_key: Key::new(encr_key.to_vec()),
                auth_key: Key::new(integ_key.to_vec()),
            }
        }
        _ => return None,
    })
}

/// strongSwan-style names: "AES_GCM_16_256", "CHACHA20_POLY1305", "AES_CBC_256/HMAC_SHA2_256_128".
pub(crate) fn esp_name(encr: EncrAlg) -> String {
    match encr {
        EncrAlg::AesGcm16 { key_bits } => format!("AES_GCM_16_{key_bits}"),
        EncrAlg::ChaCha20Poly1305 => "CHACHA20_POLY1305".into(),
        EncrAlg::AesCbc { key_bits } => format!("AES_CBC_{key_bits}/HMAC_SHA2_256_128"),
        #[allow(unreachable_patterns)]
        _ => format!("{encr:?}"),
    }
}

/// A peer's host selector for shunts: our address to the peer's, with the matched entry's
/// protocol and port.
pub(crate) fn shunt_selector(
    local: std::net::IpAddr,
    remote: std::net::IpAddr,
    group: &crate::config::Match,
) -> Option<TrafficSelector> {
    let selector = TrafficSelector::hosts(local, remote).ok()?;
    match group.entry.and_then(|e| e.proto) {
        Some(proto) => selector
            .with_proto(proto, None, group.entry.and_then(|e| e.port))
            .ok(),
        None => Some(selector),
    }
}

#[cfg(test)]
mod tests;
