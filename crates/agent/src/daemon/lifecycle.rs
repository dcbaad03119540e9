//! Kernel events other than ACQUIRE, the idle check, start-up reconciliation, reload and shutdown.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use oe_kernel::{Event as KernelEvent, SaExpire, SaId, Spi};

use super::agent::Agent;
use super::base::base_policies;
use super::state::Phase;

impl Agent {
    pub(crate) async fn on_kernel_event(&mut self, event: KernelEvent) {
        match event {
            KernelEvent::Acquire(acquire) => self.on_acquire(acquire).await,
            KernelEvent::Expire(expire) => self.on_sa_expire(expire).await,
            KernelEvent::PolicyExpire(expired) if expired.hard => {
                self.on_shunt_expired(&expired.policy).await
            }
            KernelEvent::Lost => {
                tracing::warn!("kernel events were lost (receive buffer overflow)")
            }
            _ => {}
        }
    }

    /// A hard expiry means the kernel removed an SA the engine should have rekeyed in time: drop the child.
    async fn on_sa_expire(&mut self, expire: SaExpire) {
        if !expire.hard {
            return; // the engine rekeys on its own timer, before the kernel's soft limit
        }
        let found = self.peers.values().find_map(|p| {
            p.children
                .iter()
                .find(|c| c.inbound_spi == expire.sa.spi.0 || c.outbound_spi == expire.sa.spi.0)
                .map(|c| (p.addr, p.local, p.ike, c.inbound_spi))
        });
        if let Some((addr, local, Some(handle), inbound)) = found {
            self.event(
                "expired",
                Some(addr),
                format!("SA {:08x} reached its hard lifetime", expire.sa.spi.0),
            );
            if let Some(endpoint) = self.endpoints.get_mut(&local) {
                endpoint.delete_child(Instant::now(), handle, inbound);
            }
            self.drain(local).await;
        }
    }

    /// The kernel removed an expired shunt: a failed host gets a fresh try at its next packet.
    async fn on_shunt_expired(&mut self, policy: &oe_kernel::PolicyInfo) {
        let addr = self
            .peers
            .values()
            .find(|p| {
                p.shunt
                    .as_ref()
                    .and_then(|s| s.spec.as_ref())
                    .is_some_and(|spec| spec.key() == policy.key)
            })
            .map(|p| p.addr);
        let Some(addr) = addr else { return };
        let failed = self.peers.get_mut(&addr).is_some_and(|p| {
            p.shunt = None;
            matches!(p.phase, Phase::Failed { .. })
        });
        self.event(
            "shunt-expired",
            Some(addr),
            "shunt expired; the trap applies again".into(),
        );
        if failed {
            self.peers.remove(&addr);
            self.sa_index.retain(|_, a| *a != addr);
        }
    }

    /// Reads every child SA's counters from the kernel (both directions) and notes when they last moved.
    /// Returns, per peer, the inbound SPIs of children whose counters have not moved for `idle`.
    pub(crate) async fn refresh_counters(
        &mut self,
        idle: Option<Duration>,
    ) -> Vec<(IpAddr, IpAddr, Vec<u32>)> {
        let now = Instant::now();
        let peers: Vec<(IpAddr, IpAddr)> = self
            .peers
            .values()
            .filter(|p| !p.children.is_empty())
            .map(|p| (p.addr, p.local))
            .collect();
        let mut out = Vec::new();
        for (addr, local) in peers {
            let spis: Vec<(u32, u32)> = self
                .peers
                .get(&addr)
                .map(|p| {
                    p.children
                        .iter()
                        .map(|c| (c.inbound_spi, c.outbound_spi))
                        .collect()
                })
                .unwrap_or_default();
            let mut idle_children = Vec::new();
            for (inbound, outbound) in spis {
                let rx = self
                    .kernel
                    .get_sa(SaId::esp(local, Spi(inbound)))
                    .await
                    .map(|s| (s.current.bytes, s.current.packets));
                let tx = self
                    .kernel
                    .get_sa(SaId::esp(addr, Spi(outbound)))
                    .await
                    .map(|s| (s.current.bytes, s.current.packets));
                let (Ok((bin, pin)), Ok((bout, pout))) = (rx, tx) else {
                    continue;
                };
                let Some(child) = self
                    .peers
                    .get_mut(&addr)
                    .and_then(|p| p.children.iter_mut().find(|c| c.inbound_spi == inbound))
                else {
                    continue;
                };
                child.packets = (pin, pout);
                if (bin, bout) != child.last_bytes {
                    child.last_bytes = (bin, bout);
                    child.last_change = now;
                } else if idle.is_some_and(|t| now.duration_since(child.last_change) >= t) {
                    idle_children.push(inbound);
                }
            }
            out.push((addr, local, idle_children));
        }
        out
    }

    /// Tears down child SAs that carried nothing in either direction for the idle timeout. Traffic in one
    /// direction only is not idle.
    pub(crate) async fn idle_check(&mut self) {
        let idle_timeout = self.config.ike.idle_timeout;
        let idle = (!idle_timeout.is_zero()).then_some(idle_timeout);
        for (addr, local, idle_children) in self.refresh_counters(idle).await {
            self.tear_down_idle(addr, local, idle_children).await;
        }
    }

    async fn tear_down_idle(&mut self, addr: IpAddr, local: IpAddr, idle: Vec<u32>) {
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        let (Some(handle), total) = (peer.ike, peer.children.len()) else {
            return;
        };
        if idle.is_empty() {
            return;
        }
        self.counters.idle_teardowns += 1;
        self.event(
            "idle",
            Some(addr),
            format!(
                "{} idle child SA(s) torn down; the trap applies again",
                idle.len()
            ),
        );
        let Some(endpoint) = self.endpoints.get_mut(&local) else {
            return;
        };
        if idle.len() == total {
            endpoint.delete(Instant::now(), handle);
        } else {
            for inbound in idle {
                endpoint.delete_child(Instant::now(), handle, inbound);
            }
        }
        self.drain(local).await;
    }

    /// Installs the group policies (traps, pass, block) for the current table. Nothing is trapped when the
    /// kernel cannot do ESP: traffic would wait for SAs that can never be installed.
    pub(crate) async fn install_base_policies(&mut self) {
        if let Err(why) = &self.esp {
            tracing::warn!("not installing trap policies: {why}");
            return;
        }
        let trap_reqid = self.trap_reqid();
        for (entry, spec) in base_policies(&self.table, trap_reqid) {
            match self.kernel.add_policy(&spec).await {
                Ok(()) => self.base_installed.push(spec),
                Err(e) => tracing::warn!("cannot install the policy for {entry}: {e}"),
            }
        }
        tracing::info!("{} group policies installed", self.base_installed.len());
    }

    async fn remove_base_policies(&mut self) {
        for spec in std::mem::take(&mut self.base_installed) {
            let _ = self.kernel.delete_policy(&spec.key()).await;
        }
    }

    /// SIGHUP: re-reads the configuration file and replaces the group policies. Peers keep their SAs.
    pub(crate) async fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            tracing::info!("reload: running on the built-in configuration; nothing to re-read");
            return;
        };
        match crate::config::Config::load(&path).and_then(|c| {
            let table = super::group_table_with_dns(&c).map_err(|source| {
                crate::config::ConfigError::Groups {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok((c, table))
        }) {
            Ok((config, table)) => {
                self.config = config;
                self.table = table;
                crate::service::logging::reload(&self.config.log);
                if let Some(view) = &self.trigger_view {
                    if let Ok(mut v) = view.write() {
                        v.table = self.table.clone();
                        v.fail_closed = self.config.trigger.fail_closed;
                    }
                }
                self.remove_base_policies().await;
                self.install_base_policies().await;
                self.event(
                    "reload",
                    None,
                    format!("configuration reloaded from {}", path.display()),
                );
            }
            Err(e) => tracing::error!("reload refused, keeping the running configuration: {e}"),
        }
    }

    /// SIGTERM: deletes every IKE SA (telling peers), then removes everything the agent installed.
    pub(crate) async fn shutdown(&mut self) {
        self.stopping = true;
        let now = Instant::now();
        let handles: Vec<(IpAddr, oe_ike::SaHandle)> = self
            .peers
            .values()
            .filter_map(|p| p.ike.map(|h| (p.local, h)))
            .collect();
        for (local, handle) in handles {
            if let Some(endpoint) = self.endpoints.get_mut(&local) {
                endpoint.delete(now, handle);
            }
        }
        let locals: Vec<IpAddr> = self.endpoints.keys().copied().collect();
        for local in locals {
            self.drain(local).await;
        }
        if let Some(stub) = self.stub.take() {
            stub.shutdown().await;
        }
        // Give the DELETE requests a moment on the wire before their SAs go.
        tokio::time::sleep(Duration::from_millis(100)).await;
        match self.kernel.flush_owned().await {
            Ok(flushed) => tracing::info!("removed what the agent installed: {flushed:?}"),
            Err(e) => tracing::error!("could not remove the agent's kernel state: {e}"),
        }
    }
}
