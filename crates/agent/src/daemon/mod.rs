//! `oe run`: the executor around the policy core (oe-policy). It owns every socket, task and clock
//! and moves bytes between them and the core; every decision is the core's.
//!
//! Start-up order: remove state a previous run left (before anything that can fail: a crash, or a
//! configuration that no longer loads, must not leave shunts or holds that blackhole traffic);
//! probe the kernel for ESP; load the identity; bind the IKE sockets (bypassing IPsec); build the
//! core (which installs the group policies); open the status socket; start the DNS trigger; tell
//! systemd we are ready. Then one loop feeds the core one input at a time and executes its
//! commands in order ([`exec`]).

mod assigned;
mod clock;
mod exec;
mod follow;
mod metrics_http;
mod network;
mod resolver;
mod sockets;
mod startup;
mod trigger;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use oe_dns::{KeyVerdict, Name};
use oe_policy::{Input, Now, QueryId, WaiterId};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::status::protocol::{Request, Response};

pub use oe_policy::ProposalError;

/// What the executor's tasks send to its loop.
#[derive(Debug)]
pub(crate) enum Msg {
    /// An input for the core as it is.
    Input(Input),
    /// A status-socket request and where its answer goes.
    Query {
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    /// A request naming a host (`explain`, `retry`, `up`, `down`), the host resolved.
    Resolved {
        request: Request,
        addrs: Vec<IpAddr>,
        reply: oneshot::Sender<Response>,
    },
    /// The system's resolvers changed to these: queries to them must never wait for IKE.
    Upstreams(Vec<std::net::SocketAddr>),
    /// The DNS trigger's stub found a SECURE key; `done` releases its held answer.
    Trigger {
        name: Name,
        keys: KeyVerdict,
        addrs: Vec<IpAddr>,
        done: oneshot::Sender<()>,
    },
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    #[error("{0}")]
    Groups(#[from] crate::config::GroupError),
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
    #[error("metrics port {addr}: {source}")]
    MetricsPort {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("DNS: {0}")]
    Dns(String),
    #[error("DNS trigger: {0}")]
    Trigger(String),
}

/// The current time, as the core takes it (boot time: see [`clock`]).
pub(crate) fn now() -> Now {
    clock::now()
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), RunError> {
    let mut exec = startup::start(config, config_path).await?;
    main_loop(&mut exec).await;
    crate::service::notify::stopping();
    if let Some(stub) = exec.stub.take() {
        stub.shutdown().await;
    }
    exec.handle(Input::Shutdown).await;
    Ok(())
}

/// Removes what an earlier run of the agent left in the kernel, for a start that fails before
/// the agent runs (a configuration or key that no longer loads): nothing of ours may keep
/// holding or dropping traffic because of that.
pub async fn remove_leftovers() {
    startup::reconcile_only().await;
}

async fn main_loop(exec: &mut exec::Executor) {
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
    let timer = match clock::BootTimer::new() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("cannot create the boot-time timer: {e}");
            return;
        }
    };
    loop {
        let deadline = exec
            .core
            .poll_timeout()
            .unwrap_or_else(|| now().mono + Duration::from_secs(3600));
        tokio::select! {
            msg = exec.rx.recv() => match msg {
                Some(msg) => exec.on_msg(msg).await,
                None => return,
            },
            () = timer.sleep_until(deadline) => {
                exec.core.handle_timeout(now());
                exec.run_commands().await;
            }
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                crate::service::notify::reloading();
                exec.reload().await;
                crate::service::notify::ready("reloaded");
            }
        }
    }
}

/// Status queries and trigger answers waiting for the core.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    next: u64,
    queries: HashMap<QueryId, oneshot::Sender<Response>>,
    waiters: HashMap<WaiterId, oneshot::Sender<()>>,
}

impl Replies {
    fn query(&mut self, reply: oneshot::Sender<Response>) -> QueryId {
        self.next += 1;
        let id = QueryId(self.next);
        self.queries.insert(id, reply);
        id
    }

    fn waiter(&mut self, done: oneshot::Sender<()>) -> WaiterId {
        self.next += 1;
        let id = WaiterId(self.next);
        self.waiters.insert(id, done);
        id
    }
}
