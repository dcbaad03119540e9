//! Addresses assigned inside tunnels (RFC 7296 3.15), in the kernel. On a client, the address
//! the server assigned us goes on the loopback link with a host route to the server preferring
//! it as source, so new flows to the server carry it and match the tunnel's selectors (as
//! strongSwan installs virtual IPs; no SNAT rule, which would need netfilter). On a server, a
//! host route to the address it assigned a client, the same way as to the client's NAT. Both
//! carry the kernel policy lifetime and are renewed with the policies, so after a crash they
//! lapse; they leave with the last child that needs them.

use std::net::IpAddr;

use oe_ike::ChildSa;
use oe_kernel::{Direction, PolicySpec, Shunt};

use super::Core;
use crate::config::Group;
use crate::input::KernelOp;
use crate::kernel_specs::shunt_selector;
use crate::peer::{PeerId, PeerState};

impl Core {
    /// A tunnel carrying an address assigned to us covers only flows from that address. Flows
    /// from our own address to the peer (sockets bound to it, the connection whose first packet
    /// started the negotiation) would stay held by the trap for good: outside `private` they
    /// pass in clear, as after a failed negotiation, instead of being blackholed.
    pub(super) fn own_address_pass(&self, id: PeerId, child: &ChildSa) -> Option<PolicySpec> {
        child.virtual_ip?;
        let peer = self.peers.get(id)?;
        let lifetime = self.host_policy_lifetime(peer.group.group);
        if peer.group.group == Group::Private {
            return None;
        }
        let selector = shunt_selector(peer.local, child.remote, &peer.group)?;
        Some(PolicySpec::host_shunt(
            selector,
            Direction::Out,
            Shunt::Pass,
            lifetime,
        ))
    }

    /// Whether a peer assigned us `addr` (a child of ours carries it).
    pub(super) fn assigned_to_us(&self, addr: IpAddr) -> bool {
        self.peers.iter().any(|p| match &p.state {
            PeerState::Established(e) => e.children.iter().any(|c| c.virtual_ip == Some(addr)),
            _ => false,
        })
    }

    /// How long the kernel keeps an address or route of ours unless it is renewed.
    fn assigned_secs(&self) -> u32 {
        let secs = self.config.kernel.policy_lifetime.as_secs().max(1);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// What the peer's children need in the kernel besides SAs and policies (added, or renewed:
    /// an IPv4 route has no lifetime to renew, so a server's route to a client is put once).
    fn assigned_ops(&self, id: PeerId, renew: bool) -> Vec<KernelOp> {
        let Some(peer) = self.peers.get(id) else {
            return Vec::new();
        };
        let PeerState::Established(e) = &peer.state else {
            return Vec::new();
        };
        let valid_secs = self.assigned_secs();
        let mut ops = Vec::new();
        let mut seen: Vec<IpAddr> = Vec::new();
        for addr in e.children.iter().filter_map(|c| c.virtual_ip) {
            if !seen.contains(&addr) {
                seen.push(addr);
                ops.push(KernelOp::AddAssigned {
                    addr,
                    peer: peer.remote,
                    valid_secs,
                });
            }
        }
        let client = peer.lease.filter(|a| !(renew && a.is_ipv4()));
        if let (Some(client), false) = (client, e.children.is_empty()) {
            ops.push(KernelOp::AddClientRoute {
                client,
                via: peer.remote,
                valid_secs,
            });
        }
        ops
    }

    /// After a child went in: the peer's assigned addresses and routes.
    pub(super) fn put_assigned(&mut self, id: PeerId) {
        for op in self.assigned_ops(id, false) {
            self.kernel(op, None);
        }
    }

    /// Renews every assigned address and route that can lapse, with the policies' refresh.
    pub(super) fn refresh_assigned(&mut self) {
        for id in self.peers.ids() {
            for op in self.assigned_ops(id, true) {
                self.kernel(op, None);
            }
        }
    }

    /// A child that carried `gone` (an address assigned to us) left: the address and its route
    /// go unless another child of the peer still carries it.
    pub(super) fn child_left_assigned(&mut self, id: PeerId, gone: Option<IpAddr>) {
        let Some(addr) = gone else {
            return;
        };
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let still = match &peer.state {
            PeerState::Established(e) => e.children.iter().any(|c| c.virtual_ip == Some(addr)),
            _ => false,
        };
        if !still {
            let peer = peer.remote;
            self.kernel(KernelOp::RemoveAssigned { addr, peer }, None);
        }
    }

    /// The peer's kernel state goes: so do its assigned addresses and routes.
    pub(super) fn remove_assigned(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let PeerState::Established(e) = &peer.state else {
            return;
        };
        let remote = peer.remote;
        let mut addrs: Vec<IpAddr> = e.children.iter().filter_map(|c| c.virtual_ip).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut ops: Vec<KernelOp> = addrs
            .into_iter()
            .map(|addr| KernelOp::RemoveAssigned { addr, peer: remote })
            .collect();
        if let Some(client) = peer.lease {
            ops.push(KernelOp::RemoveClientRoute { client });
        }
        for op in ops {
            self.kernel(op, None);
        }
    }
}
