//! Scripted-input tests of the policy core (in the spirit of strongSwan's exchange tests): the
//! core under test and its peers run real IKE engines; the kernel is a model of XFRM that answers
//! the core's requests the way the kernel does (EEXIST, ENOENT, larval states), and DNS answers
//! from a script. Time is injected; every RNG is seeded.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_debug_implementations
)]

pub mod kernel;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use oe_dns::ipseckey::{Gateway, IpsecKey};
use oe_dns::{AddressVerdict, KeyVerdict, LookupTarget, Name};
use oe_ike::crypto::{PrivateKey, PublicKey};
use oe_ike::wire::Identity;
use oe_ike::{Endpoint, Event, LocalAuth, SaHandle, Transmit};
use oe_kernel::{Acquire, Flow, Ownership, PolicyInfo, Reqid};
use oe_policy::config::Config;
use oe_policy::protocol::{EventReport, Report, Request, Response};
use oe_policy::{Command, Core, Input, LocalId, LocalIdentity, Now, QueryId, Setup, WaiterId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub use kernel::Kernel;

/// The workstation (or server) running the core under test.
pub const WS: &str = "192.0.2.10";
/// A keyed server.
pub const SRV: &str = "192.0.2.20";
/// Another host.
pub const OTHER: &str = "192.0.2.30";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn key(name: &str) -> Arc<PrivateKey> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../ike/testdata/keys/{name}.p8"));
    Arc::new(PrivateKey::from_pkcs8_der(&std::fs::read(path).unwrap()).unwrap())
}

/// The IPSECKEY form of a key's public half.
pub fn ipseckey(key: &PrivateKey) -> IpsecKey {
    let PublicKey::Ed25519(k) = key.public_key() else {
        panic!("tests use Ed25519 keys")
    };
    IpsecKey {
        precedence: 10,
        gateway: Gateway::None,
        key: oe_dns::PublicKey::Ed25519(k),
    }
}

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A global address of the host, as rtnetlink reports it.
pub fn local_address(addr: &str) -> oe_kernel::route::LocalAddress {
    oe_kernel::route::LocalAddress {
        ifindex: 2,
        addr: ip(addr),
        prefix_len: 24,
        scoped: false,
        tentative: false,
        dad_failed: false,
        deprecated: false,
    }
}

/// A default route through `gateway` on link `oif`.
pub fn default_route(gateway: &str, oif: u32) -> oe_kernel::route::Route {
    oe_kernel::route::Route {
        dst: oe_kernel::Prefix::new(ip("0.0.0.0"), 0).unwrap(),
        gateway: Some(ip(gateway)),
        oif: Some(oif),
        pref_src: None,
        table: oe_kernel::route::Route::MAIN_TABLE,
        metric: 0,
    }
}

/// A start time for the tests' clocks.
pub fn start() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

/// A SECURE verdict for these keys, valid for an hour from `now`.
pub fn secure(owner: &str, keys: &[&PrivateKey], now: Now) -> KeyVerdict {
    KeyVerdict::Secure {
        owner: name(owner),
        keys: keys.iter().map(|k| ipseckey(k)).collect(),
        until: now.wall + Duration::from_secs(3600),
    }
}

/// A proven absence, valid for an hour.
pub fn absent(now: Now) -> KeyVerdict {
    KeyVerdict::Absent {
        proven: true,
        until: now.wall + Duration::from_secs(3600),
    }
}

pub fn reverse(addr: &str) -> LookupTarget {
    LookupTarget::Reverse(ip(addr))
}

/// A configuration from the built-in defaults with `toml` on top.
pub fn config(toml: &str) -> Config {
    Config::parse(toml, Path::new("test.toml")).unwrap()
}

/// The core under test with its kernel model and DNS script.
pub struct Agent {
    pub core: Core,
    pub addr: IpAddr,
    pub kernel: Kernel,
    pub dns: HashMap<LookupTarget, KeyVerdict>,
    pub addresses: HashMap<Name, AddressVerdict>,
    /// Lookups asked and not answered (DNS is slow, or the script has no answer).
    pub parked: Vec<Command>,
    /// Answer lookups only when `answer_dns` is called.
    pub slow_dns: bool,
    /// Lookups the core asked for, in order.
    pub asked: Vec<String>,
    pub outbox: Vec<Transmit>,
    pub events: Vec<EventReport>,
    pub replies: HashMap<QueryId, Response>,
    pub released: Vec<WaiterId>,
    /// Every command's kind, in order ("kernel:add-sa", "send", ...).
    pub trace: Vec<String>,
    answers: Vec<Input>,
    next_query: u64,
}

impl Agent {
    /// A core for `addr` with `config`, identity and key.
    pub fn new(
        addr: &str,
        config: Config,
        id: LocalId,
        key: Option<Arc<PrivateKey>>,
        now: Now,
    ) -> Self {
        let table = config.group_table().unwrap();
        let identity = match &key {
            Some(k) => LocalIdentity {
                id,
                key: Some(k.clone()),
                key_description: "Ed25519".into(),
            },
            None => LocalIdentity::anonymous(),
        };
        let ownership = Ownership::default();
        let setup = Setup {
            config,
            table,
            identity,
            esp: Ok(()),
            ownership,
            trap_reqid: ownership.reqid(7).unwrap(),
            rng: Box::new(ChaCha20Rng::seed_from_u64(u64::from(
                ip(addr).to_string().len() as u8,
            ))),
            pid: 1,
        };
        let mut agent = Self {
            core: Core::new(setup, now),
            addr: ip(addr),
            kernel: Kernel::default(),
            dns: HashMap::new(),
            addresses: HashMap::new(),
            parked: Vec::new(),
            slow_dns: false,
            asked: Vec::new(),
            outbox: Vec::new(),
            events: Vec::new(),
            replies: HashMap::new(),
            released: Vec::new(),
            trace: Vec::new(),
            answers: Vec::new(),
            next_query: 0,
        };
        agent.kernel.addresses.push(local_address(addr));
        agent.run(now);
        agent
    }

    /// An rtnetlink event about the host's network.
    pub fn net(&mut self, now: Now, event: oe_kernel::route::NetEvent) {
        self.input(now, Input::Net(event));
    }

    /// The host's address changes from `self.addr` to `to` (as `ip addr add` then `del`).
    pub fn move_to(&mut self, now: Now, to: &str) {
        let old = local_address(&self.addr.to_string());
        self.addr = ip(to);
        self.net(
            now,
            oe_kernel::route::NetEvent::AddressAdded(local_address(to)),
        );
        self.net(now, oe_kernel::route::NetEvent::AddressRemoved(old));
    }

    /// Feeds one input and executes the core's commands.
    pub fn input(&mut self, now: Now, input: Input) {
        self.core.handle(now, input);
        self.run(now);
    }

    /// Executes commands (answering kernel requests at once, as the executor does) and feeds
    /// scripted DNS answers, until the core is quiet.
    pub fn run(&mut self, now: Now) {
        loop {
            while let Some(command) = self.core.poll_command() {
                self.execute(now, command);
            }
            if self.answers.is_empty() {
                return;
            }
            for input in std::mem::take(&mut self.answers) {
                self.core.handle(now, input);
            }
        }
    }

    fn execute(&mut self, now: Now, command: Command) {
        match command {
            Command::Send(t) => {
                self.trace.push("send".into());
                self.outbox.push(t);
            }
            Command::Kernel { token, op } => {
                self.trace.push(format!("kernel:{}", kernel::op_name(&op)));
                let result = self.kernel.execute(&op);
                if let Some(token) = token {
                    self.core.handle(now, Input::KernelDone { token, result });
                }
            }
            c @ (Command::LookupKey { .. } | Command::LookupAddresses { .. }) => {
                let for_peer = matches!(
                    c,
                    Command::LookupKey {
                        for_peer: Some(_),
                        ..
                    } | Command::LookupAddresses {
                        for_peer: Some(_),
                        ..
                    }
                );
                self.trace
                    .push(if for_peer { "lookup:peer" } else { "lookup" }.into());
                self.asked.push(match &c {
                    Command::LookupKey { target, .. } => target.query_name().to_string(),
                    Command::LookupAddresses { name, .. } => format!("{name}/addresses"),
                    _ => unreachable!(),
                });
                if self.slow_dns {
                    self.parked.push(c);
                } else {
                    self.answer(c);
                }
            }
            Command::ReleaseTrigger(w) => self.released.push(w),
            Command::Reply { id, response } => {
                self.replies.insert(id, response);
            }
            Command::Event(e) => {
                self.trace.push(format!("event:{}", e.kind));
                self.events.push(e);
            }
            _ => {}
        }
    }

    fn answer(&mut self, c: Command) {
        match c {
            Command::LookupKey { target, .. } => match self.dns.get(&target) {
                Some(verdict) => self.answers.push(Input::KeyVerdict {
                    target,
                    verdict: verdict.clone(),
                }),
                None => self.parked.push(Command::LookupKey {
                    target,
                    for_peer: None,
                }),
            },
            Command::LookupAddresses { name, .. } => match self.addresses.get(&name) {
                Some(verdict) => self.answers.push(Input::AddressVerdict {
                    name,
                    verdict: verdict.clone(),
                }),
                None => self.parked.push(Command::LookupAddresses {
                    name,
                    for_peer: None,
                }),
            },
            _ => {}
        }
    }

    /// Answers parked lookups from the script (DNS was slow).
    pub fn answer_dns(&mut self, now: Now) {
        self.slow_dns = false;
        for c in std::mem::take(&mut self.parked) {
            self.answer(c);
        }
        self.run(now);
    }

    /// An ACQUIRE for traffic from this host to `dst` (the trap of this run caught it).
    pub fn acquire(&mut self, now: Now, dst: &str, seq: u32) {
        let src = self.addr;
        self.acquire_from(now, src, dst, seq);
    }

    /// An ACQUIRE for traffic from `src` (an address of this host) to `dst`.
    pub fn acquire_from(&mut self, now: Now, src: IpAddr, dst: &str, seq: u32) {
        let trap = self
            .kernel
            .policies
            .values()
            .find(|p| {
                p.selector.dst().contains(ip(dst))
                    && p.selector.src().contains(src)
                    && matches!(p.action, oe_kernel::PolicyAction::Protect(_))
            })
            .copied()
            .expect("a trap covers the destination");
        let reqid = match trap.action {
            oe_kernel::PolicyAction::Protect(r) => r,
            _ => Reqid(0),
        };
        self.kernel.hold(trap.key(), ip(dst));
        let acquire = Acquire {
            flow: Flow {
                src,
                dst: ip(dst),
                proto: 17,
                src_port: 40000,
                dst_port: 53,
            },
            policy: PolicyInfo {
                key: trap.key(),
                index: 1,
                priority: 0,
                block: false,
                templates: Vec::new(),
                expires: trap.expires,
                add_time: 0,
                use_time: 0,
                has_mark_or_context: false,
                main_type: true,
            },
            reqid: Some(reqid),
            seq,
        };
        self.input(now, Input::Kernel(oe_kernel::Event::Acquire(acquire)));
    }

    /// Asks the status socket a question and returns the report.
    pub fn ask(&mut self, now: Now, request: Request) -> Report {
        self.next_query += 1;
        let id = QueryId(self.next_query);
        self.input(
            now,
            Input::Query {
                id,
                request,
                trigger: None,
            },
        );
        match self.replies.remove(&id) {
            Some(Response::Ok { result, .. }) => result,
            other => panic!("no answer: {other:?}"),
        }
    }

    /// `explain ADDR`'s verdict line.
    pub fn verdict(&mut self, now: Now, addr: &str) -> String {
        match self.ask(now, Request::Explain { host: addr.into() }) {
            Report::Explain(e) => e.addresses[0].verdict.clone(),
            other => panic!("{other:?}"),
        }
    }

    pub fn events_of(&self, kind: &str) -> Vec<&EventReport> {
        self.events.iter().filter(|e| e.kind == kind).collect()
    }
}

/// A bare IKE engine as a peer (a hostile one, or a plain server), answering its own events the
/// way a simple agent would.
pub struct RawPeer {
    pub ep: Endpoint,
    pub addr: IpAddr,
    pub port: u16,
    /// Keys it supplies when asked for the other side's (None: it refuses).
    pub peer_keys: Option<Vec<PublicKey>>,
    pub events: Vec<(SaHandle, Event)>,
    /// The address it assigns a client that asks for one (RFC 7296 3.15), if any.
    pub lease: Option<IpAddr>,
    next_spi: u32,
}

impl RawPeer {
    /// A peer at `addr` presenting `id`, authenticating with `key` (NULL without one).
    pub fn new(addr: &str, id: Identity, key: Option<Arc<PrivateKey>>, seed: u64) -> Self {
        Self::with(addr, id, key, seed, |_| {})
    }

    /// Like [`Self::new`], with the engine's configuration changed by `edit`.
    pub fn with(
        addr: &str,
        id: Identity,
        key: Option<Arc<PrivateKey>>,
        seed: u64,
        edit: impl FnOnce(&mut oe_ike::Config),
    ) -> Self {
        let auth = key.map_or(LocalAuth::Null, LocalAuth::Key);
        let mut config = oe_ike::Config::new(id, auth);
        config.accept_null_peers = true;
        config.liveness_interval = None;
        edit(&mut config);
        Self {
            ep: Endpoint::new(config, Box::new(ChaCha20Rng::seed_from_u64(seed))),
            addr: ip(addr),
            port: 500,
            peer_keys: None,
            events: Vec::new(),
            lease: None,
            next_spi: 0xd000_0000 | (seed as u32 & 0xff) << 8,
        }
    }

    pub fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// The same peer sending from another port (a second host behind the same address).
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    fn poll(&mut self, now: Instant) -> Vec<Transmit> {
        let mut out = Vec::new();
        loop {
            if let Some((h, event)) = self.ep.poll_event() {
                match &event {
                    Event::NeedSpi { .. } => {
                        self.next_spi += 1;
                        self.ep.supply_spi(now, h, self.next_spi);
                    }
                    Event::NeedAddress { .. } => self.ep.supply_address(now, h, self.lease),
                    Event::NeedPeerKey { .. } => match &self.peer_keys {
                        Some(k) => self.ep.supply_peer_keys(now, h, k.clone()),
                        None => self.ep.refuse_peer_keys(now, h),
                    },
                    _ => {}
                }
                self.events.push((h, event));
                continue;
            }
            match self.ep.poll_transmit() {
                Some(t) => out.push(t),
                None => return out,
            }
        }
    }

    /// Whether it holds an installed child (ready and not deleted).
    pub fn live_children(&self) -> usize {
        let ready = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::ChildSaReady { .. }))
            .count();
        let gone = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::ChildSaDeleted { .. }))
            .count();
        ready.saturating_sub(gone)
    }
}

/// The core under test and its peers on one wire.
pub struct World {
    pub now: Now,
    pub agent: Agent,
    pub peers: Vec<RawPeer>,
    /// The outer address of a NAT in front of the agent: peers see the agent's datagrams
    /// from it (same ports), and what they send to it reaches the agent.
    pub nat: Option<IpAddr>,
}

impl World {
    pub fn new(agent: Agent, peers: Vec<RawPeer>, now: Now) -> Self {
        Self {
            now,
            agent,
            peers,
            nat: None,
        }
    }

    /// The agent's address as peers see it.
    fn outside(&self, agent: SocketAddr) -> SocketAddr {
        self.nat
            .map_or(agent, |nat| SocketAddr::new(nat, agent.port()))
    }

    /// Delivers datagrams both ways until the wire is quiet.
    pub fn settle(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            for t in std::mem::take(&mut self.agent.outbox) {
                let from = self.outside(t.local);
                // A peer's NAT-T port (RFC 3948) is its own too.
                let to_peer = |p: &RawPeer| {
                    p.socket() == t.remote
                        || (p.addr == t.remote.ip() && p.port == 500 && t.remote.port() == 4500)
                };
                if let Some(p) = self.peers.iter_mut().find(|p| to_peer(p)) {
                    p.ep.handle_datagram(self.now.mono, from, t.remote, &t.contents);
                    moved = true;
                }
            }
            for i in 0..self.peers.len() {
                let sent = self.peers[i].poll(self.now.mono);
                for t in sent {
                    moved = true;
                    let local = match self.nat {
                        Some(nat) if t.remote.ip() == nat => {
                            SocketAddr::new(self.agent.addr, t.remote.port())
                        }
                        _ => t.remote,
                    };
                    self.agent.input(
                        self.now,
                        Input::Datagram {
                            local,
                            remote: t.local,
                            bytes: t.contents,
                        },
                    );
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the wire never went quiet");
    }

    /// Moves time on by `d`, running every timer due (the core's and the peers').
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.after(d);
        loop {
            let next = [self.agent.core.poll_timeout()]
                .into_iter()
                .chain(self.peers.iter().map(|p| p.ep.poll_timeout()))
                .flatten()
                .filter(|t| *t <= end.mono)
                .min();
            let Some(at) = next else { break };
            let at = at.max(self.now.mono);
            self.now = self.now.after(at - self.now.mono);
            self.agent.core.handle_timeout(self.now);
            self.agent.run(self.now);
            for p in &mut self.peers {
                if p.ep.poll_timeout().is_some_and(|t| t <= self.now.mono) {
                    p.ep.handle_timeout(self.now.mono);
                }
            }
            self.settle();
        }
        self.now = end;
    }

    /// A peer connects to the agent.
    pub fn connect(&mut self, peer: usize) -> SaHandle {
        let local = self.peers[peer].socket();
        let remote = SocketAddr::new(self.agent.addr, 500);
        let h = self.peers[peer].ep.connect(self.now.mono, local, remote);
        self.settle();
        h
    }
}
