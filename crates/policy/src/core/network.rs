//! Following the network (rtnetlink): when a local address goes, everything negotiated from it
//! goes too (SAs, host policies, shunts; the IKE SAs are deleted, which tells the peer where it
//! is still reachable), so the next packet raises an ACQUIRE from the address the host uses now.
//! New connectivity (an address, a default route, a link back up) clears the failure shunts
//! learned before it: a host that failed there is tried again at once.
//!
//! MOBIKE (RFC 4555) is not used: it moves an IKE SA and its children to new addresses without
//! touching their traffic selectors, which RFC 4555 defines for tunnel-mode SAs only (the
//! expired draft-mglt-ipsecme-mobikev2 tried to extend it to transport mode). An oe child SA is
//! a transport-mode SA whose traffic selectors are the two host addresses themselves, so a new
//! local address needs new child SAs and host policies whatever IKE does; a fresh IKE SA costs
//! one more round trip than a MOBIKE update, and it re-checks the peer's key in DNS.

use std::net::IpAddr;

use super::{Core, Pending};
use crate::input::{KernelOp, KernelReply};
use crate::network::Change;
use crate::peer::{PeerId, PeerState};

impl Core {
    /// One rtnetlink event.
    pub(super) fn on_net_event(&mut self, event: oe_kernel::route::NetEvent) {
        if matches!(event, oe_kernel::route::NetEvent::Lost) {
            return self.read_network();
        }
        let changes = self.net.apply(&event);
        self.on_net_changes(changes);
    }

    /// Asks for the host's addresses, links and routes (at start, and after lost events).
    pub(super) fn read_network(&mut self) {
        self.kernel(KernelOp::ReadNetwork, Some(Pending::Network));
    }

    /// The dumps arrived: the view is replaced; what changed since the last one is acted on.
    pub(super) fn network_read(&mut self, result: Result<KernelReply, String>) {
        match result {
            Ok(KernelReply::Network {
                addresses,
                links,
                routes,
            }) => {
                let changes = self.net.replace(&addresses, &links, &routes);
                self.on_net_changes(changes);
            }
            Ok(_) => {}
            Err(why) => self.event(
                "network",
                None,
                format!("the host's addresses and routes could not be read: {why}"),
            ),
        }
    }

    fn on_net_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::AddressGone(addr) => self.address_gone(addr),
                Change::NewNetwork(why) => self.new_network(&why),
            }
        }
        self.prune_engines();
    }

    /// A local address is gone: every peer negotiated from it is torn down.
    fn address_gone(&mut self, addr: IpAddr) {
        let ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| p.local == addr)
            .map(|p| p.id)
            .collect();
        if ids.is_empty() {
            return;
        }
        self.event(
            "address-gone",
            None,
            format!(
                "local address {addr} removed: {} peer(s) negotiated from it are torn down; new flows negotiate from the host's current address",
                ids.len()
            ),
        );
        for id in ids {
            self.tear_down(id, &format!("its local address {addr} was removed"));
        }
    }

    /// New connectivity: failure shunts learned before it no longer say anything. Each such host
    /// is negotiated with again at once, from the same address if the host still has it: its
    /// flow cannot raise a new ACQUIRE yet (the kernel keeps the first ACQUIRE's larval state
    /// for `xfrm_acq_expires`, 30 s, and meanwhile holds the flow on it).
    pub(super) fn new_network(&mut self, why: &str) {
        let failed: Vec<(PeerId, IpAddr, IpAddr, crate::config::Match)> = self
            .peers
            .iter()
            .filter(|p| matches!(p.state, PeerState::Failed(_)))
            .map(|p| (p.id, p.local, p.remote, p.group))
            .collect();
        if failed.is_empty() {
            return;
        }
        self.event(
            "network",
            None,
            format!(
                "the network changed ({why}): {} failure shunt(s) cleared; those hosts are tried again",
                failed.len()
            ),
        );
        for (id, local, remote, group) in failed {
            self.forget_peer(id, "the network changed");
            if self.net.has(local) && group.group.initiates() && !self.stopping {
                let cause = format!("the network changed ({why}); it failed before");
                self.start_initiator(local, remote, group, None, cause);
            }
        }
    }

    /// The host reaches a known peer from another address now (a default route moved to
    /// another uplink): the peer's state belongs to the old path and goes; the caller starts
    /// negotiating from the new address.
    pub(super) fn moved(&mut self, id: PeerId, from: IpAddr) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let (remote, old) = (peer.remote, peer.local);
        self.event(
            "moved",
            Some(remote),
            format!("the host now reaches {remote} from {from}, not {old}: negotiating anew"),
        );
        self.tear_down(id, &format!("the host reaches it from {from} now"));
    }

    /// Drops the engines of addresses the host no longer has, once they hold no IKE SA.
    fn prune_engines(&mut self) {
        let net = &self.net;
        self.engines
            .retain(|local, engine| net.has(*local) || engine.sa_count() > 0);
    }
}
