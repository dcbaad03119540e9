//! docs/status-protocol.md stays true to the protocol types: every JSON example in it is a request or
//! a response that the types read and write back identically (so no field in the document is
//! misspelt, missing or extra; serde would otherwise ignore it silently).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;

use oe_agent::status::protocol::{Request, Response};
use serde_json::Value;

/// The JSON values in the document's ```json blocks: a block is one value, or one value per line.
fn examples() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/status-protocol.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut values = Vec::new();
    for block in text.split("```json\n").skip(1) {
        let block = block.split("```").next().unwrap();
        match serde_json::from_str::<Value>(block) {
            Ok(v) => values.push(v),
            Err(_) => values.extend(
                block
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            ),
        }
    }
    values
}

#[test]
fn every_example_is_a_request_or_a_response_written_back_identically() {
    let values = examples();
    let (mut requests, mut responses) = (0, 0);
    for value in &values {
        if value.get("command").is_some() {
            // Requests may leave out defaulted arguments; every member given must be one the
            // request has.
            let request: Request = serde_json::from_value(value.clone()).unwrap();
            let written = serde_json::to_value(request).unwrap();
            for key in value.as_object().unwrap().keys() {
                assert!(
                    written.get(key).is_some(),
                    "unknown member {key} in {value}"
                );
            }
            requests += 1;
        } else {
            let response: Response = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(&serde_json::to_value(response).unwrap(), value, "{value}");
            responses += 1;
        }
    }
    assert_eq!(requests, 10, "the request examples");
    assert!(responses >= 8, "{responses} response examples");
}
