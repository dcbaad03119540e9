//! The core's assigned-address requests carried out through rtnetlink (RFC 7296 3.15): the
//! address a server gave us on the loopback link with a host route to that server preferring it
//! as source; on a server, a host route to an address it gave a client. Everything carries
//! oe's mark (oe-kernel `route::assigned`), so only ours is replaced or removed.

use std::net::IpAddr;

use oe_kernel::route::{AddressSpec, RouteSpec, Rtnl};
use oe_policy::{KernelOp, KernelReply};

/// Runs one of the assigned-address requests.
pub(super) async fn execute(rtnl: &mut Rtnl, op: KernelOp) -> Result<KernelReply, String> {
    let result = match op {
        KernelOp::AddAssigned {
            addr,
            peer,
            valid_secs,
        } => add_assigned(rtnl, addr, peer, valid_secs).await,
        KernelOp::RemoveAssigned { addr, peer } => {
            let route = rtnl.delete_route(peer).await;
            let address = rtnl
                .delete_address(&AddressSpec::on_loopback(addr, None))
                .await;
            route.and(address)
        }
        KernelOp::AddClientRoute {
            client,
            via,
            valid_secs,
        } => host_route(rtnl, client, via, None, valid_secs).await,
        KernelOp::RemoveClientRoute { client } => rtnl.delete_route(client).await,
        _ => return Err("not an assigned-address request".into()),
    };
    result
        .map(|()| KernelReply::Done)
        .map_err(|e| e.to_string())
}

/// The address first (a route cannot prefer a source the host does not have), then the route.
async fn add_assigned(
    rtnl: &mut Rtnl,
    addr: IpAddr,
    peer: IpAddr,
    valid_secs: u32,
) -> Result<(), oe_kernel::Error> {
    rtnl.add_address(&AddressSpec::on_loopback(addr, Some(valid_secs)))
        .await?;
    host_route(rtnl, peer, peer, Some(addr), valid_secs).await
}

/// A host route to `dst` the way the kernel routes to `via` now (for a renewal that is our own
/// route, which leads the same way).
async fn host_route(
    rtnl: &mut Rtnl,
    dst: IpAddr,
    via: IpAddr,
    pref_src: Option<IpAddr>,
    valid_secs: u32,
) -> Result<(), oe_kernel::Error> {
    let route = rtnl.route_to(via).await?;
    let mut spec = RouteSpec::like(dst, &route, pref_src);
    spec.expires_secs = Some(valid_secs);
    rtnl.add_route(&spec).await
}

/// Removes every address and route of ours (shutdown, and what an earlier run left).
pub(super) async fn flush(rtnl: &mut Rtnl) {
    match rtnl.flush_owned().await {
        Ok(gone) if gone == Default::default() => {}
        Ok(gone) => tracing::info!("removed assigned addresses and routes: {gone:?}"),
        Err(e) => tracing::warn!("cannot remove assigned addresses and routes: {e}"),
    }
}
