//! The walk that proves where an unsigned zone's insecure delegation is: validated DS queries
//! from the zone's apex upwards until a signed parent denies the DS (RFC 4035 section 5.2), run
//! in the background after the first negative answer from that zone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::{Message, Query};
use hickory_resolver::proto::rr::{Name, RecordType};

use super::insecure::{cut, Cut};
use super::Proofs;
use crate::guard::{Budget, WorkLimits, BUDGET};
use crate::validator::{request_options, Checked};

/// Queries one walk for an insecure cut may send.
const CUT_WALK_QUERIES: usize = 8;

/// The apex of the unsigned zone a negative answer came from: its SOA, provably insecure.
pub(crate) fn unsigned_apex(msg: &Message) -> Option<Name> {
    msg.authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && r.proof == Proof::Insecure)
        .map(|soa| soa.name.to_lowercase())
}

/// Proves where the insecure delegation above the unsigned zone `apex` is, by validated DS
/// queries from `apex` upwards (RFC 4035 section 5.2), and keeps it in `proofs` for the
/// lifetime of the parent's denial.
pub(crate) async fn prove_cut(
    checked: Checked,
    proofs: Arc<Proofs>,
    apex: Name,
    limits: WorkLimits,
    deadline: Duration,
) {
    let budget = Arc::new(Budget::new(
        limits.max_queries_per_lookup.min(CUT_WALK_QUERIES),
    ));
    let walk = async {
        let mut zone = apex.clone();
        while !zone.is_root() {
            let query = Query::query(zone.clone(), RecordType::DS);
            let Ok(response) = checked
                .lookup(query, request_options())
                .first_answer()
                .await
            else {
                return;
            };
            let now = SystemTime::now();
            match cut(&zone, &response, now) {
                Cut::Insecure(until) => {
                    proofs.insecure_cut(zone, until, now);
                    return;
                }
                Cut::ParentInsecure(parent) => zone = parent,
                Cut::Unproven => return,
            }
        }
    };
    let _ = tokio::time::timeout(deadline, BUDGET.scope(budget, walk)).await;
    proofs.end_walk(&apex);
}
