//! The status commands run as processes against a small listener that answers canned JSON lines.
//! The listener only stands in for the socket's far end so the CLI's side (request sent, answer
//! printed, exit status) can be checked; the real agent's socket is tested end to end elsewhere.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;

use serde_json::{json, Value};

/// Accepts one connection, checks the request line, writes `answers` (one per line), closes.
fn agent(dir: &Path, expected: Value, answers: Vec<String>) -> (PathBuf, JoinHandle<()>) {
    let path = dir.join("oe.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.ends_with('\n'),
            "request not newline-terminated: {line:?}"
        );
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), expected);
        let mut writer = stream;
        for answer in answers {
            writer.write_all(answer.as_bytes()).unwrap();
            writer.write_all(b"\n").unwrap();
        }
    });
    (path, thread)
}

fn oe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oe"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn ok(result: Value) -> String {
    json!({"ok": true, "result": result}).to_string()
}

fn status_result() -> Value {
    json!({
        "kind": "status", "version": "0.1.0", "pid": 77, "uptime_secs": 3725, "state": "running",
        "kernel": {"esp": true, "detail": "esp4/esp6 and rfc4106(gcm(aes)) available"},
        "traps_installed": true, "identity": "address", "key": "Ed25519",
        "peers": 1, "child_sas": 1, "shunts": 0, "dns_cache_entries": 3,
        "counters": {"acquires": 5, "negotiations_started": 5, "negotiations_succeeded": 4,
                     "negotiations_failed": 1, "responder_sas": 0, "dns_lookups": 6, "rekeys": 0,
                     "idle_teardowns": 0}
    })
}

fn event(time: f64, kind: &str, detail: &str) -> Value {
    json!({"time": time, "kind": kind, "peer": "192.0.2.2", "detail": detail})
}

#[test]
fn status_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "status"}),
        vec![ok(status_result())],
    );
    let out = oe(&["status", "--socket", sock.to_str().unwrap()]);
    agent.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("agent:          oe 0.1.0, pid 77, up 1h02m: running\n"),
        "{text}"
    );
    assert!(
        text.contains("kernel:         ESP available (esp4/esp6"),
        "{text}"
    );
    assert!(
        text.contains("negotiations:   5 started, 4 succeeded, 1 failed"),
        "{text}"
    );
}

#[test]
fn json_prints_the_result_object() {
    let dir = tempfile::tempdir().unwrap();
    let result = json!({"kind": "shunts", "shunts": [{
        "peer": "198.51.100.9", "action": "drop", "stage": "failure", "group": "private",
        "reason": "IKE: no answer", "installed_secs_ago": 10, "expires_in_secs": 890}]});
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "shunts"}),
        vec![ok(result.clone())],
    );
    let out = oe(&["shunts", "--json", "--socket", sock.to_str().unwrap()]);
    agent.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        result
    );
}

#[test]
fn explain_sends_the_host_and_prints_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let result = json!({"kind": "explain", "host": "server.example.org", "addresses": [{
        "address": "192.0.2.2", "group": "private-or-clear", "matched_entry": "0.0.0.0/0",
        "dns": ["server.example.org.: secure, Ed25519"], "ike": "established as initiator",
        "current": "ESP SA AES_GCM_16_256, SPIs c0ffee01/c0ffee02",
        "verdict": "Encrypted, authenticated as fqdn:server.example.org."}]});
    let expected = json!({"command": "explain", "host": "server.example.org"});
    let (sock, agent) = agent(dir.path(), expected, vec![ok(result)]);
    let out = oe(&[
        "explain",
        "server.example.org",
        "--socket",
        sock.to_str().unwrap(),
    ]);
    agent.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("    verdict: Encrypted, authenticated as fqdn:server.example.org.\n"),
        "{text}"
    );
    assert!(
        text.contains("    group:   private-or-clear\n    matched: 0.0.0.0/0\n"),
        "{text}"
    );
}

#[test]
fn events_follow_prints_history_then_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let history = ok(json!({"kind": "events", "events": [event(1.0e9, "start", "oe started")]}));
    let streamed: Vec<String> = [
        event(1.0e9 + 5.0, "acquire", "udp to 192.0.2.2"),
        event(1.0e9 + 6.0, "child-installed", "AES_GCM_16_256"),
    ]
    .into_iter()
    .map(|e| json!({"ok": true, "event": e}).to_string())
    .collect();
    let mut answers = vec![history];
    answers.extend(streamed);
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "events", "follow": true}),
        answers,
    );
    let out = oe(&["events", "--follow", "--socket", sock.to_str().unwrap()]);
    agent.join().unwrap();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "2001-09-09T01:46:40Z  start  192.0.2.2  oe started",
            "2001-09-09T01:46:45Z  acquire  192.0.2.2  udp to 192.0.2.2",
            "2001-09-09T01:46:46Z  child-installed  192.0.2.2  AES_GCM_16_256",
        ]
    );
    // The stream ending is not a normal end for a follower.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("closed the event stream"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn events_follow_json_prints_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let first = event(1.0e9, "start", "oe started");
    let second = event(1.0e9 + 1.0, "dns", "secure");
    let answers = vec![
        ok(json!({"kind": "events", "events": [first.clone()]})),
        json!({"ok": true, "event": second.clone()}).to_string(),
    ];
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "events", "follow": true}),
        answers,
    );
    let out = oe(&["events", "-f", "--json", "--socket", sock.to_str().unwrap()]);
    agent.join().unwrap();
    let parsed: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, [first, second]);
}

#[test]
fn an_error_answer_is_reported_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let answer = json!({"ok": false, "error": {"code": "unavailable", "message": "the agent is shutting down"}});
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "peers"}),
        vec![answer.to_string()],
    );
    let out = oe(&["peers", "--socket", sock.to_str().unwrap()]);
    agent.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unavailable: the agent is shutting down"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_garbled_answer_is_reported_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "dns-cache"}),
        vec!["<html>".into()],
    );
    let out = oe(&["dns-cache", "--socket", sock.to_str().unwrap()]);
    agent.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a response"), "{}", stderr(&out));
}

#[test]
fn no_agent_means_status_3_and_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    for command in ["status", "peers", "shunts", "dns-cache", "events"] {
        let out = oe(&[command, "--socket", sock.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{command}");
        let message = stderr(&out);
        assert!(
            message.contains("cannot connect to the agent at") && message.contains("oe run"),
            "{message}"
        );
    }
    // A socket file nobody listens on (an agent that died) is the same.
    drop(UnixListener::bind(&sock).unwrap());
    let out = oe(&["explain", "192.0.2.2", "--socket", sock.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn the_socket_path_comes_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, agent) = agent(
        dir.path(),
        json!({"command": "status"}),
        vec![ok(status_result())],
    );
    let config = dir.path().join("oe.toml");
    std::fs::write(
        &config,
        format!("[status]\nsocket = {:?}\n", sock.to_str().unwrap()),
    )
    .unwrap();
    let out = oe(&["status", "--config", config.to_str().unwrap()]);
    agent.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[status]\nsocket = 7\n").unwrap();
    assert_eq!(
        oe(&["status", "--config", bad.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}
