//! A retained event is blamed on the rule of the thing that holds it.
//!
//! When statistics show events held that nothing should need, the facts
//! alone ([`super::stats`]) can mislead: an event sent after close is held
//! only because a subscription made after close (CLOSE-3) keeps the
//! channel alive, not because sends after close are kept (CLOSE-2); an
//! excess that happens to equal what an unrelated dropped subscription
//! would pin is not RECLAIM-2. So the question is asked of the
//! implementation, by replaying the failing prefix without the suspects:
//!
//! 1. without the subscriptions of that route made after close: if the
//!    run then passes, they hold it: CLOSE-3;
//! 2. without the dropped (or cancelled) subscriptions of that route: if
//!    the run then passes, they hold it: RECLAIM-2; if it still fails
//!    there, they do not, and that failure's rule stands.
//!
//! Anything else (the replay fails somewhere else) answers nothing, and
//! the facts' rule stands.

use super::{Cleared, Rerun};
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Mode, StatsMismatch, Violation};
use crate::op::{Entry, Op, SubId};
use crate::rules::Rule;
use crate::shrink::close_references;

/// The rule of whatever holds the events a statistics failure is about,
/// when replays without the suspects tell; `None` if they do not (or the
/// failure is not about held events).
pub fn holder(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let Some(Disagreement::Stats(stats)) = failure.evidence.as_deref() else {
        return None;
    };
    let about_held = stats.holds_more() && stats.merged_with.is_none();
    let suspects = [Rule::Reclaim1, Rule::Reclaim2, Rule::Close2, Rule::Drop1];
    if !about_held || !suspects.contains(&failure.rule) {
        return None;
    }
    let late = without_subs(prefix, &stats.late_subs);
    let cleared = |candidate: &[Entry], rerun: &mut dyn FnMut(&[Entry], Layout) -> Run| {
        Rerun::of(candidate, rerun(candidate, layout)).cleared(failure)
    };
    if !stats.late_subs.is_empty() && cleared(&late, rerun) == Cleared::Yes {
        return Some(Violation::new(
            Rule::Close3,
            Mode::HeldByLateSubscription,
            format!(
                "{}; without the subscriptions made after the bus closed ({}) this passes: the bus keeps them live, and what they hold, though it is closed",
                failure.message,
                list(&stats.late_subs)
            ),
        ));
    }
    if stats.dropped_subs.is_empty() {
        return None;
    }
    let candidate = without_subs(prefix, &stats.dropped_subs);
    let run = rerun(&candidate, layout);
    dropped_verdict(failure, stats, Rerun::of(&candidate, run))
}

/// What replaying without the dropped subscriptions says: if that clears
/// the failure, they hold it (RECLAIM-2); if a RECLAIM-2 reading still
/// fails without them, it is that failure's rule.
fn dropped_verdict(failure: &Failure, stats: &StatsMismatch, without: Rerun) -> Option<Violation> {
    let subs = list(&stats.dropped_subs);
    match (without.cleared(failure), without) {
        (Cleared::Yes, _) => Some(Violation::new(
            Rule::Reclaim2,
            Mode::HeldByDropped,
            format!(
                "{}; without the dropped subscriptions ({subs}) this passes: they still hold it",
                failure.message
            ),
        )),
        (Cleared::No, Rerun::AtEnd(f))
            if failure.rule == Rule::Reclaim2 && f.rule != Rule::Reclaim2 =>
        {
            Some(Violation::new(
                f.rule,
                f.mode,
                format!(
                    "{} (not the dropped subscriptions {subs}: without them it still fails)",
                    f.message
                ),
            ))
        }
        _ => None,
    }
}

/// `prefix` without the `subscribe` of each of `subs`, and everything that
/// names them.
fn without_subs(prefix: &[Entry], subs: &[SubId]) -> Vec<Entry> {
    close_references(
        prefix
            .iter()
            .filter(|e| !matches!(e, Entry::Op(Op::Subscribe { sub, .. }) if subs.contains(sub))),
    )
}

fn list(subs: &[SubId]) -> String {
    subs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
