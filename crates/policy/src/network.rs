//! The host's network as the core last saw it (rtnetlink): usable local addresses, running
//! links and default routes. Events and dumps are folded in here and come out as the changes
//! the core acts on; repeats (an IPv6 router advertisement renewing an address's lifetimes, a
//! DHCP renewal putting back the same default route) change nothing.

use std::collections::BTreeSet;
use std::net::IpAddr;

use oe_kernel::route::{Link, LocalAddress, NetEvent, Route};

/// What a network event means to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// This local address is gone: nothing can be sent from it any more.
    AddressGone(IpAddr),
    /// New connectivity (an address, a default route, a link back up): what failed before may
    /// work now.
    NewNetwork(String),
}

/// A default route, as far as "the network changed" goes.
type DefaultRoute = (Option<IpAddr>, Option<u32>, u32);

/// The host's addresses, links and default routes.
#[derive(Debug, Default)]
pub(crate) struct NetView {
    /// Whether a dump has been read (before it, nothing is compared).
    known: bool,
    usable: BTreeSet<IpAddr>,
    running: BTreeSet<u32>,
    defaults: BTreeSet<DefaultRoute>,
}

impl NetView {
    /// Whether `addr` is a usable address of the host now (`true` until a dump was read).
    pub(crate) fn has(&self, addr: IpAddr) -> bool {
        !self.known || self.usable.contains(&addr)
    }

    /// Folds one event in.
    pub(crate) fn apply(&mut self, event: &NetEvent) -> Vec<Change> {
        let change = match event {
            NetEvent::AddressAdded(a) => self.address_added(a),
            NetEvent::AddressRemoved(a) => {
                self.usable.remove(&a.addr);
                Some(Change::AddressGone(a.addr))
            }
            NetEvent::RouteAdded(r) if r.is_default() => self
                .defaults
                .insert(key(r))
                .then(|| Change::NewNetwork(describe_route(r))),
            NetEvent::RouteRemoved(r) if r.is_default() => {
                self.defaults.remove(&key(r));
                None
            }
            NetEvent::LinkChanged(l) => self.link_changed(l),
            NetEvent::LinkRemoved(l) => {
                self.running.remove(&l.ifindex);
                None
            }
            _ => None,
        };
        change.into_iter().collect()
    }

    fn address_added(&mut self, a: &LocalAddress) -> Option<Change> {
        if !a.usable() {
            // Tentative, deprecated or failed: not chosen for new flows, but still valid for
            // what uses it (only a removal takes it away).
            self.usable.remove(&a.addr);
            return None;
        }
        self.usable
            .insert(a.addr)
            .then(|| Change::NewNetwork(format!("address {} added", a.addr)))
    }

    fn link_changed(&mut self, l: &Link) -> Option<Change> {
        if l.loopback {
            return None;
        }
        if !(l.up && l.running) {
            self.running.remove(&l.ifindex);
            return None;
        }
        let name = l.name.clone().unwrap_or_else(|| format!("#{}", l.ifindex));
        self.running
            .insert(l.ifindex)
            .then(|| Change::NewNetwork(format!("link {name} up")))
    }

    /// Replaces the view with a dump. The first dump only sets the view; a later one (after
    /// lost events) reports what changed meanwhile.
    pub(crate) fn replace(
        &mut self,
        addresses: &[LocalAddress],
        links: &[Link],
        routes: &[Route],
    ) -> Vec<Change> {
        let usable: BTreeSet<IpAddr> = addresses
            .iter()
            .filter(|a| a.usable())
            .map(|a| a.addr)
            .collect();
        let present: BTreeSet<IpAddr> = addresses.iter().map(|a| a.addr).collect();
        let running: BTreeSet<u32> = links
            .iter()
            .filter(|l| l.up && l.running && !l.loopback)
            .map(|l| l.ifindex)
            .collect();
        let defaults: BTreeSet<DefaultRoute> =
            routes.iter().filter(|r| r.is_default()).map(key).collect();
        let mut changes = Vec::new();
        if self.known {
            changes.extend(
                self.usable
                    .iter()
                    .filter(|a| !present.contains(a))
                    .map(|a| Change::AddressGone(*a)),
            );
            let new = usable.difference(&self.usable).next().is_some()
                || running.difference(&self.running).next().is_some()
                || defaults.difference(&self.defaults).next().is_some();
            if new {
                changes.push(Change::NewNetwork(
                    "addresses, links or routes changed while events were lost".into(),
                ));
            }
        }
        *self = Self {
            known: true,
            usable,
            running,
            defaults,
        };
        changes
    }
}

fn key(r: &Route) -> DefaultRoute {
    (r.gateway, r.oif, r.table)
}

fn describe_route(r: &Route) -> String {
    match r.gateway {
        Some(gw) => format!("default route via {gw}"),
        None => "default route".into(),
    }
}

#[cfg(test)]
mod tests;
