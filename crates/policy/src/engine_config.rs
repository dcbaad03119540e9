//! The IKE engine's configuration, from the agent's `[ike]` section and identity.
//!
//! Proposal strings follow strongSwan's style: `aes256gcm16-prfsha256-x25519` for an IKE SA (encryption,
//! then for CBC ciphers an integrity algorithm, then a PRF, then key-exchange groups), `aes256gcm16` or
//! `aes256-sha256` for ESP.

use std::net::IpAddr;
use std::time::Duration;

use oe_ike::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use oe_ike::{EspProposal, IkeProposal, Lifetime};

use crate::config::Config;
use crate::identity::LocalIdentity;

/// A proposal string the engine cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proposal {0:?}: {1}")]
pub struct ProposalError(pub String, pub &'static str);

/// Builds the engine configuration for the endpoint bound to `local`.
pub(crate) fn build(config: &Config, identity: &LocalIdentity, local: IpAddr) -> oe_ike::Config {
    let (identity, auth) = identity.for_local(local);
    let mut engine = oe_ike::Config::new(identity, auth);
    // Proposals were checked when the configuration was loaded ([`check_proposals`]); skip any that fail here.
    engine.ike_proposals = config
        .ike
        .proposals
        .iter()
        .filter_map(|p| ike_proposal(p).ok())
        .collect();
    engine.esp_proposals = config
        .ike
        .esp_proposals
        .iter()
        .filter_map(|p| esp_proposal(p).ok())
        .collect();
    engine.ike_lifetime = lifetime(config.ike.ike_lifetime);
    engine.child_lifetime = lifetime(config.ike.child_lifetime);
    // The engine completes NULL authentication wherever some group may accept it; the core decides
    // per peer, before any child SA of it reaches the kernel.
    engine.accept_null_peers = config.anonymous_groups().is_ok_and(|g| !g.is_empty());
    engine.liveness_interval =
        (!config.ike.liveness_interval.is_zero()).then_some(config.ike.liveness_interval);
    engine.nat_t_port = config.ike.nat_port;
    engine.nat_keepalive =
        (!config.ike.nat_keepalive.is_zero()).then_some(config.ike.nat_keepalive);
    // An address identity names an address a NAT hides from the peer (RFC 7296 2.23).
    engine.id_behind_nat = Some(match config.identity.behind_nat.strip_prefix("fqdn:") {
        Some(name) => oe_ike::wire::Identity::Fqdn(name.to_owned()),
        None => oe_ike::wire::Identity::Null,
    });
    // Behind a NAT our address cannot tell us apart from other clients behind it: ask the
    // server for one of its own (RFC 7296 3.15); a server without a pool gives none and the
    // child stays in transport mode for our address.
    engine.request_address = oe_ike::AddressRequest::BehindNat;
    engine.max_half_open = config.limits.half_open;
    engine.max_half_open_per_source = config.limits.half_open_per_source;
    engine.cookie_threshold = config.limits.cookie_threshold;
    engine.max_children_per_sa = config.limits.children_per_ike_sa;
    // The core refuses per group (`ike.require_post_quantum`); the engine only offers.
    engine.additional_ke = if config.ike.post_quantum {
        oe_ike::AdditionalKe::hybrid()
    } else {
        oe_ike::AdditionalKe::off()
    };
    engine
}

/// Checks every proposal string of the configuration.
pub fn check_proposals(config: &Config) -> Result<(), ProposalError> {
    for p in &config.ike.proposals {
        ike_proposal(p)?;
    }
    for p in &config.ike.esp_proposals {
        esp_proposal(p)?;
    }
    Ok(())
}

/// Rekey at 90% of the lifetime (the engine adds its own jitter); the hard limit is the lifetime itself.
fn lifetime(total: Duration) -> Lifetime {
    Lifetime {
        soft: total.mul_f64(0.9),
        hard: total,
    }
}

fn cipher(word: &str) -> Option<EncrAlg> {
    Some(match word {
        "aes128gcm16" | "aes128gcm" => EncrAlg::AesGcm16 { key_bits: 128 },
        "aes256gcm16" | "aes256gcm" => EncrAlg::AesGcm16 { key_bits: 256 },
        "chacha20poly1305" => EncrAlg::ChaCha20Poly1305,
        "aes128" => EncrAlg::AesCbc { key_bits: 128 },
        "aes256" => EncrAlg::AesCbc { key_bits: 256 },
        _ => return None,
    })
}

fn group(word: &str) -> Option<DhGroup> {
    Some(match word {
        "x25519" | "curve25519" => DhGroup::Curve25519,
        "ecp256" => DhGroup::Ecp256,
        "ecp384" => DhGroup::Ecp384,
        "modp2048" => DhGroup::Modp2048,
        _ => return None,
    })
}

fn prf(word: &str) -> Option<PrfAlg> {
    Some(match word {
        "prfsha256" => PrfAlg::HmacSha256,
        "prfsha384" => PrfAlg::HmacSha384,
        "prfsha512" => PrfAlg::HmacSha512,
        _ => return None,
    })
}

/// Parses an IKE proposal such as `aes256gcm16-prfsha256-x25519` or `aes256-sha256-prfsha256-x25519-ecp256`.
pub(crate) fn ike_proposal(text: &str) -> Result<IkeProposal, ProposalError> {
    let err = |why| ProposalError(text.to_owned(), why);
    let mut words = text.split('-');
    let encr = words
        .next()
        .and_then(cipher)
        .ok_or_else(|| err("unknown encryption algorithm"))?;
    let mut next = words.next();
    let integ = if encr.is_aead() {
        None
    } else {
        let integ = (next == Some("sha256"))
            .then_some(IntegAlg::HmacSha2_256_128)
            .ok_or_else(|| err("AES-CBC needs sha256 integrity"))?;
        next = words.next();
        Some(integ)
    };
    let prf = next
        .and_then(prf)
        .ok_or_else(|| err("expected prfsha256, prfsha384 or prfsha512"))?;
    let groups: Vec<DhGroup> = words
        .map(|w| group(w).ok_or_else(|| err("unknown key exchange group")))
        .collect::<Result<_, _>>()?;
    if groups.is_empty() {
        return Err(err("no key exchange group"));
    }
    Ok(IkeProposal {
        encr,
        integ,
        prf,
        groups,
    })
}

/// Parses an ESP proposal such as `aes256gcm16` or `aes256-sha256`.
pub(crate) fn esp_proposal(text: &str) -> Result<EspProposal, ProposalError> {
    let err = |why| ProposalError(text.to_owned(), why);
    let mut words = text.split('-');
    let encr = words
        .next()
        .and_then(cipher)
        .ok_or_else(|| err("unknown encryption algorithm"))?;
    let integ = match (encr.is_aead(), words.next()) {
        (true, None) => None,
        (false, Some("sha256")) => Some(IntegAlg::HmacSha2_256_128),
        (true, Some(_)) => return Err(err("AEAD ciphers take no integrity algorithm")),
        (false, _) => return Err(err("AES-CBC needs sha256 integrity")),
    };
    if words.next().is_some() {
        return Err(err("trailing words"));
    }
    Ok(EspProposal { encr, integ })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_proposals_all_parse() {
        check_proposals(&Config::default()).unwrap();
        let p = ike_proposal("aes256-sha256-prfsha384-x25519-modp2048").unwrap();
        assert_eq!(p.integ, Some(IntegAlg::HmacSha2_256_128));
        assert_eq!(p.prf, PrfAlg::HmacSha384);
        assert_eq!(p.groups, vec![DhGroup::Curve25519, DhGroup::Modp2048]);
    }

    #[test]
    fn bad_proposals_are_refused() {
        for bad in [
            "des-prfsha256-x25519",
            "aes256gcm16-x25519",
            "aes256gcm16-prfsha256",
            "aes256-prfsha256-x25519",
            "aes256gcm16-prfsha256-modp1024",
        ] {
            assert!(ike_proposal(bad).is_err(), "{bad}");
        }
        for bad in [
            "aes256gcm16-sha256",
            "aes256",
            "3des-sha1",
            "aes128-sha256-x",
        ] {
            assert!(esp_proposal(bad).is_err(), "{bad}");
        }
    }
}
