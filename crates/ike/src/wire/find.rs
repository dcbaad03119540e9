//! Typed lookups of the first payload of a kind in a message's payload list, so exchange code reads
//! `payloads.sa()` instead of matching by hand.

use super::{
    AuthPayload, CpPayload, Fragment, Identity, KePayload, NoncePayload, Payload, SaPayload,
    TsPayload,
};

macro_rules! finders {
    ($($(#[$doc:meta])* $name:ident => $variant:ident($ty:ty)),* $(,)?) => {
        /// The first payload of each kind, if present.
        pub trait Payloads {
            $($(#[$doc])* fn $name(&self) -> Option<&$ty>;)*
        }

        impl Payloads for [Payload] {
            $(fn $name(&self) -> Option<&$ty> {
                self.iter().find_map(|p| match p {
                    Payload::$variant(x) => Some(x),
                    _ => None,
                })
            })*
        }
    };
}

finders! {
    /// SA (RFC 7296 3.3).
    sa => Sa(SaPayload),
    /// KE (3.4).
    ke => Ke(KePayload),
    /// Ni or Nr (3.9).
    nonce => Nonce(NoncePayload),
    /// IDi (3.5).
    id_i => IdI(Identity),
    /// IDr (3.5).
    id_r => IdR(Identity),
    /// AUTH (3.8).
    auth => Auth(AuthPayload),
    /// TSi (3.13).
    ts_i => TsI(TsPayload),
    /// TSr (3.13).
    ts_r => TsR(TsPayload),
    /// CP (3.15).
    cp => Cp(CpPayload),
    /// SKF (RFC 7383 2.5).
    skf => Skf(Fragment),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NotifyPayload;

    #[test]
    fn finds_the_first_of_a_kind_only() {
        let p = [
            Payload::Notify(NotifyPayload::new(
                crate::wire::NotifyType::USE_TRANSPORT_MODE,
                vec![],
            )),
            Payload::IdR(Identity::Null),
            Payload::IdR(Identity::Fqdn("second".into())),
        ];
        assert_eq!(p.id_r(), Some(&Identity::Null));
        assert!(p.id_i().is_none() && p.sa().is_none());
        assert!(Vec::<Payload>::new().auth().is_none());
    }
}
