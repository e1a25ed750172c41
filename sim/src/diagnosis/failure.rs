//! FAIL-1 before the cancellation rules: a failed body handled otherwise
//! than a cancellation.
//!
//! The seed puts the two side by side: scope exit "does not automatically
//! cancel healthy long-running processors unless the scope itself is
//! cancelled, fails, or you cancel the task explicitly". So the model
//! treats a body made to fail (`fail_scope`) as a cancellation of its scope
//! whose report is `scope_failed`, and a failed scope that keeps its tasks
//! running reads, at first, as TASK-2 or TASK-3. Which one it is depends on
//! whether cancellation itself is broken: the failing prefix is replayed
//! with every `fail_scope` turned into a `cancel_scope` of the same scope,
//! at the same point. If the failure then goes, cancellation works and the
//! failure path does not: FAIL-1, reported once. If it stays, the root
//! cause is the cancellation's, and the first reading stands.
//!
//! Invariant: the counterfactual swaps ops one for one and takes nothing
//! out; it is asked only of traces with a failed body, and never of a
//! failure already FAIL-1's (the model's own check of the report).

use super::Cleared;
use super::rerun::ask;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Violation};
use crate::op::{Entry, Op};
use crate::rules::Rule;

/// FAIL-1, when replaying `prefix` with each failed body cancelled instead
/// clears `failure`; `None` otherwise.
pub fn failures(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    if failure.rule == Rule::Fail1 {
        return None;
    }
    let mut swapped = false;
    let candidate: Vec<Entry> = prefix
        .iter()
        .map(|entry| match entry {
            Entry::Op(Op::FailScope { scope }) => {
                swapped = true;
                Entry::Op(Op::CancelScope { scope: *scope })
            }
            other => other.clone(),
        })
        .collect();
    if !swapped {
        return None;
    }
    let outcome = ask(prefix, &candidate, layout, rerun)?;
    if outcome.cleared(failure) != Cleared::Yes {
        return None;
    }
    let scope = match failure.evidence.as_deref() {
        Some(Disagreement::Certain(v)) => v.scope,
        _ => None,
    };
    let violation = Violation::new(
        Rule::Fail1,
        failure.mode,
        format!(
            "{} (with each failing body cancelled instead, this does not happen: the scope handles its body's failure otherwise than a cancellation, though a failure must take its tasks down as a cancellation does)",
            failure.message
        ),
    );
    Some(match scope {
        Some(s) => violation.about(s),
        None => violation,
    })
}
