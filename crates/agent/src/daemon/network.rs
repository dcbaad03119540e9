//! Following the network: rtnetlink events (addresses, links, routes) into the core as they
//! come, and the dumps the core asks for at start and after lost events. Decisions are the
//! core's (`oe_policy` `core/network.rs`).

use oe_kernel::route::{NetEventSocket, Rtnl};
use oe_policy::{Input, KernelReply};
use tokio::sync::mpsc;

use super::Msg;

/// Starts the task that feeds rtnetlink events to the core.
pub(super) fn spawn_events(tx: mpsc::Sender<Msg>) -> Result<(), oe_kernel::Error> {
    let mut events = NetEventSocket::open()?;
    tokio::spawn(async move {
        loop {
            match events.next().await {
                Ok(event) => {
                    if tx.send(Msg::Input(Input::Net(event))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!("rtnetlink event socket failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

/// The host's addresses, links and routes, for `KernelOp::ReadNetwork`.
pub(super) async fn read(rtnl: &mut Rtnl) -> Result<KernelReply, String> {
    let addresses = rtnl.addresses().await.map_err(|e| e.to_string())?;
    let links = rtnl.links().await.map_err(|e| e.to_string())?;
    let routes = rtnl.routes().await.map_err(|e| e.to_string())?;
    Ok(KernelReply::Network {
        addresses,
        links,
        routes,
    })
}
