//! Reactions to the IKE engine's events: peer keys from DNSSEC, SPIs from the kernel, child SAs into the
//! kernel, deletions out of it.

use std::net::IpAddr;
use std::time::Instant;

use oe_dns::LookupTarget;
use oe_ike::wire::Identity;
use oe_ike::{CloseReason, Event, PeerAuth, SaHandle};

use super::agent::Agent;
use super::dnsq::KeyOutcome;
use super::state::{Peer, PendingKey, Phase, Role};

impl Agent {
    pub(crate) async fn on_engine_event(&mut self, local: IpAddr, handle: SaHandle, event: Event) {
        match event {
            Event::NeedPeerKey { identity, remote } if self.adopt(local, handle, remote.ip()) => {
                self.need_peer_key(local, handle, remote.ip(), identity);
            }
            Event::NeedSpi { local: l, remote } if self.adopt(local, handle, remote) => {
                self.need_spi(local, handle, l, remote).await;
            }
            Event::IkeSaEstablished {
                peer_id, peer_auth, ..
            } => {
                self.ike_established(local, handle, &peer_id, peer_auth)
                    .await
            }
            Event::ChildSaReady { child, replaces } => {
                self.child_ready(local, handle, *child, replaces).await
            }
            Event::ChildSaFailed { error } => {
                if let Some(addr) = self.sa_index.get(&(local, handle)).copied() {
                    self.event(
                        "child-failed",
                        Some(addr),
                        format!("child SA not created: {error}"),
                    );
                    if self.peers.get(&addr).is_some_and(|p| p.children.is_empty()) {
                        self.fail(addr, format!("child SA refused: {error}")).await;
                    }
                }
            }
            Event::ChildSaDeleted {
                inbound_spi,
                outbound_spi,
            } => {
                self.child_deleted(local, handle, inbound_spi, outbound_spi)
                    .await
            }
            Event::IkeSaRekeyed => {
                self.counters.rekeys += 1;
                let addr = self.sa_index.get(&(local, handle)).copied();
                self.event("rekey", addr, "IKE SA rekeyed".into());
            }
            Event::Closed { reason } => self.ike_closed(local, handle, reason).await,
            _ => {}
        }
    }

    /// Maps a handle the engine created as responder to its peer; returns false (and deletes the IKE SA)
    /// when the peer's policy group does not answer IKE, or the agent is stopping.
    fn adopt(&mut self, local: IpAddr, handle: SaHandle, remote: IpAddr) -> bool {
        if self.sa_index.contains_key(&(local, handle)) {
            return true;
        }
        let matched = self.table.classify(remote, 0, 0);
        let busy = self.peers.get(&remote).is_some_and(|p| {
            p.role == Role::Initiator && matches!(p.phase, Phase::Negotiating { .. })
        });
        if !matched.group.responds() || self.stopping || self.esp.is_err() {
            self.event(
                "refused",
                Some(remote),
                format!("IKE from {remote} refused: its group is {}", matched.group),
            );
            if let Some(endpoint) = self.endpoints.get_mut(&local) {
                endpoint.delete(Instant::now(), handle);
            }
            return false;
        }
        self.sa_index.insert((local, handle), remote);
        if !self.peers.contains_key(&remote) || !busy {
            let reqid = match self.peers.get(&remote) {
                Some(p) => p.reqid,
                None => self.alloc_reqid(),
            };
            self.peers.entry(remote).or_insert_with(|| {
                Peer::new(
                    remote,
                    local,
                    matched,
                    reqid,
                    Role::Responder,
                    Instant::now(),
                )
            });
        }
        true
    }

    /// The engine must verify the peer's AUTH: find its key in DNS (reverse zone for an address identity,
    /// the name itself for an FQDN identity). Only SECURE keys are ever supplied.
    fn need_peer_key(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        remote: IpAddr,
        identity: Identity,
    ) {
        if self.supply_bound_keys(local, handle, remote, &identity) {
            return;
        }
        let pending = match &identity {
            Identity::Ipv4(a) if IpAddr::V4(*a) == remote => PendingKey::Reverse {
                name: super::dnsq::key(&LookupTarget::Reverse(remote)),
            },
            Identity::Ipv6(a) if IpAddr::V6(*a) == remote => PendingKey::Reverse {
                name: super::dnsq::key(&LookupTarget::Reverse(remote)),
            },
            Identity::Fqdn(name) => match name.parse::<LookupTarget>() {
                Ok(target @ LookupTarget::Forward(_)) => {
                    let key_query = super::dnsq::key(&target);
                    PendingKey::Fqdn {
                        name: name.clone(),
                        addr_query: super::dnsq::address_key(name),
                        key_query,
                    }
                }
                _ => {
                    return self.refuse_key(
                        local,
                        handle,
                        remote,
                        format!("identity {name:?} is not a domain name"),
                    )
                }
            },
            other => {
                return self.refuse_key(
                    local,
                    handle,
                    remote,
                    format!("identity {other:?} does not name this peer ({remote})"),
                )
            }
        };
        if let Some(peer) = self.peers.get_mut(&remote) {
            peer.peer_id = Some(identity_text(&identity));
            peer.pending_key = Some((handle, pending.clone()));
        }
        match &pending {
            PendingKey::Reverse { .. } => self.wait_dns(remote, LookupTarget::Reverse(remote)),
            PendingKey::Fqdn {
                name, key_query, ..
            } => {
                if let Ok(target) = name.parse::<LookupTarget>() {
                    self.wait_dns(remote, target);
                }
                self.wait_addresses(remote, name);
                let _ = key_query; // answered through `dns_waiters` under this name
            }
        }
        self.try_answer_key(remote);
    }

    /// Keys the DNS trigger already bound to this address (the name's SECURE key and SECURE addresses),
    /// for a peer proving that name or the address itself.
    fn supply_bound_keys(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        remote: IpAddr,
        identity: &Identity,
    ) -> bool {
        let name = match identity {
            Identity::Fqdn(n) => Some(n.as_str()),
            Identity::Ipv4(a) if IpAddr::V4(*a) == remote => None,
            Identity::Ipv6(a) if IpAddr::V6(*a) == remote => None,
            _ => return false,
        };
        let Some((owner, bound)) = self.bound_keys_for(remote, name) else {
            return false;
        };
        let how = format!(
            "{} key from DNSSEC ({owner}, secure; bound to {remote} by the DNS trigger)",
            bound.described.join("/")
        );
        if let Some(peer) = self.peers.get_mut(&remote) {
            peer.peer_id = Some(identity_text(identity));
            peer.authentication = Some(how);
        }
        if let Some(endpoint) = self.endpoints.get_mut(&local) {
            endpoint.supply_peer_keys(Instant::now(), handle, bound.keys);
        }
        true
    }

    /// Asks DNS for `target` on behalf of a paused exchange.
    fn wait_dns(&mut self, addr: IpAddr, target: LookupTarget) {
        let name = super::dnsq::key(&target);
        self.dns.request(&target);
        self.dns_waiters.entry(name).or_default().push((addr, true));
    }

    /// Asks DNS for the validated addresses of `name` (dns-match-id).
    fn wait_addresses(&mut self, addr: IpAddr, name: &str) {
        let query = super::dnsq::address_key(name);
        self.dns.request_addresses(name);
        match self.dns.cached_addresses(&query) {
            Some(Err(why)) => {
                if let Some(peer) = self.peers.get_mut(&addr) {
                    peer.note_dns(&query, why);
                }
            }
            _ => self
                .dns_waiters
                .entry(query)
                .or_default()
                .push((addr, true)),
        }
    }

    /// Validated addresses arrived: note them and resume exchanges waiting for them.
    pub(crate) async fn on_addresses(&mut self, query: String, outcome: super::dnsq::AddrOutcome) {
        let text = match &outcome {
            Ok(addrs) => format!("secure addresses {addrs:?}"),
            Err(why) => format!("not usable to bind the name: {why}"),
        };
        self.event("dns", None, format!("{query}: {text}"));
        self.dns.complete_addresses(&query, outcome);
        for (addr, needs_key) in self.dns_waiters.remove(&query).unwrap_or_default() {
            if let Some(peer) = self.peers.get_mut(&addr) {
                peer.note_dns(&query, text.clone());
            }
            if needs_key {
                self.try_answer_key(addr);
            }
        }
        let locals: Vec<IpAddr> = self.endpoints.keys().copied().collect();
        for local in locals {
            self.drain(local).await;
        }
    }

    /// Records an outcome on the peer (for `explain`).
    pub(crate) fn note_outcome(&mut self, addr: IpAddr, name: &str, outcome: &KeyOutcome) {
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.note_dns(name, outcome.summary());
        }
    }

    /// A DNS answer arrived: note it for every peer that asked, and resume exchanges waiting for keys.
    pub(crate) async fn on_dns(
        &mut self,
        name: String,
        result: Result<oe_dns::Answer, oe_dns::LookupError>,
    ) {
        let outcome = self.dns.complete(&name, &result);
        self.event("dns", None, format!("{name}: {}", outcome.summary()));
        for (addr, needs_key) in self.dns_waiters.remove(&name).unwrap_or_default() {
            self.note_outcome(addr, &name, &outcome);
            if needs_key {
                self.try_answer_key(addr);
            } else {
                self.release_hold(addr, &outcome).await;
            }
        }
        let locals: Vec<IpAddr> = self.endpoints.keys().copied().collect();
        for local in locals {
            self.drain(local).await;
        }
    }

    /// Supplies or refuses the peer's keys once every lookup it needs has an outcome.
    fn try_answer_key(&mut self, addr: IpAddr) {
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        let Some((handle, pending)) = peer.pending_key.clone() else {
            return;
        };
        let local = peer.local;
        let decision = match &pending {
            PendingKey::Reverse { name } => match self.dns.cached(name) {
                None => return,
                Some(KeyOutcome::Secure {
                    keys, described, ..
                }) => Ok((
                    keys,
                    format!("{} key from DNSSEC ({name}, secure)", described.join("/")),
                )),
                Some(other) => Err(format!("no usable key for {name}: {}", other.summary())),
            },
            PendingKey::Fqdn {
                name,
                key_query,
                addr_query,
            } => match (
                self.dns.cached(key_query),
                self.dns.cached_addresses(addr_query),
            ) {
                (None, _) | (_, None) => return,
                (
                    Some(KeyOutcome::Secure {
                        keys, described, ..
                    }),
                    Some(Ok(addrs)),
                ) if addrs.contains(&addr) => Ok((
                    keys,
                    format!(
                        "{} key from DNSSEC ({name}, secure; address matches)",
                        described.join("/")
                    ),
                )),
                (Some(KeyOutcome::Secure { .. }), Some(Ok(addrs))) => Err(format!(
                    "{name} does not resolve (securely) to {addr}: {addrs:?}"
                )),
                (Some(KeyOutcome::Secure { .. }), Some(Err(why))) => {
                    Err(format!("addresses of {name}: {why}"))
                }
                (Some(other), _) => Err(format!("no usable key for {name}: {}", other.summary())),
            },
        };
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.pending_key = None;
        }
        match decision {
            Ok((keys, how)) => {
                if let Some(peer) = self.peers.get_mut(&addr) {
                    peer.authentication = Some(how);
                }
                if let Some(endpoint) = self.endpoints.get_mut(&local) {
                    endpoint.supply_peer_keys(Instant::now(), handle, keys);
                }
            }
            Err(why) => self.refuse_key(local, handle, addr, why),
        }
    }

    fn refuse_key(&mut self, local: IpAddr, handle: SaHandle, addr: IpAddr, why: String) {
        self.event("auth-refused", Some(addr), why.clone());
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.last_ike = Some(format!("authentication refused: {why}"));
            peer.refusal = Some(why);
        }
        if let Some(endpoint) = self.endpoints.get_mut(&local) {
            endpoint.refuse_peer_keys(Instant::now(), handle);
        }
    }

    async fn need_spi(&mut self, local: IpAddr, handle: SaHandle, ours: IpAddr, remote: IpAddr) {
        let reqid = self.peers.get(&remote).map(|p| p.reqid);
        let Some(reqid) = reqid else { return };
        match self.kernel.alloc_spi(ours, remote, reqid).await {
            Ok(spi) => {
                if let Some(peer) = self.peers.get_mut(&remote) {
                    peer.spare_spis.push(spi.0);
                }
                if let Some(endpoint) = self.endpoints.get_mut(&local) {
                    endpoint.supply_spi(Instant::now(), handle, spi.0);
                }
            }
            Err(e) => {
                tracing::warn!("cannot allocate an SPI for {remote}: {e}");
                if let Some(endpoint) = self.endpoints.get_mut(&local) {
                    endpoint.delete(Instant::now(), handle);
                }
            }
        }
    }

    async fn ike_established(
        &mut self,
        local: IpAddr,
        handle: SaHandle,
        peer_id: &Identity,
        auth: PeerAuth,
    ) {
        let Some(addr) = self.sa_index.get(&(local, handle)).copied() else {
            return;
        };
        let anonymous = auth == PeerAuth::Null;
        // A NULL-authenticated SA never replaces an authenticated one (oe-flow, Responder).
        let has_authenticated = self.peers.get(&addr).is_some_and(|p| {
            !p.anonymous && p.ike.is_some_and(|h| h != handle) && !p.children.is_empty()
        });
        if anonymous && has_authenticated {
            self.event(
                "refused",
                Some(addr),
                "anonymous IKE SA refused: an authenticated SA exists".into(),
            );
            if let Some(endpoint) = self.endpoints.get_mut(&local) {
                endpoint.delete(Instant::now(), handle);
            }
            return;
        }
        let Some(peer) = self.peers.get_mut(&addr) else {
            return;
        };
        peer.ike = Some(handle);
        peer.ike_established = Some(Instant::now());
        peer.peer_id = Some(identity_text(peer_id));
        peer.anonymous = anonymous;
        if anonymous {
            peer.authentication = Some("NULL authentication (anonymous, RFC 7619)".into());
        }
        let how = peer.authentication.clone().unwrap_or_default();
        let role = peer.role;
        self.event(
            "ike-established",
            Some(addr),
            format!(
                "IKE SA up as {} with {} ({how})",
                role.name(),
                identity_text(peer_id)
            ),
        );
    }

    async fn ike_closed(&mut self, local: IpAddr, handle: SaHandle, reason: CloseReason) {
        let Some(addr) = self.sa_index.remove(&(local, handle)) else {
            return;
        };
        let Some(peer) = self.peers.get(&addr) else {
            return;
        };
        if peer.ike != Some(handle) {
            return; // an older or refused IKE SA of this peer
        }
        let had_children = !peer.children.is_empty();
        let refusal = self.peers.get_mut(&addr).and_then(|p| p.refusal.take());
        let text = match (&reason, refusal) {
            (CloseReason::Local, _) => "closed by us".to_owned(),
            (CloseReason::PeerDeleted, _) => "deleted by the peer".to_owned(),
            (_, Some(why)) => format!("authentication refused: {why}"),
            (CloseReason::Refused, None) => "refused (no usable key)".to_owned(),
            (CloseReason::Failed(e), None) => e.to_string(),
        };
        self.event("ike-closed", Some(addr), format!("IKE SA {text}"));
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.ike = None;
            // After a failure the failure's reason stays what `explain` shows.
            if !matches!(peer.phase, Phase::Failed { .. }) {
                peer.last_ike = Some(text.clone());
            }
        }
        let phase = self.peers.get(&addr).map(|p| p.phase.clone());
        match phase {
            Some(Phase::Negotiating { .. }) if !had_children => return self.fail(addr, text).await,
            // The failure shunt stays until it expires; then the trap tries the host again.
            Some(Phase::Failed { .. }) => return,
            _ => {}
        }
        // The SA ended normally (peer delete, idle, our shutdown): remove what is left and let the trap
        // catch the next packet (oe-flow, Lifecycle).
        self.forget_peer(addr).await;
    }
}

/// "fqdn:host.example", "address:192.0.2.1", "null".
pub(crate) fn identity_text(id: &Identity) -> String {
    match id {
        Identity::Ipv4(a) => format!("address:{a}"),
        Identity::Ipv6(a) => format!("address:{a}"),
        Identity::Fqdn(n) => format!("fqdn:{n}"),
        Identity::Null => "null".into(),
        other => format!("{other:?}"),
    }
}
