//! CANCEL-1, confirmed counterfactually: were the drops and cancellations
//! of subscribers what disturbed the others ("dropping or cancelling a
//! subscriber disturbs no other subscriber or sender")?
//!
//! The failing prefix is replayed without the drops and cancellations of
//! the failing channel's subscribers (its route, on its bus as the
//! implementation lays buses out): a drop elsewhere is no sibling's, and
//! taking it out would only change when a self-scheduling implementation
//! gets to run.
//!
//! - a symptom on a subscription or a sender that then disappears (the same
//!   subscription no longer stuck at that settle, the same receipt no
//!   longer wrong, ...; see [`super::Rerun::cleared`]) was caused by them:
//!   it is CANCEL-1, whatever the symptom (a stuck or unended stream, a
//!   failed send, an event lost so that the next one reads as out of
//!   order, an event freed that a live subscription still needed);
//! - a CANCEL-1 failure where the implementation fails without them all
//!   the same (a symptom of the same kinds) was not shown to be caused by
//!   the drops: that failure, under its own rule, is the one to report;
//! - anything else answers nothing, and the failure stands.
//!
//! Events held too long, or subscriptions counted that were dropped, are
//! RECLAIM's business (a drop that changes what is retained does not
//! disturb another subscriber), so those are left to [`super::holder`]; and
//! an event sent when a drop had left nobody subscribed is DROP-1's (the
//! drop made the situation that rule is about; without it there is none).

use super::causal::{Shape, evidence_channel};
use super::{Cleared, Rerun};
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Violation};
use crate::op::{Entry, Op, ScopeId};
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
    if failure.fault || !a_drop_can_cause(failure) {
        return None;
    }
    let shape = Shape::of(prefix, layout);
    let mut channels = vec![failing_channel(failure, &shape)?];
    for _ in 0..MAX_CHANNELS {
        let candidate = without_drops(prefix, &shape, &channels)?;
        if candidate.last() != prefix.last() {
            return None;
        }
        let run = rerun(&candidate, layout);
        let trace = run.trace.clone();
        let outcome = Rerun::of(&candidate, run);
        if failure.rule == Rule::Cancel1 {
            return match outcome {
                Rerun::AtEnd(f) | Rerun::Before(f)
                    if f.rule != Rule::Cancel1 && a_drop_can_cause(&f) =>
                {
                    Some((trace, f))
                }
                _ => None,
            };
        }
        if outcome.cleared(failure) == Cleared::Yes {
            return Some((prefix.to_vec(), blame_drops(failure)));
        }
        // Another channel's symptom at the same point, where that channel
        // had drops of its own: take those out too, and ask again.
        let Rerun::AtEnd(f) = outcome else {
            return None;
        };
        let next = failing_channel(&f, &shape)
            .filter(|c| !channels.contains(c) && a_drop_can_cause(&f))?;
        channels.push(next);
    }
    None
}

/// How many channels' drops one question may take out.
const MAX_CHANNELS: usize = 8;

/// The channel (bus owner, route) a failure is about, if its evidence says.
fn failing_channel(failure: &Failure, shape: &Shape) -> Option<(ScopeId, EventType)> {
    let (scope, route) = failure.evidence.as_deref().and_then(evidence_channel)?;
    shape.channel(scope, route)
}

/// `prefix` without the drops and cancels of subscribers of `channels`;
/// `None` if there are none, or if the failing entry is one (a symptom
/// that showed during a drop cannot be asked about without that drop: it
/// would have no point to show at).
fn without_drops(
    prefix: &[Entry],
    shape: &Shape,
    channels: &[(ScopeId, EventType)],
) -> Option<Vec<Entry>> {
    let is_drop = |e: &&Entry| match e {
        Entry::Op(Op::DropSubscription { sub } | Op::CancelSubscriber { sub }) => shape
            .sub_channel(*sub)
            .is_some_and(|c| channels.contains(&c)),
        _ => false,
    };
    if prefix.last().is_some_and(|e| is_drop(&e)) {
        return None;
    }
    let without = close_references(prefix.iter().filter(|e| !is_drop(e)));
    (without.len() < prefix.len()).then_some(without)
}

/// Whether `failure` is a symptom a drop of another subscriber can cause:
/// a subscription's receipt, stall, end or lost event, or a sender's
/// failure. Not the lifecycle of scopes and tasks, nor the layout, nor
/// events held too long (RECLAIM's) or sent when a drop had left nobody
/// subscribed (DROP-1's: the drop made the situation that rule is about).
fn a_drop_can_cause(failure: &Failure) -> bool {
    match failure.evidence.as_deref() {
        Some(Disagreement::Stats(s)) => !s.holds_more(),
        Some(Disagreement::Certain(_)) => false,
        Some(_) => !matches!(failure.rule, Rule::Drop1 | Rule::Reclaim2),
        None => false,
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
