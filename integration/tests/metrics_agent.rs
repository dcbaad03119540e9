//! `oe metrics` from a real agent with the signed DNS fixture, on this host's kernel (XFRM but no
//! ESP, so the agent runs degraded: status and the DNS trigger's stub forwarding, no traps, no key
//! lookups). After queries through the stub, the output is read back by Python's
//! prometheus_client and its values agree with the status socket's own reports. The mapping of
//! every other report field (peers, SAs, shunts, DNS outcomes) is checked on canned reports in
//! crates/agent/tests/cli_metrics.rs.
//!
//! (The same check with SAs and shunts needs the UML kernel, which does not boot on hosts whose
//! CPU has AMX: its ptrace of FPU state fails with EFAULT.)

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use oe_integration::agent::Agent;
use oe_integration::dns::{names, DnsFixture};
use oe_integration::openmetrics::{parse, sample, value};
use oe_integration::scenario::StandardBed;
use serde_json::json;

/// The agent's metrics port (`status.metrics_listen`), in the workstation's namespace.
const METRICS: &str = "127.0.0.1:9813";

/// One HTTP/1.1 request to the metrics port: the status line, the headers and the body.
fn scrape(ns: &oe_integration::netns::Netns, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let request = request.to_owned();
    let text = ns.run(move || {
        let mut stream = std::net::TcpStream::connect(METRICS).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    });
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[test]
fn metrics_of_a_running_agent_parse_and_match_its_reports() {
    let bed = StandardBed::start(DnsFixture::builder());
    let status_section =
        format!("[status]\nsocket = \"@DIR@/oe.sock\"\nmetrics_listen = \"{METRICS}\"\n");
    let ws = Agent::start(&bed.ws, &bed.lanbed.workstation_config(&status_section));
    for name in [names::ED_HOST, names::NSEC_NOKEY, names::EXPIRED_HOST] {
        let dig = bed
            .ws
            .sh(&format!("dig +short +time=5 @127.0.2.53 {name} A"));
        assert!(dig.status.success());
    }

    let out = ws.cli(&["metrics"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    println!("{text}");
    let samples = parse(&text);
    let status = ws.request(r#"{"command":"status"}"#)["result"].clone();
    let cache = ws.request(r#"{"command":"dns-cache"}"#)["result"]["entries"].clone();
    let v = |name: &str, labels: serde_json::Value| value(&samples, name, &labels);

    assert_eq!(status["state"], "degraded", "{status}");
    assert_eq!(
        v("oe_agent_state", json!({"oe_agent_state": "degraded"})),
        1.0
    );
    assert_eq!(
        v("oe_agent_state", json!({"oe_agent_state": "running"})),
        0.0
    );
    assert_eq!(v("oe_kernel_esp", json!({})), 0.0);
    assert_eq!(v("oe_traps_installed", json!({})), 0.0);
    let version = json!({"version": status["version"]});
    assert_eq!(v("oe_build_info", version), 1.0);
    assert_eq!(
        sample(&samples, "oe_uptime_seconds", &json!({}))["unit"],
        "seconds"
    );
    // The DNS cache, by outcome, as the dns-cache report lists it.
    for outcome in ["secure", "absent", "bogus"] {
        let listed = cache
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"] == outcome)
            .count();
        let metric = v("oe_dns_cache_entries", json!({"outcome": outcome}));
        assert_eq!(metric, listed as f64, "{outcome}: {cache}");
    }
    // Counters only grow: the status asked after the metrics is at least as far along.
    let t = &status["trigger"];
    let queries = v("oe_trigger_queries_total", json!({}));
    assert!(
        queries >= 3.0 && queries <= t["queries"].as_f64().unwrap(),
        "{t}"
    );
    // Nothing is encrypted or shunted by a degraded agent, and the metrics say so.
    assert_eq!(v("oe_peers", json!({"state": "established"})), 0.0);
    assert_eq!(
        v("oe_shunts", json!({"action": "pass", "stage": "failure"})),
        0.0
    );
    assert_eq!(v("oe_negotiations_started_total", json!({})), 0.0);

    // The same families over HTTP from the agent itself, for a scraper; nothing else is served.
    let (head, body) = scrape(&bed.ws, "GET /metrics HTTP/1.1\r\nHost: oe\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let scraped = parse(&body);
    let names = |s: &[serde_json::Value]| {
        let mut n: Vec<String> = s.iter().map(|x| x["name"].to_string()).collect();
        n.dedup();
        n
    };
    assert_eq!(names(&scraped), names(&samples));
    assert_eq!(
        value(
            &scraped,
            "oe_agent_state",
            &json!({"oe_agent_state": "degraded"})
        ),
        1.0
    );
    let (head, _) = scrape(&bed.ws, "GET /status HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = scrape(&bed.ws, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
}
