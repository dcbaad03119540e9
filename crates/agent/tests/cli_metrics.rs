//! `oe metrics` against a listener answering canned reports (it stands in for the socket's far
//! end; the real agent is asked in integration/tests/metrics_agent.rs), and its output read back
//! by the reference OpenMetrics parser, Python's prometheus_client (Debian
//! python3-prometheus-client): the parser must accept the text and find the values we meant.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;

use oe_integration::openmetrics::{parse, sample, value};
use serde_json::{json, Value};

/// Answers each request line on one connection with the canned answer for its command.
fn agent(dir: &Path, answers: Vec<(&'static str, Value)>) -> (PathBuf, JoinHandle<Vec<String>>) {
    let path = dir.join("oe.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut asked = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 {
            let request: Value = serde_json::from_str(&line).unwrap();
            let command = request["command"].as_str().unwrap().to_owned();
            let result = answers
                .iter()
                .find(|(c, _)| *c == command)
                .unwrap()
                .1
                .clone();
            let answer = json!({"ok": true, "result": result}).to_string();
            writer.write_all(format!("{answer}\n").as_bytes()).unwrap();
            asked.push(command);
            line.clear();
        }
        asked
    });
    (path, thread)
}

fn canned() -> Vec<(&'static str, Value)> {
    vec![
        (
            "status",
            json!({
                "kind": "status", "version": "0.1.0", "pid": 77, "uptime_secs": 3725, "state": "degraded",
                "degraded_reason": "no ESP", "kernel": {"esp": false, "detail": "no \"esp4\"\nat all"},
                "traps_installed": false, "identity": "address", "key": "null",
                "peers": 2, "child_sas": 1, "shunts": 2, "dns_cache_entries": 3,
                "counters": {"acquires": 5, "negotiations_started": 5, "negotiations_succeeded": 4,
                             "negotiations_failed": 1, "responder_sas": 2, "dns_lookups": 6, "rekeys": 3,
                             "idle_teardowns": 1},
                "trigger": {"listen": ["127.0.2.53:53"], "queries": 40, "opportunistic": 30,
                            "secure_keys": 5, "held": 5, "hold_mean_ms": 12.5, "hold_expired": 1,
                            "no_key": 20, "insecure": 2, "bogus": 3, "formerr": 1, "upstream_failures": 0}
            }),
        ),
        (
            "peers",
            json!({"kind": "peers", "peers": [
            {"address": "192.0.2.2", "state": "established", "role": "initiator", "child_sas": [
                {"spi_in": "c0ffee01", "spi_out": "c0ffee02", "esp": "AES_GCM_16_256",
                 "selectors": "192.0.2.1 <-> 192.0.2.2", "bytes_in": 1234567, "bytes_out": 999,
                 "packets_in": 900, "packets_out": 12, "established_secs_ago": 252, "rekey_in_secs": 3000}]},
            {"address": "192.0.2.3", "state": "negotiating", "role": "initiator", "child_sas": []}]}),
        ),
        (
            "shunts",
            json!({"kind": "shunts", "shunts": [
            {"peer": "198.51.100.9", "action": "pass", "stage": "failure", "group": "private-or-clear",
             "reason": "no key", "installed_secs_ago": 75, "expires_in_secs": 825},
            {"peer": "198.51.100.10", "action": "drop", "stage": "failure", "group": "private",
             "reason": "bogus", "installed_secs_ago": 5}]}),
        ),
        (
            "dns-cache",
            json!({"kind": "dns-cache", "entries": [
            {"name": "a.", "outcome": "secure", "keys": ["Ed25519"], "expires_in_secs": 3600},
            {"name": "b.", "outcome": "bogus", "keys": [], "expires_in_secs": 60},
            {"name": "c.", "outcome": "bogus", "keys": [], "expires_in_secs": 60}]}),
        ),
    ]
}

fn oe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oe"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn metrics_parse_as_openmetrics_with_the_reports_values() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, agent) = agent(dir.path(), canned());
    let out = oe(&["metrics", "--socket", socket.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        agent.join().unwrap(),
        ["status", "peers", "shunts", "dns-cache"]
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let s = parse(&text);

    let v = |name: &str, labels: Value| value(&s, name, &labels);
    assert_eq!(v("oe_acquires_total", json!({})), 5.0);
    assert_eq!(
        sample(&s, "oe_acquires_total", &json!({}))["type"],
        "counter"
    );
    assert_eq!(
        v("oe_negotiations_total", json!({"outcome": "failed"})),
        1.0
    );
    assert_eq!(v("oe_build_info", json!({"version": "0.1.0"})), 1.0);
    assert_eq!(
        sample(&s, "oe_agent_state", &json!({"oe_agent_state": "degraded"}))["type"],
        "stateset"
    );
    assert_eq!(
        v("oe_agent_state", json!({"oe_agent_state": "degraded"})),
        1.0
    );
    assert_eq!(
        v("oe_agent_state", json!({"oe_agent_state": "running"})),
        0.0
    );
    assert_eq!(
        sample(&s, "oe_uptime_seconds", &json!({}))["unit"],
        "seconds"
    );
    assert_eq!(v("oe_kernel_esp", json!({})), 0.0);
    assert_eq!(v("oe_peers", json!({"state": "negotiating"})), 1.0);
    assert_eq!(v("oe_peers", json!({"state": "failed"})), 0.0);
    assert_eq!(
        v("oe_child_sa_traffic_bytes", json!({"direction": "in"})),
        1234567.0
    );
    assert_eq!(
        v("oe_shunts", json!({"action": "drop", "stage": "failure"})),
        1.0
    );
    assert_eq!(v("oe_dns_cache_entries", json!({"outcome": "bogus"})), 2.0);
    assert_eq!(
        v("oe_trigger_keys_total", json!({"outcome": "no-key"})),
        20.0
    );
    assert_eq!(v("oe_trigger_hold_mean_seconds", json!({})), 0.0125);
    assert_eq!(
        v("oe_trigger_errors_total", json!({"kind": "formerr"})),
        1.0
    );
}

#[test]
fn no_agent_means_status_3_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let out = oe(&["metrics", "--socket", socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty(), "nothing stale is printed");
}
