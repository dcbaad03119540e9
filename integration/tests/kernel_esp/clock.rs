//! How XFRM policy lifetimes meet wall-clock steps, measured in the UML guest, whose
//! clock is its own (stepping the host's would disturb everything else on it). The
//! kernel's policy timer runs on jiffies and compares wall-clock seconds at each run
//! (`xfrm_policy_timer`); what that means for a policy's life is what these tests pin.

use std::process::Command;
use std::time::Instant;

use super::*;

const LIFETIME: u64 = 4;

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

/// Seconds (monotonic) from the policy's insertion to its hard POLEXPIRE, with the wall
/// clock stepped by `step` seconds `after` the insertion.
fn lifetime_with_step(step: i64, after: Duration) -> f64 {
    let ns = Netns::new("clock");
    kernel(&ns, |mut x| async move {
        let mut events = EventSocket::open().unwrap();
        let spec = PolicySpec::trap(
            TrafficSelector::to(Prefix::new(ip("192.0.2.0"), 24).unwrap()),
            reqid(1),
        )
        .expiring(LIFETIME);
        x.add_policy(&spec).await.unwrap();
        let added = Instant::now();
        std::thread::sleep(after);
        step_clock(step);
        loop {
            match events.next_within(Duration::from_secs(30)).await.unwrap() {
                Some(Event::PolicyExpire(e)) if e.hard => break,
                Some(_) => continue,
                None => panic!("no POLEXPIRE within 30 s"),
            }
        }
        added.elapsed().as_secs_f64()
    })
}

#[test]
fn policy_lifetimes_against_wall_clock_steps() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("clock::policy_lifetimes_against_wall_clock_steps");
    }
    let lifetime = LIFETIME as f64;
    // Forward by an hour after the first timer run (1 s): the policy still lives its
    // lifetime, counted on the monotonic clock.
    let forward = lifetime_with_step(3600, Duration::from_millis(1500));
    // Forward before the first timer run: it ends at that run, early.
    let forward_early = lifetime_with_step(3600, Duration::from_millis(200));
    // Back by six seconds: it lives six seconds longer.
    let back = lifetime_with_step(-6, Duration::from_millis(1500));
    println!("lifetime {lifetime} s; clock +1 h at 1.5 s: {forward:.1} s; +1 h at 0.2 s: {forward_early:.1} s; -6 s at 1.5 s: {back:.1} s");
    assert!(
        (lifetime - 0.5..lifetime + 1.5).contains(&forward),
        "{forward}"
    );
    assert!(forward_early < 2.0, "{forward_early}");
    assert!((lifetime + 5.0..lifetime + 8.0).contains(&back), "{back}");
}
