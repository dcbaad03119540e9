//! The DNS trigger's hook: the stub asks through it; the decisions are the core's. `wants` and
//! `fail_closed` read a view of the group table (they must answer at once, on the stub's tasks);
//! `secure` hands the key and addresses to the core and returns a future that completes when the
//! core releases the answer.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use oe_dns::trigger::{TriggerEvent, TriggerHook};
use oe_dns::{Answer, KeyVerdict, SecureKeys};
use tokio::sync::{mpsc, oneshot};

use super::Msg;
use crate::config::{Group, GroupTable};

/// What the hook needs to decide without asking the core.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) table: GroupTable,
    /// False when the kernel cannot do ESP: nothing is triggered then.
    pub(crate) active: bool,
    pub(crate) fail_closed: bool,
}

/// The agent's [`TriggerHook`].
#[derive(Debug)]
pub(crate) struct AgentHook {
    pub(crate) view: Arc<RwLock<View>>,
    pub(crate) tx: mpsc::Sender<Msg>,
}

impl TriggerHook for AgentHook {
    fn wants(&self, addrs: &[IpAddr]) -> bool {
        let Ok(view) = self.view.read() else {
            return false;
        };
        view.active
            && addrs
                .iter()
                .any(|a| view.table.classify(*a, 0, 0).group.initiates())
    }

    fn secure(
        &self,
        name: oe_dns::Name,
        addrs: Vec<IpAddr>,
        keys: SecureKeys,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (done, finished) = oneshot::channel();
        let keys = KeyVerdict::of(&Ok(Answer::Secure(keys)));
        let msg = Msg::Trigger {
            name,
            keys,
            addrs,
            done,
        };
        if self.tx.try_send(msg).is_err() {
            tracing::warn!("trigger dropped: the agent is busy");
        }
        Box::pin(async move {
            let _ = finished.await;
        })
    }

    fn record(&self, event: TriggerEvent) {
        let _ = self
            .tx
            .try_send(Msg::Input(oe_policy::Input::TriggerRecord(event)));
    }

    fn fail_closed(&self, addrs: &[IpAddr]) -> bool {
        let Ok(view) = self.view.read() else {
            return false;
        };
        view.fail_closed
            && addrs
                .iter()
                .any(|a| view.table.classify(*a, 0, 0).group == Group::Private)
    }
}
