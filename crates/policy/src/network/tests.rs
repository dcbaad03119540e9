#![allow(clippy::unwrap_used)]

use oe_kernel::route::{Link, LocalAddress, NetEvent, Route};
use oe_kernel::Prefix;

use super::{Change, NetView};

fn addr(a: &str) -> LocalAddress {
    LocalAddress {
        ifindex: 2,
        addr: a.parse().unwrap(),
        prefix_len: 24,
        scoped: false,
        tentative: false,
        dad_failed: false,
        deprecated: false,
    }
}

fn default_via(gw: &str, oif: u32) -> Route {
    Route {
        dst: Prefix::new("0.0.0.0".parse().unwrap(), 0).unwrap(),
        gateway: Some(gw.parse().unwrap()),
        oif: Some(oif),
        pref_src: None,
        table: Route::MAIN_TABLE,
        metric: 0,
    }
}

fn link(ifindex: u32, running: bool) -> Link {
    Link {
        ifindex,
        name: Some("eth0".into()),
        up: true,
        running,
        loopback: false,
    }
}

fn known() -> NetView {
    let mut view = NetView::default();
    let first = view.replace(
        &[addr("192.0.2.10")],
        &[link(2, true)],
        &[default_via("192.0.2.1", 2)],
    );
    assert!(first.is_empty(), "the first dump only sets the view");
    view
}

#[test]
fn repeats_change_nothing() {
    let mut view = known();
    // A router advertisement renews an address; a DHCP renewal puts the same route back.
    assert!(view
        .apply(&NetEvent::AddressAdded(addr("192.0.2.10")))
        .is_empty());
    assert!(view
        .apply(&NetEvent::RouteAdded(default_via("192.0.2.1", 2)))
        .is_empty());
    assert!(view.apply(&NetEvent::LinkChanged(link(2, true))).is_empty());
}

#[test]
fn new_addresses_routes_and_links_are_a_new_network() {
    let mut view = known();
    assert!(matches!(
        view.apply(&NetEvent::RouteAdded(default_via("198.51.100.1", 3)))
            .as_slice(),
        [Change::NewNetwork(_)]
    ));
    assert!(view
        .apply(&NetEvent::LinkChanged(link(2, false)))
        .is_empty());
    assert!(matches!(
        view.apply(&NetEvent::LinkChanged(link(2, true))).as_slice(),
        [Change::NewNetwork(w)] if w == "link eth0 up"
    ));
    let mut tentative = addr("2001:db8::10");
    tentative.tentative = true;
    assert!(view
        .apply(&NetEvent::AddressAdded(tentative.clone()))
        .is_empty());
    tentative.tentative = false;
    assert!(matches!(
        view.apply(&NetEvent::AddressAdded(tentative)).as_slice(),
        [Change::NewNetwork(_)]
    ));
}

#[test]
fn a_removed_address_is_gone() {
    let mut view = known();
    let gone = view.apply(&NetEvent::AddressRemoved(addr("192.0.2.10")));
    assert_eq!(gone, [Change::AddressGone("192.0.2.10".parse().unwrap())]);
    assert!(!view.has("192.0.2.10".parse().unwrap()));
}

#[test]
fn a_dump_after_lost_events_reports_what_changed_meanwhile() {
    let mut view = known();
    let changes = view.replace(
        &[addr("198.51.100.10")],
        &[link(2, true)],
        &[default_via("198.51.100.1", 2)],
    );
    assert_eq!(
        changes[0],
        Change::AddressGone("192.0.2.10".parse().unwrap())
    );
    assert!(matches!(changes[1], Change::NewNetwork(_)), "{changes:?}");
}
