//! CANCEL-1, confirmed counterfactually: were the drops and cancellations
//! of subscribers what disturbed the others ("dropping or cancelling a
//! subscriber disturbs no other subscriber or sender")?
//!
//! The failing prefix is replayed without any drop or cancellation of
//! subscribers:
//!
//! - a CANCEL-1 failure whose symptom (stuck, unended, failed send, a
//!   close gone wrong) still shows without them was not caused by the
//!   drops: that failure, under its own rule, is the one to report;
//! - a failure with one of those symptoms that then disappears was caused
//!   by them: it is CANCEL-1;
//! - anything else answers nothing, and the failure stands.
//!
//! Statistics are RECLAIM's business (a drop that changes what is retained
//! does not disturb another subscriber), so failures at `observe` are left
//! to [`super::holder`].

use super::Rerun;
use crate::harness::{Failure, Run};
use crate::model::{Layout, Violation};
use crate::op::{Entry, Op};
use crate::rules::Rule;
use crate::shrink::close_references;

/// The rules whose symptoms a drop can cause.
const SYMPTOMS: [Rule; 6] = [
    Rule::Wake1,
    Rule::Fanout1,
    Rule::Send1,
    Rule::Close1,
    Rule::Close2,
    Rule::Close3,
];

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
    let at_observe = matches!(prefix.last(), Some(Entry::Op(Op::Observe { .. })));
    let symptom = SYMPTOMS.contains(&failure.rule);
    if failure.fault || at_observe || !(symptom || failure.rule == Rule::Cancel1) {
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
        (Rule::Cancel1, Rerun::AtEnd(f) | Rerun::Before(f)) if SYMPTOMS.contains(&f.rule) => {
            Some((trace, f))
        }
        (Rule::Cancel1, _) => None,
        (_, Rerun::Passed) => Some((prefix.to_vec(), blame_drops(failure))),
        _ => None,
    }
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
