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

    /// A peer asks for an internal address (RFC 7296 3.15). This agent assigns none: the
    /// engine makes the child for the peer's own address.
    pub(super) fn need_address(&mut self, local: IpAddr, handle: SaHandle) {
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.supply_address(now, handle, None);
        }
    }
}
