//! Child SAs into the kernel and out of it: an SA pair plus host policies above the trap for each new
//! child, and their removal when the child or the peer goes.

use std::net::IpAddr;
use std::time::Instant;

use oe_ike::crypto::{EncrAlg, IntegAlg};
use oe_ike::{ChildSa, SaHandle};
use oe_kernel::{
    EspAlgorithm, Key, Lifetime, Limits, PolicySpec, Replay, SaId, SaSpec, Spi, TrafficSelector,
    UdpEncap,
};

use super::agent::Agent;
use super::state::{Child, Phase};

/// Replay window of the SAs we install (packets).
const REPLAY_WINDOW: u32 = 128;

impl Agent {
    pub(crate) async fn child_ready(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        child: ChildSa,
        replaces: Option<u32>,
    ) {
        let Some(addr) = self.sa_index.get(&(local, handle)).copied() else {
            return;
        };
        let Some(reqid) = self.peers.get(&addr).map(|p| p.reqid) else {
            return;
        };
        let esp = esp_name(child.encr);
        match self.install_child(&child, reqid).await {
            Ok(()) => {}
            Err(e) => {
                self.event(
                    "install-failed",
                    Some(addr),
                    format!("kernel refused the SA pair: {e}"),
                );
                if let Some(endpoint) = self.endpoints.get_mut(&local) {
                    endpoint.delete(Instant::now(), handle);
                }
                return self
                    .fail(addr, format!("kernel refused the SA pair: {e}"))
                    .await;
            }
        }
        self.retire_shunt(addr, &child).await;
        self.release_held_packets(addr).await;
        let now = Instant::now();
        let selectors = format!("{} === {}", child.local, child.remote);
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        peer.spare_spis.retain(|s| *s != child.inbound_spi);
        peer.children.push(Child {
            inbound_spi: child.inbound_spi,
            outbound_spi: child.outbound_spi,
            esp: esp.clone(),
            selectors,
            installed: now,
            rekey_after: child.lifetime.soft,
            last_bytes: (0, 0),
            last_change: now,
            packets: (0, 0),
        });
        super::trigger::release_waiters(&mut peer.waiters);
        let first = !matches!(peer.phase, Phase::Established { .. });
        peer.phase = Phase::Established { since: now };
        peer.deadline = None;
        peer.last_ike = Some("established".into());
        if first {
            self.counters.negotiations_succeeded += 1;
            if self
                .peers
                .get(&addr)
                .is_some_and(|p| p.role == super::state::Role::Responder)
            {
                self.counters.responder_sas += 1;
            }
        }
        let what = if replaces.is_some() {
            "rekeyed child SA"
        } else {
            "child SA"
        };
        self.event(
            "child-installed",
            Some(addr),
            format!(
                "{what} installed: {esp}, SPIs {:08x} in / {:08x} out",
                child.inbound_spi, child.outbound_spi
            ),
        );
    }

    /// Adds the inbound and outbound SAs and the host policies (in, out) for one child.
    pub(crate) async fn install_child(
        &mut self,
        child: &ChildSa,
        reqid: oe_kernel::Reqid,
    ) -> Result<(), String> {
        let (inbound, mut outbound) =
            sa_specs(child, reqid).ok_or("the negotiated algorithm has no kernel equivalent")?;
        // The outbound SA replaces the larval state the ACQUIRE left (so held packets go out through it).
        outbound.acquire_seq = self.peers.get(&child.remote).and_then(|p| p.acquire_seq);
        // The inbound SPI came from ALLOCSPI, whose larval state the SA takes over (XFRM_MSG_UPDSA).
        self.kernel
            .update_sa(&inbound)
            .await
            .map_err(|e| e.to_string())?;
        if let Err(e) = self.kernel.add_sa(&outbound).await {
            let _ = self.kernel.delete_sa(inbound.id()).await;
            return Err(e.to_string());
        }
        let policies = PolicySpec::host_sa_pair(child.local, child.remote, reqid)
            .map_err(|e| e.to_string())?;
        for policy in &policies {
            // A rekeyed child reuses the policies of its predecessor (same reqid): update in place.
            if let Err(e) = self.kernel.add_policy(policy).await {
                self.kernel
                    .update_policy(policy)
                    .await
                    .map_err(|_| e.to_string())?;
            }
        }
        Ok(())
    }

    pub(crate) async fn child_deleted(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        inbound: u32,
        outbound: u32,
    ) {
        let Some(addr) = self.sa_index.get(&(local, handle)).copied() else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        let remote = peer.addr;
        peer.children.retain(|c| c.inbound_spi != inbound);
        let last = peer.children.is_empty();
        let _ = self.kernel.delete_sa(SaId::esp(local, Spi(inbound))).await;
        let _ = self
            .kernel
            .delete_sa(SaId::esp(remote, Spi(outbound)))
            .await;
        self.event(
            "child-deleted",
            Some(addr),
            format!("child SA {inbound:08x}/{outbound:08x} removed"),
        );
        if last {
            self.remove_host_policies(addr).await;
        }
    }

    /// The SA policies replaced a shunt with the same selector in place (no gap, no cleartext); any other
    /// shunt is removed.
    async fn retire_shunt(&mut self, addr: IpAddr, child: &ChildSa) {
        let Some(spec) = self
            .peers
            .get_mut(&addr)
            .and_then(|p| p.shunt.take())
            .and_then(|s| s.spec)
        else {
            return;
        };
        let replaced = PolicySpec::host_sa_pair(child.local, child.remote, oe_kernel::Reqid(0))
            .is_ok_and(|[out, _]| out.key() == spec.key());
        if !replaced {
            let _ = self.kernel.delete_policy(&spec.key()).await;
        }
    }

    /// With `xfrm_larval_drop=0` the kernel queues a held flow's packets on the trap policy and re-checks
    /// them on a timer that starts at 100 ms and doubles. Replacing the trap policy with itself
    /// (XFRM_MSG_UPDPOLICY) moves the queue to the "new" policy and re-checks it at once
    /// (`xfrm_policy_requeue`), so the first packets leave through the new SA without waiting for the timer.
    async fn release_held_packets(&mut self, addr: IpAddr) {
        let Some(trap) = self.peers.get_mut(&addr).and_then(|p| p.trap.take()) else {
            return;
        };
        let Some(spec) = self
            .base_installed
            .iter()
            .find(|s| s.key() == trap)
            .copied()
        else {
            return;
        };
        if let Err(e) = self.kernel.update_policy(&spec).await {
            tracing::debug!("re-queueing held packets for {addr}: {e}");
        }
    }

    /// Deletes the larval states of SPIs allocated for children that never came.
    pub(crate) async fn release_spare_spis(&mut self, addr: IpAddr) {
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        let (local, spis) = (peer.local, std::mem::take(&mut peer.spare_spis));
        for spi in spis {
            let _ = self.kernel.delete_sa(SaId::esp(local, Spi(spi))).await;
        }
    }

    /// Removes the host policies that route the peer's traffic into its SAs (the trap applies again).
    pub(crate) async fn remove_host_policies(&mut self, addr: IpAddr) {
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        let Ok(policies) = PolicySpec::host_sa_pair(peer.local, peer.addr, peer.reqid) else {
            return;
        };
        for policy in policies {
            let _ = self.kernel.delete_policy(&policy.key()).await;
        }
    }

    /// Removes everything the agent holds for a peer: SAs, host policies, shunt; the trap takes over.
    pub(crate) async fn forget_peer(&mut self, addr: IpAddr) {
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        let (local, children): (IpAddr, Vec<(u32, u32)>) = (
            peer.local,
            peer.children
                .iter()
                .map(|c| (c.inbound_spi, c.outbound_spi))
                .collect(),
        );
        for (inbound, outbound) in children {
            let _ = self.kernel.delete_sa(SaId::esp(local, Spi(inbound))).await;
            let _ = self.kernel.delete_sa(SaId::esp(addr, Spi(outbound))).await;
        }
        self.remove_host_policies(addr).await;
        self.remove_shunt(addr).await;
        self.release_spare_spis(addr).await;
        self.peers.remove(&addr);
        self.sa_index.retain(|_, a| *a != addr);
    }
}

/// The inbound and outbound SA of a child, or `None` if the kernel has no equivalent of its algorithm.
pub(crate) fn sa_specs(child: &ChildSa, reqid: oe_kernel::Reqid) -> Option<(SaSpec, SaSpec)> {
    let k = &child.keys;
    let alg = |encr: &[u8], integ: &[u8]| esp_algorithm(child.encr, child.integ, encr, integ);
    let lifetime = Lifetime {
        // The engine rekeys at the soft lifetime; the kernel's soft limit is a late backstop, its hard
        // limit the SA's end.
        soft: Limits {
            add_seconds: Some(child.lifetime.hard.as_secs().saturating_sub(30).max(1)),
            ..Limits::default()
        },
        hard: Limits {
            add_seconds: Some(child.lifetime.hard.as_secs().max(2)),
            ..Limits::default()
        },
    };
    let encap = child.encap;
    let spec = |src, dst, spi, algorithm, encap: Option<(u16, u16)>| SaSpec {
        src,
        dst,
        spi: Spi(spi),
        reqid,
        algorithm,
        lifetime,
        replay: Replay {
            window: REPLAY_WINDOW,
            esn: false,
        },
        encap: encap.map(|(src_port, dst_port)| UdpEncap {
            src_port,
            dst_port,
            mapping_threshold: None,
        }),
        selector: TrafficSelector::hosts(src, dst).ok(),
        acquire_seq: None,
    };
    let inbound = spec(
        child.remote,
        child.local,
        child.inbound_spi,
        alg(&k.encr_in, &k.integ_in)?,
        encap.map(|(o, t)| (t, o)),
    );
    let outbound = spec(
        child.local,
        child.remote,
        child.outbound_spi,
        alg(&k.encr_out, &k.integ_out)?,
        encap,
    );
    Some((inbound, outbound))
}

fn esp_algorithm(
    encr: EncrAlg,
    integ: Option<IntegAlg>,
    encr_key: &[u8],
    integ_key: &[u8],
) -> Option<EspAlgorithm> {
    Some(match (encr, integ) {
        (EncrAlg::AesGcm16 { .. }, None) => EspAlgorithm::AesGcm16 {
            key: Key::new(encr_key.to_vec()),
        },
        (EncrAlg::ChaCha20Poly1305, None) => EspAlgorithm::ChaCha20Poly1305 {
            key: Key::new(encr_key.to_vec()),
        },
        (EncrAlg::AesCbc { .. }, Some(IntegAlg::HmacSha2_256_128)) => {
            EspAlgorithm::AesCbcHmacSha256 {
                enc_key: Key::new(encr_key.to_vec()),
                auth_key: Key::new(integ_key.to_vec()),
            }
        }
        _ => return None,
    })
}

/// strongSwan-style names: "AES_GCM_16_256", "CHACHA20_POLY1305", "AES_CBC_256/HMAC_SHA2_256_128".
pub(crate) fn esp_name(encr: EncrAlg) -> String {
    match encr {
        EncrAlg::AesGcm16 { key_bits } => format!("AES_GCM_16_{key_bits}"),
        EncrAlg::ChaCha20Poly1305 => "CHACHA20_POLY1305".into(),
        EncrAlg::AesCbc { key_bits } => format!("AES_CBC_{key_bits}/HMAC_SHA2_256_128"),
        #[allow(unreachable_patterns)]
        _ => format!("{encr:?}"),
    }
}
