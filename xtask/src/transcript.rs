//! `cargo xtask check-transcript`: adapter session transcripts
//! (`*.transcript.jsonl`, requests and replies alternating) checked against
//! the protocol's JSON Schema and against each other (a reply answers the
//! request before it, with its id and of the kind it asks for).
//!
//! A schema error names the most specific shape it can: where a `oneOf`'s
//! alternatives are told apart by a constant field (`type`, `op`, `kind`),
//! the alternative the line names, and that alternative's own first error,
//! with its JSON pointer; a line that names no known alternative is told
//! which names there are. Every problem counts (exit 1): an empty file, a
//! line that is not JSON, one outside the schema, a reply to another
//! request, and a last request with no reply (the protocol requires one).

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use scopebus_conformance::report::plural;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The protocol's JSON Schema, as shipped in `conformance/protocol/`.
const SCHEMA: &str = include_str!("../../conformance/protocol/scopebus-protocol.schema.json");

/// Where the schema is, for messages.
const SCHEMA_PATH: &str = "conformance/protocol/scopebus-protocol.schema.json";

/// Checks `files`, printing each problem and a summary.
///
/// # Errors
/// If a file cannot be read (or is larger than the input bound).
pub fn check(files: &[PathBuf]) -> Result<ExitCode, String> {
    let schema: Value =
        serde_json::from_str(SCHEMA).map_err(|e| format!("the built-in schema: {e}"))?;
    let validator = |definition: &str| {
        let focused = serde_json::json!({
            "$schema": schema["$schema"],
            "$defs": schema["$defs"],
            "$ref": format!("#/$defs/{definition}"),
        });
        jsonschema::validator_for(&focused).map_err(|e| format!("the built-in schema: {e}"))
    };
    let sides = [validator("request")?, validator("response")?];
    let (mut lines, mut problems) = (0u64, 0u64);
    for path in files {
        let text = scopebus_sim::input::read_text(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (n, p) = check_one(path, &text, &sides);
        lines += n;
        problems += p;
    }
    println!(
        "{} in {} checked against the protocol schema: {}",
        plural(lines, "line"),
        plural(files.len() as u64, "file"),
        plural(problems, "problem")
    );
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Checks one transcript's `text` against `sides` (the request and the
/// response validators), printing each problem; returns (lines checked,
/// problems).
fn check_one(path: &Path, text: &str, sides: &[Validator; 2]) -> (u64, u64) {
    if text.trim().is_empty() {
        println!(
            "{}: empty: a transcript has at least the runner's hello and the adapter's reply",
            path.display()
        );
        return (0, 1);
    }
    let (mut lines, mut problems) = (0u64, 0u64);
    let mut pending: Option<Value> = None;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let is_request = lines % 2 == 0;
        lines += 1;
        let at = format!("{}:{}", path.display(), n + 1);
        if let Some(problem) = check_line(line, is_request, sides, &mut pending) {
            println!("{at}: {problem}");
            problems += 1;
        }
    }
    if let Some(request) = pending {
        println!(
            "{}: the last request, a `{}` (id {}), has no reply: the adapter hung or exited there \
             (PROTOCOL.md: every request gets exactly one reply)",
            path.display(),
            request["type"].as_str().unwrap_or("?"),
            request["id"]
        );
        problems += 1;
    }
    (lines, problems)
}

/// One line's problem, if it has one; a request is kept in `pending` for
/// the reply after it.
fn check_line(
    line: &str,
    is_request: bool,
    sides: &[Validator; 2],
    pending: &mut Option<Value>,
) -> Option<String> {
    let what = if is_request { "request" } else { "reply" };
    // A reply, good or bad, answers the request before it.
    let request = if is_request { None } else { pending.take() };
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return Some(format!("this {what} is not JSON: {e}")),
    };
    if let Some(error) = sides[usize::from(!is_request)].iter_errors(&value).next() {
        let shape = if is_request { "request" } else { "response" };
        return Some(format!(
            "this {what} does not fit the protocol: {} (the shapes are under \"$defs/{shape}\" in {SCHEMA_PATH}; PROTOCOL.md, \"Requests and replies\")",
            explain(&error, &value)
        ));
    }
    if is_request {
        *pending = Some(value);
        None
    } else {
        mismatch(&request?, &value)
            .map(|why| format!("this reply does not answer the request before it: {why}"))
    }
}

/// The fields that tell a `oneOf`'s alternatives apart, in the order they
/// are looked for.
const TAGS: [&str; 3] = ["type", "op", "kind"];

/// `error` in words, as specific as it can be: through every `oneOf` whose
/// alternative the instance names by a tag field, down to that
/// alternative's own first error; with where (a JSON pointer) and which
/// shapes were chosen on the way.
fn explain(error: &ValidationError<'_>, instance: &Value) -> String {
    let mut shapes = Vec::new();
    let mut error = error;
    while let ValidationErrorKind::OneOfNotValid { context } = error.kind() {
        let base = error.instance_path().to_string();
        let at = instance.pointer(&base).unwrap_or(&Value::Null);
        let Some((tag, name)) = TAGS
            .iter()
            .find_map(|t| at.get(*t).and_then(Value::as_str).map(|n| (*t, n)))
        else {
            // No tag: the one alternative whose errors all lie deeper than
            // here (its outline fits), if there is exactly one.
            let deeper: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|alt| {
                    !alt.is_empty() && alt.iter().all(|e| e.instance_path().as_str() != base)
                })
                .collect();
            if let [errors] = deeper.as_slice() {
                error = &errors[0];
                continue;
            }
            return format!(
                "{} fits none of the {} shapes allowed there: {}{}",
                place(&base),
                context.len(),
                context
                    .iter()
                    .filter_map(|alt| alt.first())
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; or "),
                shapes_note(&shapes)
            );
        };
        let tag_path = format!("{base}/{tag}");
        let named: Vec<&Vec<ValidationError<'static>>> = context
            .iter()
            .filter(|alt| !alt.iter().any(|e| e.instance_path().as_str() == tag_path))
            .collect();
        match named.as_slice() {
            [errors] if !errors.is_empty() => {
                shapes.push(format!("`{name}`"));
                error = &errors[0];
            }
            _ => {
                return format!(
                    "{} names its shape `{name}` (by `{tag}`), which is not one the protocol has here: expected one of {}{}",
                    place(&base),
                    expected_names(context, &tag_path).join(", "),
                    shapes_note(&shapes)
                );
            }
        }
    }
    let pointer = error.instance_path().to_string();
    let at = match pointer.is_empty() {
        true => "at the line as a whole".to_owned(),
        false => format!("at `{pointer}`"),
    };
    format!("{at}: {error}{}", shapes_note(&shapes))
}

/// What a JSON pointer points at, in words: the line, or the pointer.
fn place(pointer: &str) -> String {
    match pointer.is_empty() {
        true => "the line".to_owned(),
        false => format!("`{pointer}`"),
    }
}

fn shapes_note(shapes: &[String]) -> String {
    match shapes.is_empty() {
        true => String::new(),
        false => format!(" (checked as the shape it names: {})", shapes.join(" > ")),
    }
}

/// The names the alternatives of a `oneOf` accept at `tag_path`.
fn expected_names(context: &[Vec<ValidationError<'static>>], tag_path: &str) -> Vec<String> {
    let mut names = Vec::new();
    for e in context.iter().flatten() {
        if e.instance_path().as_str() != tag_path {
            continue;
        }
        match e.kind() {
            ValidationErrorKind::Constant { expected_value } => {
                names.push(expected_value.to_string())
            }
            ValidationErrorKind::Enum { options } => {
                if let Some(list) = options.as_array() {
                    names.extend(list.iter().map(Value::to_string));
                }
            }
            _ => {}
        }
    }
    names
}

/// Why `reply` (schema-valid) cannot be the answer to `request`, if so.
fn mismatch(request: &Value, reply: &Value) -> Option<String> {
    let kind = |v: &Value| v["type"].as_str().unwrap_or("").to_owned();
    let (asked, answered) = (kind(request), kind(reply));
    if answered == "error" {
        return None;
    }
    if reply["id"] != request["id"] {
        return Some(format!(
            "its id is {}, the request's is {}",
            reply["id"], request["id"]
        ));
    }
    let expected = match asked.as_str() {
        "hello" => "hello",
        "reset" => "ok",
        "op" => "result",
        "step" | "poll" => "stepped",
        "runnable" => "runnable",
        "wake" | "migrate" => "woken",
        "preempt" => "preempted",
        "bye" => "bye",
        _ => return None,
    };
    if answered != expected {
        return Some(format!(
            "a `{answered}` reply to a `{asked}` request (expected `{expected}` or `error`)"
        ));
    }
    if asked == "preempt" && reply["ran"] == serde_json::json!(true) {
        let polls = request["with"].get("poll").is_some();
        let has_result = !reply["result"].is_null();
        if polls && has_result {
            return Some("a `result` for a preempting poll, which is not an op".to_owned());
        }
        if !polls && !has_result {
            return Some("no `result` for the preempting op".to_owned());
        }
    }
    None
}
