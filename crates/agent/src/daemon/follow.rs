//! Following the system's resolver at run time (see [`super::resolver`] for where upstreams
//! come from): every [`FOLLOW_EVERY`] the files are read again; a change reaches the stub (after
//! its loop check) and the validator at once. When nothing usable is left the stub keeps its
//! last upstreams, so DNS keeps working, and the problem is shown in `status` and `explain`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use oe_dns::trigger::UpstreamControl;

use super::resolver::{
    discover, no_upstream, read_file, without_loops, Following, Found, UpstreamState, FOLLOW_EVERY,
};

/// What the follow task moves.
#[derive(Debug)]
pub(crate) struct Follow {
    /// The running stub's upstreams, if the DNS trigger runs.
    pub(crate) control: Option<UpstreamControl>,
    /// The validator, unless the configuration names its servers.
    pub(crate) validator: Option<Following>,
    pub(crate) state: Arc<RwLock<UpstreamState>>,
    pub(crate) configured: Vec<SocketAddr>,
    pub(crate) own: Vec<SocketAddr>,
    /// Tells the executor (new upstreams go into `clear`).
    pub(crate) tx: tokio::sync::mpsc::Sender<super::Msg>,
}

impl Follow {
    /// Applies what `found` offers. Returns the problem when nothing usable is in it (the stub
    /// and the validator then keep what they had).
    pub(crate) async fn apply(&self, found: &Found) -> Result<(), String> {
        let (usable, notes) = match &self.control {
            Some(control) => without_loops(control, found).await,
            None => (found.servers.clone(), found.notes.clone()),
        };
        if usable.is_empty() {
            let problem = no_upstream(found, &self.own, &notes);
            self.update(|s| s.problem = Some(problem.clone()));
            return Err(problem);
        }
        for note in &notes {
            tracing::warn!("DNS upstreams: {note}");
        }
        if let Some(control) = &self.control {
            if let Err(e) = control.set_upstreams(usable.clone()) {
                tracing::warn!("DNS upstreams not changed: {e}");
            }
        }
        if let Some(validator) = &self.validator {
            validator.follow(&usable);
        }
        tracing::info!("DNS upstreams: {usable:?} (from {})", found.source);
        let clear = usable.iter().chain(&found.behind).copied().collect();
        self.update(|s| {
            *s = UpstreamState {
                servers: usable,
                source: found.source.clone(),
                problem: None,
                clear,
            }
        });
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut UpstreamState)) {
        match self.state.write() {
            Ok(mut s) => f(&mut s),
            Err(e) => f(&mut e.into_inner()),
        }
    }

    /// What the configuration and the files offer now.
    pub(crate) fn discover(&self) -> Found {
        discover(&self.configured, &self.own, read_file)
    }

    /// Follows changes until the runtime stops. Fixed upstreams (from the configuration) are
    /// not followed.
    pub(crate) fn spawn(self, first: Found) {
        if !self.configured.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let mut last = first;
            loop {
                tokio::time::sleep(FOLLOW_EVERY).await;
                let found = self.discover();
                if found == last {
                    continue;
                }
                let applied = self.apply(&found).await;
                if applied.is_ok() {
                    let servers = self
                        .state
                        .read()
                        .map(|s| s.clear.clone())
                        .unwrap_or_default();
                    let _ = self.tx.send(super::Msg::Upstreams(servers)).await;
                }
                if let Err(problem) = applied {
                    let kept = self
                        .control
                        .as_ref()
                        .map(UpstreamControl::upstreams)
                        .unwrap_or_default();
                    tracing::warn!("{problem}; still forwarding to {kept:?}");
                    self.update(|s| {
                        s.problem = Some(format!("{problem}; still forwarding to {kept:?}"));
                    });
                }
                last = found;
            }
        });
    }
}
