//! Fetching the chain of trust ahead of the validator. hickory asks for it level by level: the
//! signer's DNSKEY RRset once the answer is in, then that zone's DS, then the parent's DNSKEY
//! RRset once the DS is in: two round trips per level. The names are known earlier: an RRSIG names
//! its signer (RFC 4034 section 3.1.7), so a response signed by zone Z says that Z's DNSKEY and DS
//! RRsets will be needed, and the DS response's own RRSIG names the parent. The guard fetches
//! those as soon as a response shows them, in parallel, and hickory's requests then find them
//! cached or in flight ([`super::chain`]): one round trip per level, plus one.
//!
//! Bounded: only signers that are ancestors of the name asked (a signer must contain the RRset it
//! signs, RFC 4035 section 5.3.1), at most [`MAX_SIGNERS`] per response, and every prefetch
//! counts against the lookup's query budget.

use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::Message;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::chain::Key;

/// Signers followed per response.
pub(crate) const MAX_SIGNERS: usize = 2;

/// The chain RRsets `response` (to a query for `qname`) shows will be needed: DNSKEY and DS of
/// each signer (no DS for the root), and the DNSKEY RRsets of the trust anchors above it.
pub(crate) fn wanted(qname: &Name, response: &Message, anchors: &[Name]) -> Vec<Key> {
    let mut signers: Vec<Name> = Vec::new();
    let records = response.answers.iter().chain(&response.authorities);
    for record in records {
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &record.data else {
            continue;
        };
        let signer = sig.input().signer_name.to_lowercase();
        if signer.zone_of(qname) && !signers.contains(&signer) {
            signers.push(signer);
            if signers.len() == MAX_SIGNERS {
                break;
            }
        }
    }
    let mut keys = Vec::new();
    for signer in signers {
        keys.push((signer.clone(), RecordType::DNSKEY));
        if !signer.is_root() && !anchors.contains(&signer) {
            keys.push((signer.clone(), RecordType::DS));
        }
        for anchor in anchors.iter().filter(|a| a.zone_of(&signer)) {
            let key = (anchor.clone(), RecordType::DNSKEY);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}
