//! How XFRM policy lifetimes meet wall-clock steps, measured in the UML guest, whose
//! clock is its own (stepping the host's would disturb everything else on it). The
//! kernel's policy timer runs on jiffies and compares wall-clock seconds at each run
//! (`xfrm_policy_timer`); what that means for a policy's life is what these tests pin.

use std::process::Command;
use std::time::Instant;

use super::*;

const LIFETIME: u64 = 6;

/// The kernel's first run of a new policy's timer, after insertion (`xfrm_policy_insert`).
const FIRST_TIMER_RUN: Duration = Duration::from_secs(1);

/// Steps the guest's wall clock by `seconds`.
fn step_clock(seconds: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let target = i64::try_from(now).unwrap() + seconds;
    let out = Command::new("date")
        .arg("-s")
        .arg(format!("@{target}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "date: {out:?}");
}

/// One policy's life with the wall clock stepped: the kernel inserted it somewhere between
/// `before` and `after` (a loaded host can delay the netlink answer), `stepped` is when the
/// step was done, `expired` when the hard POLEXPIRE arrived (all monotonic).
struct Life {
    before: Instant,
    after: Instant,
    stepped: Instant,
    expired: Instant,
}

impl Life {
    /// Seconds the policy lived at least and at most.
    fn bounds(&self) -> (f64, f64) {
        let from = |t: Instant| self.expired.duration_since(t).as_secs_f64();
        (from(self.after), from(self.before))
    }

    /// Whether the step came before the kernel's first timer run could have.
    fn stepped_before_first_run(&self) -> bool {
        self.stepped.duration_since(self.before) < FIRST_TIMER_RUN
    }
}

/// A policy with a `LIFETIME` hard limit, the wall clock stepped by `step` seconds `after`
/// its insertion.
fn life_with_step(step: i64, after: Duration) -> Life {
    let ns = Netns::new("clock");
    kernel(&ns, |mut x| async move {
        let mut events = EventSocket::open().unwrap();
        let spec = PolicySpec::trap(
            TrafficSelector::to(Prefix::new(ip("192.0.2.0"), 24).unwrap()),
            reqid(1),
        )
        .expiring(LIFETIME);
        let before = Instant::now();
        x.add_policy(&spec).await.unwrap();
        let added = Instant::now();
        std::thread::sleep(after);
        step_clock(step);
        let stepped = Instant::now();
        loop {
            match events.next_within(Duration::from_secs(30)).await.unwrap() {
                Some(Event::PolicyExpire(e)) if e.hard => break,
                Some(_) => continue,
                None => panic!("no POLEXPIRE within 30 s"),
            }
        }
        Life {
            before,
            after: added,
            stepped,
            expired: Instant::now(),
        }
    })
}

#[test]
fn policy_lifetimes_against_wall_clock_steps() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("clock::policy_lifetimes_against_wall_clock_steps");
    }
    let lifetime = LIFETIME as f64;
    // Forward by an hour after the first timer run (1 s): the policy still lives its
    // lifetime, counted on the monotonic clock (the timer's next run is at `LIFETIME`).
    let forward = life_with_step(3600, Duration::from_secs(3)).bounds();
    // Forward before the first timer run: it ends at that run, early. On a loaded host the
    // step can miss that window; the case is tried again then.
    let forward_early = (0..3)
        .map(|_| life_with_step(3600, Duration::from_millis(200)))
        .find(Life::stepped_before_first_run)
        .expect("the clock step never came within a second of the insertion")
        .bounds();
    // Back by six seconds: it lives six seconds longer.
    let back = life_with_step(-6, Duration::from_secs(3)).bounds();
    println!(
        "lifetime {lifetime} s; lived (at least, at most): clock +1 h at 3 s: {forward:.1?} s; \
         +1 h at 0.2 s: {forward_early:.1?} s; -6 s at 3 s: {back:.1?} s"
    );
    // Each upper bound allows a timer run delayed by a loaded host.
    assert!(
        forward.1 >= lifetime - 0.5 && forward.0 <= lifetime + 3.0,
        "{forward:?}"
    );
    assert!(forward_early.0 < 2.0, "{forward_early:?}");
    assert!(
        back.1 >= lifetime + 5.0 && back.0 <= lifetime + 9.0,
        "{back:?}"
    );
}
