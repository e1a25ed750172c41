//! Reports: the console table, the JSON document (both ways) and JUnit XML
//! of conformance runs, and the mutant hunt's table and JSON.

mod console;
mod json;
mod junit;
mod mutants;

pub use console::render;
pub use json::{from_json, to_json};
pub use junit::to_junit;
pub use mutants::{mutants_to_json, render_mutants};

use crate::runner::Report;

/// `1 thing` or `N things`.
pub fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else if let Some(stem) = thing.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {thing}s")
    }
}

/// Timings of a conformance run, one line (for stderr: it varies).
pub fn timing_line(report: &Report) -> String {
    let secs = report.run_time.as_secs_f64().max(1e-9);
    let steps = report.counts.ops + report.counts.polls;
    format!(
        "time: {:.2} s for {} ({:.0} seeds/s, {:.0} simulated ops/s counting ops and polls), shrinking and reproducing {:.2} s",
        secs,
        plural(report.seed_count(), "seed"),
        report.seed_count() as f64 / secs,
        steps as f64 / secs,
        report.shrink_time.as_secs_f64()
    )
}
