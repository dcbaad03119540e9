//! Building, selecting and checking SA proposals (RFC 7296 2.7, 3.3).
//!
//! The responder walks its own preference order and takes the first combination the peer offered
//! (strongSwan's default); the initiator checks that the single returned proposal is one it made.

use crate::addke::{self, AddKes, AdditionalKe, MAX_ROUNDS};
use crate::config::{EspProposal, IkeProposal};
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::wire::{Proposal, ProtocolId, SaPayload, Transform, TransformType};

/// ESN transform values (RFC 7296 3.3.2, Transform Type 5).
const ESN_NO: u16 = 0;
/// INTEG "NONE" (id 0), which some peers list next to AEAD ciphers.
const INTEG_NONE: u16 = 0;

/// The algorithms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IkeAlgs {
    pub(crate) encr: EncrAlg,
    pub(crate) integ: Option<IntegAlg>,
    pub(crate) prf: PrfAlg,
    pub(crate) group: DhGroup,
    /// Additional key exchanges (RFC 9370).
    pub(crate) addke: AddKes,
}

/// strongSwan-style names of negotiated IKE algorithms:
/// `AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ML_KEM_768`.
pub(crate) fn describe(a: &IkeAlgs) -> String {
    use crate::crypto::{EncrAlg, PrfAlg};
    let encr = match a.encr {
        EncrAlg::AesGcm16 { key_bits } => format!("AES_GCM_16_{key_bits}"),
        EncrAlg::ChaCha20Poly1305 => "CHACHA20_POLY1305".into(),
        EncrAlg::AesCbc { key_bits } => format!("AES_CBC_{key_bits}/HMAC_SHA2_256_128"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    };
    let prf = match a.prf {
        PrfAlg::HmacSha256 => "PRF_HMAC_SHA2_256",
        PrfAlg::HmacSha384 => "PRF_HMAC_SHA2_384",
        PrfAlg::HmacSha512 => "PRF_HMAC_SHA2_512",
        #[allow(unreachable_patterns)]
        _ => "PRF_?",
    };
    let group = a.group.name();
    format!("{encr}/{prf}/{group}{}", a.addke.describe())
}

/// The algorithms of an ESP child SA (no ESN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EspAlgs {
    pub(crate) encr: EncrAlg,
    pub(crate) integ: Option<IntegAlg>,
}

fn encr_transform(e: EncrAlg) -> Transform {
    match e.key_bits_attr() {
        Some(bits) => Transform::with_key_len(TransformType::ENCR, e.iana(), bits),
        None => Transform::new(TransformType::ENCR, e.iana()),
    }
}

fn ike_transforms(
    encr: EncrAlg,
    integ: Option<IntegAlg>,
    prf: PrfAlg,
    groups: &[DhGroup],
) -> Vec<Transform> {
    let mut t = vec![encr_transform(encr)];
    t.extend(integ.map(|i| Transform::new(TransformType::INTEG, i.iana())));
    t.push(Transform::new(TransformType::PRF, prf.iana()));
    t.extend(
        groups
            .iter()
            .map(|g| Transform::new(TransformType::KE, g.iana())),
    );
    t
}

/// The ADDKE transforms of our offer (RFC 9370 2.2.1): every method of each round.
fn addke_offer(addke: &AdditionalKe) -> Vec<Transform> {
    addke
        .rounds
        .iter()
        .take(MAX_ROUNDS)
        .enumerate()
        .flat_map(|(i, methods)| {
            methods
                .iter()
                .map(move |g| Transform::new(addke::transform_type(i), g.iana()))
        })
        .collect()
}

/// Our IKE SA payload. `spi` is empty in IKE_SA_INIT and our new SPI in an IKE rekey (2.18).
/// With `group` set (rekey, INVALID_KE retry) that group is listed first, others follow.
///
/// With additional key exchanges each proposal comes first with its ADDKE transforms and,
/// unless they are required, once more without: a responder that lacks RFC 9370 rejects
/// proposals with transform types it does not know (RFC 7296 3.3.6) and takes a plain one.
pub(crate) fn ike_offer(
    props: &[IkeProposal],
    spi: &[u8],
    first_group: Option<DhGroup>,
    addke: &AdditionalKe,
) -> SaPayload {
    let extra = addke_offer(addke);
    let mut variants = Vec::new();
    if !extra.is_empty() {
        variants.push(extra);
    }
    if !addke.required || variants.is_empty() {
        variants.push(Vec::new());
    }
    let proposals = variants
        .iter()
        .flat_map(|extra| props.iter().map(move |p| (p, extra)))
        .zip(1u8..)
        .map(|((p, extra), number)| {
            let mut groups = p.groups.clone();
            if let Some(g) = first_group.filter(|g| groups.contains(g)) {
                groups.retain(|x| *x != g);
                groups.insert(0, g);
            }
            let mut transforms = ike_transforms(p.encr, p.integ, p.prf, &groups);
            transforms.extend(extra.iter().cloned());
            Proposal {
                number,
                protocol: ProtocolId::IKE,
                spi: spi.to_vec(),
                transforms,
            }
        })
        .collect();
    SaPayload { proposals }
}

/// The key exchanges a CREATE_CHILD_SA negotiated for a child: a new Diffie-Hellman exchange
/// (PFS, RFC 7296 1.3.1), then the additional ones (RFC 9370 2.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ChildKes {
    pub(crate) group: Option<DhGroup>,
    pub(crate) addke: AddKes,
}

impl ChildKes {
    /// Key exchanges in the series.
    pub(crate) fn count(&self) -> usize {
        usize::from(self.group.is_some()) + self.addke.count()
    }
}

/// One ESP proposal's transforms with these key exchanges.
fn esp_transforms(p: &EspProposal, kes: &ChildKes) -> Vec<Transform> {
    let mut t = vec![encr_transform(p.encr)];
    t.extend(
        p.integ
            .map(|i| Transform::new(TransformType::INTEG, i.iana())),
    );
    t.extend(
        kes.group
            .map(|g| Transform::new(TransformType::KE, g.iana())),
    );
    t.extend(
        kes.addke
            .0
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.map(|g| Transform::new(addke::transform_type(i), g.iana()))),
    );
    t.push(Transform::new(TransformType::ESN, ESN_NO));
    t
}

/// ESP proposals numbered from 1: every variant of key exchanges with every proposal of ours.
fn esp_proposals(props: &[EspProposal], spi: u32, variants: &[ChildKes]) -> SaPayload {
    let proposals = variants
        .iter()
        .flat_map(|kes| props.iter().map(move |p| esp_transforms(p, kes)))
        .zip(1u8..)
        .map(|(transforms, number)| Proposal {
            number,
            protocol: ProtocolId::ESP,
            spi: spi.to_be_bytes().to_vec(),
            transforms,
        })
        .collect();
    SaPayload { proposals }
}

/// Our ESP SA payload with our inbound SPI. With `group` (PFS in a rekey) a KE transform is added.
pub(crate) fn esp_offer(props: &[EspProposal], spi: u32, group: Option<DhGroup>) -> SaPayload {
    let kes = ChildKes {
        group,
        addke: AddKes::default(),
    };
    esp_proposals(props, spi, &[kes])
}

/// Our ESP SA payload for a child rekey. With `pfs` each proposal comes first with its key
/// exchanges, then with the KE alone (a peer whose child proposals lack RFC 9370), then with
/// none (a peer without PFS): RFC 7296 1.3.1 lets one offer mix proposals with and without KE.
/// With `insist` only the first kind is offered.
pub(crate) fn esp_rekey_offer(
    props: &[EspProposal],
    spi: u32,
    pfs: Option<ChildKes>,
    insist: bool,
) -> SaPayload {
    let mut variants = Vec::new();
    if let Some(kes) = pfs.filter(|k| k.group.is_some()) {
        variants.push(kes);
        let ke_only = ChildKes {
            addke: AddKes::default(),
            ..kes
        };
        if ke_only != kes {
            variants.push(ke_only);
        }
    }
    variants.push(ChildKes::default());
    variants.truncate(if insist { 1 } else { 3 });
    esp_proposals(props, spi, &variants)
}

fn has(p: &Proposal, ty: TransformType, id: u16, key_bits: Option<u16>) -> bool {
    p.transforms
        .iter()
        .any(|t| t.ty == ty && t.id == id && t.key_len() == key_bits)
}

fn has_encr(p: &Proposal, e: EncrAlg) -> bool {
    has(p, TransformType::ENCR, e.iana(), e.key_bits_attr())
}

/// AEAD: no integrity transform or only NONE. Otherwise the configured one must be there.
fn integ_ok(p: &Proposal, integ: Option<IntegAlg>) -> bool {
    match integ {
        Some(i) => has(p, TransformType::INTEG, i.iana(), None),
        None => p
            .transforms
            .iter()
            .filter(|t| t.ty == TransformType::INTEG)
            .all(|t| t.id == INTEG_NONE),
    }
}

/// RFC 9370 2.2.1: our method for each ADDKE type the proposal carries (or NONE where it
/// offers NONE and we have nothing or need nothing), or `None` to reject the proposal.
fn select_addke(p: &Proposal, ours: &AdditionalKe) -> Option<AddKes> {
    let mut out = AddKes::default();
    for (i, slot) in out.0.iter_mut().enumerate() {
        let ty = addke::transform_type(i);
        let offered: Vec<u16> = p
            .transforms
            .iter()
            .filter(|t| t.ty == ty)
            .map(|t| t.id)
            .collect();
        if offered.is_empty() {
            if ours.must(i) {
                return None;
            }
            continue;
        }
        let mine = ours.rounds.get(i).map_or(&[][..], Vec::as_slice);
        match mine.iter().find(|g| offered.contains(&g.iana())) {
            Some(g) => *slot = Some(*g),
            None if offered.contains(&addke::NONE) && !ours.must(i) => {}
            None => return None,
        }
    }
    Some(out)
}

/// The ADDKE transforms of our reply: one per type the proposal offered (NONE if not chosen).
fn addke_reply(p: &Proposal, chosen: &AddKes) -> Vec<Transform> {
    (0..MAX_ROUNDS)
        .filter(|i| p.first(addke::transform_type(*i)).is_some())
        .map(|i| {
            let id = chosen
                .0
                .get(i)
                .copied()
                .flatten()
                .map_or(addke::NONE, DhGroup::iana);
            Transform::new(addke::transform_type(i), id)
        })
        .collect()
}

/// Responder: picks an IKE proposal. Prefers `ke_group` (the group of the KE payload received)
/// so that no INVALID_KE_PAYLOAD round trip is needed, and among the peer's proposals that
/// match one of ours, the one with the most additional key exchanges. Returns the reply too.
pub(crate) fn select_ike(
    offer: &SaPayload,
    ours: &[IkeProposal],
    ke_group: Option<u16>,
    addke: &AdditionalKe,
) -> Option<(Proposal, IkeAlgs)> {
    for o in ours {
        let mut best: Option<(Proposal, IkeAlgs)> = None;
        for p in offer
            .proposals
            .iter()
            .filter(|p| p.protocol == ProtocolId::IKE)
        {
            let Some(found) = select_one(p, o, ke_group, addke) else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|b| found.1.addke.count() > b.1.addke.count())
            {
                best = Some(found);
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

fn select_one(
    p: &Proposal,
    o: &IkeProposal,
    ke_group: Option<u16>,
    ours: &AdditionalKe,
) -> Option<(Proposal, IkeAlgs)> {
    if !has_encr(p, o.encr)
        || !integ_ok(p, o.integ)
        || !has(p, TransformType::PRF, o.prf.iana(), None)
    {
        return None;
    }
    let offered = |g: &DhGroup| has(p, TransformType::KE, g.iana(), None);
    let group = o
        .groups
        .iter()
        .copied()
        .find(|g| Some(g.iana()) == ke_group && offered(g))
        .or_else(|| o.groups.iter().copied().find(offered))?;
    let addke = select_addke(p, ours)?;
    let algs = IkeAlgs {
        encr: o.encr,
        integ: o.integ,
        prf: o.prf,
        group,
        addke,
    };
    let mut transforms = ike_transforms(o.encr, o.integ, o.prf, &[group]);
    transforms.extend(addke_reply(p, &addke));
    let reply = Proposal {
        number: p.number,
        protocol: ProtocolId::IKE,
        spi: p.spi.clone(),
        transforms,
    };
    Some((reply, algs))
}

/// ENCR, INTEG and ESN of an ESP proposal match one of ours.
fn esp_matches(p: &Proposal, o: &EspProposal) -> bool {
    let esn_ok = !p.transforms.iter().any(|t| t.ty == TransformType::ESN)
        || has(p, TransformType::ESN, ESN_NO, None);
    p.protocol == ProtocolId::ESP && has_encr(p, o.encr) && integ_ok(p, o.integ) && esn_ok
}

fn esp_spi(p: &Proposal) -> Option<u32> {
    Some(u32::from_be_bytes(p.spi.as_slice().try_into().ok()?))
}

/// Responder: picks an ESP proposal; `group` is the PFS group required in a rekey, if any.
/// Returns the peer's SPI (our outbound) and the algorithms.
pub(crate) fn select_esp(
    offer: &SaPayload,
    ours: &[EspProposal],
    group: Option<DhGroup>,
) -> Option<(u32, EspAlgs, u8)> {
    for o in ours {
        for p in offer.proposals.iter().filter(|p| esp_matches(p, o)) {
            let ke_ok = match group {
                Some(g) => has(p, TransformType::KE, g.iana(), None),
                None => true,
            };
            if ke_ok {
                let algs = EspAlgs {
                    encr: o.encr,
                    integ: o.integ,
                };
                return Some((esp_spi(p)?, algs, p.number));
            }
        }
    }
    None
}

/// What the responder of a child rekey chose.
#[derive(Debug)]
pub(crate) struct EspChoice {
    /// The peer's SPI: our outbound.
    pub(crate) spi: u32,
    pub(crate) algs: EspAlgs,
    pub(crate) kes: ChildKes,
    /// Our reply proposal; its SPI is still the peer's.
    pub(crate) reply: Proposal,
}

/// Responder of a child rekey: picks an ESP proposal and its key exchanges. Among the peer's
/// proposals that match one of ours (in our order) it takes the one with the most key
/// exchanges, so a peer that insists on PFS or on additional key exchanges (RFC 9370 2.2.4)
/// gets them. The KE group is one of `groups`, preferably the one of the peer's KE payload
/// (`ke_group`), so that no INVALID_KE_PAYLOAD round trip is needed.
pub(crate) fn select_esp_rekey(
    offer: &SaPayload,
    ours: &[EspProposal],
    ke_group: Option<u16>,
    groups: &[DhGroup],
    addke: &AdditionalKe,
) -> Option<EspChoice> {
    for o in ours {
        let mut best: Option<EspChoice> = None;
        for p in offer.proposals.iter().filter(|p| esp_matches(p, o)) {
            let Some(kes) = select_child_kes(p, ke_group, groups, addke) else {
                continue;
            };
            if best.as_ref().is_some_and(|b| b.kes.count() >= kes.count()) {
                continue;
            }
            let algs = EspAlgs {
                encr: o.encr,
                integ: o.integ,
            };
            let mut reply = esp_proposals(&[*o], 0, &[ChildKes::default()])
                .proposals
                .pop()?;
            reply.transforms.extend(kes_reply(p, &kes));
            reply.number = p.number;
            reply.spi = p.spi.clone();
            best = Some(EspChoice {
                spi: esp_spi(p)?,
                algs,
                kes,
                reply,
            });
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

/// The KE group (one of `groups`, `ke_group` first; none if the proposal has no KE transform or
/// offers NONE and we have no group in common) and additional key exchanges of one proposal.
fn select_child_kes(
    p: &Proposal,
    ke_group: Option<u16>,
    groups: &[DhGroup],
    addke: &AdditionalKe,
) -> Option<ChildKes> {
    let offered: Vec<u16> = p
        .transforms
        .iter()
        .filter(|t| t.ty == TransformType::KE)
        .map(|t| t.id)
        .collect();
    let group = if offered.is_empty() {
        None
    } else {
        let ok = |g: &&DhGroup| offered.contains(&g.iana());
        let found = groups
            .iter()
            .filter(ok)
            .find(|g| Some(g.iana()) == ke_group)
            .or_else(|| groups.iter().find(ok))
            .copied();
        if found.is_none() && !offered.contains(&addke::NONE) {
            return None;
        }
        found
    };
    let addke = select_addke(p, addke)?;
    Some(ChildKes { group, addke })
}

/// The KE and ADDKE transforms of our reply: one of each type the proposal carried, NONE where
/// we chose none (RFC 7296 3.3.6, RFC 9370 2.2.1).
fn kes_reply(p: &Proposal, kes: &ChildKes) -> Vec<Transform> {
    let mut t = Vec::new();
    if p.first(TransformType::KE).is_some() {
        let id = kes.group.map_or(addke::NONE, DhGroup::iana);
        t.push(Transform::new(TransformType::KE, id));
    }
    t.extend(addke_reply(p, &kes.addke));
    t
}

/// Initiator of a child rekey: checks the responder's choice against our offer (`pfs` and
/// `insist` as given to [`esp_rekey_offer`]); returns its SPI (our outbound), the algorithms
/// and the key exchanges to run.
pub(crate) fn check_esp_rekey(
    reply: &SaPayload,
    ours: &[EspProposal],
    pfs: Option<ChildKes>,
    insist: bool,
) -> Option<(u32, EspAlgs, ChildKes)> {
    let (spi, algs) = check_esp(reply, ours)?;
    let [p] = reply.proposals.as_slice() else {
        return None;
    };
    let offered = pfs.unwrap_or_default();
    let ke: Vec<u16> = p
        .transforms
        .iter()
        .filter(|t| t.ty == TransformType::KE)
        .map(|t| t.id)
        .collect();
    let group = match ke.as_slice() {
        [] => None,
        [id] if *id == addke::NONE => None,
        [id] => {
            let g = DhGroup::from_iana(*id)?;
            (offered.group == Some(g)).then_some(())?;
            Some(g)
        }
        _ => return None,
    };
    let addke = check_addke(p, &offered.addke.as_offer())?;
    // We offered additional key exchanges only together with a KE.
    if addke.count() > 0 && group.is_none() {
        return None;
    }
    let kes = ChildKes { group, addke };
    (!insist || Some(kes) == pfs).then_some((spi, algs, kes))
}

/// Our ESP reply proposal.
pub(crate) fn esp_reply(number: u8, algs: EspAlgs, spi: u32, group: Option<DhGroup>) -> SaPayload {
    let kes = ChildKes {
        group,
        addke: AddKes::default(),
    };
    esp_reply_kes(number, algs, spi, &kes)
}

/// Our ESP reply proposal with the key exchanges we chose (RFC 9370 2.2.1: one transform of
/// each ADDKE type the proposal carried, NONE where we run none).
fn esp_reply_kes(number: u8, algs: EspAlgs, spi: u32, kes: &ChildKes) -> SaPayload {
    let ours = EspProposal {
        encr: algs.encr,
        integ: algs.integ,
    };
    let mut t = esp_proposals(&[ours], spi, &[*kes]);
    if let Some(p) = t.proposals.first_mut() {
        p.number = number;
    }
    t
}

/// Exactly one transform of each type that the single accepted proposal must carry.
fn single(p: &Proposal, ty: TransformType) -> Option<&Transform> {
    let mut it = p.transforms.iter().filter(|t| t.ty == ty);
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// Initiator: the responder's ADDKE choices must be single, offered by us, and complete when
/// we require them (RFC 9370 2.2.1).
fn check_addke(p: &Proposal, ours: &AdditionalKe) -> Option<AddKes> {
    let mut out = AddKes::default();
    for (i, slot) in out.0.iter_mut().enumerate() {
        let ty = addke::transform_type(i);
        let id = match p.transforms.iter().filter(|t| t.ty == ty).count() {
            0 => addke::NONE,
            1 => single(p, ty)?.id,
            _ => return None,
        };
        if id == addke::NONE {
            if ours.must(i) {
                return None;
            }
            continue;
        }
        let g = DhGroup::from_iana(id)?;
        ours.rounds.get(i)?.contains(&g).then_some(())?;
        *slot = Some(g);
    }
    Some(out)
}

/// Initiator: checks the responder's IKE choice against what we offered.
pub(crate) fn check_ike(
    reply: &SaPayload,
    ours: &[IkeProposal],
    addke: &AdditionalKe,
) -> Option<IkeAlgs> {
    let [p] = reply.proposals.as_slice() else {
        return None;
    };
    let e = single(p, TransformType::ENCR)?;
    let encr = EncrAlg::from_iana(e.id, e.key_len())?;
    let prf = PrfAlg::from_iana(single(p, TransformType::PRF)?.id)?;
    let group = DhGroup::from_iana(single(p, TransformType::KE)?.id)?;
    let integ = match p.transforms.iter().find(|t| t.ty == TransformType::INTEG) {
        Some(t) if t.id != INTEG_NONE => {
            Some(IntegAlg::from_iana(single(p, TransformType::INTEG)?.id)?)
        }
        _ => None,
    };
    let ok = ours
        .iter()
        .any(|o| o.encr == encr && o.integ == integ && o.prf == prf && o.groups.contains(&group));
    let addke = check_addke(p, addke)?;
    ok.then_some(IkeAlgs {
        encr,
        integ,
        prf,
        group,
        addke,
    })
}

/// Initiator: checks the responder's ESP choice; returns its SPI (our outbound) and algorithms.
pub(crate) fn check_esp(reply: &SaPayload, ours: &[EspProposal]) -> Option<(u32, EspAlgs)> {
    let [p] = reply.proposals.as_slice() else {
        return None;
    };
    if p.protocol != ProtocolId::ESP {
        return None;
    }
    let e = single(p, TransformType::ENCR)?;
    let encr = EncrAlg::from_iana(e.id, e.key_len())?;
    let integ = match p.transforms.iter().find(|t| t.ty == TransformType::INTEG) {
        Some(t) if t.id != INTEG_NONE => {
            Some(IntegAlg::from_iana(single(p, TransformType::INTEG)?.id)?)
        }
        _ => None,
    };
    if p.transforms
        .iter()
        .any(|t| t.ty == TransformType::ESN && t.id != ESN_NO)
    {
        return None;
    }
    let spi = u32::from_be_bytes(p.spi.as_slice().try_into().ok()?);
    let algs = EspAlgs { encr, integ };
    ours.iter()
        .any(|o| o.encr == encr && o.integ == integ)
        .then_some((spi, algs))
}
