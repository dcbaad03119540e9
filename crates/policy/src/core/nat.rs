//! Behind a NAT (RFC 7296 2.23, RFC 3948): when the NAT in front of a peer rebinds to a new
//! port, IKE and every UDP-encapsulated child SA of that IKE SA follow it. The engine reports
//! a move it saw in an authenticated IKE message ([`oe_ike::Event::PeerMoved`]); the kernel
//! reports authenticated ESP from a new port (XFRM MAPPING), which the engine is told of too.
//! Addresses a peer asks for (RFC 7296 3.15) are answered here as well.

use std::net::{IpAddr, SocketAddr};

use oe_ike::SaHandle;
use oe_kernel::{Mapping, SaId, Spi};

use super::Core;
use crate::input::KernelOp;
use crate::peer::{PeerId, PeerState};

impl Core {
    /// The engine followed the peer of an IKE SA to a new port: so do its children's SAs.
    pub(super) fn peer_moved(&mut self, local: IpAddr, handle: SaHandle, remote: SocketAddr) {
        let Some(id) = self.peers.by_ike(local, handle) else {
            return;
        };
        let moved = self.follow_children(id, |c| c.ike == handle, remote);
        if moved > 0 {
            self.event(
                "nat-rebound",
                Some(remote.ip()),
                format!("the peer's NAT moved it to {remote}: {moved} child SA(s) follow"),
            );
        }
    }

    /// XFRM MAPPING: ESP of one of our children arrived from a new port. The IKE SA is moved
    /// (which moves every child of it); the child itself is moved in any case.
    pub(super) fn on_mapping(&mut self, mapping: &Mapping) {
        let spi = mapping.sa.spi.0;
        let found = self.peers.iter().find_map(|p| match &p.state {
            PeerState::Established(e) => e
                .children
                .iter()
                .find(|c| c.inbound_spi == spi && p.local == mapping.sa.dst)
                .map(|c| (p.id, p.local, c.ike)),
            _ => None,
        });
        let Some((id, local, handle)) = found else {
            return;
        };
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.follow_peer(now, handle, mapping.new);
        }
        self.drain(local);
        self.follow_children(id, |c| c.inbound_spi == spi, mapping.new);
    }

    /// Moves the UDP encapsulation of the peer's children that `which` picks to `remote`;
    /// returns how many moved (children already there, or not encapsulated, are left alone).
    fn follow_children(
        &mut self,
        id: PeerId,
        which: impl Fn(&crate::peer::Child) -> bool,
        remote: SocketAddr,
    ) -> usize {
        let Some(peer) = self.peers.get_mut(id) else {
            return 0;
        };
        let (local, outer, reqid) = (peer.local, peer.remote, peer.reqid);
        if remote.ip() != outer {
            return 0;
        }
        let PeerState::Established(e) = &mut peer.state else {
            return 0;
        };
        let mut ops = Vec::new();
        for c in e.children.iter_mut().filter(|c| which(c)) {
            let Some((ours, theirs)) = c.encap else {
                continue;
            };
            if theirs == remote.port() {
                continue;
            }
            c.encap = Some((ours, remote.port()));
            let mapping = Mapping {
                sa: SaId::esp(local, Spi(c.inbound_spi)),
                reqid,
                old: SocketAddr::new(outer, theirs),
                new: remote,
            };
            let outbound = SaId::esp(outer, Spi(c.outbound_spi));
            ops.push(KernelOp::FollowMapping { mapping, outbound });
        }
        let moved = ops.len();
        for op in ops {
            self.kernel(op, None);
        }
        moved
    }

    /// Notes, for `explain`, that a NAT translates our address and which identity we presented
    /// because of it.
    pub(super) fn note_presented(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        nat_local: bool,
        presented: &oe_ike::wire::Identity,
    ) {
        let Some(id) = self.peers.by_ike(local, handle) else {
            return;
        };
        let configured = self.identity.id.clone();
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.behind_nat = nat_local.then(|| {
            let shown = crate::identity::identity_text(presented);
            let why = match configured {
                crate::identity::LocalId::Address if self.identity.key.is_some() => format!(
                    "; our address identity ({local}) is not what the peer sees, so we presented {shown} instead"
                ),
                _ => format!("; we presented {shown}"),
            };
            format!("a NAT translates our address {local}{why}")
        });
    }

    /// A client asks for an internal address (RFC 7296 3.15): one from the pool, or none when
    /// the pool has none of that family free (the engine then makes the child for the client's
    /// own address, in transport mode if it proposed it).
    pub(super) fn need_address(&mut self, local: IpAddr, handle: SaHandle, v6: bool) {
        let lease = self.assign_address(local, handle, v6);
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.supply_address(now, handle, lease);
        }
    }

    /// Leases an address to the client of an IKE SA and makes the peer that owns its kernel
    /// state one keyed on that address, so each client behind one NAT has its own.
    fn assign_address(&mut self, local: IpAddr, handle: SaHandle, v6: bool) -> Option<IpAddr> {
        let id = self.peers.by_ike(local, handle)?;
        let peer = self.peers.get(id)?;
        let alone = peer.ikes.len() == 1
            && peer.lease.is_none()
            && matches!(peer.state, PeerState::Negotiating(_));
        let remote = peer.remote;
        let addr = self.pool.lease(v6, (local, handle))?;
        if alone {
            self.peers.assign(id, addr);
        } else if self.split_peer(id, local, handle, addr).is_none() {
            self.pool.release((local, handle));
            return None;
        }
        self.event(
            "address-assigned",
            Some(remote),
            format!("assigned {addr} to a client at {remote} (RFC 7296 3.15)"),
        );
        Some(addr)
    }

    /// Moves an IKE SA out of a peer it shares (with other clients behind the same NAT) into a
    /// new peer keyed on the address assigned to its client, with its own reqid.
    fn split_peer(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        addr: IpAddr,
    ) -> Option<PeerId> {
        let reqid = self.peers.alloc_reqid()?;
        let now = self.now.mono;
        let deadline = now + self.config.shunts.negotiation_timeout;
        let Some(old) = self.peers.get_mut(id) else {
            self.peers.free_reqid(reqid);
            return None;
        };
        let Some(ike) = old.ikes.remove(&handle) else {
            self.peers.free_reqid(reqid);
            return None;
        };
        let (remote, group) = (old.remote, old.group);
        let new = self.peers.next_id();
        self.peers.insert(crate::peer::Peer {
            id: new,
            remote,
            local,
            group,
            reqid,
            state: PeerState::Negotiating(crate::peer::Negotiating {
                since: now,
                deadline,
                shunt: crate::peer::NegotiationShunt::None,
                acquired: None,
                waiters: Vec::new(),
            }),
            ikes: std::collections::BTreeMap::from([(handle, ike)]),
            reverse: crate::peer::Lookup::NotAsked,
            notes: Vec::new(),
            last_ike: None,
            refusal: None,
            behind_nat: None,
            lease: Some(addr),
        });
        self.peers.bind_ike(local, handle, new);
        self.timers
            .set(crate::timers::Timer::Negotiation(new), deadline);
        Some(new)
    }
}
