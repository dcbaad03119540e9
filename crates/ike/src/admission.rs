//! Whether a new IKE_SA_INIT request may create a half-open IKE SA (RFC 7296 2.6): what an
//! unauthenticated peer can make the responder hold is bounded per source address and in total;
//! past the cookie threshold the request must carry a valid cookie first.

use std::net::SocketAddr;

use crate::config::Config;
use crate::registry::Registry;

/// What to do with a new IKE_SA_INIT request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Answer it and keep a half-open SA.
    Accept,
    /// Answer with a stateless COOKIE (the request carried none, or a stale or forged one).
    Cookie,
    /// Drop it silently: a bound is reached, and no answer would help.
    Drop,
}

/// Decides for a request from `remote`; `cookie_ok` tells whether it carries a valid cookie.
pub(crate) fn admit(
    sas: &Registry,
    config: &Config,
    remote: SocketAddr,
    cookie_ok: impl FnOnce() -> bool,
) -> Admission {
    if sas.half_open_count() >= config.cookie_threshold && !cookie_ok() {
        return Admission::Cookie;
    }
    let full = sas.half_open_count() >= config.max_half_open;
    if full || sas.half_open_from(remote.ip()) >= config.max_half_open_per_source {
        return Admission::Drop;
    }
    Admission::Accept
}
