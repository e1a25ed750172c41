//! The mutant hunt's report: console table and JSON.

use super::plural;
use crate::mutants::MutantResult;
use crate::runner::display_path;
use scopebus_sim::rules::Profile;
use serde_json::{Value, json};
use std::fmt::Write;

/// The console table of a mutant hunt.
pub fn render_mutants(results: &[MutantResult], max_seeds: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<10} {:<10} {:<6} {:>5} {:>8} {:>7} {:>8}",
        "mutant", "targets", "caught by", "level", "seed", "seconds", "ops", "entries"
    );
    for r in results {
        let dash = || "-".to_owned();
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:<10} {:<6} {:>5} {:>8.3} {:>7} {:>8}",
            r.mutant.name(),
            r.target_rule,
            r.rule
                .map_or_else(|| "SURVIVED".to_owned(), |x| x.id().to_owned()),
            r.rule
                .map_or_else(dash, |x| x.level_in(Profile::Strict).to_string()),
            r.seed.map_or_else(dash, |s| s.to_string()),
            r.time.as_secs_f64(),
            r.trace_ops.map_or_else(dash, |s| s.to_string()),
            r.trace_entries.map_or_else(dash, |s| s.to_string()),
        );
    }
    let killed = results.iter().filter(|r| r.killed).count();
    let ops: Vec<usize> = results.iter().filter_map(|r| r.trace_ops).collect();
    let _ = writeln!(
        out,
        "\n{} mutants: {} killed, {} survived (budget {} each)",
        results.len(),
        killed,
        results.len() - killed,
        plural(max_seeds, "seed")
    );
    if let (Some(min), Some(max)) = (ops.iter().min(), ops.iter().max()) {
        let _ = writeln!(out, "shrunk traces: {min} to {max} ops");
    }
    for r in results.iter().filter(|r| !r.killed) {
        let _ = writeln!(
            out,
            "SURVIVED: {} ({}) was not caught in {}",
            r.mutant.name(),
            r.target_rule,
            plural(r.seeds_tried, "seed")
        );
    }
    for r in results.iter().filter(|r| r.killed) {
        let Some(message) = &r.message else {
            continue;
        };
        let how = match (&r.repro, &r.save_error) {
            (Some(repro), _) => repro.clone(),
            (None, Some(why)) => format!("(its shrunk trace could not be saved: {why})"),
            (None, None) => continue,
        };
        let _ = writeln!(out, "\n{}: {}\n  {}", r.mutant.name(), message, how);
    }
    out
}

/// The JSON document of a mutant hunt.
pub fn mutants_to_json(results: &[MutantResult]) -> Value {
    json!({
        "mutants": results.iter().map(|r| json!({
            "name": r.mutant.name(),
            "killed": r.killed,
            "rule": r.rule.map(|x| x.id()),
            "rule_level": r.rule.map(|x| x.level_in(Profile::Strict).to_string()),
            "target_rule": r.target_rule,
            "seed": r.seed,
            "seeds_tried": r.seeds_tried,
            "seconds": r.time.as_secs_f64(),
            "shrink_seconds": r.shrink_time.as_secs_f64(),
            "trace_ops": r.trace_ops,
            "trace_entries": r.trace_entries,
            "trace": r.trace.as_ref().map(|p| display_path(p)),
            "message": r.message,
            "save_error": r.save_error,
        })).collect::<Vec<_>>()
    })
}
