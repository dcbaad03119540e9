//! Timers of one IKE SA: retransmission, half-open expiry, liveness, and rekeys at the soft
//! lifetimes of the children and the IKE SA.

use std::time::Instant;

use super::rekey::{start_retiring_delete, ChildRekey, IkeRekey};
use super::tasks::Task;
use super::{ChildState, Ctx, IkeSa, Phase};
use crate::error::LocalError;

impl IkeSa {
    /// The earliest instant at which `on_timeout` has something to do.
    pub(crate) fn next_timeout(&self, ctx_cfg: &crate::config::Config) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let mut t = self.retransmit_deadline();
        let mut min = |x: Option<Instant>| {
            t = match (t, x) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        if self.phase == Phase::Connecting {
            if !self.busy_sending() {
                min(Some(self.created + ctx_cfg.half_open_timeout));
            }
            return t;
        }
        if self.established() {
            min(self.keepalive_due(ctx_cfg));
            if !self.busy() {
                min(ctx_cfg.liveness_interval.map(|i| self.last_heard + i));
            }
            min(self.rekey_at);
            min(Some(self.created + ctx_cfg.ike_lifetime.hard));
            min(self
                .children
                .iter()
                .filter(|c| c.state == ChildState::Installed)
                .map(|c| c.rekey_at)
                .min());
            min(self.children.iter().filter_map(|c| c.retire_at).min());
            min(self.retire_at.filter(|_| self.retiring.is_some()));
        }
        t
    }

    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        self.retransmit(ctx);
        if self.is_closed() {
            return;
        }
        let now = ctx.now;
        // A responder whose peer never finished IKE_AUTH, or an initiator stuck waiting for the
        // agent, gives up (the initiator's own exchange times out through retransmission).
        if self.phase == Phase::Connecting
            && now >= self.created + ctx.config.half_open_timeout
            && !self.busy_sending()
        {
            return self.fail(ctx, LocalError::Timeout.into());
        }
        if !self.established() {
            return;
        }
        self.keepalive(ctx);
        if ctx
            .config
            .liveness_interval
            .is_some_and(|i| now >= self.last_heard + i)
            && !self.busy()
        {
            self.queue(Task::Liveness);
            self.last_heard = now;
        }
        // The IKE SA outlived its hard lifetime (every rekey failed): delete it.
        if now >= self.created + ctx.config.ike_lifetime.hard {
            self.core.tm.queue.clear();
            self.created = now;
            self.queue(Task::DeleteIke);
            return self.kick(ctx);
        }
        if self.rekey_at.is_some_and(|t| now >= t) {
            self.rekey_at = None;
            self.queue(Task::IkeRekey(IkeRekey::new()));
        }
        self.retire(ctx);
        let due: Vec<u32> = self
            .children
            .iter()
            .filter(|c| c.state == ChildState::Installed && now >= c.rekey_at)
            .map(|c| c.sa.inbound_spi)
            .collect();
        for spi in due {
            if let Some(c) = self.child_by_inbound(spi) {
                c.rekey_at = now + ctx.config.child_lifetime.soft;
            }
            self.queue(Task::ChildRekey(ChildRekey::new(spi)));
        }
        self.kick(ctx);
    }

    /// Deletes what the peer rekeyed but never deleted, once the grace period is over (RFC 7296
    /// 2.8 for children, 2.18 for the IKE SA).
    fn retire(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let due: Vec<u32> = self
            .children
            .iter_mut()
            .filter(|c| c.retire_at.is_some_and(|t| now >= t))
            .map(|c| {
                c.retire_at = None;
                c.sa.inbound_spi
            })
            .collect();
        for spi in due {
            self.queue(Task::DeleteChild(spi));
        }
        if self.retire_at.is_some_and(|t| now >= t) {
            self.retire_at = None;
            let idle = self
                .retiring
                .as_ref()
                .is_some_and(|c| c.tm.active.is_none());
            if idle {
                if let Err(e) = start_retiring_delete(self, ctx) {
                    self.fail(ctx, e);
                }
            }
        }
    }

    /// When the next NAT-keepalive is due: only behind a NAT (our address is translated), whose
    /// mapping would otherwise expire while no traffic flows (RFC 3948 4).
    fn keepalive_due(&self, cfg: &crate::config::Config) -> Option<Instant> {
        let interval = cfg.nat_keepalive.filter(|_| self.nat.0)?;
        Some(self.keepalive_at + interval)
    }

    /// Sends a NAT-keepalive when due: one 0xFF byte from our NAT-T port (RFC 3948 2.3), no
    /// non-ESP marker; the peer's kernel drops it.
    fn keepalive(&mut self, ctx: &mut Ctx<'_>) {
        if self.keepalive_due(ctx.config).is_some_and(|t| ctx.now >= t) {
            self.keepalive_at = ctx.now;
            ctx.out.transmit(crate::event::Transmit {
                local: self.local,
                remote: self.remote,
                contents: vec![0xff],
            });
        }
    }

    /// An initiator's request is still being retransmitted.
    fn busy_sending(&self) -> bool {
        self.core
            .tm
            .active
            .as_ref()
            .is_some_and(|a| a.deadline.is_some())
    }
}
