//! Peer keys from DNSSEC: what a paused IKE_AUTH needs (the reverse zone for an address
//! identity; for an FQDN identity its key and its validated addresses, which must include the
//! peer's), and the verdicts coming back. Only a `Secure` verdict ever supplies keys; every other
//! verdict refuses, with its reason kept for `explain`.

use std::net::IpAddr;

use oe_dns::{AddressVerdict, KeyVerdict, LookupTarget, Name};
use oe_ike::wire::Identity;
use oe_ike::SaHandle;

use super::engine::Anonymous;
use super::Core;
use crate::dnsq::{Asked, Query};
use crate::identity::{dns_key_to_ike, identity_text};
use crate::input::Command;
use crate::peer::{FqdnLookups, Lookup, PeerId, PeerState, PendingKey, Step};

impl Core {
    /// The engine must verify the peer's AUTH: find its key (reverse zone for an address
    /// identity, the name itself for an FQDN identity).
    pub(super) fn need_peer_key(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        identity: &Identity,
    ) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let remote = peer.remote;
        let text = identity_text(identity);
        let pending = match identity {
            Identity::Ipv4(a) if IpAddr::V4(*a) == remote => PendingKey::Reverse,
            Identity::Ipv6(a) if IpAddr::V6(*a) == remote => PendingKey::Reverse,
            Identity::Fqdn(name) => match fqdn(name) {
                Some(name) => {
                    if self.supply_bound_keys(id, local, handle, &name) {
                        return;
                    }
                    PendingKey::Fqdn(Box::new(FqdnLookups {
                        name,
                        key: Lookup::NotAsked,
                        addrs: Lookup::NotAsked,
                    }))
                }
                _ => {
                    return self.refuse_key(
                        id,
                        local,
                        handle,
                        format!("identity {name:?} is not a domain name"),
                    )
                }
            },
            other => {
                let why = format!(
                    "identity {} does not name this peer ({remote})",
                    identity_text(other)
                );
                return self.refuse_key(id, local, handle, why);
            }
        };
        let fqdn = match &pending {
            PendingKey::Fqdn(f) => Some(f.name.clone()),
            PendingKey::Reverse => None,
        };
        self.set_step(
            id,
            handle,
            Step::AwaitingKey {
                identity: text,
                pending,
            },
        );
        match fqdn {
            None => self.ask_reverse(id),
            Some(name) => self.ask_fqdn(id, remote, &name),
        }
        self.try_answer_key(id, local, handle);
    }

    /// Keys the DNS trigger bound to exactly this name, whose validated addresses include the
    /// peer's. A key bound to one name never authenticates another name or an address identity.
    fn supply_bound_keys(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        name: &Name,
    ) -> bool {
        let Some(remote) = self.peers.get(id).map(|p| p.remote) else {
            return false;
        };
        let Some(bound) = self.bound.usable_for(name, remote, self.now.wall) else {
            return false;
        };
        let how = format!(
            "{} key from DNSSEC ({name}, secure; bound to {remote} by the DNS trigger)",
            bound.described.join("/")
        );
        let keys = bound.keys.clone();
        self.supply(id, local, handle, how, keys);
        true
    }

    /// Asks for an FQDN identity's key and addresses (the peer chose the name: the lookups count
    /// against the peers' share of DNS work).
    fn ask_fqdn(&mut self, id: PeerId, remote: IpAddr, name: &Name) {
        let key = Query::Key(LookupTarget::Forward(name.clone()));
        let addrs = Query::Addresses(name.clone());
        let over = || "too many lookups for peers at this address".to_owned();
        let key_state = match self.ask(id, &key, Some(remote)) {
            Some(()) => Lookup::Pending,
            None => Lookup::Known(KeyVerdict::Failed { reason: over() }),
        };
        let addr_state = match self.ask(id, &addrs, Some(remote)) {
            Some(()) => Lookup::Pending,
            None => Lookup::Known(AddressVerdict::Failed { reason: over() }),
        };
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        for ike in peer.ikes.values_mut() {
            if let Step::AwaitingKey {
                pending: PendingKey::Fqdn(f),
                ..
            } = &mut ike.step
            {
                if f.name == *name {
                    f.key = key_state.clone();
                    f.addrs = addr_state.clone();
                }
            }
        }
    }

    /// Starts (or joins) a lookup; `None` when it is refused over the peers' bounds.
    fn ask(&mut self, id: PeerId, query: &Query, caused_by: Option<IpAddr>) -> Option<()> {
        match self.dns.ask(query, id, caused_by, self.now.mono) {
            Asked::Start => {
                let for_peer = caused_by.is_some();
                self.commands.push_back(match query {
                    Query::Key(target) => Command::LookupKey {
                        target: target.clone(),
                        for_peer,
                    },
                    Query::Addresses(name) => Command::LookupAddresses {
                        name: name.clone(),
                        for_peer,
                    },
                });
                Some(())
            }
            Asked::Joined => Some(()),
            Asked::Refused => None,
        }
    }

    /// An IPSECKEY verdict arrived: every peer that waited for it moves on.
    pub(super) fn on_key_verdict(&mut self, target: LookupTarget, verdict: KeyVerdict) {
        let query = Query::Key(target.clone());
        let label = query.label();
        self.dns.remember_key(&query, &verdict, self.now.wall);
        self.event(
            "dns",
            None,
            format!("{label}: {}", verdict.describe(self.now.wall)),
        );
        for id in self.dns_done(&query) {
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            peer.note(&label, verdict.describe(self.now.wall), self.now.wall);
            match &target {
                LookupTarget::Reverse(addr) if *addr == peer.remote => {
                    self.reverse_known(id, verdict.clone());
                }
                LookupTarget::Forward(name) => self.fqdn_key_known(id, name, &verdict),
                _ => {}
            }
        }
    }

    /// Validated addresses arrived.
    pub(super) fn on_address_verdict(&mut self, name: Name, verdict: AddressVerdict) {
        let query = Query::Addresses(name.clone());
        let label = query.label();
        self.dns.remember_addresses(&query, &verdict, self.now.wall);
        for id in self.dns_done(&query) {
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            peer.note(&label, verdict.describe(), self.now.wall);
            for ike in peer.ikes.values_mut() {
                if let Step::AwaitingKey {
                    pending: PendingKey::Fqdn(f),
                    ..
                } = &mut ike.step
                {
                    if f.name == name {
                        f.addrs = Lookup::Known(verdict.clone());
                    }
                }
            }
            self.answer_waiting_keys(id);
        }
    }

    /// The reverse zone's verdict for a peer's current negotiation.
    pub(super) fn reverse_known(&mut self, id: PeerId, verdict: KeyVerdict) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.reverse = Lookup::Known(verdict.clone());
        self.release_hold(id, &verdict);
        self.answer_waiting_keys(id);
        self.judge_waiting_anonymous(id);
    }

    fn fqdn_key_known(&mut self, id: PeerId, name: &Name, verdict: &KeyVerdict) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        for ike in peer.ikes.values_mut() {
            if let Step::AwaitingKey {
                pending: PendingKey::Fqdn(f),
                ..
            } = &mut ike.step
            {
                if f.name == *name {
                    f.key = Lookup::Known(verdict.clone());
                }
            }
        }
        self.answer_waiting_keys(id);
    }

    /// Answers every IKE SA of the peer whose lookups are all in.
    fn answer_waiting_keys(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let (local, handles): (IpAddr, Vec<SaHandle>) = (
            peer.local,
            peer.ikes
                .iter()
                .filter(|(_, i)| matches!(i.step, Step::AwaitingKey { .. }))
                .map(|(h, _)| *h)
                .collect(),
        );
        for handle in handles {
            self.try_answer_key(id, local, handle);
        }
        self.drain(local);
    }

    /// NULL-authenticated responders waiting for the reverse zone's verdict.
    fn judge_waiting_anonymous(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let local = peer.local;
        let waiting: Vec<(SaHandle, String)> = peer
            .ikes
            .iter()
            .filter_map(|(h, i)| match &i.step {
                Step::AwaitingVerdict { identity, .. } => Some((*h, identity.clone())),
                _ => None,
            })
            .collect();
        for (handle, identity) in waiting {
            self.decide_awaiting_anonymous(id, local, handle, identity);
        }
        self.drain(local);
    }

    /// Supplies or refuses the peer's keys once every lookup it needs has a verdict.
    fn try_answer_key(&mut self, id: PeerId, local: IpAddr, handle: SaHandle) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let remote = peer.remote;
        let Some(Step::AwaitingKey { pending, .. }) = peer.ikes.get(&handle).map(|i| &i.step)
        else {
            return;
        };
        let decision = match pending {
            PendingKey::Reverse => match peer.reverse.known() {
                None => return,
                Some(v) => {
                    let name = LookupTarget::Reverse(remote).query_name().to_string();
                    keys_of(v, &name, self.now.wall, "")
                }
            },
            PendingKey::Fqdn(f) => match (f.key.known(), f.addrs.known()) {
                (Some(k), Some(a)) => {
                    let name = f.name.to_string();
                    match keys_of(k, &name, self.now.wall, "; address matches") {
                        Ok(found) if a.proves(remote) => Ok(found),
                        Ok(_) => Err(format!(
                            "{name} does not resolve (securely) to {remote}: {}",
                            a.describe()
                        )),
                        Err(why) => Err(why),
                    }
                }
                _ => return,
            },
        };
        match decision {
            Ok((keys, how)) => self.supply(id, local, handle, how, keys),
            Err(why) => self.refuse_key(id, local, handle, why),
        }
    }

    fn supply(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        how: String,
        keys: Vec<oe_ike::crypto::PublicKey>,
    ) {
        self.set_step(id, handle, Step::Verifying { how });
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.supply_peer_keys(now, handle, keys);
        }
    }

    /// Refuses the peer's identity: the engine fails the exchange (AUTHENTICATION_FAILED).
    pub(super) fn refuse_key(&mut self, id: PeerId, local: IpAddr, handle: SaHandle, why: String) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let remote = peer.remote;
        peer.last_ike = Some(format!("authentication refused: {why}"));
        peer.refusal = Some(why.clone());
        self.set_step(id, handle, Step::Refused);
        self.event("auth-refused", Some(remote), why);
        let now = self.now.mono;
        if let Some(engine) = self.engines.get_mut(&local) {
            engine.refuse_peer_keys(now, handle);
        }
    }

    /// A NULL responder waited for the reverse zone's verdict: accept or refuse it now.
    fn decide_awaiting_anonymous(
        &mut self,
        id: PeerId,
        local: IpAddr,
        handle: SaHandle,
        identity: String,
    ) {
        match self.judge_anonymous(id, handle) {
            Anonymous::Accept(why) => {
                let authn = crate::peer::PeerAuthn::Anonymous { identity, why };
                self.accept_ike(id, handle, authn);
            }
            Anonymous::Refuse(why) => {
                let waiting_fail = self.peers.get(id).is_some_and(|p| {
                    matches!(p.state, PeerState::Negotiating(_)) && p.ikes.len() == 1
                });
                self.refuse_ike(id, local, handle, why.clone());
                if waiting_fail {
                    self.fail(id, why);
                }
            }
            Anonymous::Wait => {}
        }
    }
}

impl Core {
    /// A lookup finished: its latency counted, the peers that waited for it.
    fn dns_done(&mut self, query: &Query) -> Vec<PeerId> {
        let (peers, took) = self.dns.complete(query, self.now.mono);
        if let Some(took) = took {
            self.latency.dns_lookup.observe(took.as_secs_f64());
        }
        peers
    }
}

/// An FQDN identity as a fully qualified, lower-case name (RFC 7296 3.5: compared as DNS names).
fn fqdn(text: &str) -> Option<Name> {
    let mut name = Name::from_ascii(text).ok()?.to_lowercase();
    name.set_fqdn(true);
    (name.num_labels() > 0).then_some(name)
}

/// The engine's keys from a verdict, with how they were found, or why there are none.
fn keys_of(
    verdict: &KeyVerdict,
    name: &str,
    now: std::time::SystemTime,
    suffix: &str,
) -> Result<(Vec<oe_ike::crypto::PublicKey>, String), String> {
    let Some(dns_keys) = verdict.keys() else {
        return Err(format!(
            "no usable key for {name}: {}",
            verdict.describe(now)
        ));
    };
    let keys: Vec<_> = dns_keys
        .iter()
        .filter_map(|k| dns_key_to_ike(&k.key))
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "no usable key for {name}: the secure keys are not usable by the engine"
        ));
    }
    let kinds: Vec<String> = dns_keys.iter().map(|k| k.key.kind()).collect();
    Ok((
        keys,
        format!(
            "{} key from DNSSEC ({name}, secure{suffix})",
            kinds.join("/")
        ),
    ))
}
