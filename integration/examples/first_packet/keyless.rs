//! What the agent costs everyone else: the first datagram to a new host that publishes no key,
//! from the workstation running `oe` (`private-or-clear` everywhere, the default) against the same
//! datagram from `plain`, which runs no agent. Each datagram goes to an address never used
//! before. Cold: the first keyless address after the agent started (its cache empty). Warm: the
//! next addresses in the same reverse zone (what the agent learned about that zone may cover
//! them). Two zones: the signed reverse zone of 192.0.2.0/24 (no name: NXDOMAIN proven by NSEC)
//! and 198.51.100.0/24 (unsigned, under an insecure delegation when the fixture has one).

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use oe_integration::agent::Agent;

use crate::bed::{Bed, Host, KEYLESS_FIRST, KEYLESS_INSECURE, KEYLESS_SIGNED};
use crate::clock::now;
use crate::stats::median;

const PORT: u16 = 6000;
/// Warm samples per zone and round.
const WARM: u8 = 3;

/// Samples (milliseconds from send to arrival) per case.
#[derive(Debug, Default)]
pub struct Keyless {
    pub cases: Vec<(String, Vec<f64>)>,
}

impl Keyless {
    fn push(&mut self, case: &str, ms: f64) {
        match self.cases.iter_mut().find(|c| c.0 == case) {
            Some(c) => c.1.push(ms),
            None => self.cases.push((case.to_owned(), vec![ms])),
        }
    }

    fn median(&self, case: &str) -> f64 {
        self.cases
            .iter()
            .find(|c| c.0 == case)
            .map_or(f64::NAN, |c| median(c.1.clone()))
    }

    /// The table: each case with the agent against the same without it.
    pub fn table(&self) -> String {
        let mut out =
            String::from("keyless destinations: first datagram, send -> arrival (ms, medians)\n");
        for zone in ["signed zone (NSEC)", "198.51.100/24"] {
            for phase in ["cold", "warm"] {
                let with = self.median(&format!("oe {zone} {phase}"));
                let without = self.median(&format!("no agent {zone} {phase}"));
                let n = self
                    .cases
                    .iter()
                    .find(|c| c.0 == format!("oe {zone} {phase}"))
                    .map_or(0, |c| c.1.len());
                out += &format!(
                    "  {zone:<20} {phase:<5} n={n:<3} with oe {with:>8.2}  without {without:>6.2}  added {:>8.2}\n",
                    with - without
                );
            }
        }
        out
    }
}

/// Receives on every keyless address: payload (the sample's id) -> arrival time.
struct Receiver {
    arrivals: Mutex<mpsc::Receiver<(u32, f64)>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(host: &Host) -> Self {
        let socket = host.ns.run(|| UdpSocket::bind(("0.0.0.0", PORT)).unwrap());
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (tx, arrivals) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while !s.load(Ordering::SeqCst) {
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    let at = now();
                    if let Some(id) = buf.get(..n).and_then(|b| b.try_into().ok()) {
                        let _ = tx.send((u32::from_be_bytes(id), at));
                    }
                }
            }
        });
        Self {
            arrivals: Mutex::new(arrivals),
            stop,
            thread: Some(thread),
        }
    }

    /// Sends datagram `id` from `sender` to `to` and waits (3 s at most) for it; milliseconds.
    fn time(&self, sender: &Host, to: IpAddr, id: u32) -> Option<f64> {
        let sent = sender.ns.run(|| {
            let socket = UdpSocket::bind((sender.addr, 0)).unwrap();
            let t = now();
            let _ = socket.send_to(&id.to_be_bytes(), (to, PORT));
            t
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let arrivals = self.arrivals.lock().unwrap();
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match arrivals.recv_timeout(left) {
                Ok((got, at)) if got == id => return Some((at - sent) * 1e3),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `rounds` rounds; each uses 1 + [`WARM`] new addresses per zone with the agent and as
/// many without.
pub fn measure(bed: &Bed, config: &str, rounds: u8) -> Keyless {
    let receiver = Receiver::start(&bed.nokey);
    let mut result = Keyless::default();
    let mut next = KEYLESS_FIRST;
    let mut id = 0u32;
    for _ in 0..rounds {
        for (zone, prefix) in [
            ("signed zone (NSEC)", KEYLESS_SIGNED),
            ("198.51.100/24", KEYLESS_INSECURE),
        ] {
            let mut agent = Agent::start(&bed.ws.ns, config);
            for i in 0..=WARM {
                let phase = if i == 0 { "cold" } else { "warm" };
                let with: IpAddr = format!("{prefix}.{}", next + 2 * i).parse().unwrap();
                let without: IpAddr = format!("{prefix}.{}", next + 2 * i + 1).parse().unwrap();
                id += 2;
                match receiver.time(&bed.ws, with, id) {
                    Some(ms) => result.push(&format!("oe {zone} {phase}"), ms),
                    None => eprintln!("keyless: the datagram to {with} was lost\n{}", agent.log()),
                }
                if let Some(ms) = receiver.time(&bed.plain, without, id + 1) {
                    result.push(&format!("no agent {zone} {phase}"), ms);
                }
            }
            agent.stop();
        }
        next += 2 * (WARM + 1);
    }
    result
}
