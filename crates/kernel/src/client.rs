//! The async XFRM client: one netlink socket, one request in flight at a time.

use std::net::IpAddr;

use netlink_sys::protocols::NETLINK_XFRM;

use crate::error::Error;
use crate::event::Mapping;
use crate::nat;
use crate::netlink::RequestSocket;
use crate::ownership::{OwnedSa, Ownership};
use crate::policy::{PolicyInfo, PolicyKey, PolicySpec};
use crate::refresh;
use crate::sa::{Mode, SaId, SaInfo, SaSpec};
use crate::snapshot::Owned;
use crate::types::{Reqid, Spi};
use crate::wire::batch::{Batch, BatchOutcome, BatchStep};
use crate::wire::request::Request;

/// Dumps interrupted by concurrent changes are retried this many times.
const DUMP_TRIES: usize = 4;

/// A connection to the kernel's XFRM netlink interface, in the network namespace of
/// the thread that opened it. Every XFRM request, reads included, needs `CAP_NET_ADMIN`.
///
/// Cancel-safe: a request abandoned mid-way leaves replies that the next request
/// recognises by sequence number and skips.
#[derive(Debug)]
pub struct Xfrm {
    socket: RequestSocket,
    ownership: Ownership,
}

/// What [`Xfrm::flush_owned`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flushed {
    /// Policies removed.
    pub policies: usize,
    /// SAs (including larval ones) removed.
    pub sas: usize,
}

/// What [`Xfrm::refresh_policies`] did.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Our policies renewed in place.
    pub renewed: usize,
    /// Wanted policies that were gone, added again.
    pub added: usize,
    /// Wanted policies whose selector a foreign policy holds: left alone.
    pub foreign: Vec<PolicyKey>,
    /// Requests the kernel refused.
    pub failed: Vec<(PolicyKey, Error)>,
}

impl Xfrm {
    /// Opens a socket. Must be called inside a tokio runtime with I/O enabled.
    pub fn open(ownership: Ownership) -> Result<Self, Error> {
        Ok(Self {
            socket: RequestSocket::open(NETLINK_XFRM)?,
            ownership,
        })
    }

    /// The ownership marks this client installs with.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// Sends a request and waits for its answer.
    pub async fn execute<T>(&mut self, request: Request<T>) -> Result<T, Error> {
        let op = request.op();
        self.socket.request(op, |seq| request.start(seq)).await
    }

    /// Sends a [`Batch`] as one datagram and waits for the kernel's answer to its last
    /// request; the outcome lists the requests the kernel refused.
    pub async fn execute_batch(&mut self, batch: Batch) -> Result<BatchOutcome, Error> {
        if batch.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let first = self.socket.next_seqs(batch.seqs());
        let (bytes, mut exchange) = batch.start(first);
        let answer = self.socket.converse("batch", &bytes, |datagram| {
            match exchange.on_datagram(datagram) {
                BatchStep::Done(result) => Some(result),
                BatchStep::Pending => None,
            }
        });
        answer.await?
    }

    /// Renews the lifetimes of `wanted` (see [`crate::refresh`]): reads every policy, then
    /// re-puts ours, adds the missing ones and leaves foreign ones alone, in batches.
    pub async fn refresh_policies(&mut self, wanted: &[PolicySpec]) -> Result<Refreshed, Error> {
        let current = self.dump_policies().await?;
        let plan = refresh::plan(wanted, current, &self.ownership)?;
        let mut refreshed = Refreshed {
            renewed: plan.renewed,
            added: plan.added,
            foreign: plan.foreign,
            failed: Vec::new(),
        };
        for (batch, keys) in plan.batches.into_iter().zip(plan.keys) {
            let outcome = self.execute_batch(batch).await?;
            for (n, error) in outcome.failed {
                if let Some(key) = keys.get(n) {
                    refreshed.failed.push((*key, error));
                }
            }
        }
        Ok(refreshed)
    }

    /// Installs an SA (`XFRM_MSG_NEWSA`).
    pub async fn add_sa(&mut self, spec: &SaSpec) -> Result<(), Error> {
        let request = Request::add_sa(spec, &self.ownership)?;
        self.execute(request).await
    }

    /// Installs an SA over an allocated SPI's larval state, or updates an SA's lifetimes and
    /// UDP encapsulation (`XFRM_MSG_UPDSA`). The entry is read first and left alone with
    /// [`Error::Foreign`] unless it is ours (see [`crate::ownership`] for the race).
    pub async fn update_sa(&mut self, spec: &SaSpec) -> Result<(), Error> {
        self.update_sa_in(Mode::Transport, spec).await
    }

    /// [`Xfrm::add_sa`] in `mode`.
    pub async fn add_sa_in(&mut self, mode: Mode, spec: &SaSpec) -> Result<(), Error> {
        let request = Request::add_sa_in(mode, spec, &self.ownership)?;
        self.execute(request).await
    }

    /// [`Xfrm::update_sa`] in `mode`.
    pub async fn update_sa_in(&mut self, mode: Mode, spec: &SaSpec) -> Result<(), Error> {
        let current = self.owned_sa(spec.id()).await?;
        let request = Request::update_sa_in(mode, &current, spec, &self.ownership)?;
        self.execute(request).await
    }

    /// Removes an SA if it is ours ([`Error::Foreign`] otherwise, not-found if absent).
    pub async fn delete_sa(&mut self, id: SaId) -> Result<(), Error> {
        let current = self.owned_sa(id).await?;
        self.execute(Request::delete_sa(&current)).await
    }

    /// Makes the SA pair of `mapping` follow the peer's new UDP port (see [`crate::nat`]):
    /// `outbound` is the pair's SA towards the peer.
    pub async fn follow_mapping(&mut self, mapping: &Mapping, outbound: SaId) -> Result<(), Error> {
        let inbound = self.owned_sa(mapping.sa).await?;
        let outbound = self.owned_sa(outbound).await?;
        for request in nat::follow_mapping(mapping, &inbound, &outbound, &self.ownership)? {
            self.execute(request).await?;
        }
        Ok(())
    }

    /// Reads an SA and checks that it is ours.
    pub async fn owned_sa(&mut self, id: SaId) -> Result<OwnedSa, Error> {
        let info = self.get_sa(id).await?;
        self.ownership.check_sa(info)
    }

    /// Reads one SA's counters and last-use time.
    pub async fn get_sa(&mut self, id: SaId) -> Result<SaInfo, Error> {
        self.execute(Request::get_sa(id)).await
    }

    /// Reserves an SPI for the inbound SA from `peer` to `local`.
    pub async fn alloc_spi(
        &mut self,
        local: IpAddr,
        peer: IpAddr,
        reqid: Reqid,
    ) -> Result<Spi, Error> {
        let request = Request::alloc_spi(local, peer, reqid, &self.ownership)?;
        Ok(self.execute(request).await?.id.spi)
    }

    /// Every SA in the namespace.
    pub async fn dump_sas(&mut self) -> Result<Vec<SaInfo>, Error> {
        self.dump(Request::dump_sas).await
    }

    /// Installs a policy (`XFRM_MSG_NEWPOLICY`).
    pub async fn add_policy(&mut self, spec: &PolicySpec) -> Result<(), Error> {
        let request = Request::add_policy(spec, &self.ownership)?;
        self.execute(request).await
    }

    /// Replaces our policy with the same selector and direction in place
    /// (`XFRM_MSG_UPDPOLICY`), or adds `spec` if there is none (`XFRM_MSG_NEWPOLICY`, which
    /// never overwrites). A foreign policy there is left alone: [`Error::Foreign`].
    pub async fn update_policy(&mut self, spec: &PolicySpec) -> Result<(), Error> {
        let request = match self.get_policy(&spec.key()).await {
            Ok(info) => {
                let current = self.ownership.check_policy(info)?;
                Request::update_policy(&current, spec, &self.ownership)?
            }
            Err(e) if e.is_not_found() => Request::add_policy(spec, &self.ownership)?,
            Err(e) => return Err(e),
        };
        self.execute(request).await
    }

    /// Removes our policy with this selector and direction ([`Error::Foreign`] if it is not
    /// ours, not-found if there is none).
    pub async fn delete_policy(&mut self, key: &PolicyKey) -> Result<(), Error> {
        let info = self.get_policy(key).await?;
        let current = self.ownership.check_policy(info)?;
        self.execute(Request::delete_policy(&current)).await
    }

    /// Reads one policy.
    pub async fn get_policy(&mut self, key: &PolicyKey) -> Result<PolicyInfo, Error> {
        self.execute(Request::get_policy(key)).await
    }

    /// Every policy in the namespace.
    pub async fn dump_policies(&mut self) -> Result<Vec<PolicyInfo>, Error> {
        self.dump(Request::dump_policies).await
    }

    async fn dump<T>(&mut self, make: fn() -> Request<Vec<T>>) -> Result<Vec<T>, Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.execute(make()).await {
                Err(Error::DumpInterrupted { .. }) if tries < DUMP_TRIES => continue,
                other => return other,
            }
        }
    }

    /// Our policies and SAs, larval ones included (for the cleanup after a restart, and
    /// the resync after lost events: see [`crate::snapshot`]).
    pub async fn list_owned(&mut self) -> Result<Owned, Error> {
        let policies = self.dump_policies().await?;
        let sas = self.dump_sas().await?;
        Ok(Owned::from_dumps(&self.ownership, policies, sas))
    }

    /// Removes every policy and SA that is ours, and nothing else. Entries that vanish
    /// meanwhile (expired) are not errors.
    pub async fn flush_owned(&mut self) -> Result<Flushed, Error> {
        let owned = self.list_owned().await?;
        let mut flushed = Flushed::default();
        for policy in &owned.policies {
            let request = Request::delete_policy(policy);
            flushed.policies += usize::from(gone(self.execute(request).await)?);
        }
        for sa in &owned.sas {
            let request = Request::delete_sa(sa);
            flushed.sas += usize::from(gone(self.execute(request).await)?);
        }
        Ok(flushed)
    }
}

/// `Ok(true)` if deleted, `Ok(false)` if it was already gone.
fn gone(result: Result<(), Error>) -> Result<bool, Error> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}
