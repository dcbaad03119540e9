//! Which kernel entries are oe's.
//!
//! Everything oe installs carries two marks:
//! - SAs and the templates of trap and SA policies use a **reqid** from oe's range
//!   (default `0x6f65_0000..=0x6f65_ffff`; strongSwan counts reqids up from 1 and
//!   Libreswan uses 16384 and up in steps of 8, far below).
//! - Policies use a **priority** from oe's band (see [`crate::priority`]).
//!
//! A policy is ours when its priority is in the band, it carries no mark, interface id
//! or security context, is of the main type, and every template (if any) is ESP with a
//! reqid in our range. An SA is ours when its reqid is in our range. Flush and
//! reconcile touch nothing else.
//!
//! # Changing what exists
//! XFRM identifies a policy by selector, direction, mark and interface id, not by priority
//! or template, so a foreign policy with the selector and direction of one of ours *is* that
//! policy to the kernel: `XFRM_MSG_UPDPOLICY` would overwrite it and `XFRM_MSG_DELPOLICY`
//! would remove it. An SA is identified by destination, SPI and protocol, with the same
//! consequence. So the only requests that update or delete an existing entry take an
//! [`OwnedPolicy`] or [`OwnedSa`]: the entry as the kernel reported it (GETPOLICY, GETSA,
//! a dump), checked here. Adding (`NEWPOLICY`, `NEWSA`) never overwrites and needs no check.
//!
//! **The race:** between reading an entry and changing it, another daemon may replace it.
//! Deletes of policies go by the kernel's index, which a policy keeps only while it is not
//! removed, so a policy deleted and re-added by someone else in between is not touched (its
//! index is new); one replaced *in place* by another daemon's `UPDPOLICY` keeps the index
//! and would be. Updates go by selector. The window is one netlink round trip (microseconds)
//! and needs another daemon writing the very same selector in it.

use crate::error::Error;
use crate::policy::{PolicyInfo, PolicyKey};
use crate::priority::BAND;
use crate::sa::{SaId, SaInfo};
use crate::types::Reqid;

/// oe's marks. Two agents (or tests) with disjoint ranges never see each other's
/// entries as their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    reqid_base: u32,
    reqid_count: u32,
    priority_base: u32,
}

/// Default first reqid: "oe" in the high half.
pub const DEFAULT_REQID_BASE: u32 = 0x6f65_0000;
/// Default number of reqids.
pub const DEFAULT_REQID_COUNT: u32 = 0x1_0000;
/// Default start of the priority band.
pub const DEFAULT_PRIORITY_BASE: u32 = 0x6f65_0000;

impl Default for Ownership {
    fn default() -> Self {
        Self {
            reqid_base: DEFAULT_REQID_BASE,
            reqid_count: DEFAULT_REQID_COUNT,
            priority_base: DEFAULT_PRIORITY_BASE,
        }
    }
}

impl Ownership {
    /// Custom ranges; `None` if either overflows `u32` or the reqid range has fewer
    /// than two values (the last is reserved for probes).
    pub fn new(reqid_base: u32, reqid_count: u32, priority_base: u32) -> Option<Self> {
        reqid_base.checked_add(reqid_count)?;
        if reqid_count < 2 {
            return None;
        }
        priority_base.checked_add(BAND)?;
        Some(Self {
            reqid_base,
            reqid_count,
            priority_base,
        })
    }

    /// The `n`th reqid of the range.
    pub fn reqid(&self, n: u32) -> Option<Reqid> {
        (n < self.reqid_count).then(|| Reqid(self.reqid_base + n))
    }

    /// The last reqid of the range, reserved for capability probes (see
    /// [`crate::probe`]); no policy uses it.
    pub fn probe_reqid(&self) -> Reqid {
        Reqid(self.reqid_base + (self.reqid_count - 1))
    }

    /// Whether `reqid` is in our range.
    pub fn owns_reqid(&self, reqid: Reqid) -> bool {
        reqid.0.wrapping_sub(self.reqid_base) < self.reqid_count
    }

    /// First priority of the band.
    pub fn priority_base(&self) -> u32 {
        self.priority_base
    }

    /// Whether `priority` is in our band.
    pub fn owns_priority(&self, priority: u32) -> bool {
        priority.wrapping_sub(self.priority_base) < BAND
    }

    /// Whether a policy is ours (see the module docs).
    pub fn owns_policy(&self, policy: &PolicyInfo) -> bool {
        self.owns_priority(policy.priority)
            && !policy.has_mark_or_context
            && policy.main_type
            && policy
                .templates
                .iter()
                .all(|t| t.is_esp() && self.owns_reqid(t.reqid))
    }

    /// Whether an SA (including a larval one) is ours.
    pub fn owns_sa(&self, sa: &SaInfo) -> bool {
        self.owns_reqid(sa.reqid)
    }

    /// The proof that a policy read from the kernel is ours, or [`Error::Foreign`].
    pub fn check_policy(&self, policy: PolicyInfo) -> Result<OwnedPolicy, Error> {
        if self.owns_policy(&policy) {
            Ok(OwnedPolicy(policy))
        } else {
            Err(Error::Foreign {
                entry: format!(
                    "policy {:?} (priority {}, reqid {:?})",
                    policy.key,
                    policy.priority,
                    policy.reqid()
                ),
            })
        }
    }

    /// The proof that an SA read from the kernel is ours, or [`Error::Foreign`].
    pub fn check_sa(&self, sa: SaInfo) -> Result<OwnedSa, Error> {
        if self.owns_sa(&sa) {
            Ok(OwnedSa(sa))
        } else {
            Err(Error::Foreign {
                entry: format!("SA {} spi {} (reqid {})", sa.id.dst, sa.id.spi, sa.reqid),
            })
        }
    }
}

/// A policy as the kernel reported it, checked to be ours ([`Ownership::check_policy`]):
/// what [`crate::Request::update_policy`] and [`crate::Request::delete_policy`] need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPolicy(PolicyInfo);

impl OwnedPolicy {
    /// The policy as read.
    pub fn info(&self) -> &PolicyInfo {
        &self.0
    }

    /// Its direction and selector.
    pub fn key(&self) -> PolicyKey {
        self.0.key
    }

    /// The kernel's index of the policy (deletes go by it).
    pub fn index(&self) -> u32 {
        self.0.index
    }

    /// The policy as read, giving up the proof.
    pub fn into_info(self) -> PolicyInfo {
        self.0
    }
}

/// An SA as the kernel reported it, checked to be ours ([`Ownership::check_sa`]): what
/// [`crate::Request::update_sa`] and [`crate::Request::delete_sa`] need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSa(SaInfo);

impl OwnedSa {
    /// The SA as read.
    pub fn info(&self) -> &SaInfo {
        &self.0
    }

    /// Its id.
    pub fn id(&self) -> SaId {
        self.0.id
    }

    /// The SA as read, giving up the proof.
    pub fn into_info(self) -> SaInfo {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let o = Ownership::default();
        assert_eq!(o.reqid(0), Some(Reqid(0x6f65_0000)));
        assert_eq!(o.reqid(0x1_0000), None);
        assert!(o.owns_reqid(Reqid(0x6f65_ffff)));
        assert!(!o.owns_reqid(Reqid(0x6f66_0000)));
        assert!(!o.owns_reqid(Reqid(1)));
        assert!(o.owns_priority(0x6f65_3000));
        assert!(!o.owns_priority(0));
        assert!(!o.owns_priority(0x6f64_ffff));
        assert!(Ownership::new(u32::MAX, 2, 0).is_none());
        assert!(Ownership::new(0, 2, u32::MAX - 10).is_none());
        assert!(Ownership::new(0, 1, 0).is_none());
        assert_eq!(o.probe_reqid(), Reqid(0x6f65_ffff));
    }

    #[test]
    fn checks_hand_out_proofs_only_for_ours() {
        use crate::policy::PolicySpec;
        use crate::types::{Prefix, TrafficSelector};
        let o = Ownership::default();
        let sel = TrafficSelector::to(Prefix::host("192.0.2.2".parse().unwrap()));
        let ours = PolicyInfo::installed(&PolicySpec::trap(sel, o.reqid(1).unwrap()), &o);
        assert_eq!(o.check_policy(ours.clone()).unwrap().index(), 8);
        let mut foreign = ours.clone();
        foreign.priority = 100;
        assert!(matches!(
            o.check_policy(foreign),
            Err(Error::Foreign { .. })
        ));
        let mut foreign = ours;
        foreign.templates[0].reqid = Reqid(5);
        assert!(matches!(
            o.check_policy(foreign),
            Err(Error::Foreign { .. })
        ));
    }
}
