//! The core: one owner of every piece of policy state, reacting to one input at a time. Handlers
//! for each concern live in sibling modules; every one of them only changes state and queues
//! commands.

mod assigned;
mod clock;
mod control;
mod engine;
mod initiator;
mod install;
mod kernel_events;
mod keys;
mod lifecycle;
mod limits;
mod nat;
mod network;
mod report;
mod trigger;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use oe_ike::crypto::CryptoRng;
use oe_ike::{Endpoint, SaHandle};
use oe_kernel::{Ownership, PolicyKey, Reqid};
use rand_core::SeedableRng;

use crate::config::{Config, Group, GroupTable};
use crate::dnsq::Dns;
use crate::identity::LocalIdentity;
use crate::ike_bounds::Held;
use crate::input::{Command, Input, KernelOp, KernelReply, Token};
use crate::network::NetView;
use crate::now::Now;
use crate::peer::PeerId;
use crate::protocol::{Counters, EventReport};
use crate::registry::Registry;
use crate::timers::{Timer, Timers};
use crate::traps::Traps;

pub(crate) use trigger::BoundKeys;

/// How many events `oe events` shows from history.
const EVENT_HISTORY: usize = 200;

/// What the core is built from (the executor loads and probes these).
pub struct Setup {
    pub config: Config,
    /// The group table, with the DNS servers added in `clear`.
    pub table: GroupTable,
    pub identity: LocalIdentity,
    /// `Err(why)` when the kernel cannot install ESP SAs: no trap is installed then.
    pub esp: Result<(), String>,
    pub ownership: Ownership,
    /// This run's trap reqid (fresh per start).
    pub trap_reqid: Reqid,
    /// Seeds the engines' randomness.
    pub rng: Box<dyn CryptoRng + Send>,
    /// The agent's process id, for `status`.
    pub pid: u32,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").finish_non_exhaustive()
    }
}

/// A kernel command whose result the core waits for.
#[derive(Debug)]
enum Pending {
    Spi {
        peer: PeerId,
        local: IpAddr,
        handle: SaHandle,
    },
    Install {
        peer: PeerId,
        handle: SaHandle,
    },
    Trap(PolicyKey),
    Shunt(PeerId),
    Counters,
    Refresh,
    Resync,
    Network,
}

/// The agent's policy core. See the crate docs for the contract.
pub struct Core {
    config: Config,
    table: GroupTable,
    anonymous: Vec<Group>,
    /// Groups in which an IKE SA without a post-quantum key exchange is refused.
    pq_required: Vec<Group>,
    identity: LocalIdentity,
    esp: Result<(), String>,
    engines: HashMap<IpAddr, Endpoint>,
    seed: rand_chacha::ChaCha20Rng,
    peers: Registry,
    /// Responder IKE SAs past IKE_AUTH, bounded per source and in total.
    held: Held,
    /// Addresses assigned to clients (RFC 7296 3.15), held by their IKE SAs.
    pool: crate::pool::Pool,
    traps: Traps,
    net: NetView,
    dns: Dns,
    timers: Timers,
    bound: BoundKeys,
    pending: HashMap<Token, Pending>,
    next_token: u64,
    commands: VecDeque<Command>,
    history: VecDeque<EventReport>,
    counters: Counters,
    latency: crate::protocol::Latencies,
    started: Instant,
    now: Now,
    stopping: bool,
    /// Status queries waiting for fresh counters.
    queries: Vec<report::Waiting>,
    pid: u32,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core that installs its group policies first thing (see [`Self::poll_command`]).
    pub fn new(setup: Setup, now: Now) -> Self {
        let Setup {
            config,
            table,
            identity,
            esp,
            ownership,
            trap_reqid,
            mut rng,
            pid,
        } = setup;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let anonymous = config.anonymous_groups().unwrap_or_default();
        let pq_required = config.post_quantum_groups().unwrap_or_default();
        let traps = Traps::new(trap_reqid, config.kernel.policy_lifetime);
        let mut dns = Dns::default();
        dns.set_limits(crate::dnsq::PeerLookupLimits::of(&config.limits));
        let mut core = Self {
            anonymous,
            pq_required,
            identity,
            esp,
            engines: HashMap::new(),
            seed: rand_chacha::ChaCha20Rng::from_seed(seed),
            peers: Registry::new(ownership),
            held: Held::new(Self::ike_bounds(&config)),
            pool: crate::pool::Pool::from_config(&config.ike.address_pool).unwrap_or_default(),
            traps,
            net: NetView::default(),
            dns,
            timers: Timers::default(),
            bound: BoundKeys::default(),
            pending: HashMap::new(),
            next_token: 1,
            commands: VecDeque::new(),
            history: VecDeque::new(),
            counters: Counters::default(),
            latency: crate::protocol::Latencies::default(),
            started: now.mono,
            now,
            stopping: false,
            queries: Vec::new(),
            pid,
            config,
            table,
        };
        core.install_group_policies();
        core.read_network();
        core.timers
            .set(Timer::Refresh, now.mono + core.refresh_interval());
        core.timers
            .set(Timer::IdleCheck, now.mono + core.idle_check_interval());
        core.heartbeat();
        core
    }

    /// Handles one input at `now`.
    pub fn handle(&mut self, now: Now, input: Input) {
        self.tick(now);
        match input {
            Input::Kernel(event) => self.on_kernel_event(event),
            Input::Net(event) => self.on_net_event(event),
            Input::KernelDone { token, result } => self.on_kernel_done(token, result),
            Input::Datagram {
                local,
                remote,
                bytes,
            } => self.on_datagram(local, remote, &bytes),
            Input::KeyVerdict { target, verdict } => self.on_key_verdict(target, verdict),
            Input::AddressVerdict { name, verdict } => self.on_address_verdict(name, verdict),
            Input::Trigger {
                name,
                keys,
                targets,
                waiter,
            } => self.on_trigger(name, keys, targets, waiter),
            Input::TriggerRecord(event) => self.on_trigger_record(event),
            Input::Query {
                id,
                request,
                trigger,
            } => self.on_query(id, request, trigger),
            Input::Explain {
                id,
                host,
                addrs,
                trigger,
            } => self.on_explain(id, host, addrs, trigger),
            Input::Control {
                id,
                request,
                targets,
            } => self.on_control(id, &request, targets),
            Input::Reload { config, table } => self.reload(*config, table),
            Input::Shutdown => self.shutdown(),
        }
    }

    /// Runs the core's timers and the engines' that are due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        self.tick(now);
        while let Some(timer) = self.timers.pop_due(now.mono) {
            self.on_timer(timer);
        }
        let due: Vec<IpAddr> = self
            .engines
            .iter()
            .filter(|(_, e)| e.poll_timeout().is_some_and(|t| t <= now.mono))
            .map(|(l, _)| *l)
            .collect();
        for local in due {
            if let Some(engine) = self.engines.get_mut(&local) {
                engine.handle_timeout(now.mono);
            }
            self.drain(local);
        }
    }

    /// The next command to execute, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When [`Self::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let engines = self.engines.values().filter_map(Endpoint::poll_timeout);
        engines.chain(self.timers.next()).min()
    }

    /// Whether the core has finished shutting down.
    pub fn is_stopped(&self) -> bool {
        self.stopping && self.commands.is_empty()
    }

    fn tick(&mut self, now: Now) {
        // Time only moves forward.
        if now.mono >= self.now.mono {
            self.check_clocks(now);
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Negotiation(id) => self.negotiation_timed_out(id),
            Timer::FailureEnds(id) => self.failure_ended(id),
            Timer::Reauth(id) => self.reauthenticate(id),
            Timer::Refresh => self.refresh(),
            Timer::IdleCheck => self.idle_check(),
            Timer::Heartbeat => self.heartbeat(),
        }
    }

    /// Queues a kernel request; with `pending`, its result comes back as `KernelDone`.
    fn kernel(&mut self, op: KernelOp, pending: Option<Pending>) {
        let token = pending.map(|p| {
            let token = Token(self.next_token);
            self.next_token += 1;
            self.pending.insert(token, p);
            token
        });
        self.commands.push_back(Command::Kernel { token, op });
    }

    fn on_kernel_done(&mut self, token: Token, result: Result<KernelReply, String>) {
        let Some(pending) = self.pending.remove(&token) else {
            return;
        };
        match pending {
            Pending::Spi {
                peer,
                local,
                handle,
            } => self.spi_allocated(peer, local, handle, result),
            Pending::Install { peer, handle } => {
                if let Err(why) = result {
                    self.install_failed(peer, handle, why);
                }
            }
            Pending::Trap(key) => {
                if let Err(why) = result {
                    self.traps.refused(&key);
                    self.event(
                        "trap-failed",
                        None,
                        format!("the kernel refused a group policy: {why}"),
                    );
                }
            }
            Pending::Shunt(peer) => {
                if let Err(why) = result {
                    self.shunt_refused(peer, why);
                }
            }
            Pending::Counters => self.counters_read(result),
            Pending::Refresh => self.refreshed(result),
            Pending::Resync => self.resync_with(result),
            Pending::Network => self.network_read(result),
        }
    }

    /// A datagram for the engine of its local address.
    fn on_datagram(
        &mut self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
        bytes: &[u8],
    ) {
        if self.stopping && !self.engines.contains_key(&local.ip()) {
            return;
        }
        let now = self.now.mono;
        self.engine(local.ip())
            .handle_datagram(now, remote, local, bytes);
        self.drain(local.ip());
    }

    /// The IKE engine for `local`, created on first use.
    fn engine(&mut self, local: IpAddr) -> &mut Endpoint {
        let (config, identity, seed) = (&self.config, &self.identity, &mut self.seed);
        self.engines.entry(local).or_insert_with(|| {
            let engine_config = crate::engine_config::build(config, identity, local);
            let mut bytes = [0u8; 32];
            rand_core::RngCore::fill_bytes(seed, &mut bytes);
            let rng = rand_chacha::ChaCha20Rng::from_seed(bytes);
            Endpoint::new(engine_config, Box::new(rng))
        })
    }

    /// Handles the events of the engine of `local`, and queues what it sends, until both are
    /// empty. Each event is acted on (its kernel commands queued) before any datagram queued
    /// after it, so a responder's child SA is in the kernel before the response that lets the
    /// initiator use it.
    fn drain(&mut self, local: IpAddr) {
        loop {
            let Some(engine) = self.engines.get_mut(&local) else {
                return;
            };
            if let Some((handle, event)) = engine.poll_event() {
                self.on_engine_event(local, handle, event);
                continue;
            }
            match engine.poll_transmit() {
                Some(t) => self.commands.push_back(Command::Send(t)),
                None => return,
            }
        }
    }

    /// Records an event for `oe events` and followers.
    fn event(&mut self, kind: &str, peer: Option<IpAddr>, detail: String) {
        let report = EventReport {
            time: self.now.unix_secs(),
            kind: kind.to_owned(),
            peer,
            detail,
        };
        if self.history.len() >= EVENT_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(report.clone());
        self.commands.push_back(Command::Event(report));
    }

    /// How often policies with a kernel lifetime are re-put: three times per lifetime.
    fn refresh_interval(&self) -> Duration {
        (self.config.kernel.policy_lifetime / 3).max(Duration::from_secs(1))
    }

    /// How long the idle check waits between looks at the kernel's counters.
    fn idle_check_interval(&self) -> Duration {
        (self.config.ike.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// The kernel lifetime for host policies (shunts, SA policies) outside `private`.
    fn host_policy_lifetime(&self, group: Group) -> Option<u64> {
        (group != Group::Private).then(|| self.config.kernel.policy_lifetime.as_secs().max(1))
    }
}
