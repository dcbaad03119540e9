//! `oe run`: the background service (oe-flow): trap, look up, negotiate, install, and report.
//!
//! Start-up order: probe the kernel for ESP; remove state a previous run left (a crash must not leave
//! shunts or holds that blackhole traffic); bind the IKE sockets (bypassing IPsec); install the group
//! policies (only when ESP works); open the status socket; tell systemd we are ready. Then one task owns all
//! state and handles inputs one at a time ([`agent::Agent`]).

mod agent;
mod base;
mod dnsq;
mod engine_config;
mod engine_events;
mod initiator;
mod install;
mod lifecycle;
mod report;
mod sockets;
mod state;
mod trigger;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oe_kernel::{EventSocket, Ownership, Xfrm};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{Config, Entry, Group, GroupError, GroupTable};
use crate::status::protocol::{Counters, ErrorCode, Report, Request, Response};
use crate::status::server::{self, Backend, Query};

pub use engine_config::ProposalError;

/// Inputs of the core task.
#[derive(Debug)]
pub(crate) enum Input {
    Kernel(oe_kernel::Event),
    Datagram(sockets::Datagram),
    Dns {
        name: String,
        result: Result<oe_dns::Answer, oe_dns::LookupError>,
    },
    Addresses {
        query: String,
        outcome: dnsq::AddrOutcome,
    },
    Query(Query),
    Explained {
        host: String,
        addrs: Vec<IpAddr>,
        reply: oneshot::Sender<Response>,
    },
    Trigger {
        name: String,
        bound: trigger::BoundKeys,
        done: oneshot::Sender<()>,
    },
    TriggerRecord(oe_dns::trigger::TriggerEvent),
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    #[error("{0}")]
    Groups(#[from] GroupError),
    #[error("the identity key {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error("XFRM netlink: {0} (the agent needs CAP_NET_ADMIN)")]
    Kernel(#[from] oe_kernel::Error),
    #[error("IKE sockets: {0} (the agent needs CAP_NET_BIND_SERVICE for port 500)")]
    Sockets(std::io::Error),
    #[error("status socket {path}: {source}")]
    StatusSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DNS: {0}")]
    Dns(String),
    #[error("DNS trigger: {0}")]
    Trigger(String),
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), RunError> {
    engine_config::check(&config)?;
    let table = group_table_with_dns(&config)?;
    let (local_id, key, key_description) = load_identity(&config)?;
    let ownership = Ownership::default();
    let mut kernel = Xfrm::open(ownership)?;
    let esp = probe_esp(&mut kernel).await;
    reconcile(&mut kernel).await;
    if config.kernel.queue_first_packet && esp.is_ok() {
        queue_first_packets();
    }
    let sockets =
        sockets::Sockets::bind(config.ike.port, config.ike.nat_port).map_err(RunError::Sockets)?;
    let (tx, mut rx) = mpsc::channel::<Input>(1024);
    sockets.spawn_receivers(&tx);
    spawn_kernel_events(tx.clone())?;
    let validator = oe_dns::Validator::new(validator_config(&config)?)
        .map_err(|e| RunError::Dns(e.to_string()))?;
    let (events, _) = broadcast::channel(256);
    let backend = start_status_socket(&config, &tx, &events).await?;
    let mut agent = agent::Agent {
        dns: dnsq::DnsService::new(validator, tx.clone(), config.dns.cache_size),
        config,
        config_path,
        table,
        kernel,
        ownership,
        esp,
        base_installed: Vec::new(),
        local_id,
        key,
        key_description,
        endpoints: HashMap::new(),
        sockets,
        peers: HashMap::new(),
        sa_index: HashMap::new(),
        dns_waiters: HashMap::new(),
        events: backend.events.clone(),
        history: VecDeque::new(),
        counters: Counters::default(),
        started: Instant::now(),
        next_reqid: agent::TRAP_REQIDS,
        trap_reqid: agent::trap_reqid_for_this_run(&ownership),
        stopping: false,
        tx: tx.clone(),
        bound_keys: HashMap::new(),
        stub: None,
        trigger_view: None,
    };
    agent.install_base_policies().await;
    start_trigger(&mut agent).await?;
    let status = match &agent.esp {
        Ok(()) => "encrypting opportunistically".to_owned(),
        Err(why) => format!("degraded: {why}; serving status and lookups"),
    };
    crate::service::notify::ready(&status);
    agent.event(
        "start",
        None,
        format!("oe {} started: {status}", env!("CARGO_PKG_VERSION")),
    );
    main_loop(&mut agent, &mut rx).await;
    crate::service::notify::stopping();
    agent.shutdown().await;
    Ok(())
}

async fn main_loop(agent: &mut agent::Agent, rx: &mut mpsc::Receiver<Input>) {
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("cannot install signal handlers");
            return;
        }
    };
    let idle_every = agent::idle_check_interval(agent.config.ike.idle_timeout);
    let mut idle_tick = tokio::time::interval(idle_every);
    loop {
        let deadline = agent
            .next_deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            input = rx.recv() => match input {
                Some(input) => handle(agent, input).await,
                None => return,
            },
            () = tokio::time::sleep_until(deadline.into()) => agent.on_timers(Instant::now()).await,
            _ = idle_tick.tick() => agent.idle_check().await,
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                crate::service::notify::reloading();
                agent.reload().await;
                crate::service::notify::ready("reloaded");
            }
        }
    }
}

async fn handle(agent: &mut agent::Agent, input: Input) {
    match input {
        Input::Kernel(event) => agent.on_kernel_event(event).await,
        Input::Datagram(d) => {
            let Some(local) = agent.local_for(d.remote.ip()) else {
                return;
            };
            let now = Instant::now();
            let local_addr = std::net::SocketAddr::new(local, d.local_port);
            agent
                .endpoint(local)
                .handle_datagram(now, d.remote, local_addr, &d.bytes);
            agent.drain(local).await;
        }
        Input::Dns { name, result } => agent.on_dns(name, result).await,
        Input::Addresses { query, outcome } => agent.on_addresses(query, outcome).await,
        Input::Query(query) => {
            if matches!(
                query.request,
                Request::Peers | Request::Status | Request::Explain { .. }
            ) {
                // Byte counters and idle times as the kernel has them now.
                agent.refresh_counters(None).await;
            }
            answer(agent, query);
        }
        Input::Trigger { name, bound, done } => agent.on_trigger(name, bound, done).await,
        Input::TriggerRecord(event) => agent.on_trigger_record(event),
        Input::Explained { host, addrs, reply } => {
            let _ = reply.send(Response::ok(agent.explain_report(&host, &addrs)));
        }
    }
}

fn answer(agent: &agent::Agent, query: Query) {
    let report = match &query.request {
        Request::Status => agent.status_report(),
        Request::Peers => agent.peers_report(),
        Request::Shunts => agent.shunts_report(),
        Request::DnsCache => agent.dns_report(),
        Request::Events { .. } => agent.events_report(),
        Request::Explain { host } => {
            if let Ok(addr) = host.parse::<IpAddr>() {
                agent.explain_report(host, &[addr])
            } else {
                return resolve_then_explain(agent, host.clone(), query.reply);
            }
        }
    };
    let _ = query.reply.send(Response::ok(report));
}

/// `explain NAME`: resolve the name through the agent's own validating resolver (falling back to the
/// system's), off the core task, then explain each address.
fn resolve_then_explain(agent: &agent::Agent, host: String, reply: oneshot::Sender<Response>) {
    let tx = agent.tx.clone();
    let cache = agent.dns.cache();
    tokio::spawn(async move {
        let mut addrs = match host.parse::<oe_dns::LookupTarget>() {
            Ok(oe_dns::LookupTarget::Forward(name)) => match &*cache.get_addresses(&name).await {
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
            let _ = reply.send(Response::error(
                ErrorCode::BadRequest,
                format!("cannot resolve {host}"),
            ));
        } else {
            let _ = tx.send(Input::Explained { host, addrs, reply }).await;
        }
    });
}

/// Starts the DNS trigger's stub on its loopback address, forwarding to the configured resolvers (never to
/// itself), sharing the agent's validated-DNS cache; its upstream sockets bypass IPsec.
async fn start_trigger(agent: &mut agent::Agent) -> Result<(), RunError> {
    let cfg = agent.config.trigger.clone();
    if !cfg.enabled {
        return Ok(());
    }
    let listen: Vec<std::net::SocketAddr> = cfg
        .listen
        .iter()
        .map(|s| oe_dns::parse_server(s, 53))
        .collect::<Result<_, _>>()
        .map_err(RunError::Trigger)?;
    let upstreams = trigger_upstreams(&agent.config, &listen)?;
    if upstreams.is_empty() {
        tracing::warn!("DNS trigger disabled: no upstream resolver other than the stub itself");
        return Ok(());
    }
    let listeners = oe_dns::trigger::Listeners::bind(&listen)
        .await
        .map_err(|e| RunError::Trigger(format!("cannot listen on {listen:?}: {e}")))?;
    let view = Arc::new(std::sync::RwLock::new(trigger::View {
        table: agent.table.clone(),
        active: agent.esp.is_ok(),
        fail_closed: cfg.fail_closed,
    }));
    let bypass: oe_dns::trigger::SocketHook = Arc::new(|fd| oe_kernel::socket::bypass_ipsec(&fd));
    let stub_config = oe_dns::trigger::StubConfig {
        listen: listen.clone(),
        upstreams,
        hold: cfg.hold,
        upstream_socket: Some(bypass),
        ..oe_dns::trigger::StubConfig::default()
    };
    let hook = Arc::new(trigger::AgentHook {
        view: view.clone(),
        tx: agent.tx.clone(),
    });
    let stub = oe_dns::trigger::Stub::serve(stub_config, listeners, agent.dns.cache(), hook)
        .map_err(|e| RunError::Trigger(e.to_string()))?;
    tracing::info!("DNS trigger listening on {:?}", stub.local_addrs());
    agent.stub = Some(stub);
    agent.trigger_view = Some(view);
    Ok(())
}

fn trigger_upstreams(
    config: &Config,
    listen: &[std::net::SocketAddr],
) -> Result<Vec<std::net::SocketAddr>, RunError> {
    let own: Vec<IpAddr> = listen.iter().map(std::net::SocketAddr::ip).collect();
    let named = if config.trigger.upstreams.is_empty() {
        &config.dns.upstreams
    } else {
        &config.trigger.upstreams
    };
    let servers: Vec<std::net::SocketAddr> = if named.is_empty() {
        dns_server_addresses(config)
            .into_iter()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect()
    } else {
        named
            .iter()
            .map(|s| oe_dns::parse_server(s, 53))
            .collect::<Result<_, _>>()
            .map_err(RunError::Trigger)?
    };
    Ok(servers
        .into_iter()
        .filter(|s| !own.contains(&s.ip()))
        .collect())
}

/// The group table plus the DNS upstreams in `clear` (queries to them must never wait for IKE).
pub(crate) fn group_table_with_dns(config: &Config) -> Result<GroupTable, GroupError> {
    let mut table = config.group_table()?;
    for server in dns_server_addresses(config) {
        let prefix = ipnet::IpNet::from(server);
        let _ = table.add(Entry {
            group: Group::Clear,
            prefix,
            proto: None,
            port: None,
        });
    }
    Ok(table)
}

fn dns_server_addresses(config: &Config) -> Vec<IpAddr> {
    let configured: Vec<IpAddr> = config
        .dns
        .upstreams
        .iter()
        .filter_map(|s| oe_dns::parse_server(s, 53).ok().map(|a| a.ip()))
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse().ok())
        .collect()
}

fn load_identity(
    config: &Config,
) -> Result<
    (
        agent::LocalId,
        Option<Arc<oe_ike::crypto::PrivateKey>>,
        String,
    ),
    RunError,
> {
    let id = config.identity.id.as_str();
    let local_id = match id.strip_prefix("fqdn:") {
        Some(name) => agent::LocalId::Fqdn(name.trim_end_matches('.').to_owned()),
        None if id == "null" => agent::LocalId::Null,
        None => agent::LocalId::Address,
    };
    let path = &config.identity.key;
    if matches!(local_id, agent::LocalId::Null) || !path.exists() {
        if !path.exists() && !matches!(local_id, agent::LocalId::Null) {
            tracing::info!(
                "no identity key at {}: acting as an anonymous client (NULL authentication)",
                path.display()
            );
        }
        return Ok((agent::LocalId::Null, None, "none".into()));
    }
    let key = crate::keys::load_private_key(path).map_err(|e| RunError::Key {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let description = key.public_key().describe();
    Ok((local_id, Some(Arc::new(key)), description))
}

async fn probe_esp(kernel: &mut Xfrm) -> Result<(), String> {
    match oe_kernel::probe::probe(kernel).await {
        Ok(caps) => caps
            .esp(oe_kernel::Family::V4)
            .map_err(|e| format!("the kernel cannot install ESP SAs ({e})")),
        Err(e) => Err(format!(
            "the kernel's IPsec support could not be probed ({e})"
        )),
    }
}

/// Removes every policy and SA an earlier run of the agent left behind (crash recovery): nothing stale may
/// hold or drop traffic. Foreign state is never touched.
async fn reconcile(kernel: &mut Xfrm) {
    match kernel.flush_owned().await {
        Ok(flushed) => tracing::info!("start-up reconciliation: {flushed:?}"),
        Err(e) => tracing::warn!("start-up reconciliation failed: {e}"),
    }
}

/// Lets the kernel queue, rather than drop, packets that hit a trap while the SA is negotiated.
fn queue_first_packets() {
    if let Err(e) = std::fs::write("/proc/sys/net/core/xfrm_larval_drop", "0") {
        tracing::warn!(
            "cannot set net.core.xfrm_larval_drop=0 ({e}); first packets to new hosts are dropped"
        );
    }
}

fn spawn_kernel_events(tx: mpsc::Sender<Input>) -> Result<(), RunError> {
    let mut events = EventSocket::open()?;
    tokio::spawn(async move {
        loop {
            match events.next().await {
                Ok(event) => {
                    if tx.send(Input::Kernel(event)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!("kernel event socket failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

fn validator_config(config: &Config) -> Result<oe_dns::ValidatorConfig, RunError> {
    let mut vc = oe_dns::ValidatorConfig {
        lookup_timeout: config.dns.timeout,
        ..oe_dns::ValidatorConfig::default()
    };
    if !config.dns.upstreams.is_empty() {
        let servers = config
            .dns
            .upstreams
            .iter()
            .map(|s| oe_dns::parse_server(s, 53))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RunError::Dns)?;
        vc.upstream = oe_dns::Upstream::Servers(servers);
    }
    if !config.dns.trust_anchor.is_empty() {
        vc.anchors = oe_dns::AnchorSet::from_file(std::path::Path::new(&config.dns.trust_anchor))
            .map_err(|e| RunError::Dns(e.to_string()))?;
    }
    Ok(vc)
}

async fn start_status_socket(
    config: &Config,
    tx: &mpsc::Sender<Input>,
    events: &broadcast::Sender<crate::status::protocol::EventReport>,
) -> Result<Backend, RunError> {
    let path = config.status.socket.clone();
    let mode = config.status_mode().unwrap_or(0o600);
    let group = Some(config.status.group.as_str());
    let listener = server::bind(&path, mode, group).map_err(|source| RunError::StatusSocket {
        path: path.clone(),
        source,
    })?;
    let (qtx, mut qrx) = mpsc::channel::<Query>(64);
    let backend = Backend {
        queries: qtx,
        events: events.clone(),
    };
    tokio::spawn(server::serve(listener, backend.clone()));
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(query) = qrx.recv().await {
            if tx.send(Input::Query(query)).await.is_err() {
                return;
            }
        }
    });
    let _ = Report::Shunts { shunts: vec![] };
    Ok(backend)
}
