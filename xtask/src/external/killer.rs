//! The killer: which test targets run against each mutant, and one run of
//! them on the unmutated bus.
//!
//! The targets come from `cargo metadata`, so that a test or example added
//! to the bus joins the killer without anyone listing it: every `test`
//! target and every example with `test = true` of the `scopebus` package,
//! `--lib`, and [`DEFAULT_RUN`] of the conformance package.

use crate::workspace;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// The conformance package's test that is the default conformance run on
/// the reference bus.
pub const DEFAULT_RUN: &str = "default_run";

/// The packages the killer's targets belong to.
const PACKAGES: [&str; 2] = ["scopebus", "scopebus-conformance"];

/// Cargo arguments selecting the killer's targets (cargo-mutants adds the
/// packages and the profile from `.cargo/mutants.toml`; [`run_unmutated`]
/// adds them itself).
///
/// # Errors
/// `cargo metadata` fails or does not list the bus, or the conformance
/// package has no [`DEFAULT_RUN`] test.
pub fn targets() -> Result<Vec<String>, String> {
    let out = Command::new(super::cargo())
        .args(["metadata", "--no-deps", "--format-version", "1", "--locked"])
        .current_dir(workspace())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let metadata: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    from_metadata(&metadata)
}

/// [`targets`], from `cargo metadata`'s JSON.
///
/// # Errors
/// As [`targets`].
pub fn from_metadata(metadata: &Value) -> Result<Vec<String>, String> {
    let package = |name: &str| {
        metadata["packages"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .ok_or_else(|| format!("cargo metadata lists no package `{name}`"))
    };
    let mut args = vec!["--lib".to_owned()];
    let bus = package(PACKAGES[0])?;
    for target in bus["targets"].as_array().into_iter().flatten() {
        let kinds = target["kind"].as_array().cloned().unwrap_or_default();
        let name = target["name"].as_str().unwrap_or_default();
        if kinds.iter().any(|k| k == "test") {
            args.extend(["--test".to_owned(), name.to_owned()]);
        } else if kinds.iter().any(|k| k == "example") && target["test"] == true {
            args.extend(["--example".to_owned(), name.to_owned()]);
        }
    }
    let conformance = package(PACKAGES[1])?;
    let has_default_run = conformance["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            t["name"] == DEFAULT_RUN
                && t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "test"))
        });
    if !has_default_run {
        return Err(format!(
            "the conformance package has no `{DEFAULT_RUN}` test: the killer needs it"
        ));
    }
    args.extend(["--test".to_owned(), DEFAULT_RUN.to_owned()]);
    Ok(args)
}

/// Runs the killer on the unmutated bus, in the workspace's own target
/// directory; returns how long the tests took (the build is not counted).
///
/// # Errors
/// The killer does not build or fails: every mutant would count as caught.
pub fn run_unmutated(targets: &[String]) -> Result<Duration, String> {
    let cargo = super::cargo();
    let mut args: Vec<String> = PACKAGES.iter().map(|p| format!("--package={p}")).collect();
    args.extend(["--profile=mutants".to_owned(), "--locked".to_owned()]);
    args.extend(targets.iter().cloned());
    eprintln!("the killer, unmutated: cargo test {}", args.join(" "));
    let build = Command::new(&cargo)
        .arg("test")
        .arg("--no-run")
        .args(&args)
        .current_dir(workspace())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !build.success() {
        return Err(format!(
            "the killer does not build on the unmutated bus ({build})"
        ));
    }
    let started = Instant::now();
    // Its output goes to stderr: stdout is for the summary.
    let test = Command::new(&cargo)
        .arg("test")
        .args(&args)
        .stdout(std::io::stderr())
        .current_dir(workspace())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !test.success() {
        return Err(format!(
            "the killer fails on the unmutated bus ({test}): fix that first, or every mutant would count as caught"
        ));
    }
    Ok(started.elapsed())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn selects_the_bus_tests_examples_and_the_default_run() {
        let metadata = serde_json::json!({"packages": [
            {"name": "scopebus", "targets": [
                {"name": "scopebus", "kind": ["lib"], "test": true},
                {"name": "bus", "kind": ["test"], "test": true},
                {"name": "insns", "kind": ["bench"], "test": false},
                {"name": "demo", "kind": ["example"], "test": true},
                {"name": "untested", "kind": ["example"], "test": false}
            ]},
            {"name": "scopebus-conformance", "targets": [
                {"name": "default_run", "kind": ["test"], "test": true},
                {"name": "protocol", "kind": ["test"], "test": true}
            ]}
        ]});
        let args = from_metadata(&metadata).unwrap().join(" ");
        assert!(args.contains("--test bus") && args.contains("--example demo"));
        assert!(args.ends_with("--test default_run"));
        assert!(
            !args.contains("insns") && !args.contains("untested") && !args.contains("protocol")
        );
    }

    #[test]
    fn a_missing_default_run_is_an_error() {
        let metadata = serde_json::json!({"packages": [
            {"name": "scopebus", "targets": []},
            {"name": "scopebus-conformance", "targets": []}
        ]});
        assert!(from_metadata(&metadata).unwrap_err().contains(DEFAULT_RUN));
    }
}
