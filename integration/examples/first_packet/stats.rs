//! One round's figures, and the table of medians.

use std::fmt::Write as _;

use crate::app::{AppSide, ServerSide};
use crate::wire::WireView;

/// The median (NaN for no samples).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One round of one path, in milliseconds from the application's start (its DNS query on the
/// trigger paths, its first datagram otherwise).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub answer: Option<f64>,
    pub first_ike: Option<f64>,
    pub first_esp: Option<f64>,
    pub udp_delivered: Option<f64>,
    /// Whether datagram 0 itself arrived.
    pub first_datagram_arrived: bool,
    pub tcp_connected: Option<f64>,
    pub tcp_delivered: Option<f64>,
    pub sent: u32,
    pub lost: u32,
    pub clear: usize,
    pub retransmissions: u64,
    pub ike_round_trips: Option<f64>,
    pub exchanges: usize,
}

impl Sample {
    /// Combines the application's, the server's and the wire's views.
    pub fn new(app: &AppSide, server: &ServerSide, wire: &WireView, retransmissions: u64) -> Self {
        let ms = |t: f64| (t - app.start) * 1e3;
        let received = u32::try_from(server.datagrams.len()).unwrap_or(u32::MAX);
        Self {
            answer: app.answer.map(ms),
            first_ike: wire.first_ike.map(ms),
            first_esp: wire.first_esp.map(ms),
            udp_delivered: server
                .datagrams
                .iter()
                .map(|d| d.1)
                .min_by(f64::total_cmp)
                .map(ms),
            first_datagram_arrived: server.datagrams.iter().any(|d| d.0 == 0),
            tcp_connected: app.tcp_connected.map(ms),
            tcp_delivered: server.tcp_bytes.map(ms),
            sent: app.sent,
            lost: app.sent.saturating_sub(received),
            clear: wire.clear,
            retransmissions,
            ike_round_trips: wire.ike_round_trips.map(|s| s * 1e3),
            exchanges: wire.exchanges,
        }
    }
}

/// A path's rounds and its floor (milliseconds from the application's start).
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub label: String,
    pub samples: Vec<Sample>,
    /// How the floor is made up, and its value; filled in once the floors are known.
    pub floor: Option<(String, f64)>,
}

impl Row {
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            ..Self::default()
        }
    }

    fn med(&self, f: impl Fn(&Sample) -> Option<f64>) -> f64 {
        median(self.samples.iter().filter_map(f).collect())
    }

    /// The median IKE round trips of this path (its IKE floor).
    pub fn ike(&self) -> f64 {
        self.med(|s| s.ike_round_trips)
    }

    /// The median time to the first ESP packet.
    pub fn first_esp(&self) -> f64 {
        self.med(|s| s.first_esp)
    }

    /// The median number of IKE exchanges on the wire.
    pub fn exchanges(&self) -> f64 {
        self.med(|s| Some(s.exchanges as f64))
    }
}

fn cell(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.1}")
    }
}

/// The table: medians per path, then the totals that must be zero.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:>3} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>6} {:>5} {:>6}",
        "path (ms from the app's start, medians)",
        "n",
        "answer",
        "1st IKE",
        "1st ESP",
        "UDP dlvd",
        "TCP conn",
        "TCP dlvd",
        "IKE wire",
        "floor",
        "lost/sent",
        "d0 ok",
        "clear",
        "rexmit"
    );
    for row in rows {
        let n = row.samples.len();
        let sum = |f: &dyn Fn(&Sample) -> u64| row.samples.iter().map(f).sum::<u64>();
        let lost = sum(&|s| u64::from(s.lost));
        let sent = sum(&|s| u64::from(s.sent));
        let d0 = row
            .samples
            .iter()
            .filter(|s| s.first_datagram_arrived)
            .count();
        let _ = writeln!(
            out,
            "{:<44} {:>3} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>6} {:>5} {:>6}",
            row.label,
            n,
            cell(row.med(|s| s.answer)),
            cell(row.med(|s| s.first_ike)),
            cell(row.first_esp()),
            cell(row.med(|s| s.udp_delivered)),
            cell(row.med(|s| s.tcp_connected)),
            cell(row.med(|s| s.tcp_delivered)),
            cell(row.ike()),
            row.floor.as_ref().map_or("-".into(), |f| cell(f.1)),
            format!("{lost}/{sent}"),
            format!("{d0}/{n}"),
            sum(&|s| s.clear as u64),
            sum(&|s| s.retransmissions),
        );
    }
    out
}

/// Each path's floor spelled out.
pub fn floor_notes(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        if let Some((how, v)) = &row.floor {
            let esp = row.first_esp();
            let _ = writeln!(
                out,
                "  {:<44} floor {:>6} = {how} ({} IKE exchanges); first ESP {} ({:.2}x floor, +{} ms)",
                row.label,
                cell(*v),
                row.exchanges(),
                cell(esp),
                esp / v,
                cell(esp - v)
            );
        }
    }
    out
}
