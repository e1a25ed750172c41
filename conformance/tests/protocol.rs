//! The adapter protocol: every message of real sessions (the runner's
//! requests, the stdio server's replies) fits the JSON Schema in
//! `conformance/protocol/`, the schema is not vacuous, and the Rust types
//! read back what they write.

use scopebus_conformance::protocol::{Request, Response, catalogue};
use scopebus_conformance::serve::serve;
use scopebus_sim::harness::{GenConfig, generate};
use scopebus_sim::iut::Implementation;
use scopebus_sim::op::{Entry, TaskRef};
use scopebus_sim::reference::ReferenceImpl;
use serde_json::{Value, json};

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/protocol/scopebus-protocol.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the schema file")).expect("JSON")
}

/// A validator for one definition of the schema (`request` or `response`).
fn validator(definition: &str) -> jsonschema::Validator {
    let schema = schema();
    let focused = json!({
        "$schema": schema["$schema"],
        "$defs": schema["$defs"],
        "$ref": format!("#/$defs/{definition}"),
    });
    jsonschema::validator_for(&focused).expect("a valid schema")
}

fn check(validator: &jsonschema::Validator, line: &str, what: &str) {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{what} is not JSON: {e}: {line}"));
    if let Err(e) = validator.validate(&value) {
        panic!("{what} does not fit the schema: {e}\n{line}");
    }
}

/// The requests the runner sends for a trace.
fn requests_for(entries: &[Entry]) -> Vec<Request> {
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    let mut requests = vec![
        Request::Hello {
            id: next(),
            protocol: 1,
            catalogue: catalogue(),
        },
        Request::Reset { id: next() },
        Request::Runnable { id: next() },
        Request::Step { id: next() },
    ];
    for entry in entries {
        requests.push(match entry.clone() {
            Entry::Op(op) => Request::Op { id: next(), op },
            Entry::Poll(TaskRef::Any) => Request::Step { id: next() },
            Entry::Poll(task) => Request::Poll { id: next(), task },
            Entry::Wake(task) => Request::Wake { id: next(), task },
            Entry::Migrate(task) => Request::Migrate { id: next(), task },
            Entry::Preempt(task, with) => Request::Preempt {
                id: next(),
                task,
                with,
            },
        });
    }
    requests.push(Request::Bye { id: next() });
    requests
}

/// What the reference adapter writes on stdout for `input` on stdin.
fn serve_reference(input: &str) -> String {
    let mut output = Vec::new();
    serve(
        || Box::new(ReferenceImpl::new(None)) as Box<dyn Implementation>,
        input.as_bytes(),
        &mut output,
    )
    .expect("serves");
    String::from_utf8(output).expect("UTF-8")
}

#[test]
fn every_message_of_real_sessions_fits_the_schema() {
    let (requests_schema, responses_schema) = (validator("request"), validator("response"));
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut imp = ReferenceImpl::new(None);
        let trace = generate(seed, GenConfig::default(), &mut imp).trace;
        let requests = requests_for(&trace);
        let mut input = String::new();
        for request in &requests {
            let line = serde_json::to_string(request).expect("encodes");
            check(&requests_schema, &line, "a request");
            input.push_str(&line);
            input.push('\n');
        }
        // Garbage in the middle must be answered with an error that fits too.
        input.push_str("{\"type\": \"frobnicate\", \"id\": 999}\nnot json at all\n");
        let output = serve_reference(&input);
        let mut replies = 0;
        for line in output.lines() {
            check(&responses_schema, line, "a reply");
            let response: Response = serde_json::from_str(line).expect("the Rust type reads it");
            kinds.insert(response.kind());
            replies += 1;
        }
        // One reply per request, up to `bye` (the garbage after it is unread).
        assert_eq!(replies, requests.len(), "seed {seed}");
    }
    for kind in [
        "hello",
        "ok",
        "result",
        "stepped",
        "runnable",
        "woken",
        "preempted",
        "bye",
    ] {
        assert!(
            kinds.contains(kind),
            "no `{kind}` reply was exercised: {kinds:?}"
        );
    }
}

#[test]
fn malformed_requests_get_errors_that_fit_the_schema() {
    let responses_schema = validator("response");
    let input = "{\"type\": \"frobnicate\", \"id\": 7}\nnot json\n{\"type\":\"op\",\"id\":8,\"op\":{\"op\":\"consume\",\"sub\":99,\"k\":1}}\n{\"type\":\"hello\",\"id\":9,\"protocol\":2,\"catalogue\":[]}\n";
    let output = serve_reference(input);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        check(&responses_schema, line, "an error reply");
    }
    assert!(
        lines[0].contains("\"id\":7") && lines[0].contains("malformed"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("malformed"), "{}", lines[1]);
    assert!(lines[2].contains("unknown_handle"), "{}", lines[2]);
    assert!(lines[3].contains("unsupported_protocol"), "{}", lines[3]);
}

#[test]
fn the_schema_rejects_what_the_protocol_forbids() {
    let (requests_schema, responses_schema) = (validator("request"), validator("response"));
    let bad_replies = [
        r#"{"type":"result","id":1,"result":{"ok":"done"},"observations":[],"extra":1}"#,
        r#"{"type":"result","id":1,"result":{"ok":"fine"}}"#,
        r#"{"type":"result","id":-1,"result":{"ok":"done"}}"#,
        r#"{"type":"result","id":1,"result":{"error":{"code":"oops"}}}"#,
        r#"{"type":"stepped","id":1,"ran":true,"observations":[{"kind":"received","sub":1}]}"#,
        r#"{"type":"hello","id":0,"protocol":1,"name":"x","language":"y","version":"z","capabilities":["teleport"]}"#,
        r#"{"type":"result","id":1,"result":{"ok":{"stats":[{"type":"Pong","subscriptions":1,"retained":0}]}}}"#,
        r#"{"type":"runnable","id":1,"tasks":["thread#1"]}"#,
        r#"{"type":"hello","id":0,"protocol":1,"name":"x","language":"y","version":"z","capabilities":[],"emulates":["threads"]}"#,
        r#"{"type":"hello","id":0,"protocol":1,"name":"x","language":"y","version":"z","capabilities":[],"runtime":3}"#,
    ];
    for line in bad_replies {
        let value: Value = serde_json::from_str(line).expect("JSON");
        assert!(!responses_schema.is_valid(&value), "accepted: {line}");
    }
    let bad_requests = [
        r#"{"type":"op","id":1,"op":{"op":"settle","bogus":1}}"#,
        r#"{"type":"preempt","id":1,"task":"sub#1","with":{"op":"settle"}}"#,
        r#"{"type":"preempt","id":1,"task":"sub#1","with":{"poll":"sub#2","op":"send"}}"#,
        r#"{"type":"migrate","id":1}"#,
        r#"{"type":"poll","id":1}"#,
    ];
    for line in bad_requests {
        let value: Value = serde_json::from_str(line).expect("JSON");
        assert!(!requests_schema.is_valid(&value), "accepted: {line}");
    }
}

/// A request line too long, or not UTF-8, is answered `malformed` and
/// skipped without being buffered whole; the session goes on.
#[test]
fn oversized_and_binary_request_lines_are_refused_and_the_session_goes_on() {
    let mut input = "x".repeat(scopebus_conformance::serve::MAX_REQUEST_LINE * 3);
    input.push('\n');
    let mut bytes = input.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n{\"type\":\"bye\",\"id\":5}\n");
    let mut output = Vec::new();
    serve(
        || Box::new(ReferenceImpl::new(None)) as Box<dyn Implementation>,
        &bytes[..],
        &mut output,
    )
    .expect("serves");
    let lines: Vec<Value> = String::from_utf8(output)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["error"]["code"], "malformed");
    assert!(
        lines[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not UTF-8")
    );
    assert_eq!(lines[2], json!({"type": "bye", "id": 5}));
}

/// A handshake's `runtime` and `emulates` (PROTOCOL.md, "Handshake",
/// "Emulated features") reach the implementation's info; an unknown
/// feature, or one named twice, fails the handshake with the known names.
#[test]
fn a_handshake_says_its_runtime_and_what_the_adapter_emulates() {
    use scopebus_conformance::stdio::AdapterPool;
    use scopebus_sim::emulation::Emulated;
    use std::time::Duration;
    let hello = |extra: &str| {
        let line = format!(
            r#"{{"type":"hello","id":0,"protocol":1,"name":"emitter","language":"javascript","version":"20.11.1","capabilities":["stats"]{extra}}}"#
        );
        AdapterPool::scripted(vec![line.into_bytes()], Duration::from_secs(1)).handshake()
    };
    let good = r#","runtime":"Node.js v20.11.1","emulates":["context_missing","scopes"]"#;
    check(
        &validator("response"),
        &format!(
            r#"{{"type":"hello","id":0,"protocol":1,"name":"e","language":"j","version":"1","capabilities":[]{good}}}"#
        ),
        "a hello with runtime and emulates",
    );
    let info = hello(good).expect("a good handshake");
    assert_eq!(info.runtime.as_deref(), Some("Node.js v20.11.1"));
    assert_eq!(
        info.emulates,
        vec![Emulated::Scopes, Emulated::ContextMissing]
    );
    let info = hello("").expect("both fields are optional");
    assert_eq!((info.runtime, info.emulates), (None, Vec::new()));
    let unknown = hello(r#","emulates":["threads"]"#).expect_err("unknown feature");
    assert!(unknown.contains("unknown emulated feature `threads`; known: types, scopes, close, tasks, context_missing"), "{unknown}");
    let twice = hello(r#","emulates":["tasks","tasks"]"#).expect_err("named twice");
    assert!(twice.contains("names `tasks` twice"), "{twice}");
}
