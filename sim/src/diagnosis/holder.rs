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
//!    failure then goes, they are what the bus reports on (they hold
//!    events, or stand in for earlier subscriptions): CLOSE-3;
//! 2. without the sends of that route made when it had no live
//!    subscription: if the failure then goes, those events were stored:
//!    DROP-1;
//! 3. without the sends of that route made after the bus closed: if the
//!    failure then goes, those events were kept: CLOSE-2;
//! 4. for an event held, without the live subscriptions made after it was
//!    sent (by count: after the event that many from the end of the log):
//!    if it then goes, they hold it, so they would see it: VIS-1. Asked
//!    after 2 and 3: a subscription that holds an event the bus should
//!    never have stored is not the cause;
//! 5. without the dropped (or cancelled) subscriptions of that route: if
//!    the failure then goes, they hold it: RECLAIM-2; if it still fails
//!    there, they do not, and that failure's rule stands.
//!
//! Anything else (the replay fails somewhere else) answers nothing, and
//! the facts' rule stands.

use super::rerun::ask;
use super::{Cleared, Rerun};
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Mode, Violation};
use crate::op::{Entry, Interjection, Op, SubId};
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
    let suspects = [Rule::Reclaim1, Rule::Reclaim2, Rule::Close2, Rule::Drop1];
    if !suspects.contains(&failure.rule) {
        return None;
    }
    let mut clears = |candidate: &[Entry]| {
        ask(prefix, candidate, layout, rerun).is_some_and(|r| r.cleared(failure) == Cleared::Yes)
    };
    // `suspects`: the subscriptions or events taken out, listed.
    let blame = |rule, mode, who: &str, suspects: String, why: &str| {
        Some(Violation::new(
            rule,
            mode,
            format!(
                "{}; without {who} ({suspects}) this passes: {why}",
                failure.message
            ),
        ))
    };
    // Subscriptions made after close change what the bus reports either
    // way: they hold what is sent after, and may stand in for earlier ones.
    if clears(&without_subs(prefix, &stats.late_subs)) {
        return blame(
            Rule::Close3,
            Mode::HeldByLateSubscription,
            "the subscriptions made after the bus closed",
            list(&stats.late_subs),
            "the bus keeps them live, and what they hold, though it is closed",
        );
    }
    if !stats.holds_more() {
        return None;
    }
    // Events sent with no live subscription, stored all the same.
    if clears(&without_sends(prefix, &stats.unstored_events)) {
        return blame(
            Rule::Drop1,
            Mode::HeldTooLong,
            &format!("the events sent when nobody subscribed to {}", stats.route),
            events(&stats.unstored_events),
            "they were stored",
        );
    }
    // Events sent after the bus closed, stored all the same.
    if clears(&without_sends(prefix, &stats.after_close_events)) {
        return blame(
            Rule::Close2,
            Mode::HeldTooLong,
            "the events sent after the bus closed",
            events(&stats.after_close_events),
            "the bus still accepts them, and keeps them",
        );
    }
    if clears(&without_subs(prefix, &stats.younger_subs)) {
        return blame(
            Rule::Vis1,
            Mode::FromBeforeSubscribing,
            "the subscriptions made after it was sent",
            list(&stats.younger_subs),
            "they hold an event sent before they were created, so they would see it",
        );
    }
    let candidate = without_subs(prefix, &stats.dropped_subs);
    let outcome = ask(prefix, &candidate, layout, rerun)?;
    dropped_verdict(failure, &stats.dropped_subs, outcome)
}

/// `event#A, event#B, ...`
fn events(ids: &[u64]) -> String {
    ids.iter()
        .map(|e| format!("event#{e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What replaying without the dropped subscriptions says: if that clears
/// the failure, they hold it (RECLAIM-2); if a RECLAIM-2 reading still
/// fails without them, it is that failure's rule.
fn dropped_verdict(failure: &Failure, suspects: &[SubId], without: Rerun) -> Option<Violation> {
    let subs = list(suspects);
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
    // A failure of one of them goes with it, but its cleanup's send stays.
    let kept: Vec<Entry> = prefix
        .iter()
        .filter(|e| {
            !matches!(e, Entry::Op(Op::Subscribe { sub, .. } | Op::SpawnProcessor { sub, .. } | Op::SubscribeShared { sub, .. }) if subs.contains(sub))
        })
        .map(|e| match e {
            Entry::Op(Op::FailSubscriber { sub, .. }) if subs.contains(sub) => {
                super::failure::cleanup_send(prefix, e).unwrap_or_else(|| e.clone())
            }
            other => other.clone(),
        })
        .collect();
    close_references(&kept)
}

/// `prefix` without the sends of `events` (a poll they were interjected
/// into stays; a worker, or a failing subscriber's cleanup, that was to
/// send one sends nothing).
fn without_sends(prefix: &[Entry], events: &[u64]) -> Vec<Entry> {
    prefix
        .iter()
        .filter_map(|e| match e {
            Entry::Op(Op::Send { event, .. }) if events.contains(event) => None,
            Entry::Preempt(t, Interjection::Op(Op::Send { event, .. }))
                if events.contains(event) =>
            {
                Some(Entry::Poll(*t))
            }
            Entry::Op(Op::Release {
                task,
                send: Some(spec),
            }) if events.contains(&spec.event) => Some(Entry::Op(Op::Release {
                task: *task,
                send: None,
            })),
            Entry::Op(Op::FailSubscriber {
                sub,
                send: Some(spec),
            }) if events.contains(&spec.event) => Some(Entry::Op(Op::FailSubscriber {
                sub: *sub,
                send: None,
            })),
            other => Some(other.clone()),
        })
        .collect()
}

fn list(subs: &[SubId]) -> String {
    subs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
