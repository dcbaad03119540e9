//! Time, passed in with every input.

use std::time::{Instant, SystemTime};

/// The two clocks the core reads: monotonic time for its own timers and the engines', wall-clock
/// time for DNS lifetimes (RRSIG validity is wall-clock) and event stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    /// Seconds since the Unix epoch, for event stamps.
    pub fn unix_secs(&self) -> f64 {
        self.wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// `self` moved on by `d` on both clocks (tests).
    pub fn after(&self, d: std::time::Duration) -> Self {
        Self {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }
}
