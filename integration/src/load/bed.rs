//! The link the load runs on: the generator's namespace (which owns the source prefixes) and the
//! responder's, joined by one veth pair.

use std::sync::Arc;

use crate::netns::Netns;

use super::{prepare_namespace, FLOOD_SOURCES, SOURCES};

/// The generator's link address.
pub const GEN_ADDR: &str = "2001:db8::1";
/// The responder's address.
pub const RESPONDER_ADDR: &str = "2001:db8::2";

/// The generator's namespace (shared with its thread) and the responder's.
#[derive(Debug)]
pub struct LoadBed {
    pub gen: Arc<Netns>,
    pub resp: Netns,
}

impl LoadBed {
    /// Two namespaces on one link; the responder routes the source prefixes back to the
    /// generator, which answers for every address in them.
    pub fn new() -> Self {
        let gen = Netns::new("gen");
        let resp = Netns::new("resp");
        let (gi, ri) = Netns::veth(&gen, &resp);
        gen.addr(&gi, &format!("{GEN_ADDR}/64"));
        resp.addr(&ri, &format!("{RESPONDER_ADDR}/64"));
        prepare_namespace(&gen);
        for prefix in [SOURCES, FLOOD_SOURCES] {
            resp.ip(&["-6", "route", "add", prefix, "via", GEN_ADDR]);
        }
        for ns in [&gen, &resp] {
            // Room for the route cache entries of many peers.
            ns.sysctl("net.ipv6.route.max_size", "4194304");
        }
        Self {
            gen: Arc::new(gen),
            resp,
        }
    }

    /// Removes every XFRM state and policy from the responder's namespace (between responders).
    pub fn flush(&self) {
        self.resp.ip(&["xfrm", "state", "flush"]);
        self.resp.ip(&["xfrm", "policy", "flush"]);
    }
}

impl Default for LoadBed {
    fn default() -> Self {
        Self::new()
    }
}
