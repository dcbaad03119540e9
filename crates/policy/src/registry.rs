//! The one owner of peers and their indexes: by IKE SA (local address, engine handle) and by the
//! remote address whose kernel state a peer owns. Reqids are allocated here, one per peer.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use oe_ike::SaHandle;
use oe_kernel::{Ownership, Reqid};

use crate::peer::{Peer, PeerId};
use crate::traps::TRAP_REQIDS;

#[derive(Debug)]
pub(crate) struct Registry {
    peers: HashMap<PeerId, Peer>,
    by_ike: HashMap<(IpAddr, SaHandle), PeerId>,
    by_remote: HashMap<IpAddr, PeerId>,
    next_id: u64,
    ownership: Ownership,
    reqids_used: HashSet<Reqid>,
    next_reqid: u32,
}

impl Registry {
    pub(crate) fn new(ownership: Ownership) -> Self {
        Self {
            peers: HashMap::new(),
            by_ike: HashMap::new(),
            by_remote: HashMap::new(),
            next_id: 1,
            ownership,
            reqids_used: HashSet::new(),
            next_reqid: TRAP_REQIDS,
        }
    }

    /// A fresh peer id.
    pub(crate) fn next_id(&mut self) -> PeerId {
        let id = PeerId(self.next_id);
        self.next_id += 1;
        id
    }

    /// A reqid for a new peer's SAs and host policies (above the trap reqids), or `None` when
    /// every reqid of our range is in use.
    pub(crate) fn alloc_reqid(&mut self) -> Option<Reqid> {
        for _ in 0..2 {
            while let Some(reqid) = self.ownership.reqid(self.next_reqid + 1) {
                self.next_reqid += 1;
                if reqid != self.ownership.probe_reqid() && self.reqids_used.insert(reqid) {
                    return Some(reqid);
                }
            }
            self.next_reqid = TRAP_REQIDS;
        }
        None
    }

    /// Returns a reqid [`Self::alloc_reqid`] gave that no peer took.
    pub(crate) fn free_reqid(&mut self, reqid: Reqid) {
        self.reqids_used.remove(&reqid);
    }

    /// Adds a peer and makes it the owner of its remote address.
    pub(crate) fn insert(&mut self, peer: Peer) {
        self.by_remote.insert(peer.key(), peer.id);
        self.peers.insert(peer.id, peer);
    }

    /// Removes a peer and everything that points to it; frees its reqid.
    pub(crate) fn remove(&mut self, id: PeerId) -> Option<Peer> {
        let peer = self.peers.remove(&id)?;
        if self.by_remote.get(&peer.key()) == Some(&id) {
            self.by_remote.remove(&peer.key());
        }
        for handle in peer.ikes.keys() {
            self.by_ike.remove(&(peer.local, *handle));
        }
        self.reqids_used.remove(&peer.reqid);
        Some(peer)
    }

    pub(crate) fn get(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.peers.get_mut(&id)
    }

    /// The peer owning the kernel state for traffic to `remote`.
    pub(crate) fn owner_of(&self, remote: IpAddr) -> Option<PeerId> {
        self.by_remote.get(&remote).copied()
    }

    /// Files a peer under the address assigned to it (RFC 7296 3.15) instead of its own.
    pub(crate) fn assign(&mut self, id: PeerId, lease: IpAddr) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if self.by_remote.get(&peer.key()) == Some(&id) {
            self.by_remote.remove(&peer.key());
        }
        peer.lease = Some(lease);
        self.by_remote.insert(lease, id);
    }

    /// The peer an IKE SA belongs to.
    pub(crate) fn by_ike(&self, local: IpAddr, handle: SaHandle) -> Option<PeerId> {
        self.by_ike.get(&(local, handle)).copied()
    }

    /// Files an IKE SA under its peer.
    pub(crate) fn bind_ike(&mut self, local: IpAddr, handle: SaHandle, id: PeerId) {
        self.by_ike.insert((local, handle), id);
    }

    /// Forgets an IKE SA's index entry.
    pub(crate) fn unbind_ike(&mut self, local: IpAddr, handle: SaHandle) {
        self.by_ike.remove(&(local, handle));
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    pub(crate) fn ids(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }
}
