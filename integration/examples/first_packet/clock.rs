//! One clock for the application, the server and the captures: Unix time in seconds. Every
//! namespace of the guest shares the guest kernel's clock, and tcpdump stamps packets with it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
