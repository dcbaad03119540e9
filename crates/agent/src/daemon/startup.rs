//! Start-up: everything the executor needs, in the order that keeps the host safe.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use oe_dns::{CacheConfig, KeyCache, Validator};
use oe_kernel::{EventSocket, Ownership, Reqid, Xfrm};
use oe_policy::{Core, Input, LocalId, LocalIdentity, Setup, TRAP_REQIDS};
use tokio::sync::{broadcast, mpsc};

use super::exec::Executor;
use super::follow::Follow;
use super::resolver::{discover, read_file, Following, UpstreamState, FIX};
use super::sockets::Sockets;
use super::trigger::{AgentHook, View};
use super::{now, Msg, Replies, RunError};
use crate::config::{Config, Entry, Group, GroupError, GroupTable};
use crate::status::server::{self, Backend, Query};

/// Builds the executor and its core, and starts every task.
pub(super) async fn start(
    config: Config,
    config_path: Option<PathBuf>,
) -> Result<Executor, RunError> {
    let ownership = Ownership::default();
    let mut kernel = Xfrm::open(ownership)?;
    reconcile(&mut kernel).await;
    oe_policy::check_proposals(&config)?;
    let table = group_table_with_dns(&config)?;
    let identity = load_identity(&config)?;
    let esp = probe_esp(&mut kernel).await;
    if config.kernel.queue_first_packet && esp.is_ok() {
        queue_first_packets();
    }
    let sockets = Sockets::bind(config.ike.port, config.ike.nat_port).map_err(RunError::Sockets)?;
    let (tx, rx) = mpsc::channel::<Msg>(1024);
    sockets.spawn_receivers(&tx);
    spawn_kernel_events(tx.clone())?;
    super::network::spawn_events(tx.clone())?;
    let rtnl = oe_kernel::route::Rtnl::open()?;
    let own = stub_addresses(&config)?;
    let configured = trigger_configured(&config)?;
    let found = discover(&configured, &own, read_file);
    let mut vc = validator_config(&config)?;
    let validator_follows = config.dns.upstreams.is_empty() && !found.servers.is_empty();
    if validator_follows {
        vc.upstream = oe_dns::Upstream::Servers(found.servers.clone());
    }
    let validator = Validator::new(vc.clone()).map_err(|e| RunError::Dns(e.to_string()))?;
    let following = Following::new(validator, vc);
    let cache_config = CacheConfig {
        max_entries: config.dns.cache_size.max(1),
        ..CacheConfig::default()
    };
    let cache = KeyCache::new(following.clone(), cache_config);
    let (events, _) = broadcast::channel(256);
    start_status_socket(&config, &tx, &events)?;
    start_metrics_port(&config, &tx).await?;
    let setup = Setup {
        config: config.clone(),
        table: table.clone(),
        identity,
        esp: esp.clone(),
        ownership,
        trap_reqid: trap_reqid_for_this_run(&ownership),
        rng: Box::new(rand_core::OsRng),
        pid: std::process::id(),
    };
    let core = Core::new(setup, now());
    let mut exec = Executor {
        core,
        rx,
        tx,
        kernel,
        rtnl,
        sockets,
        cache,
        upstreams: Arc::new(RwLock::new(UpstreamState::default())),
        stub: None,
        view: None,
        events,
        replies: Replies::default(),
        config_path,
        config,
        stopped: false,
    };
    exec.run_commands().await;
    // A start refused from here on removes what the core installed (no trap may outlive it).
    if let Err(e) = start_trigger(&mut exec, table, esp.is_ok(), &own).await {
        exec.handle(Input::Shutdown).await;
        return Err(e);
    }
    let follow = Follow {
        control: exec.stub.as_ref().map(oe_dns::trigger::Stub::control),
        validator: validator_follows.then_some(following),
        state: exec.upstreams.clone(),
        configured,
        own,
        tx: exec.tx.clone(),
    };
    if let Err(problem) = follow.apply(&found).await {
        if let Some(stub) = exec.stub.take() {
            stub.shutdown().await;
            exec.handle(Input::Shutdown).await;
            return Err(RunError::Trigger(format!(
                "{problem}. The stub at {:?} would answer nothing. Fix: {FIX}",
                follow.own
            )));
        }
        tracing::warn!("{problem}");
    }
    let servers = exec
        .upstreams
        .read()
        .map(|s| s.clear.clone())
        .unwrap_or_default();
    exec.upstreams_changed(&servers).await;
    follow.spawn(found);
    let status = match &esp {
        Ok(()) => "encrypting opportunistically".to_owned(),
        Err(why) => format!("degraded: {why}; serving status and lookups"),
    };
    crate::service::notify::ready(&status);
    tracing::info!("oe {} started: {status}", env!("CARGO_PKG_VERSION"));
    Ok(exec)
}

/// Removes what an earlier run left, when the agent cannot start otherwise.
pub(super) async fn reconcile_only() {
    match Xfrm::open(Ownership::default()) {
        Ok(mut kernel) => reconcile(&mut kernel).await,
        Err(e) => tracing::warn!("cannot remove what an earlier run left: {e}"),
    }
}

/// A trap reqid for this run, different from the last run's.
///
/// An ACQUIRE leaves a larval state (SPI 0, the trap's reqid) that suppresses further ACQUIREs
/// for the flow for `xfrm_acq_expires` (30 s) and cannot be deleted by DELSA. If the agent dies
/// mid-negotiation and the restarted agent reused the same trap reqid, the kernel would match that
/// larval state and stay silent. With a fresh reqid the next packet raises a fresh ACQUIRE.
fn trap_reqid_for_this_run(ownership: &Ownership) -> Reqid {
    let mut seed = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let n = 1 + u32::from_le_bytes(seed) % TRAP_REQIDS;
    ownership
        .reqid(n)
        .unwrap_or_else(|| ownership.probe_reqid())
}

/// Starts the DNS trigger's stub on its loopback address, forwarding to the configured resolvers
/// (never to itself), sharing the agent's validated-DNS cache; its upstream sockets bypass IPsec.
async fn start_trigger(
    exec: &mut Executor,
    table: GroupTable,
    active: bool,
    listen: &[SocketAddr],
) -> Result<(), RunError> {
    let cfg = exec.config.trigger.clone();
    if !cfg.enabled {
        return Ok(());
    }
    let listen = listen.to_vec();
    // The upstreams are set right after the stub starts, once checked for loops.
    let upstreams = Vec::new();
    let listeners = oe_dns::trigger::Listeners::bind(&listen)
        .await
        .map_err(|e| RunError::Trigger(format!("cannot listen on {listen:?}: {e}")))?;
    let view = Arc::new(RwLock::new(View {
        table,
        active,
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
    let hook = Arc::new(AgentHook {
        view: view.clone(),
        tx: exec.tx.clone(),
    });
    let stub = oe_dns::trigger::Stub::serve(stub_config, listeners, exec.cache.clone(), hook)
        .map_err(|e| RunError::Trigger(e.to_string()))?;
    tracing::info!("DNS trigger listening on {:?}", stub.local_addrs());
    exec.stub = Some(stub);
    exec.view = Some(view);
    Ok(())
}

/// The stub's listening addresses (none when the trigger is off).
fn stub_addresses(config: &Config) -> Result<Vec<SocketAddr>, RunError> {
    if !config.trigger.enabled {
        return Ok(Vec::new());
    }
    config
        .trigger
        .listen
        .iter()
        .map(|s| oe_dns::parse_server(s, 53))
        .collect::<Result<_, _>>()
        .map_err(RunError::Trigger)
}

/// The upstreams the configuration names for the stub (`trigger.upstreams`, else
/// `dns.upstreams`); empty means "the system's", found by [`discover`].
fn trigger_configured(config: &Config) -> Result<Vec<SocketAddr>, RunError> {
    let named = if config.trigger.upstreams.is_empty() {
        &config.dns.upstreams
    } else {
        &config.trigger.upstreams
    };
    named
        .iter()
        .map(|s| oe_dns::parse_server(s, 53))
        .collect::<Result<_, _>>()
        .map_err(RunError::Trigger)
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

fn load_identity(config: &Config) -> Result<LocalIdentity, RunError> {
    let id = config.identity.id.as_str();
    let local_id = match id.strip_prefix("fqdn:") {
        Some(name) => LocalId::Fqdn(name.trim_end_matches('.').to_owned()),
        None if id == "null" => LocalId::Null,
        None => LocalId::Address,
    };
    let path = &config.identity.key;
    if local_id == LocalId::Null || !path.exists() {
        if !path.exists() && local_id != LocalId::Null {
            tracing::info!(
                "no identity key at {}: acting as an anonymous client (NULL authentication)",
                path.display()
            );
        }
        return Ok(LocalIdentity::anonymous());
    }
    let key = crate::keys::load_private_key(path).map_err(|e| RunError::Key {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let key_description = key.public_key().describe();
    Ok(LocalIdentity {
        id: local_id,
        key: Some(Arc::new(key)),
        key_description,
    })
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

/// Removes every policy and SA an earlier run of the agent left behind (crash recovery):
/// nothing stale may hold or drop traffic. Foreign state is never touched.
async fn reconcile(kernel: &mut Xfrm) {
    match kernel.flush_owned().await {
        Ok(flushed) => tracing::info!("start-up reconciliation: {flushed:?}"),
        Err(e) => tracing::warn!("start-up reconciliation failed: {e}"),
    }
    match oe_kernel::route::Rtnl::open() {
        Ok(mut rtnl) => super::assigned::flush(&mut rtnl).await,
        Err(e) => tracing::warn!("cannot remove assigned addresses an earlier run left: {e}"),
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

fn spawn_kernel_events(tx: mpsc::Sender<Msg>) -> Result<(), RunError> {
    let mut events = EventSocket::open()?;
    tokio::spawn(async move {
        loop {
            match events.next().await {
                Ok(event) => {
                    if tx.send(Msg::Input(Input::Kernel(event))).await.is_err() {
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

/// The optional metrics port (`status.metrics_listen`; the configuration checked the address).
async fn start_metrics_port(config: &Config, tx: &mpsc::Sender<Msg>) -> Result<(), RunError> {
    let Ok(Some(addr)) = config.metrics_listen() else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::MetricsPort { addr, source })?;
    tokio::spawn(super::metrics_http::serve(listener, tx.clone()));
    Ok(())
}

fn start_status_socket(
    config: &Config,
    tx: &mpsc::Sender<Msg>,
    events: &broadcast::Sender<crate::status::protocol::EventReport>,
) -> Result<(), RunError> {
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
    let limits = server::Limits {
        max_connections: config.status.max_connections,
        idle_timeout: config.status.idle_timeout,
    };
    tokio::spawn(server::serve(listener, backend, limits));
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(query) = qrx.recv().await {
            let msg = Msg::Query {
                request: query.request,
                reply: query.reply,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}
