//! Where a seed that ran differently twice first differs: the determinism
//! self-check compares fingerprints only, so for a mismatch it runs the
//! seed twice more on fresh instances and compares what happened, line by
//! line (the adapter's session, request by request, for an adapter; the
//! entries and observations otherwise).
//!
//! Invariant: this only describes; it never changes whether a seed counts
//! as a mismatch (the two extra runs may agree: the implementation differs
//! only sometimes, and the description says so).

use super::Campaign;
use crate::deadline;
use scopebus_sim::harness::{Run, generate};
use std::time::Instant;

/// Mismatched seeds described, at most: each costs two more runs.
pub const DESCRIBED: usize = 3;

/// The longest excerpt of a differing line shown.
const EXCERPT: usize = 160;

/// Where two more runs of `seed` first differ, as one line of text; the
/// runs are cut at the campaign's deadline, if any.
pub fn first_difference(campaign: &Campaign, seed: u64, until: Option<Instant>) -> String {
    let run = || {
        deadline::within(until, || {
            let mut imp = campaign.target.instantiate();
            lines(generate(seed, campaign.config(), &mut *imp))
        })
    };
    let ((a, what), (b, _)) = (run(), run());
    match a.iter().zip(&b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "two more runs first differ at line {} of {what}: `{}` against `{}`",
            i + 1,
            excerpt(&a[i]),
            excerpt(&b[i])
        ),
        None if a.len() != b.len() => format!(
            "two more runs agree for {} lines of {what}, then one stops ({} against {} lines)",
            a.len().min(b.len()),
            a.len(),
            b.len()
        ),
        None => "two more runs were identical: it differs only sometimes".to_owned(),
    }
}

/// What a run did, line by line (its adapter session, else its entries),
/// and what those lines are.
fn lines(run: Run) -> (Vec<String>, &'static str) {
    match run.transcript {
        Some(t) => (t, "the adapter session"),
        None => (
            run.trace.iter().map(ToString::to_string).collect(),
            "the trace",
        ),
    }
}

fn excerpt(line: &str) -> String {
    match line.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}
