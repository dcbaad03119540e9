//! Reads OpenMetrics text with the reference parser, Python's prometheus_client (Debian
//! `python3-prometheus-client`), so tests check `oe metrics` against a real scraper's reading.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        out.append({"family": f.name, "type": f.type, "unit": f.unit, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Parses `text`; panics, with the parser's complaint, if it is not valid OpenMetrics. Returns every
/// sample as `{"family", "type", "unit", "name", "labels", "value"}`.
pub fn parse(text: &str) -> Vec<Value> {
    let available = Command::new(PYTHON)
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        available,
        "this test needs Python's prometheus_client: apt-get install python3-prometheus-client"
    );
    let mut child = Command::new(PYTHON)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("writing to the parser: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}"));
    assert!(
        out.status.success(),
        "prometheus_client rejected the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(samples)) => samples,
        other => panic!("unexpected parser output: {other:?}"),
    }
}

/// The one sample named `name` with exactly `labels` (a JSON object); panics unless there is one.
pub fn sample<'a>(samples: &'a [Value], name: &str, labels: &Value) -> &'a Value {
    let found: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == name && &s["labels"] == labels)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels}: {found:?}");
    found[0]
}

/// The value of [`sample`].
pub fn value(samples: &[Value], name: &str, labels: &Value) -> f64 {
    sample(samples, name, labels)["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} {labels} has no numeric value"))
}
