//! Turns a response validated by hickory's `DnssecDnsHandle` into an [`Answer`] (IPSECKEY) or a
//! [`Verdict`] on any RRset type (addresses): pure, no I/O.
//!
//! Rules: any bogus or indeterminate record on the path (CNAMEs, the IPSECKEY RRset) makes the
//! whole answer bogus; all secure gives `Secure`; otherwise `Insecure`. A response without
//! IPSECKEY records is an absence, proven by validated NSEC/NSEC3 or by an unsigned zone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::dnssec::Proof;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::answer::{
    Absence, Answer, Denial, Failure, KeyRecord, LookupError, SecureKeys, Signature, Unsigned,
};
use crate::ipseckey::{IpsecKey, RECORD_TYPE};

/// Longest CNAME chain followed.
const MAX_CNAMES: usize = 8;
/// Negative TTL when a response carries no SOA (RFC 2308 section 5 wants one; be brief).
const DEFAULT_NEGATIVE_TTL: u32 = 60;

/// Classifies a response for `qname IPSECKEY` that hickory validated (records carry proofs).
pub fn classify(qname: &Name, msg: &Message, now: SystemTime) -> Result<Answer, LookupError> {
    let found = match classify_rrset(qname, RecordType::from(RECORD_TYPE), msg, now)? {
        Verdict::Absent(absence) => return Ok(Answer::Absent(absence)),
        Verdict::Found(found) => found,
    };
    let mut records: Vec<KeyRecord> = found.records.iter().map(|r| key_record(r)).collect();
    // Lowest precedence first (RFC 4025 section 2.2); malformed records last.
    records.sort_by_key(|r| {
        r.data
            .as_ref()
            .map_or(u16::MAX, |k| u16::from(k.precedence))
    });
    let owner = found.owner;
    match found.secure {
        None => Ok(Answer::Insecure(Unsigned {
            owner,
            records,
            valid_until: now + Duration::from_secs(found.ttl.into()),
        })),
        Some((signature, usable_until)) => Ok(Answer::Secure(SecureKeys {
            owner,
            records,
            signature,
            ttl: found.ttl,
            usable_until,
        })),
    }
}

/// The verdict on one RRset type at the end of a name's CNAME chain.
#[derive(Debug)]
pub(crate) enum Verdict<'a> {
    /// Records of the type exist.
    Found(Found<'a>),
    /// None exist, with how that is proven.
    Absent(Absence),
}

/// Records of the wanted type, with the weakest proof on their path.
#[derive(Debug)]
pub(crate) struct Found<'a> {
    /// The owner of the RRset (after any CNAME).
    pub(crate) owner: Name,
    /// The RRset's records.
    pub(crate) records: Vec<&'a Record>,
    /// The smallest TTL on the path.
    pub(crate) ttl: u32,
    /// For a secure path: the RRset's proving signature and min(now + TTL, RRSIG expirations).
    /// `None` when some record on the path is provably unsigned.
    pub(crate) secure: Option<(Signature, SystemTime)>,
}

/// Classifies a validated response for `qname rtype`: any bogus or indeterminate record on the
/// path makes it bogus; an unsigned record makes it insecure; all secure gives its lifetime.
pub(crate) fn classify_rrset<'a>(
    qname: &Name,
    rtype: RecordType,
    msg: &'a Message,
    now: SystemTime,
) -> Result<Verdict<'a>, LookupError> {
    let (owner, chain) = follow_cnames(qname, &msg.answers)?;
    let records: Vec<&Record> = msg
        .answers
        .iter()
        .filter(|r| same_type(r.record_type(), rtype) && r.name == owner)
        .collect();
    let path: Vec<&Record> = chain
        .iter()
        .copied()
        .chain(records.iter().copied())
        .collect();
    if let Some(bad) = path
        .iter()
        .find(|r| !matches!(r.proof, Proof::Secure | Proof::Insecure))
    {
        return Err(LookupError::Bogus(diagnose(bad, &msg.answers, now)));
    }
    if records.is_empty() {
        let mut absence = absence(owner, msg, now)?;
        // A denial reached through an unsigned CNAME is not authenticated.
        if chain.iter().any(|r| r.proof == Proof::Insecure) {
            absence.denial = Denial::Unsigned;
        }
        return Ok(Verdict::Absent(absence));
    }
    let ttl = path.iter().map(|r| r.ttl).min().unwrap_or(0);
    if path.iter().any(|r| r.proof == Proof::Insecure) {
        return Ok(Verdict::Found(Found {
            owner,
            records,
            ttl,
            secure: None,
        }));
    }
    let signature = proving_signature(&owner, rtype, &msg.answers, now).ok_or_else(|| {
        LookupError::Bogus(format!(
            "no RRSIG covers the {} RRset at {owner}",
            type_name(rtype)
        ))
    })?;
    let expirations = chain_expirations(&chain, &msg.answers, now);
    let usable_until = expirations
        .into_iter()
        .chain([signature.expiration, now + Duration::from_secs(ttl.into())])
        .min()
        .unwrap_or(now);
    Ok(Verdict::Found(Found {
        owner,
        records,
        ttl,
        secure: Some((signature, usable_until)),
    }))
}

/// Record types compared by number: hickory has no IPSECKEY variant, so 45 may arrive as
/// `Unknown(45)` on one side and something else on the other.
fn same_type(a: RecordType, b: RecordType) -> bool {
    u16::from(a) == u16::from(b)
}

fn key_record(r: &Record) -> KeyRecord {
    let data = match &r.data {
        RData::Unknown { rdata, .. } => IpsecKey::parse(&rdata.anything),
        // hickory has no typed IPSECKEY; any other variant would be an encoding change.
        other => IpsecKey::parse(&BinEncodable::to_bytes(other).unwrap_or_default()),
    };
    KeyRecord { data, ttl: r.ttl }
}

/// Follows CNAMEs from `qname` within the answer section.
fn follow_cnames<'a>(
    qname: &Name,
    answers: &'a [Record],
) -> Result<(Name, Vec<&'a Record>), LookupError> {
    let mut owner = qname.clone();
    let mut chain = Vec::new();
    while let Some(cname) = answers
        .iter()
        .find(|r| r.record_type() == RecordType::CNAME && r.name == owner)
    {
        if chain.len() == MAX_CNAMES {
            return Err(LookupError::Failure(Failure::Response(format!(
                "CNAME chain from {qname} longer than {MAX_CNAMES}"
            ))));
        }
        let RData::CNAME(target) = &cname.data else {
            break;
        };
        chain.push(cname);
        owner = target.0.clone();
    }
    Ok((owner, chain))
}

fn absence(owner: Name, msg: &Message, now: SystemTime) -> Result<Absence, LookupError> {
    let nxdomain = match msg.metadata.response_code {
        ResponseCode::NXDomain => true,
        ResponseCode::NoError => false,
        other => return Err(LookupError::Failure(Failure::Response(other.to_string()))),
    };
    let secure_type = |t: RecordType| {
        msg.authorities
            .iter()
            .any(|r| r.record_type() == t && r.proof == Proof::Secure)
    };
    let denial = if secure_type(RecordType::NSEC3) {
        Denial::Nsec3
    } else if secure_type(RecordType::NSEC) {
        Denial::Nsec
    } else {
        Denial::Unsigned
    };
    let ttl = negative_ttl(&msg.authorities);
    let valid_until = now + Duration::from_secs(ttl.into());
    Ok(Absence {
        owner,
        nxdomain,
        denial,
        valid_until,
    })
}

/// RFC 2308 section 5: min(SOA TTL, SOA MINIMUM), and no longer than the denial records live.
fn negative_ttl(authorities: &[Record]) -> u32 {
    let soa = authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    });
    let denial = authorities
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
        .map(|r| r.ttl)
        .min();
    [
        soa.unwrap_or(DEFAULT_NEGATIVE_TTL),
        denial.unwrap_or(u32::MAX),
    ]
    .into_iter()
    .min()
    .unwrap_or(0)
}

fn rrsigs_for<'a>(
    owner: &'a Name,
    covered: RecordType,
    answers: &'a [Record],
) -> impl Iterator<Item = (&'a Record, &'a RRSIG)> {
    answers.iter().filter_map(move |r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if r.name == *owner && sig.input().type_covered == covered =>
        {
            Some((r, sig))
        }
        _ => None,
    })
}

/// The RRSIG hickory marked as the one that validated the RRset.
fn proving_signature(
    owner: &Name,
    covered: RecordType,
    answers: &[Record],
    now: SystemTime,
) -> Option<Signature> {
    let sigs: Vec<(&Record, &RRSIG)> = rrsigs_for(owner, covered, answers).collect();
    let proving = sigs
        .iter()
        .find(|(r, _)| r.proof == Proof::Secure)
        .or_else(|| sigs.first());
    let (_, sig) = proving?;
    Some(signature(sig, now))
}

fn signature(sig: &RRSIG, now: SystemTime) -> Signature {
    let input = sig.input();
    Signature {
        signer: input.signer_name.clone(),
        key_tag: input.key_tag,
        algorithm: input.algorithm.to_string(),
        inception: serial_time(input.sig_inception.get(), now),
        expiration: serial_time(input.sig_expiration.get(), now),
    }
}

fn chain_expirations(chain: &[&Record], answers: &[Record], now: SystemTime) -> Vec<SystemTime> {
    chain
        .iter()
        .filter_map(|c| {
            rrsigs_for(&c.name, RecordType::CNAME, answers)
                .find(|(r, _)| r.proof == Proof::Secure)
                .map(|(_, sig)| serial_time(sig.input().sig_expiration.get(), now))
        })
        .collect()
}

/// RRSIG times are 32-bit serial numbers (RFC 4034 section 3.1.5): take the instant closest to
/// `now` that has these low 32 bits.
pub(crate) fn serial_time(value: u32, now: SystemTime) -> SystemTime {
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    #[allow(clippy::cast_possible_truncation)] // serial arithmetic keeps the low 32 bits
    let delta = i64::from(value.wrapping_sub(now_secs as u32) as i32);
    let secs = now_secs.saturating_add_signed(delta);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Explains a bogus record from the signatures in the response (for people, not for policy).
fn diagnose(bad: &Record, answers: &[Record], now: SystemTime) -> String {
    let what = format!("{} RRset at {}", type_name(bad.record_type()), bad.name);
    let sigs: Vec<&RRSIG> = rrsigs_for(&bad.name, bad.record_type(), answers)
        .map(|(_, s)| s)
        .collect();
    if sigs.is_empty() {
        return format!("{what} is unsigned inside a signed zone");
    }
    let times: Vec<(SystemTime, SystemTime)> = sigs
        .iter()
        .map(|s| {
            let i = s.input();
            (
                serial_time(i.sig_inception.get(), now),
                serial_time(i.sig_expiration.get(), now),
            )
        })
        .collect();
    if times.iter().all(|(_, exp)| *exp < now) {
        return format!("{what}: every signature has expired");
    }
    if times.iter().all(|(inc, _)| *inc > now) {
        return format!("{what}: no signature is valid yet");
    }
    format!("{what}: signature does not verify or the chain of trust is broken")
}

/// The type's mnemonic, IPSECKEY included (hickory prints it as a number).
pub(crate) fn type_name(rtype: RecordType) -> String {
    if u16::from(rtype) == RECORD_TYPE {
        "IPSECKEY".into()
    } else {
        rtype.to_string()
    }
}

#[cfg(test)]
mod tests;
