//! The bounds on IKE SAs peers start ([`crate::ike_bounds`]) applied: an SA is admitted when
//! its authentication is accepted (or, for an anonymous responder, while the reverse zone's
//! verdict is awaited), after the oldest anonymous SAs in the way were deleted; a source that
//! could not be admitted at all is refused before any DNS work is spent on it.

use std::net::IpAddr;

use oe_ike::SaHandle;

use super::Core;
use crate::config::Config;
use crate::ike_bounds::{Bounds, Victim};
use crate::peer::{PeerId, Role};

impl Core {
    pub(super) fn ike_bounds(config: &Config) -> Bounds {
        Bounds {
            per_source: config.limits.ike_sas_per_source,
            total: config.limits.ike_sas,
        }
    }

    /// Whether a new responder IKE SA from `remote` could ever be held.
    pub(super) fn ike_room_for(&mut self, remote: IpAddr) -> Result<(), String> {
        if self.held.has_room_for(remote) {
            return Ok(());
        }
        self.held.refused += 1;
        Err("the bound on IKE SAs is reached and every SA in the way is authenticated (never displaced)".into())
    }

    /// Admits a responder IKE SA that is past IKE_AUTH, pruning anonymous ones in its way.
    /// The host's own (initiator) SAs are not bounded.
    pub(super) fn admit_ike(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        anonymous: bool,
    ) -> Result<(), String> {
        let Some(peer) = self.peers.get(id) else {
            return Ok(());
        };
        let responder = peer.ikes.get(&handle).map(|i| i.role) == Some(Role::Responder);
        if !responder {
            return Ok(());
        }
        let remote = peer.remote;
        let now = self.now.mono;
        let victims = self
            .held
            .admit((local, handle), id, remote, anonymous, now)?;
        for victim in victims {
            self.prune(victim, local);
        }
        Ok(())
    }

    /// Deletes an anonymous IKE SA at once to make room (the peer gets one Delete; one that
    /// never answers keeps nothing). Its children leave the kernel when the engine reports
    /// them. The engine being drained (`draining`) reports them in order after the events in
    /// hand; another engine is drained now.
    fn prune(&mut self, ((local, handle), id): Victim, draining: IpAddr) {
        let remote = self.peers.get(id).map(|p| p.remote);
        self.event(
            "pruned",
            remote,
            "anonymous IKE SA deleted to make room: the bound on IKE SAs is reached".into(),
        );
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.delete_now(now, handle);
        }
        if local != draining {
            self.drain(local);
        }
    }

    /// A closed IKE SA no longer counts.
    pub(super) fn release_ike(&mut self, local: IpAddr, handle: SaHandle) {
        self.held.release((local, handle));
    }
}
