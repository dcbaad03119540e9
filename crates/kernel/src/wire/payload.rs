//! XFRM payloads from the kernel, checked, then decoded by `netlink-packet-xfrm`, then
//! turned into this crate's types.

use std::net::SocketAddr;

use netlink_packet_core::{DecodeError, Parseable};
use netlink_packet_xfrm::monitor::{
    AcquireMessage, ExpireMessage, MappingMessage, PolicyExpireMessage,
};
use netlink_packet_xfrm::policy::ModifyMessage as PolicyMessage;
use netlink_packet_xfrm::state::ModifyMessage as SaMessage;
use netlink_packet_xfrm::{
    UserPolicyInfo, UserSaInfo, XfrmAttrs, XFRM_MSG_ACQUIRE, XFRM_MSG_EXPIRE, XFRM_MSG_MAPPING,
    XFRM_MSG_NEWPOLICY, XFRM_MSG_NEWSA, XFRM_MSG_POLEXPIRE, XFRM_MSG_UPDPOLICY, XFRM_MSG_UPDSA,
    XFRM_POLICY_BLOCK, XFRM_POLICY_TYPE_MAIN, XFRM_STATE_ESN, XFRM_USER_ACQUIRE_LEN,
    XFRM_USER_EXPIRE_LEN, XFRM_USER_MAPPING_LEN, XFRM_USER_POLICY_EXPIRE_LEN,
    XFRM_USER_POLICY_INFO_LEN, XFRM_USER_SA_INFO_LEN,
};

use super::ParseError;
use crate::alg::{name_str, scrub};
use crate::event::{Acquire, Event, Flow, Mapping, PolicyExpire, SaExpire};
use crate::policy::{PolicyInfo, PolicyKey, TemplateInfo};
use crate::sa::{Counters, Lifetime, SaId, SaInfo, SaStats};
use crate::types::{to_ip, Direction, Family, Reqid, Spi, TrafficSelector};

/// A decoded XFRM payload.
#[derive(Debug)]
pub(crate) enum Payload {
    Sa(SaInfo),
    Policy(PolicyInfo),
    Event(Event),
    /// A message type this crate does not decode.
    Other,
}

/// Decodes the payload of an XFRM message of type `kind`.
pub(crate) fn parse_payload(kind: u16, body: &[u8]) -> Result<Payload, ParseError> {
    Ok(match kind {
        XFRM_MSG_NEWSA | XFRM_MSG_UPDSA => Payload::Sa(sa(body)?),
        XFRM_MSG_NEWPOLICY | XFRM_MSG_UPDPOLICY => {
            policy(body)?.map_or(Payload::Other, Payload::Policy)
        }
        XFRM_MSG_ACQUIRE => Payload::Event(Event::Acquire(acquire(body)?)),
        XFRM_MSG_EXPIRE => Payload::Event(Event::Expire(expire(body)?)),
        XFRM_MSG_POLEXPIRE => Payload::Event(Event::PolicyExpire(polexpire(body)?)),
        XFRM_MSG_MAPPING => Payload::Event(Event::Mapping(mapping(body)?)),
        _ => Payload::Other,
    })
}

/// The check `netlink-packet-xfrm` 0.5 leaves out: its parsers slice `body[..len]`.
fn need(what: &'static str, body: &[u8], len: usize) -> Result<(), ParseError> {
    if body.len() < len {
        return Err(ParseError::Truncated {
            what,
            need: len,
            have: body.len(),
        });
    }
    Ok(())
}

fn decode(what: &'static str) -> impl Fn(DecodeError) -> ParseError {
    move |e| ParseError::Invalid {
        what,
        detail: e.to_string(),
    }
}

fn family(what: &'static str, af: u16) -> Result<Family, ParseError> {
    Family::from_af(af).ok_or(ParseError::Family { what, family: af })
}

fn sa(body: &[u8]) -> Result<SaInfo, ParseError> {
    const WHAT: &str = "XFRM_MSG_NEWSA";
    need(WHAT, body, XFRM_USER_SA_INFO_LEN)?;
    let mut msg = SaMessage::parse(body).map_err(decode(WHAT))?;
    let info = sa_info(WHAT, &msg.user_sa_info, &msg.nlas);
    scrub(&mut msg.nlas);
    info
}

fn sa_info(what: &'static str, u: &UserSaInfo, attrs: &[XfrmAttrs]) -> Result<SaInfo, ParseError> {
    let fam = family(what, u.family)?;
    let mut info = SaInfo {
        id: SaId {
            dst: to_ip(fam, &u.id.daddr),
            spi: Spi(u.id.spi),
            proto: u.id.proto,
        },
        src: to_ip(fam, &u.saddr),
        reqid: Reqid(u.reqid),
        mode: u.mode,
        selector: TrafficSelector::from_xfrm(&u.selector),
        lifetime: Lifetime::from_xfrm(&u.lifetime_cfg),
        current: counters(&u.lifetime_cur),
        stats: SaStats {
            replay_window: u.stats.replay_window,
            replay: u.stats.replay,
            integrity_failed: u.stats.integrity_failed,
        },
        last_used: None,
        algorithms: Vec::new(),
        encap: None,
        replay_window: u32::from(u.replay_window),
        esn: u.flags & XFRM_STATE_ESN != 0,
        oseq: 0,
        larval: false,
        seq: u.seq,
        acquired: None,
    };
    for attr in attrs {
        apply_sa_attr(&mut info, attr);
    }
    info.larval = info.algorithms.is_empty();
    // ALLOCSPI's larval states have their SPI; an ACQUIRE's have none, and the packet's
    // flow as selector (`xfrm_init_tempsel`).
    if info.larval && info.id.spi.0 == 0 {
        info.acquired = Some(flow(fam, &u.selector));
    }
    Ok(info)
}

/// A selector read as one packet's flow: addresses, protocol, ports (ICMP type and code).
fn flow(fam: Family, sel: &netlink_packet_xfrm::Selector) -> Flow {
    Flow {
        src: to_ip(fam, &sel.saddr),
        dst: to_ip(fam, &sel.daddr),
        proto: sel.proto,
        src_port: sel.sport & sel.sport_mask,
        dst_port: sel.dport & sel.dport_mask,
    }
}

fn apply_sa_attr(info: &mut SaInfo, attr: &XfrmAttrs) {
    match attr {
        XfrmAttrs::LastUsed(t) => info.last_used = Some(*t),
        XfrmAttrs::EncryptionAlgAead(a) => add_name(info, &a.alg_name),
        // The kernel reports an HMAC both as XFRMA_ALG_AUTH and XFRMA_ALG_AUTH_TRUNC.
        XfrmAttrs::EncryptionAlg(a) | XfrmAttrs::AuthenticationAlg(a) => {
            add_name(info, &a.alg_name)
        }
        XfrmAttrs::AuthenticationAlgTrunc(a) => add_name(info, &a.alg_name),
        XfrmAttrs::EncapsulationTemplate(e) => info.encap = Some((e.encap_sport, e.encap_dport)),
        XfrmAttrs::ReplayStateEsn(r) => {
            info.replay_window = r.replay_window;
            info.oseq = r.oseq;
        }
        XfrmAttrs::ReplayState(r) => info.oseq = r.oseq,
        _ => {}
    }
}

fn add_name(info: &mut SaInfo, raw: &[u8]) {
    let name = name_str(raw);
    if !info.algorithms.contains(&name) {
        info.algorithms.push(name);
    }
}

fn counters(cur: &netlink_packet_xfrm::Lifetime) -> Counters {
    Counters {
        bytes: cur.bytes,
        packets: cur.packets,
        add_time: cur.add_time,
        use_time: cur.use_time,
    }
}

/// A policy, or `None` for a per-socket policy (directions `XFRM_POLICY_MAX + dir`, as set with
/// IP_XFRM_POLICY): dumps list them, but they belong to sockets, not to anyone's policy table.
fn policy(body: &[u8]) -> Result<Option<PolicyInfo>, ParseError> {
    const WHAT: &str = "XFRM_MSG_NEWPOLICY";
    /// `XFRM_POLICY_MAX`: socket policies use directions from here on.
    const SOCKET_POLICY_DIRECTION: u8 = 3;
    need(WHAT, body, XFRM_USER_POLICY_INFO_LEN)?;
    let msg = PolicyMessage::parse(body).map_err(decode(WHAT))?;
    if msg.user_policy_info.direction >= SOCKET_POLICY_DIRECTION {
        return Ok(None);
    }
    policy_info(WHAT, &msg.user_policy_info, &msg.nlas).map(Some)
}

fn policy_info(
    what: &'static str,
    p: &UserPolicyInfo,
    attrs: &[XfrmAttrs],
) -> Result<PolicyInfo, ParseError> {
    let dir = Direction::from_xfrm(p.direction).ok_or_else(|| ParseError::Invalid {
        what,
        detail: format!("policy direction {}", p.direction),
    })?;
    let mut info = PolicyInfo {
        key: PolicyKey {
            dir,
            selector: p.selector,
        },
        index: p.index,
        priority: p.priority,
        block: p.action == XFRM_POLICY_BLOCK,
        templates: Vec::new(),
        expires: Some(p.lifetime_cfg.hard_add_expires_seconds).filter(|s| *s != 0),
        add_time: p.lifetime_cur.add_time,
        use_time: p.lifetime_cur.use_time,
        has_mark_or_context: false,
        main_type: true,
    };
    for attr in attrs {
        apply_policy_attr(&mut info, attr);
    }
    Ok(info)
}

fn apply_policy_attr(info: &mut PolicyInfo, attr: &XfrmAttrs) {
    match attr {
        XfrmAttrs::Template(ts) => info.templates.extend(ts.iter().map(|t| TemplateInfo {
            proto: t.id.proto,
            mode: t.mode,
            reqid: Reqid(t.reqid),
            optional: t.optional != 0,
        })),
        XfrmAttrs::PolicyType(t) => info.main_type = t.ptype == XFRM_POLICY_TYPE_MAIN,
        XfrmAttrs::Mark(m) => info.has_mark_or_context |= m.value != 0 || m.mask != 0,
        XfrmAttrs::IfId(id) => info.has_mark_or_context |= *id != 0,
        XfrmAttrs::SecurityContext(_) => info.has_mark_or_context = true,
        _ => {}
    }
}

fn acquire(body: &[u8]) -> Result<Acquire, ParseError> {
    const WHAT: &str = "XFRM_MSG_ACQUIRE";
    need(WHAT, body, XFRM_USER_ACQUIRE_LEN)?;
    let msg = AcquireMessage::parse(body).map_err(decode(WHAT))?;
    let a = &msg.acquire;
    let fam = family(WHAT, a.selector.family)?;
    let flow = flow(fam, &a.selector);
    let policy = policy_info(WHAT, &a.policy, &msg.nlas)?;
    let reqid = policy.reqid();
    Ok(Acquire {
        flow,
        policy,
        reqid,
        seq: a.seq,
    })
}

fn expire(body: &[u8]) -> Result<SaExpire, ParseError> {
    const WHAT: &str = "XFRM_MSG_EXPIRE";
    need(WHAT, body, XFRM_USER_EXPIRE_LEN)?;
    let msg = ExpireMessage::parse(body).map_err(decode(WHAT))?;
    let info = sa_info(WHAT, &msg.expire.state, &[])?;
    Ok(SaExpire {
        sa: info.id,
        src: info.src,
        reqid: info.reqid,
        hard: msg.expire.hard != 0,
        current: info.current,
    })
}

fn polexpire(body: &[u8]) -> Result<PolicyExpire, ParseError> {
    const WHAT: &str = "XFRM_MSG_POLEXPIRE";
    need(WHAT, body, XFRM_USER_POLICY_EXPIRE_LEN)?;
    let msg = PolicyExpireMessage::parse(body).map_err(decode(WHAT))?;
    let policy = policy_info(WHAT, &msg.expire.pol, &msg.nlas)?;
    Ok(PolicyExpire {
        policy,
        hard: msg.expire.hard != 0,
    })
}

fn mapping(body: &[u8]) -> Result<Mapping, ParseError> {
    const WHAT: &str = "XFRM_MSG_MAPPING";
    need(WHAT, body, XFRM_USER_MAPPING_LEN)?;
    let msg = MappingMessage::parse(body).map_err(decode(WHAT))?;
    let m = &msg.map;
    let fam = family(WHAT, m.id.family)?;
    Ok(Mapping {
        sa: SaId {
            dst: to_ip(fam, &m.id.daddr),
            spi: Spi(m.id.spi),
            proto: m.id.proto,
        },
        reqid: Reqid(m.reqid),
        old: SocketAddr::new(to_ip(fam, &m.old_saddr), m.old_sport),
        new: SocketAddr::new(to_ip(fam, &m.new_saddr), m.new_sport),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_truncation_of_a_fixed_part_is_an_error() {
        let kinds = [
            (XFRM_MSG_NEWSA, XFRM_USER_SA_INFO_LEN),
            (XFRM_MSG_NEWPOLICY, XFRM_USER_POLICY_INFO_LEN),
            (XFRM_MSG_ACQUIRE, XFRM_USER_ACQUIRE_LEN),
            (XFRM_MSG_EXPIRE, XFRM_USER_EXPIRE_LEN),
            (XFRM_MSG_POLEXPIRE, XFRM_USER_POLICY_EXPIRE_LEN),
            (XFRM_MSG_MAPPING, XFRM_USER_MAPPING_LEN),
        ];
        for (kind, len) in kinds {
            let body = vec![0u8; len];
            for cut in 0..len {
                let r = parse_payload(kind, &body[..cut]);
                assert!(
                    matches!(r, Err(ParseError::Truncated { .. })),
                    "{kind} {cut}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn zeroed_bodies_have_no_family() {
        let body = vec![0u8; XFRM_USER_ACQUIRE_LEN];
        assert!(matches!(
            parse_payload(XFRM_MSG_ACQUIRE, &body),
            Err(ParseError::Family { family: 0, .. })
        ));
    }

    #[test]
    fn socket_policies_in_dumps_are_skipped_not_errors() {
        use netlink_packet_core::Emitable;
        for direction in [3u8, 4, 5] {
            let mut info = UserPolicyInfo::default();
            info.selector.family = 2;
            info.direction = direction;
            let msg = PolicyMessage {
                user_policy_info: info,
                nlas: vec![],
            };
            let mut buf = vec![0; msg.buffer_len()];
            msg.emit(&mut buf);
            let parsed = parse_payload(XFRM_MSG_NEWPOLICY, &buf);
            assert!(
                matches!(parsed, Ok(Payload::Other)),
                "direction {direction}: {parsed:?}"
            );
        }
    }

    #[test]
    fn unknown_types_are_not_parsed() {
        assert!(matches!(parse_payload(0x99, &[1, 2]), Ok(Payload::Other)));
    }
}
