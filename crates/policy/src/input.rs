//! What goes into the core and what comes out of it.

use std::net::{IpAddr, SocketAddr};

use oe_dns::trigger::TriggerEvent;
use oe_dns::{AddressVerdict, KeyVerdict, LookupTarget, Name};
use oe_kernel::route::{Link, LocalAddress, Route};
use oe_kernel::{Mapping, Mode, PolicyInfo, PolicyKey, PolicySpec, Reqid, SaId, SaInfo, SaSpec};

use crate::config::{Config, GroupTable};
use crate::protocol::{EventReport, Request, Response, TriggerSummary};

/// Names a status query until its answer is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// Names a DNS answer the trigger's stub holds until IKE is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(pub u64);

/// Names a kernel command whose result the core waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// One address the DNS trigger wants encrypted, with the local address the kernel routes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerTarget {
    pub remote: IpAddr,
    pub local: IpAddr,
}

/// Inputs of the core.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// An event from the kernel's XFRM event socket (ACQUIRE, EXPIRE, POLEXPIRE, MAPPING, Lost).
    Kernel(oe_kernel::Event),
    /// A change of the host's addresses, links or routes (rtnetlink; `Lost` after an overflow).
    Net(oe_kernel::route::NetEvent),
    /// The result of a kernel command that carried a token.
    KernelDone {
        token: Token,
        result: Result<KernelReply, String>,
    },
    /// A datagram received on an IKE socket (on the NAT-T port still with its non-ESP marker).
    Datagram {
        local: SocketAddr,
        remote: SocketAddr,
        bytes: Vec<u8>,
    },
    /// The verdict of an IPSECKEY lookup the core asked for.
    KeyVerdict {
        target: LookupTarget,
        verdict: KeyVerdict,
    },
    /// The verdict of an address lookup the core asked for.
    AddressVerdict { name: Name, verdict: AddressVerdict },
    /// The DNS trigger found a SECURE key for `name`, bound to these validated addresses: start
    /// IKE to them; release `waiter` when the negotiation ends.
    Trigger {
        name: Name,
        keys: KeyVerdict,
        targets: Vec<TriggerTarget>,
        waiter: WaiterId,
    },
    /// A decision of the DNS trigger, for the event log.
    TriggerRecord(TriggerEvent),
    /// A status-socket request. `trigger` is the stub's view (its counters and recent decisions),
    /// which the executor owns.
    Query {
        id: QueryId,
        request: Request,
        trigger: Option<TriggerView>,
    },
    /// `explain NAME`: the executor resolved the name to these addresses.
    Explain {
        id: QueryId,
        host: String,
        addrs: Vec<IpAddr>,
        trigger: Option<TriggerView>,
    },
    /// A control request (`retry`, `up`, `down`) from root, for the addresses the executor
    /// resolved the host to, each with the local address the kernel routes from.
    Control {
        id: QueryId,
        request: Request,
        targets: Vec<TriggerTarget>,
    },
    /// A new configuration (SIGHUP); the table includes the DNS servers in `clear`.
    Reload {
        config: Box<Config>,
        table: GroupTable,
    },
    /// SIGTERM: delete every IKE SA (telling peers) and remove everything installed.
    Shutdown,
}

/// The DNS trigger's stub as the status socket shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerView {
    pub summary: TriggerSummary,
    /// Its latest decisions: (name, one line).
    pub recent: Vec<(String, String)>,
}

/// Commands for the executor, to be executed in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Send this datagram.
    Send(oe_ike::Transmit),
    /// Run a kernel request; with a token, answer with [`Input::KernelDone`] at once.
    Kernel { token: Option<Token>, op: KernelOp },
    /// Look up a name's or an address's IPSECKEY through the validating cache; answer with
    /// [`Input::KeyVerdict`]. `for_peer` names the remote address whose identity caused the
    /// lookup (such lookups run on the peers' share of DNS work, never the host's).
    LookupKey {
        target: LookupTarget,
        for_peer: Option<IpAddr>,
    },
    /// Look up a name's validated addresses; answer with [`Input::AddressVerdict`].
    LookupAddresses {
        name: Name,
        for_peer: Option<IpAddr>,
    },
    /// The stub may release this held DNS answer.
    ReleaseTrigger(WaiterId),
    /// The answer to a status query.
    Reply { id: QueryId, response: Response },
    /// Something happened (for the log and `oe events --follow`).
    Event(EventReport),
    /// Shutdown is complete: nothing more will be sent.
    Stopped,
}

/// Kernel requests (oe-kernel's typed requests).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KernelOp {
    AddPolicy(PolicySpec),
    /// Replaces a policy the agent installed itself (same selector and direction).
    UpdatePolicy(PolicySpec),
    DeletePolicy(PolicyKey),
    AddSa(SaSpec),
    /// Fills in a state the agent reserved with ALLOCSPI.
    UpdateSa(SaSpec),
    DeleteSa(SaId),
    /// [`KernelOp::AddSa`] in a given mode (tunnel-mode children, RFC 4301 4.1).
    AddSaIn(Mode, SaSpec),
    /// [`KernelOp::UpdateSa`] in a given mode.
    UpdateSaIn(Mode, SaSpec),
    /// Makes an SA pair of ours follow the peer to `mapping.new` (its NAT rebound, RFC 7296
    /// 2.23): `mapping.sa` is the inbound SA, `outbound` the one towards the peer.
    FollowMapping {
        mapping: Mapping,
        outbound: SaId,
    },
    /// Reserves an SPI for the inbound SA from `remote` to `local`.
    AllocSpi {
        local: IpAddr,
        remote: IpAddr,
        reqid: Reqid,
    },
    /// Renews the kernel lifetimes of these policies of ours in one batch (re-adding any that
    /// vanished; a foreign policy holding one's selector is left alone and reported).
    RefreshPolicies(Vec<PolicySpec>),
    /// Every SA with its counters (one dump serves the idle check and the status reports).
    DumpSas,
    /// Everything the agent owns (resync after lost events).
    ListOwned,
    /// Remove everything the agent owns.
    FlushOwned,
    /// The host's addresses, links and routes (rtnetlink dumps).
    ReadNetwork,
    /// An address a peer assigned us (RFC 7296 3.15) on the loopback link, valid for
    /// `valid_secs`, and a host route to `peer` preferring it as source, so traffic to the peer
    /// carries it inside the tunnel. Repeating it renews both; after a crash they lapse.
    AddAssigned {
        addr: IpAddr,
        peer: IpAddr,
        valid_secs: u32,
    },
    /// Removes what [`KernelOp::AddAssigned`] installed (oe's own entries only).
    RemoveAssigned {
        addr: IpAddr,
        peer: IpAddr,
    },
    /// On a server: a host route to the address `client` we assigned a peer, the same way as
    /// the route to its outer address `via` (an IPv6 route expires after `valid_secs`).
    AddClientRoute {
        client: IpAddr,
        via: IpAddr,
        valid_secs: u32,
    },
    /// Removes the route [`KernelOp::AddClientRoute`] installed.
    RemoveClientRoute {
        client: IpAddr,
    },
}

/// What a kernel request returned.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KernelReply {
    Done,
    /// What a refresh could not renew: policies a foreign one displaced, and refusals.
    Refreshed {
        foreign: Vec<PolicyKey>,
        failed: Vec<(PolicyKey, String)>,
    },
    Spi(u32),
    Sas(Vec<SaInfo>),
    Owned {
        policies: Vec<PolicyInfo>,
        sas: Vec<SaInfo>,
    },
    Network {
        addresses: Vec<LocalAddress>,
        links: Vec<Link>,
        routes: Vec<Route>,
    },
}
