//! What cargo-mutants wrote: `mutants.out/outcomes.json` (one entry per
//! tested mutant) and `--list --json` (every mutant it generates).
//!
//! Both are read strictly: a file of another shape is an error that says
//! what was expected, never an empty (and so falsely clean) run.

use serde_json::Value;
use std::path::Path;

/// One tested mutant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// cargo-mutants' name, with line and column.
    pub name: String,
    /// `caught`, `missed`, `timeout` or `unviable`.
    pub outcome: &'static str,
    /// The diff of the mutation, relative to `mutants.out/`.
    pub diff: Option<String>,
}

/// The tested mutants in `dir/outcomes.json`, in the order tested.
///
/// # Errors
/// The file is missing, not JSON, or not cargo-mutants' shape
/// (`{"outcomes": [{"scenario": {"Mutant": {"name": ...}}, "summary": ...}]}`).
pub fn read(dir: &Path) -> Result<Vec<Outcome>, String> {
    let path = dir.join("outcomes.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} (cargo-mutants writes it as it runs): {e}",
            path.display()
        )
    })?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// [`read`], from the file's text.
///
/// # Errors
/// As [`read`].
pub fn parse(text: &str) -> Result<Vec<Outcome>, String> {
    let shape = "expected {\"outcomes\": [{\"scenario\": \"Baseline\" | {\"Mutant\": {\"name\": ...}}, \"summary\": ...}]}";
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e}); {shape}"))?;
    let entries = value
        .get("outcomes")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no `outcomes` array; {shape}"))?;
    let mut out = Vec::new();
    for entry in entries {
        let scenario = entry
            .get("scenario")
            .ok_or_else(|| format!("an outcome without `scenario`; {shape}"))?;
        if scenario.as_str() == Some("Baseline") {
            continue;
        }
        let name = scenario
            .pointer("/Mutant/name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!("a scenario that is neither Baseline nor a named Mutant: {scenario}")
            })?;
        let summary = entry.get("summary").and_then(Value::as_str).unwrap_or("");
        let outcome = match summary {
            "CaughtMutant" => "caught",
            "MissedMutant" => "missed",
            "Timeout" => "timeout",
            "Unviable" => "unviable",
            other => {
                return Err(format!(
                    "mutant `{name}` has summary `{other}`; expected CaughtMutant, MissedMutant, Timeout or Unviable"
                ));
            }
        };
        out.push(Outcome {
            name: name.to_owned(),
            outcome,
            diff: entry
                .get("diff_path")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(out)
}

/// The names in `cargo mutants --list --json` output.
///
/// # Errors
/// Not a JSON array of objects with a `name`.
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("`cargo mutants --list --json` did not print JSON: {e}"))?;
    value
        .as_array()
        .ok_or("`cargo mutants --list --json` did not print an array")?
        .iter()
        .map(|m| {
            m.get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("a listed mutant without a `name`: {m}"))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_mutants_outcomes() {
        let text = r#"{"outcomes": [
            {"scenario": "Baseline", "summary": "Success"},
            {"scenario": {"Mutant": {"name": "a.rs:1:2: x"}}, "summary": "MissedMutant", "diff_path": "diff/a.diff"},
            {"scenario": {"Mutant": {"name": "a.rs:3:4: y"}}, "summary": "Timeout"}
        ]}"#;
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].outcome, got[0].diff.as_deref()),
            ("missed", Some("diff/a.diff"))
        );
        assert_eq!(got[1].outcome, "timeout");
    }

    #[test]
    fn refuses_other_shapes_with_what_was_expected() {
        assert!(parse("[]").unwrap_err().contains("expected"));
        assert!(parse("{").unwrap_err().contains("not JSON"));
        let odd = r#"{"outcomes": [{"scenario": {"Mutant": {"name": "a"}}, "summary": "Odd"}]}"#;
        assert!(parse(odd).unwrap_err().contains("CaughtMutant"));
        assert!(parse_list("{}").is_err());
        assert_eq!(parse_list(r#"[{"name": "a"}]"#).unwrap(), ["a"]);
    }
}
