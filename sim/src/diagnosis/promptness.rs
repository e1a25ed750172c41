//! TASK-2 before TASK-3: a task that runs after its group's cancellation
//! because the cancellation never reaches it, not because it came late.
//!
//! TASK-3 is about promptness: a started task released after its group's
//! cancellation was requested must not run, even though the cancellation
//! has not finished. An implementation whose cancellation never reaches
//! the group's tasks at all (TASK-2) fails the same check whenever the
//! release comes quickly. So a TASK-3 failure is replayed with a `settle`
//! before each release that follows a cancellation: the cancellation then
//! has every chance to take effect first. If the task still runs (the
//! replay fails TASK-2), the cancellation does not reach it, and the root
//! cause is TASK-2's, reported once.
//!
//! Invariant: the counterfactual adds settles only; it removes nothing.

use crate::harness::{Failure, Run};
use crate::model::{Layout, Violation};
use crate::op::{Entry, Op};
use crate::rules::Rule;

/// TASK-2, when a TASK-3 failure's prefix, with a settle before each
/// release that follows a cancellation, fails TASK-2; `None` otherwise.
pub fn promptness(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    if failure.rule != Rule::Task3 {
        return None;
    }
    let mut cancelled = false;
    let mut candidate = Vec::with_capacity(prefix.len() + 4);
    for entry in prefix {
        match entry {
            Entry::Op(Op::CancelScope { .. } | Op::FailScope { .. }) => cancelled = true,
            Entry::Op(Op::Release { .. }) if cancelled => candidate.push(Entry::Op(Op::Settle)),
            _ => {}
        }
        candidate.push(entry.clone());
    }
    let again = rerun(&candidate, layout).failure?;
    (again.rule == Rule::Task2).then(|| {
        Violation::new(
            Rule::Task2,
            again.mode,
            format!(
                "{} (with a settle before the release, so that the cancellation could take effect first, it still fails: {}; the cancellation does not reach the group's tasks)",
                failure.message, again.message
            ),
        )
    })
}
