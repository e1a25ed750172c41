//! CANCEL-1, confirmed counterfactually: were the drops and cancellations
//! of subscribers what disturbed the others ("dropping or cancelling a
//! subscriber disturbs no other subscriber or sender")?
//!
//! The failing prefix is replayed without any drop or cancellation of
//! subscribers:
//!
//! - a failure that then disappears was caused by them: it is CANCEL-1,
//!   whatever its symptom (a stuck or unended stream, a failed send, an
//!   event lost so that the next one reads as out of order, an event freed
//!   that a live subscription still needed);
//! - a CANCEL-1 failure that still fails without them was not caused by the
//!   drops: that failure, under its own rule, is the one to report;
//! - anything else answers nothing, and the failure stands.
//!
//! Events held too long, or subscriptions counted that were dropped, are
//! RECLAIM's business (a drop that changes what is retained does not
//! disturb another subscriber), so those are left to [`super::holder`]; and
//! an event sent when a drop had left nobody subscribed is DROP-1's (the
//! drop made the situation that rule is about; without it there is none).

use super::Rerun;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Violation};
use crate::op::{Entry, Op};
use crate::rules::Rule;
use crate::shrink::close_references;

/// What replaying `prefix` (a failing trace up to its failing entry)
/// without the drops and cancellations of subscribers says about
/// `failure`: the failure to report instead, with the trace that shows it,
/// or `None` if the failure stands.
pub fn drops(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<(Vec<Entry>, Failure)> {
    let about_liveness = matches!(failure.rule, Rule::Reclaim2 | Rule::Drop1);
    if failure.fault || about_liveness || held_too_long(failure) {
        return None;
    }
    let is_drop = |e: &&Entry| {
        matches!(
            e,
            Entry::Op(Op::DropSubscription { .. } | Op::CancelSubscriber { .. })
        )
    };
    let without = close_references(prefix.iter().filter(|e| !is_drop(e)));
    if without.len() == prefix.len() {
        return None;
    }
    let run = rerun(&without, layout);
    let trace = run.trace.clone();
    match (failure.rule, Rerun::of(&without, run)) {
        (Rule::Cancel1, Rerun::AtEnd(f) | Rerun::Before(f)) if f.rule != Rule::Cancel1 => {
            Some((trace, f))
        }
        (Rule::Cancel1, _) => None,
        (_, Rerun::Passed) => Some((prefix.to_vec(), blame_drops(failure))),
        _ => None,
    }
}

/// Whether `failure` is statistics showing more held (events, or live
/// subscriptions) than the model has.
fn held_too_long(failure: &Failure) -> bool {
    matches!(failure.evidence.as_deref(), Some(Disagreement::Stats(s)) if s.holds_more())
}

/// `failure`, blamed on the drops and cancellations before it (CANCEL-1).
fn blame_drops(failure: &Failure) -> Failure {
    failure.attributed(Violation::new(
        Rule::Cancel1,
        failure.mode,
        format!(
            "{} (without the drops and cancellations of subscribers earlier in the trace this does not happen: they disturbed it)",
            failure.message
        ),
    ))
}
