//! Multiple key exchanges (RFC 9370): the additional key exchanges we offer, and the ones an
//! IKE SA negotiated. Each runs in its own IKE_INTERMEDIATE exchange (RFC 9242) after
//! IKE_SA_INIT, in the order of their transform types ADDKE1..ADDKE7.

use crate::crypto::DhGroup;
use crate::wire::TransformType;

/// ADDKE1..ADDKE7 (RFC 9370 section 2.2.1).
pub(crate) const MAX_ROUNDS: usize = 7;

/// Transform ID 0 of the ADDKE types: no additional key exchange in this round.
pub(crate) const NONE: u16 = 0;

/// The additional key exchanges to run after the IKE_SA_INIT one (RFC 9370).
///
/// The default, [`AdditionalKe::hybrid`], is ML-KEM-768 after X25519 (or whatever group
/// IKE_SA_INIT settled on), negotiated only when the peer offers or accepts it too: peers
/// without RFC 9370 still get a classical IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdditionalKe {
    /// For each round (ADDKE1, ADDKE2, ...; at most 7), the methods we accept, preferred first.
    pub rounds: Vec<Vec<DhGroup>>,
    /// Refuse peers that do not do every round: we then neither offer nor accept a proposal
    /// without them.
    pub required: bool,
}

impl AdditionalKe {
    /// ML-KEM-768 as the one additional key exchange, optional.
    pub fn hybrid() -> Self {
        Self {
            rounds: vec![vec![DhGroup::MlKem768]],
            required: false,
        }
    }

    /// No additional key exchange: IKE_SA_INIT's key exchange alone, as before RFC 9370.
    pub fn off() -> Self {
        Self {
            rounds: Vec::new(),
            required: false,
        }
    }

    /// The same rounds, and refuse peers that do not do them.
    pub fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    /// Whether we offer any additional key exchange.
    pub fn is_off(&self) -> bool {
        self.rounds.iter().all(Vec::is_empty)
    }

    /// Whether round `i` must be negotiated.
    pub(crate) fn must(&self, i: usize) -> bool {
        self.required && self.rounds.get(i).is_some_and(|r| !r.is_empty())
    }
}

impl Default for AdditionalKe {
    fn default() -> Self {
        Self::hybrid()
    }
}

/// The transform type of round `i` (0 = ADDKE1).
pub(crate) fn transform_type(i: usize) -> TransformType {
    TransformType(TransformType::ADDKE1.0 + u8::try_from(i).unwrap_or(u8::MAX))
}

/// The methods an IKE SA negotiated per round; `None` where NONE was chosen or the round was
/// not negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AddKes(pub(crate) [Option<DhGroup>; MAX_ROUNDS]);

impl AddKes {
    /// The methods to run, in order (RFC 9370 2.2.2: by transform type, NONE skipped).
    pub(crate) fn methods(&self) -> impl Iterator<Item = DhGroup> + '_ {
        self.0.iter().flatten().copied()
    }

    /// The method of the `n`-th additional exchange (0-based), if there is one.
    pub(crate) fn nth(&self, n: usize) -> Option<DhGroup> {
        self.methods().nth(n)
    }

    pub(crate) fn count(&self) -> usize {
        self.methods().count()
    }

    /// The same methods as an offer: one method per round, none required.
    pub(crate) fn as_offer(&self) -> AdditionalKe {
        let last = self
            .0
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        AdditionalKe {
            rounds: self
                .0
                .iter()
                .take(last)
                .map(|g| g.iter().copied().collect())
                .collect(),
            required: false,
        }
    }

    /// `/KE1_ML_KEM_768`, strongSwan's style, for each negotiated round.
    pub(crate) fn describe(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.map(|g| format!("/KE{}_{}", i + 1, g.name())))
            .collect()
    }
}
