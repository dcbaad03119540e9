//! The executor's clocks. The core's monotonic time is CLOCK_BOOTTIME, which goes on counting
//! while the machine is suspended (CLOCK_MONOTONIC, behind `Instant`, stops): the kernel's SA
//! lifetimes compare wall-clock seconds, so after a suspend the kernel sees its SAs as old as
//! they are, and so do the engines' rekey and liveness timers, and the core sees how long it
//! did not run (`oe_policy` `core/clock.rs`). The core's `Instant`s are `Instant`s of the first
//! reading moved on by boot time; the main loop sleeps on a CLOCK_BOOTTIME timerfd, so a
//! deadline that passed during a suspend fires at resume.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use oe_policy::Now;
use rustix::time::{
    clock_gettime, timerfd_create, timerfd_settime, ClockId, Itimerspec, TimerfdClockId,
    TimerfdFlags, TimerfdTimerFlags, Timespec,
};
use tokio::io::unix::AsyncFd;

/// The first reading of both clocks: the core's `Instant`s count boot time from here.
struct Base {
    mono: Instant,
    boot: Duration,
}

static BASE: OnceLock<Base> = OnceLock::new();

fn base() -> &'static Base {
    BASE.get_or_init(|| Base {
        mono: Instant::now(),
        boot: boottime(),
    })
}

fn boottime() -> Duration {
    let t = clock_gettime(ClockId::Boottime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The current time as the core takes it.
pub(crate) fn now() -> Now {
    let base = base();
    Now {
        mono: base.mono + boottime().saturating_sub(base.boot),
        wall: SystemTime::now(),
    }
}

/// The CLOCK_BOOTTIME reading at which the core's `deadline` falls.
fn boot_deadline(deadline: Instant) -> Duration {
    let base = base();
    base.boot + deadline.saturating_duration_since(base.mono)
}

/// A timer on CLOCK_BOOTTIME for the main loop.
pub(crate) struct BootTimer {
    fd: AsyncFd<OwnedFd>,
}

impl std::fmt::Debug for BootTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BootTimer")
    }
}

impl BootTimer {
    /// Must be called inside a tokio runtime.
    pub(crate) fn new() -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Boottime,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        // `AsyncFd::new` is deprecated for types whose fd can change or close under it; an
        // `OwnedFd` owns its fd and closes it only on drop, which is what `register` asks for.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Self { fd })
    }

    /// Returns when the core's `deadline` has come (at once if it has passed).
    pub(crate) async fn sleep_until(&self, deadline: Instant) {
        let at = boot_deadline(deadline).max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: i64::try_from(at.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(at.subsec_nanos()),
            },
        };
        if let Err(e) = timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::ABSTIME, &spec) {
            tracing::error!("cannot arm the boot-time timer: {e}");
            return tokio::time::sleep(Duration::from_secs(1)).await;
        }
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return tokio::time::sleep(Duration::from_secs(1)).await;
            };
            let mut expirations = [0u8; 8];
            match rustix::io::read(self.fd.get_ref(), &mut expirations) {
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_instants_map_to_boot_time_and_back() {
        let now = now();
        let boot = boot_deadline(now.mono);
        let measured = boottime();
        assert!(boot <= measured && measured - boot < Duration::from_secs(1));
        let later = boot_deadline(now.mono + Duration::from_secs(90));
        assert_eq!(later - boot, Duration::from_secs(90));
    }

    #[tokio::test]
    async fn the_timer_fires_at_its_deadline_and_at_once_when_it_has_passed() {
        let timer = BootTimer::new().unwrap();
        let start = Instant::now();
        timer
            .sleep_until(now().mono + Duration::from_millis(50))
            .await;
        assert!(start.elapsed() >= Duration::from_millis(50));
        timer.sleep_until(now().mono - Duration::from_secs(1)).await;
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
