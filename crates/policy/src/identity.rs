//! Our identity in IKE_AUTH, and the conversion of DNS keys into the engine's keys.

use std::net::IpAddr;
use std::sync::Arc;

use oe_dns::ipseckey::Usability;
use oe_dns::PublicKey as DnsKey;
use oe_ike::crypto::{PrivateKey, PublicKey as IkeKey};
use oe_ike::wire::Identity;
use oe_ike::LocalAuth;

/// Our identity as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalId {
    /// The local address of each IKE SA (IPSECKEY published in the reverse zone).
    Address,
    /// A name (IPSECKEY published under it).
    Fqdn(String),
    /// Anonymous: NULL authentication (RFC 7619).
    Null,
}

/// Our identity and key, loaded by the executor.
#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub id: LocalId,
    pub key: Option<Arc<PrivateKey>>,
    /// e.g. "Ed25519", or "none".
    pub key_description: String,
}

impl LocalIdentity {
    /// An anonymous client (no key).
    pub fn anonymous() -> Self {
        Self {
            id: LocalId::Null,
            key: None,
            key_description: "none".into(),
        }
    }

    /// Identity and authentication for an endpoint bound to `local`.
    pub(crate) fn for_local(&self, local: IpAddr) -> (Identity, LocalAuth) {
        let Some(key) = &self.key else {
            return (Identity::Null, LocalAuth::Null);
        };
        let identity = match (&self.id, local) {
            (LocalId::Null, _) => return (Identity::Null, LocalAuth::Null),
            (LocalId::Fqdn(name), _) => Identity::Fqdn(name.clone()),
            (LocalId::Address, IpAddr::V4(v4)) => Identity::Ipv4(v4),
            (LocalId::Address, IpAddr::V6(v6)) => Identity::Ipv6(v6),
        };
        (identity, LocalAuth::Key(key.clone()))
    }

    /// Our identity for the status report.
    pub(crate) fn describe(&self) -> String {
        match (&self.id, &self.key) {
            (_, None) | (LocalId::Null, _) => "null (anonymous)".into(),
            (LocalId::Address, _) => "address (the local address of each flow)".into(),
            (LocalId::Fqdn(name), _) => format!("fqdn:{name}"),
        }
    }
}

/// The engine's form of an IPSECKEY key field, or `None` when the engine cannot authenticate
/// with it: no key, DSA, Ed448, an unknown algorithm, an RSA key outside 2048-8192 bits or with
/// an even or long exponent, or an ECDSA value that is not a point of its curve.
pub fn dns_key_to_ike(key: &DnsKey) -> Option<IkeKey> {
    if key.usability() != Usability::Usable {
        return None;
    }
    let ike = match key {
        DnsKey::Rsa { exponent, modulus } => IkeKey::Rsa {
            n: modulus.clone(),
            e: exponent.clone(),
        },
        DnsKey::EcdsaP256(xy) => IkeKey::EcdsaP256(xy.to_vec()),
        DnsKey::EcdsaP384(xy) => IkeKey::EcdsaP384(xy.to_vec()),
        DnsKey::Ed25519(k) => IkeKey::Ed25519(*k),
        _ => return None,
    };
    ike.validate().is_ok().then_some(ike)
}

/// "fqdn:host.example", "address:192.0.2.1", "null".
pub(crate) fn identity_text(id: &Identity) -> String {
    match id {
        Identity::Ipv4(a) => format!("address:{a}"),
        Identity::Ipv6(a) => format!("address:{a}"),
        Identity::Fqdn(n) => format!("fqdn:{n}"),
        Identity::Null => "null".into(),
        other => format!("{other:?}"),
    }
}
