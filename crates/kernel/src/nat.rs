//! Following a NAT: when the NAT in front of a peer rebinds (a new public port after its
//! mapping timed out or was flushed), the kernel sees UDP-encapsulated ESP (RFC 3948) from
//! a new source port on the inbound SA and reports it ([`crate::Mapping`], at most once per
//! `XFRMA_MTIMER_THRESH` seconds). The SAs must follow (RFC 7296 section 2.23: "use the
//! new port for sending"), or every packet back goes to the old, dead binding.
//!
//! # The mechanism
//! `XFRM_MSG_UPDSA` of an existing valid SA (`xfrm_state_update`, Linux 2.6 to 6.18)
//! keeps the SA itself (keys, sequence numbers, replay window, counters) and takes only
//! the new message's UDP encapsulation (when both use the same encapsulation type), its
//! lifetimes and care-of address. The kernel still builds a complete state from the
//! message before it looks, so [`Request::update_encap`] sends the SA's own algorithm with
//! a throwaway all-zero key, which is never installed; the lifetimes it sends are the
//! SA's own, read back. Re-adding the SA instead would restart its sequence numbers under
//! the same key: a nonce reuse for AES-GCM and ChaCha20-Poly1305.
//!
//! A change of the peer's *address* (its NAT got a new public address) is beyond
//! `UPDSA`, which cannot move an SA's addresses (they identify it); that needs
//! `XFRM_MSG_MIGRATE` (`CONFIG_XFRM_MIGRATE`) and, in transport mode, new policies for
//! the new address. [`follow_mapping`] refuses it ([`InvalidRequest::PeerAddressChanged`]).

use crate::event::Mapping;
use crate::ownership::{OwnedSa, Ownership};
use crate::sa::{Replay, SaInfo, SaSpec, UdpEncap};
use crate::types::{InvalidRequest, TrafficSelector};
use crate::wire::request::Request;
use crate::AlgorithmKind;

/// The two requests that make an SA pair follow the peer to `mapping.new`: the inbound SA
/// (`mapping.sa`) expects the peer's new source port, the outbound SA sends to it.
pub fn follow_mapping(
    mapping: &Mapping,
    inbound: &OwnedSa,
    outbound: &OwnedSa,
    ownership: &Ownership,
) -> Result<[Request<()>; 2], InvalidRequest> {
    if inbound.id() != mapping.sa {
        return Err(InvalidRequest::OtherEntry);
    }
    let peer = mapping.new;
    let (Some((_, ours_in)), Some((ours_out, _))) = (inbound.info().encap, outbound.info().encap)
    else {
        return Err(InvalidRequest::NotEncapsulated);
    };
    if inbound.info().src != peer.ip() || outbound.id().dst != peer.ip() {
        return Err(InvalidRequest::PeerAddressChanged(peer));
    }
    Ok([
        Request::update_encap(inbound, encap(peer.port(), ours_in), ownership)?,
        Request::update_encap(outbound, encap(ours_out, peer.port()), ownership)?,
    ])
}

fn encap(src_port: u16, dst_port: u16) -> UdpEncap {
    UdpEncap {
        src_port,
        dst_port,
        mapping_threshold: None,
    }
}

impl Request<()> {
    /// `XFRM_MSG_UPDSA` giving an existing SA of ours new UDP encapsulation ports, and
    /// nothing else (see [`crate::nat`]). The SA must be encapsulated already.
    pub fn update_encap(
        current: &OwnedSa,
        encap: UdpEncap,
        ownership: &Ownership,
    ) -> Result<Self, InvalidRequest> {
        let info = current.info();
        if info.encap.is_none() {
            return Err(InvalidRequest::NotEncapsulated);
        }
        let spec = throwaway_spec(info, encap)?;
        let mode = info
            .mode()
            .ok_or(InvalidRequest::Unsupported("the SA's mode"))?;
        Self::update_sa_in(mode, current, &spec, ownership)
    }
}

/// The SA as read, with the new encapsulation and a throwaway key of its algorithm.
fn throwaway_spec(info: &SaInfo, encap: UdpEncap) -> Result<SaSpec, InvalidRequest> {
    let kind = AlgorithmKind::from_kernel_names(&info.algorithms)
        .ok_or(InvalidRequest::Unsupported("the SA's algorithm"))?;
    let selector = match info.selector {
        Some(selector) => selector,
        None => TrafficSelector::hosts(info.src, info.id.dst)?,
    };
    Ok(SaSpec {
        src: info.src,
        dst: info.id.dst,
        spi: info.id.spi,
        reqid: info.reqid,
        algorithm: kind.filler(0),
        lifetime: info.lifetime,
        replay: Replay {
            window: info.replay_window,
            esn: info.esn,
        },
        encap: Some(encap),
        selector: Some(selector),
        acquire_seq: None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use netlink_packet_core::Parseable;
    use netlink_packet_xfrm::state::ModifyMessage;
    use netlink_packet_xfrm::XfrmAttrs;

    use super::*;
    use crate::sa::{Counters, Lifetime, Limits, SaId, SaStats};
    use crate::types::Spi;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(src: &str, dst: &str, spi: u32, encap: Option<(u16, u16)>) -> OwnedSa {
        let info = SaInfo {
            id: SaId::esp(ip(dst), Spi(spi)),
            src: ip(src),
            reqid: Ownership::default().reqid(4).unwrap(),
            mode: 0,
            selector: TrafficSelector::hosts(ip(src), ip(dst)).ok(),
            lifetime: Lifetime::hard_seconds(3600),
            current: Counters::default(),
            stats: SaStats::default(),
            last_used: None,
            algorithms: vec![crate::alg::CHACHA20_POLY1305.to_owned()],
            encap,
            replay_window: 128,
            esn: true,
            oseq: 7,
            larval: false,
            seq: 0,
            acquired: None,
        };
        Ownership::default().check_sa(info).unwrap()
    }

    fn mapping(new: &str) -> Mapping {
        Mapping {
            sa: SaId::esp(ip("192.0.2.2"), Spi(0x100)),
            reqid: Ownership::default().reqid(4).unwrap(),
            old: "192.0.2.1:4500".parse().unwrap(),
            new: new.parse().unwrap(),
        }
    }

    /// The SA message an update carries (its payload after the netlink header).
    fn sent(request: Request<()>) -> ModifyMessage {
        let (bytes, _) = request.start(1);
        ModifyMessage::parse(&bytes[16..]).unwrap()
    }

    fn encap_of(msg: &ModifyMessage) -> (u16, u16) {
        msg.nlas
            .iter()
            .find_map(|a| match a {
                XfrmAttrs::EncapsulationTemplate(e) => Some((e.encap_sport, e.encap_dport)),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn the_pair_follows_the_new_port() {
        let inbound = sa("192.0.2.1", "192.0.2.2", 0x100, Some((4500, 4500)));
        let outbound = sa("192.0.2.2", "192.0.2.1", 0x200, Some((4500, 4500)));
        let o = Ownership::default();
        let [inb, out] =
            follow_mapping(&mapping("192.0.2.1:31000"), &inbound, &outbound, &o).unwrap();
        let (inb, out) = (sent(inb), sent(out));
        assert_eq!(encap_of(&inb), (31000, 4500));
        assert_eq!(encap_of(&out), (4500, 31000));
        assert_eq!(out.user_sa_info.id.spi, 0x200);
        // The kernel copies the lifetimes: they are the SA's own.
        let hard = Lifetime::from_xfrm(&out.user_sa_info.lifetime_cfg).hard;
        assert_eq!(
            hard,
            Limits {
                add_seconds: Some(3600),
                ..Limits::default()
            }
        );
        // The key is a throwaway: all zero.
        let key = out.nlas.iter().find_map(|a| match a {
            XfrmAttrs::EncryptionAlgAead(a) => Some(a.alg_key.clone()),
            _ => None,
        });
        assert_eq!(key, Some(vec![0; 36]));
    }

    #[test]
    fn a_new_address_or_no_encapsulation_is_refused() {
        let o = Ownership::default();
        let inbound = sa("192.0.2.1", "192.0.2.2", 0x100, Some((4500, 4500)));
        let outbound = sa("192.0.2.2", "192.0.2.1", 0x200, Some((4500, 4500)));
        assert!(matches!(
            follow_mapping(&mapping("198.51.100.1:4500"), &inbound, &outbound, &o),
            Err(InvalidRequest::PeerAddressChanged(_))
        ));
        let plain = sa("192.0.2.2", "192.0.2.1", 0x200, None);
        assert!(matches!(
            follow_mapping(&mapping("192.0.2.1:31000"), &inbound, &plain, &o),
            Err(InvalidRequest::NotEncapsulated)
        ));
        assert!(matches!(
            follow_mapping(&mapping("192.0.2.1:31000"), &outbound, &inbound, &o),
            Err(InvalidRequest::OtherEntry)
        ));
    }
}
