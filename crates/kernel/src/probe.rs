//! Can this kernel install ESP SAs? Asked once at start-up, answered with a type.
//!
//! For each family and algorithm the probe installs a throwaway SA and deletes it at
//! once. The SA can carry no traffic (loopback addresses, the reserved SPI 255, the
//! last reqid of our range, which no policy uses) and has a 2-second hard lifetime, so
//! the kernel removes it even if we die between the two calls. The kernel checks the
//! algorithm (`ENOSYS`/`ENOENT` if missing) and the ESP protocol handler
//! (`EPROTONOSUPPORT` if `esp4`/`esp6` is neither built in nor loadable) before it
//! accepts an SA, so the errno tells exactly what is missing.

use std::net::IpAddr;

use crate::alg::AlgorithmKind;
use crate::client::Xfrm;
use crate::error::Error;
use crate::sa::{Lifetime, Replay, SaId, SaSpec};
use crate::types::{Family, Reqid, Spi};

/// SPI of probe SAs (1-255 are reserved by IANA, RFC 4303 section 2.1: no peer uses it).
pub const PROBE_SPI: Spi = Spi(0xff);
/// Hard lifetime of a probe SA.
const PROBE_LIFETIME_SECONDS: u64 = 2;

/// Whether one algorithm works for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// An SA with it was installed (and removed).
    Available,
    /// The kernel has no ESP for this family (`EPROTONOSUPPORT`).
    EspMissing,
    /// The kernel lacks the algorithm (`ENOSYS` or `ENOENT`).
    AlgorithmMissing,
    /// Some other refusal (permissions, ...).
    Refused {
        /// Errno.
        errno: i32,
        /// Kernel's reason, if given.
        message: Option<String>,
    },
}

/// The probe's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Per family, per algorithm.
    pub results: Vec<(Family, AlgorithmKind, Support)>,
}

/// Why ESP cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EspUnavailable {
    /// XFRM works but ESP is not there.
    #[error("the kernel has XFRM but no ESP for {0:?} (XFRM_MSG_NEWSA fails with EPROTONOSUPPORT: esp4/esp6 not built or not loadable)")]
    NoEsp(Family),
    /// ESP is there but none of our algorithms is.
    #[error("the kernel has none of the ESP algorithms oe uses for {0:?} (AES-GCM, ChaCha20-Poly1305, AES-CBC+HMAC-SHA256)")]
    NoAlgorithm(Family),
    /// The kernel refused for another reason.
    #[error("the kernel refused a test ESP SA for {family:?}: {}", std::io::Error::from_raw_os_error(*.errno))]
    Refused {
        /// Family.
        family: Family,
        /// Errno.
        errno: i32,
    },
}

impl Capabilities {
    /// Whether `kind` works for `family`.
    pub fn supports(&self, family: Family, kind: AlgorithmKind) -> bool {
        self.results
            .iter()
            .any(|(f, k, s)| *f == family && *k == kind && *s == Support::Available)
    }

    /// The algorithms that work for `family`.
    pub fn algorithms(&self, family: Family) -> Vec<AlgorithmKind> {
        AlgorithmKind::ALL
            .into_iter()
            .filter(|k| self.supports(family, *k))
            .collect()
    }

    /// `Ok` if at least one algorithm works for `family`, else why not.
    pub fn esp(&self, family: Family) -> Result<(), EspUnavailable> {
        if !self.algorithms(family).is_empty() {
            return Ok(());
        }
        let of_family = || {
            self.results
                .iter()
                .filter(|(f, ..)| *f == family)
                .map(|(.., s)| s)
        };
        if of_family().any(|s| *s == Support::EspMissing) {
            return Err(EspUnavailable::NoEsp(family));
        }
        match of_family().find_map(|s| match s {
            Support::Refused { errno, .. } => Some(*errno),
            _ => None,
        }) {
            Some(errno) => Err(EspUnavailable::Refused { family, errno }),
            None => Err(EspUnavailable::NoAlgorithm(family)),
        }
    }
}

/// Probes every family and algorithm. Errors only for socket failures; kernel
/// refusals are findings.
pub async fn probe(xfrm: &mut Xfrm) -> Result<Capabilities, Error> {
    let reqid = xfrm.ownership().probe_reqid();
    let mut results = Vec::new();
    for family in [Family::V4, Family::V6] {
        for kind in AlgorithmKind::ALL {
            let support = probe_one(xfrm, family, kind, reqid).await?;
            results.push((family, kind, support));
        }
    }
    Ok(Capabilities { results })
}

fn probe_spec(family: Family, kind: AlgorithmKind, reqid: Reqid) -> SaSpec {
    let lo: IpAddr = match family {
        Family::V4 => IpAddr::from([127, 0, 0, 1]),
        Family::V6 => IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16]),
    };
    SaSpec {
        src: lo,
        dst: lo,
        spi: PROBE_SPI,
        reqid,
        algorithm: kind.filler(0x5a),
        lifetime: Lifetime::hard_seconds(PROBE_LIFETIME_SECONDS),
        replay: Replay::default(),
        encap: None,
        selector: None,
        acquire_seq: None,
    }
}

async fn probe_one(
    xfrm: &mut Xfrm,
    family: Family,
    kind: AlgorithmKind,
    reqid: Reqid,
) -> Result<Support, Error> {
    let spec = probe_spec(family, kind, reqid);
    let id = SaId::esp(spec.dst, spec.spi);
    let mut result = xfrm.add_sa(&spec).await;
    if matches!(&result, Err(e) if e.is_exists()) {
        // A probe SA left by a crashed predecessor (it lives 2 s): replace it.
        let _ = xfrm.delete_sa(id).await;
        result = xfrm.add_sa(&spec).await;
    }
    let support = match result {
        Ok(()) => {
            let _ = xfrm.delete_sa(id).await;
            Support::Available
        }
        Err(Error::Kernel { errno, message, .. }) => classify(errno, message),
        Err(e) => return Err(e),
    };
    Ok(support)
}

fn classify(errno: i32, message: Option<String>) -> Support {
    match errno {
        libc::EPROTONOSUPPORT => Support::EspMissing,
        libc::ENOSYS | libc::ENOENT => Support::AlgorithmMissing,
        _ => Support::Refused { errno, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(results: &[(Family, AlgorithmKind, Support)]) -> Capabilities {
        Capabilities {
            results: results.to_vec(),
        }
    }

    #[test]
    fn esp_missing_is_reported_as_such() {
        let c = caps(&[
            (
                Family::V4,
                AlgorithmKind::AesGcm128,
                Support::AlgorithmMissing,
            ),
            (
                Family::V4,
                AlgorithmKind::AesCbcHmacSha256,
                Support::EspMissing,
            ),
        ]);
        assert_eq!(c.esp(Family::V4), Err(EspUnavailable::NoEsp(Family::V4)));
        assert!(c
            .esp(Family::V4)
            .unwrap_err()
            .to_string()
            .contains("no ESP"));
    }

    #[test]
    fn one_algorithm_is_enough() {
        let c = caps(&[
            (
                Family::V6,
                AlgorithmKind::AesGcm128,
                Support::AlgorithmMissing,
            ),
            (
                Family::V6,
                AlgorithmKind::ChaCha20Poly1305,
                Support::Available,
            ),
        ]);
        assert_eq!(c.esp(Family::V6), Ok(()));
        assert_eq!(
            c.algorithms(Family::V6),
            vec![AlgorithmKind::ChaCha20Poly1305]
        );
        assert_eq!(
            c.esp(Family::V4),
            Err(EspUnavailable::NoAlgorithm(Family::V4))
        );
    }

    #[test]
    fn errno_classes() {
        assert_eq!(classify(libc::EPROTONOSUPPORT, None), Support::EspMissing);
        assert_eq!(classify(libc::ENOSYS, None), Support::AlgorithmMissing);
        assert!(matches!(
            classify(libc::EPERM, None),
            Support::Refused {
                errno: libc::EPERM,
                ..
            }
        ));
    }

    #[test]
    fn probe_sa_is_valid_for_every_algorithm() {
        for family in [Family::V4, Family::V6] {
            for kind in AlgorithmKind::ALL {
                assert_eq!(
                    probe_spec(family, kind, Reqid(0x6f65_ffff)).validate(),
                    Ok(())
                );
            }
        }
    }
}
