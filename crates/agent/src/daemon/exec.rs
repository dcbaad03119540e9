//! The executor's loop body: inputs into the core, the core's commands out to the kernel, the
//! sockets, DNS and the status socket, in the order the core gave them. A kernel command with a
//! token is answered into the core before the next command runs (the core's contract).

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use oe_dns::{AddressVerdict, KeyCache, KeyVerdict};
use oe_kernel::Xfrm;
use oe_policy::{Command, Core, Input, KernelOp, KernelReply, TriggerTarget, TriggerView};
use tokio::sync::{broadcast, mpsc};

use super::resolver::{Following, UpstreamState};
use super::sockets::{local_address_towards, Sockets};
use super::trigger::View;
use super::{now, Msg, Replies};
use crate::config::Config;
use crate::status::protocol::{ErrorCode, EventReport, Request, Response, TriggerSummary};

/// The cache's class for a lookup: the host's own, or on a peer's behalf.
fn priority(for_peer: Option<IpAddr>) -> oe_dns::Priority {
    for_peer.map_or(oe_dns::Priority::Host, oe_dns::Priority::Peer)
}

/// An event in the journal: what needs the operator's attention at warning priority.
fn log_event(report: &EventReport) {
    let (kind, peer, detail) = (report.kind.as_str(), report.peer, &report.detail);
    match kind {
        "degraded" | "trap-failed" | "install-failed" | "refresh-failed" | "shunt-failed"
        | "resync" | "spi-failed" => tracing::warn!(kind, peer = ?peer, "{detail}"),
        _ => tracing::info!(kind, peer = ?peer, "{detail}"),
    }
}

/// Everything the executor owns.
pub(crate) struct Executor {
    pub(crate) core: Core,
    pub(crate) rx: mpsc::Receiver<Msg>,
    pub(crate) tx: mpsc::Sender<Msg>,
    pub(crate) kernel: Xfrm,
    pub(crate) rtnl: oe_kernel::route::Rtnl,
    pub(crate) sockets: Sockets,
    pub(crate) cache: KeyCache<Following>,
    /// Where the stub forwards (the follow task keeps it).
    pub(crate) upstreams: Arc<RwLock<UpstreamState>>,
    pub(crate) stub: Option<oe_dns::trigger::Stub>,
    pub(crate) view: Option<Arc<RwLock<View>>>,
    pub(crate) events: broadcast::Sender<EventReport>,
    pub(crate) replies: Replies,
    pub(crate) config_path: Option<std::path::PathBuf>,
    pub(crate) config: Config,
    pub(crate) stopped: bool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

impl Executor {
    /// One message from a task.
    pub(crate) async fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Input(input) => self.handle(input).await,
            Msg::Upstreams(servers) => self.upstreams_changed(&servers).await,
            Msg::Query { request, reply } => self.on_query(request, reply).await,
            Msg::Resolved {
                request,
                addrs,
                reply,
            } => self.on_resolved(request, addrs, reply).await,
            Msg::Trigger {
                name,
                keys,
                addrs,
                done,
            } => {
                let waiter = self.replies.waiter(done);
                let targets = addrs
                    .into_iter()
                    .filter_map(|remote| {
                        let local = local_address_towards(remote).ok()?;
                        Some(TriggerTarget { remote, local })
                    })
                    .collect();
                self.handle(Input::Trigger {
                    name,
                    keys,
                    targets,
                    waiter,
                })
                .await;
            }
        }
    }

    /// Feeds one input to the core and executes what it asks.
    pub(crate) async fn handle(&mut self, input: Input) {
        self.core.handle(now(), input);
        self.run_commands().await;
    }

    async fn on_query(&mut self, request: Request, reply: tokio::sync::oneshot::Sender<Response>) {
        if request.is_control() || matches!(request, Request::Explain { .. }) {
            return self.resolve_then(request, reply);
        }
        let id = self.replies.query(reply);
        let trigger = self.trigger_view();
        self.handle(Input::Query {
            id,
            request,
            trigger,
        })
        .await;
    }

    /// Executes the core's commands, in order, until it has none.
    pub(crate) async fn run_commands(&mut self) {
        while let Some(command) = self.core.poll_command() {
            match command {
                Command::Send(t) => self.sockets.send(t.local, t.remote, &t.contents),
                Command::Kernel { token, op } => {
                    let result = self.kernel_op(op).await;
                    if let Some(token) = token {
                        self.core.handle(now(), Input::KernelDone { token, result });
                    } else if let Err(e) = result {
                        tracing::debug!("kernel request failed: {e}");
                    }
                }
                Command::LookupKey { target, for_peer } => self.lookup_key(target, for_peer),
                Command::LookupAddresses { name, for_peer } => {
                    self.lookup_addresses(name, for_peer)
                }
                Command::ReleaseTrigger(waiter) => {
                    if let Some(done) = self.replies.waiters.remove(&waiter) {
                        let _ = done.send(());
                    }
                }
                Command::Reply { id, response } => {
                    if let Some(reply) = self.replies.queries.remove(&id) {
                        let _ = reply.send(response);
                    }
                }
                Command::Event(report) => {
                    log_event(&report);
                    let _ = self.events.send(report);
                }
                Command::Stopped => self.stopped = true,
                _ => {}
            }
        }
    }

    /// Runs one kernel request.
    async fn kernel_op(&mut self, op: KernelOp) -> Result<KernelReply, String> {
        let k = &mut self.kernel;
        let done = |r: Result<(), oe_kernel::Error>| r.map(|()| KernelReply::Done);
        let result = match op {
            KernelOp::AddPolicy(spec) => done(k.add_policy(&spec).await),
            KernelOp::UpdatePolicy(spec) => done(k.update_policy(&spec).await),
            KernelOp::DeletePolicy(key) => done(k.delete_policy(&key).await),
            KernelOp::AddSa(spec) => done(k.add_sa(&spec).await),
            KernelOp::UpdateSa(spec) => done(k.update_sa(&spec).await),
            KernelOp::DeleteSa(id) => done(k.delete_sa(id).await),
            KernelOp::AddSaIn(mode, spec) => done(k.add_sa_in(mode, &spec).await),
            KernelOp::UpdateSaIn(mode, spec) => done(k.update_sa_in(mode, &spec).await),
            KernelOp::FollowMapping { mapping, outbound } => {
                done(k.follow_mapping(&mapping, outbound).await)
            }
            KernelOp::AllocSpi {
                local,
                remote,
                reqid,
            } => k
                .alloc_spi(local, remote, reqid)
                .await
                .map(|spi| KernelReply::Spi(spi.0)),
            KernelOp::RefreshPolicies(wanted) => {
                k.refresh_policies(&wanted)
                    .await
                    .map(|r| KernelReply::Refreshed {
                        foreign: r.foreign,
                        failed: r
                            .failed
                            .into_iter()
                            .map(|(k, e)| (k, e.to_string()))
                            .collect(),
                    })
            }
            KernelOp::DumpSas => k.dump_sas().await.map(KernelReply::Sas),
            KernelOp::ListOwned => k.list_owned().await.map(|o| KernelReply::Owned {
                policies: o.policies.into_iter().map(|p| p.into_info()).collect(),
                sas: o.sas.into_iter().map(|s| s.into_info()).collect(),
            }),
            KernelOp::FlushOwned => {
                super::assigned::flush(&mut self.rtnl).await;
                k.flush_owned().await.map(|f| {
                    tracing::info!("removed what the agent installed: {f:?}");
                    KernelReply::Done
                })
            }
            KernelOp::ReadNetwork => return super::network::read(&mut self.rtnl).await,
            op @ (KernelOp::AddAssigned { .. }
            | KernelOp::RemoveAssigned { .. }
            | KernelOp::AddClientRoute { .. }
            | KernelOp::RemoveClientRoute { .. }) => {
                return super::assigned::execute(&mut self.rtnl, op).await;
            }
            _ => return Err("unsupported kernel request".into()),
        };
        result.map_err(|e| e.to_string())
    }

    /// An IPSECKEY lookup through the shared validating cache. An outcome the cache already
    /// knows without I/O (a cached answer, or a covering proof: the name lies below a provably
    /// insecure delegation, or cached NSEC records deny it, RFC 8198) goes into the core at once,
    /// before the next command: a host proven keyless is passed with no task or message in
    /// between. Anything else is looked up off the loop; lookups a peer's identity caused run in
    /// the peers' class, bounded per source and in total (oe-dns `Priority`).
    fn lookup_key(&mut self, target: oe_dns::LookupTarget, for_peer: Option<IpAddr>) {
        if let Some(outcome) = self.cache.proven(&target) {
            let verdict = KeyVerdict::of(&outcome);
            self.core
                .handle(now(), Input::KeyVerdict { target, verdict });
            return;
        }
        let (cache, tx) = (self.cache.clone(), self.tx.clone());
        let class = priority(for_peer);
        tokio::spawn(async move {
            let outcome = cache.get_as(&target, class).await;
            let verdict = KeyVerdict::of(&outcome);
            let _ = tx
                .send(Msg::Input(Input::KeyVerdict { target, verdict }))
                .await;
        });
    }

    fn lookup_addresses(&self, name: oe_dns::Name, for_peer: Option<IpAddr>) {
        let (cache, tx) = (self.cache.clone(), self.tx.clone());
        let class = priority(for_peer);
        tokio::spawn(async move {
            let outcome = cache.get_addresses_as(&name, class).await;
            let verdict = AddressVerdict::of(&outcome);
            let _ = tx
                .send(Msg::Input(Input::AddressVerdict { name, verdict }))
                .await;
        });
    }

    /// A request that names a host, its addresses known: `explain` each; a control request acts
    /// on each (with the local address the kernel routes from).
    async fn on_resolved(
        &mut self,
        request: Request,
        addrs: Vec<IpAddr>,
        reply: tokio::sync::oneshot::Sender<Response>,
    ) {
        let id = self.replies.query(reply);
        let input = match request {
            Request::Explain { host } => Input::Explain {
                id,
                host,
                addrs,
                trigger: self.trigger_view(),
            },
            request => Input::Control {
                id,
                targets: addrs
                    .into_iter()
                    .filter_map(|remote| {
                        let local = local_address_towards(remote).ok()?;
                        Some(TriggerTarget { remote, local })
                    })
                    .collect(),
                request,
            },
        };
        self.handle(input).await;
    }

    /// A host named in a request: an address as it is, a name resolved through the agent's own
    /// validating resolver (falling back to the system's), off the loop.
    fn resolve_then(&self, request: Request, reply: tokio::sync::oneshot::Sender<Response>) {
        let host = request.host().unwrap_or_default().to_owned();
        if let Ok(addr) = host.parse::<IpAddr>() {
            let msg = Msg::Resolved {
                request,
                addrs: vec![addr],
                reply,
            };
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(msg).await;
            });
            return;
        }
        let (cache, tx) = (self.cache.clone(), self.tx.clone());
        tokio::spawn(async move {
            let mut addrs = match host.parse::<oe_dns::LookupTarget>() {
                Ok(oe_dns::LookupTarget::Forward(name)) => match &*cache.get_addresses(&name).await
                {
                    Ok(
                        oe_dns::AddressAnswer::Secure { addrs, .. }
                        | oe_dns::AddressAnswer::Insecure { addrs, .. },
                    ) => addrs.clone(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            if addrs.is_empty() {
                if let Ok(found) = tokio::net::lookup_host((host.as_str(), 0)).await {
                    addrs = found.map(|a| a.ip()).collect();
                }
            }
            addrs.dedup();
            if addrs.is_empty() {
                let error =
                    Response::error(ErrorCode::BadRequest, format!("cannot resolve {host}"));
                let _ = reply.send(error);
            } else {
                let _ = tx
                    .send(Msg::Resolved {
                        request,
                        addrs,
                        reply,
                    })
                    .await;
            }
        });
    }

    /// The DNS trigger's stub as the status socket shows it.
    fn trigger_view(&self) -> Option<TriggerView> {
        let stub = self.stub.as_ref()?;
        let stats = stub.stats();
        let c = &stats.counters;
        let summary = TriggerSummary {
            listen: stub.local_addrs().iter().map(ToString::to_string).collect(),
            queries: c.udp_queries + c.tcp_queries,
            opportunistic: c.opportunistic,
            secure_keys: c.secure_keys,
            held: c.held,
            hold_mean_ms: stats.hold_mean_us as f64 / 1000.0,
            hold_expired: c.hold_expired,
            no_key: c.no_key,
            insecure: c.insecure,
            bogus: c.bogus,
            formerr: c.formerr,
            upstream_failures: c.upstream_failures,
            late_keys: c.late_keys,
            lookup_failures: c.lookup_failures,
            addresses_not_proven: c.addresses_not_proven,
            dropped: c.dropped,
            shed: c.shed,
            notimp: c.notimp,
            ..self.upstream_summary()
        };
        let recent = stats
            .recent
            .iter()
            .map(|e| {
                let line = format!(
                    "{} {}: {} (answer held {} ms)",
                    e.name,
                    e.qtype,
                    e.decision.word(),
                    e.held_us / 1000
                );
                (e.name.clone(), line)
            })
            .collect();
        Some(TriggerView { summary, recent })
    }

    /// Where the stub forwards, for `status` and `explain`.
    fn upstream_summary(&self) -> TriggerSummary {
        let state = match self.upstreams.read() {
            Ok(s) => s.clone(),
            Err(e) => e.into_inner().clone(),
        };
        TriggerSummary {
            upstream: Some(Box::new(oe_policy::protocol::UpstreamSummary {
                servers: state.servers.iter().map(ToString::to_string).collect(),
                source: (!state.source.is_empty()).then_some(state.source),
                problem: state.problem,
            })),
            ..TriggerSummary::default()
        }
    }

    /// New DNS upstreams go into `clear` (the validator's queries to them must never wait for
    /// IKE; the stub's bypass IPsec anyway): the group policies change by the difference.
    pub(crate) async fn upstreams_changed(&mut self, servers: &[std::net::SocketAddr]) {
        let Ok(mut table) = super::startup::group_table_with_dns(&self.config) else {
            return;
        };
        for server in servers {
            let _ = table.add(crate::config::Entry {
                group: crate::config::Group::Clear,
                prefix: ipnet::IpNet::from(server.ip()),
                proto: None,
                port: None,
            });
        }
        if let Some(view) = &self.view {
            if let Ok(mut v) = view.write() {
                v.table = table.clone();
            }
        }
        self.handle(Input::Reload {
            config: Box::new(self.config.clone()),
            table,
        })
        .await;
    }

    /// SIGHUP: re-reads the configuration file; the core applies the difference.
    pub(crate) async fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            tracing::info!("reload: running on the built-in configuration; nothing to re-read");
            return;
        };
        let loaded = Config::load(&path).and_then(|c| {
            let table = super::startup::group_table_with_dns(&c).map_err(|source| {
                crate::config::ConfigError::Groups {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok((c, table))
        });
        match loaded {
            Ok((config, table)) => {
                crate::service::logging::reload(&config.log);
                if let Some(view) = &self.view {
                    if let Ok(mut v) = view.write() {
                        v.table = table.clone();
                        v.fail_closed = config.trigger.fail_closed;
                    }
                }
                self.config = config.clone();
                self.handle(Input::Reload {
                    config: Box::new(config),
                    table,
                })
                .await;
                tracing::info!("configuration reloaded from {}", path.display());
            }
            Err(e) => tracing::error!("reload refused, keeping the running configuration: {e}"),
        }
    }
}
