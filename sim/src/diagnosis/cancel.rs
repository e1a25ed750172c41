//! CANCEL-1, confirmed counterfactually: were the drops and cancellations
//! of subscribers what disturbed the others ("dropping or cancelling a
//! subscriber disturbs no other subscriber or sender")?
//!
//! The failing prefix is replayed without the drops and cancellations of
//! the failing channel's subscribers (its route, on its bus as the
//! implementation lays buses out): a drop elsewhere is no sibling's, and
//! taking it out would only change when a self-scheduling implementation
//! gets to run. A processor's cancellation is taken out only for a refused
//! send (which the bus answers at once), a stream stuck or unended at a
//! settle in a trace with no preempted poll, or a pull that raised: a
//! processor runs inside its
//! scope's task, so without the cancellation that task would poll
//! something else, and everything on the bus would run at other times (a
//! lost wakeup or a receipt, which depend on when, could go for that
//! reason alone).
//!
//! - a symptom on a subscription or a sender that then disappears (the same
//!   subscription no longer stuck at that settle, the same receipt no
//!   longer wrong, ...; see [`super::Rerun::cleared`]) was caused by them:
//!   it is CANCEL-1, whatever the symptom (a stuck or unended stream, a
//!   failed send, an event lost so that the next one reads as out of
//!   order, an event freed that a live subscription still needed);
//! - anything else answers nothing, and the first reading (the symptom's
//!   own rule: [`super::classify`] never names CANCEL-1 from circumstance)
//!   stands.
//!
//! Events held too long, or subscriptions counted that were dropped, are
//! RECLAIM's business (a drop that changes what is retained does not
//! disturb another subscriber), so those are left to [`super::holder`]; and
//! an event sent when a drop had left nobody subscribed is DROP-1's (the
//! drop made the situation that rule is about; without it there is none).

use super::causal::{Shape, evidence_channel};
use super::rerun::{Rerun, ask_instead, ask_same_schedule};
use super::{Cleared, abandon};
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Violation};
use crate::op::{Entry, Interjection, Op, ScopeId, SubId, TaskRef};
use crate::rules::Rule;
use crate::shrink::close_references;
use std::collections::BTreeSet;

/// CANCEL-1, when replaying `prefix` (a failing trace up to its failing
/// entry) without the drops and cancellations of the failing channel's
/// subscribers clears `failure`; `None` otherwise.
pub fn drops(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let (shape, channel) = on_a_channel(prefix, failure, layout)?;
    let during_a_drop = matches!(
        prefix.last(),
        Some(Entry::Op(
            Op::DropSubscription { sub }
                | Op::CancelSubscriber { sub }
                | Op::FailSubscriber { sub, .. }
        )) if shape.sub_channel(*sub) == Some(channel)
    );
    earlier_drops(prefix, failure, &shape, channel, layout, rerun).or_else(|| {
        during_a_drop
            .then(|| during_the_drop(prefix, failure, layout, rerun))
            .flatten()
    })
}

/// CANCEL-1, when replaying without the drops and cancellations before the
/// failing entry, of the failing channel's subscribers (and of channels
/// failing at the same point), clears `failure`.
fn earlier_drops(
    prefix: &[Entry],
    failure: &Failure,
    shape: &Shape,
    channel: (ScopeId, EventType),
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let mut channels = vec![channel];
    // Asked of a fresh instance, so only once there is a drop to take out.
    let mut asked: Option<Option<Entry>> = None;
    for _ in 0..MAX_CHANNELS {
        let candidate = without_drops(prefix, failure, shape, &channels, || {
            asked.get_or_insert_with(|| stand_in(layout, rerun)).clone()
        })?;
        let outcome = ask_same_schedule(prefix, &candidate, layout, rerun)?;
        if moved_to_a_sibling(&outcome, shape, &channels) {
            return None;
        }
        if outcome.cleared(failure) == Cleared::Yes {
            if only_unmasked(prefix, failure, shape, &channels, layout, rerun) {
                return None;
            }
            // Among them a failed subscriber whose failure, as a plain drop
            // and send, would not do it: the failure path's, FAIL-2.
            if let Some(v) = super::failure::swapped_clears(prefix, failure, layout, rerun) {
                return Some(v);
            }
            let pull = abandon::pull_not_drop(prefix, failure, &channels, layout, rerun);
            return Some(pull.unwrap_or_else(|| blame_drops(failure)));
        }
        // Another channel's symptom at the same point, where that channel
        // had drops of its own: take those out too, and ask again.
        let Rerun::AtEnd(f) = outcome else {
            return None;
        };
        let next =
            failing_channel(&f, shape).filter(|c| !channels.contains(c) && a_drop_can_cause(&f))?;
        channels.push(next);
    }
    None
}

/// Whether the failure shows as well when the dropped subscriptions were
/// never made at all (their subscribe, and every entry naming them, taken
/// out): then the drops did not cause it, they only ended what those
/// subscriptions masked while they lived (Haiway 0.42 keeps a closed
/// bus's per-type state only while a subscription refers to it, so a
/// subscribe after the close ends at once while an older subscription
/// lives, and never ends once it was dropped: CLOSE-3, not CANCEL-1). A
/// dropped subscriber shows nothing to the others that never having
/// subscribed would not. A subscriber that failed counts as dropped, its
/// cleanup's send (if any) made from its scope in its place; one whose
/// cleanup sends on a failing channel is not asked about (that send is
/// part of the question). Each drop's place gets a `settle`: a drop runs
/// its subscriber's task until it has unwound, and with it whatever else
/// was due (a requested cancellation completes), so the ops after it stay
/// valid.
fn only_unmasked(
    prefix: &[Entry],
    failure: &Failure,
    shape: &Shape,
    channels: &[(ScopeId, EventType)],
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> bool {
    let Some((last, earlier)) = prefix.split_last() else {
        return false;
    };
    let on_failing = |sub: &SubId| {
        shape
            .sub_channel(*sub)
            .is_some_and(|c| channels.contains(&c))
    };
    let mut dropped = BTreeSet::new();
    for entry in earlier {
        match entry {
            Entry::Op(Op::FailSubscriber { sub, send: Some(s) }) if on_failing(sub) => {
                let sends_on_failing = shape
                    .sub_scope(*sub)
                    .and_then(|scope| shape.channel(scope, s.ty.route()))
                    .is_none_or(|c| channels.contains(&c));
                if sends_on_failing {
                    return false;
                }
                dropped.insert(*sub);
            }
            Entry::Op(
                Op::DropSubscription { sub }
                | Op::CancelSubscriber { sub }
                | Op::FailSubscriber { sub, send: None },
            ) if on_failing(sub) => {
                dropped.insert(*sub);
            }
            _ => {}
        }
    }
    if dropped.is_empty() {
        return false;
    }
    let never: Vec<Entry> = earlier
        .iter()
        .flat_map(|e| never_made(e, &dropped, shape))
        .chain(std::iter::once(last.clone()))
        .collect();
    let never = close_references(&never);
    ask_same_schedule(prefix, &never, layout, rerun)
        .is_some_and(|outcome| outcome.cleared(failure) == Cleared::No)
}

/// `entry` as it reads when the `dropped` subscriptions were never made:
/// their subscribes gone, each end a `settle` (after the send a failed
/// subscriber's cleanup made, from its scope).
fn never_made(entry: &Entry, dropped: &BTreeSet<SubId>, shape: &Shape) -> Vec<Entry> {
    match entry {
        Entry::Op(Op::Subscribe { sub, .. } | Op::SubscribeShared { sub, .. })
            if dropped.contains(sub) =>
        {
            Vec::new()
        }
        Entry::Op(Op::FailSubscriber { sub, send: Some(s) }) if dropped.contains(sub) => vec![
            Entry::Op(Op::Send {
                scope: shape.sub_scope(*sub),
                ty: s.ty,
                event: s.event,
            }),
            Entry::Op(Op::Settle),
        ],
        Entry::Op(
            Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::FailSubscriber { sub, send: None },
        ) if dropped.contains(sub) => vec![Entry::Op(Op::Settle)],
        other => vec![other.clone()],
    }
}

/// Whether the rerun without the drops still has a subscription of the
/// failing channels stuck, unended or ended early at that point, only
/// another one (the subscription that was dropped, now live, say): the
/// symptom moved, it did not go, so the drops did not cause it (a bus that
/// wakes one waiter per send loses a wakeup whichever subscriber it picks;
/// a close that ends every subscription before what was sent).
pub(super) fn moved_to_a_sibling(
    outcome: &Rerun,
    shape: &Shape,
    channels: &[(ScopeId, EventType)],
) -> bool {
    let subs = match outcome {
        Rerun::AtEnd(f) => match f.evidence.as_deref() {
            Some(Disagreement::Stuck(s)) => &s.subs,
            Some(Disagreement::Unended(u)) => &u.subs,
            Some(Disagreement::EarlyEnd(e)) => std::slice::from_ref(&e.sub.sub),
            _ => return false,
        },
        _ => return false,
    };
    subs.iter()
        .any(|s| shape.sub_channel(*s).is_some_and(|c| channels.contains(&c)))
}

/// A symptom that showed while a subscriber of its channel was dropped or
/// cancelled (a send of a task that ran then, say): replayed with a
/// `settle` in the drop's place, which runs the same tasks at the same
/// point; if nothing then fails there, the drop disturbed them: CANCEL-1.
/// A failed subscriber's place keeps its cleanup's send after the settle
/// (what is asked about is the failure's drop, not that send); the
/// abandon is asked alone (a symptom at the drop itself), then with the
/// send after it (a refused send), then before it.
fn during_the_drop(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let cleanup: Vec<Entry> = prefix
        .last()
        .and_then(|last| super::failure::cleanup_send(prefix, last))
        .into_iter()
        .collect();
    // The stand-in with the cleanup's send after it, where the failure's
    // send came.
    let then_send = |stand_in: Entry| -> Vec<Entry> {
        std::iter::once(stand_in)
            .chain(cleanup.iter().cloned())
            .collect()
    };
    let outcome = ask_instead(prefix, &then_send(Entry::Op(Op::Settle)), layout, rerun)?;
    // With a settle there, the symptom does not show (something else may:
    // a subscription that should have ended is seen not to); the same
    // symptom there means the drop did not cause it.
    if outcome.cleared(failure) == Cleared::No {
        return None;
    }
    // Nor if it shows on another subscription of its channel, the dropped
    // one included (a close that ends them all before what was sent).
    if let Some((shape, channel)) = on_a_channel(prefix, failure, layout)
        && moved_to_a_sibling(&outcome, &shape, &[channel])
    {
        return None;
    }
    // The drop abandoned its subscriber's pending receive: does abandoning
    // that receive alone, keeping the subscription, do the same (CANCEL-2)?
    if let Some(Entry::Op(
        Op::DropSubscription { sub }
        | Op::CancelSubscriber { sub }
        | Op::FailSubscriber { sub, .. },
    )) = prefix.last()
        && let Some(why) = abandon_variants(&abandon::abandons_of(prefix, *sub), &cleanup)
            .into_iter()
            .find_map(|instead| {
                let abandoners: Vec<SubId> = instead
                    .iter()
                    .filter_map(|e| match e {
                        Entry::Op(Op::Abandon { sub }) => Some(*sub),
                        _ => None,
                    })
                    .collect();
                ask_instead(prefix, &instead, layout, rerun)
                    .and_then(|o| abandon::abandoning_explains(&o, failure, &abandoners))
            })
    {
        return Some(Violation::new(
            Rule::Cancel2,
            failure.mode,
            format!(
                "{} (it showed while a subscriber of its type was dropped or cancelled; had that subscriber only abandoned its pending receive, keeping its subscription, it {why}: the receive is not cancel-safe)",
                failure.message
            ),
        ));
    }
    if !matches!(outcome, Rerun::Passed) {
        return None;
    }
    Some(Violation::new(
        Rule::Cancel1,
        failure.mode,
        format!(
            "{} (it showed while a subscriber of its type was dropped or cancelled; with a settle there instead, nothing fails: the drop disturbed it)",
            failure.message
        ),
    ))
}

/// The shape of `prefix` and the channel `failure` is about, if it is a
/// symptom on a channel that a drop or an abandon of a sibling can cause
/// (see [`a_drop_can_cause`]).
pub(super) fn on_a_channel(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
) -> Option<(Shape, (ScopeId, EventType))> {
    if failure.fault || !a_drop_can_cause(failure) {
        return None;
    }
    let shape = Shape::of(prefix, layout);
    let channel = failing_channel(failure, &shape)?;
    Some((shape, channel))
}

/// How many channels' drops one question may take out.
const MAX_CHANNELS: usize = 8;

/// The channel (bus owner, route) a failure is about, if its evidence says.
fn failing_channel(failure: &Failure, shape: &Shape) -> Option<(ScopeId, EventType)> {
    let (scope, route) = failure.evidence.as_deref().and_then(evidence_channel)?;
    shape.channel(scope, route)
}

/// `prefix` without the drops and cancels of subscribers of `channels`
/// (processors' cancellations excepted, but for symptoms that do not depend
/// on when things run) before its
/// last entry (the failing one stays, drop or not: a symptom cannot be
/// asked about without the point it showed at; a drop that is that point
/// is asked about by [`during_the_drop`]); `None` if there are none.
fn without_drops(
    prefix: &[Entry],
    failure: &Failure,
    shape: &Shape,
    channels: &[(ScopeId, EventType)],
    stand_in: impl FnOnce() -> Option<Entry>,
) -> Option<Vec<Entry>> {
    let preempted = preempts_channels(prefix, shape, channels);
    let timeless = match failure.evidence.as_deref() {
        Some(Disagreement::SendRefused(_)) => true,
        Some(Disagreement::Unended(_) | Disagreement::Stuck(_)) => !preempted,
        Some(Disagreement::EarlyEnd(e)) => e.raised.is_some(),
        _ => false,
    };
    // A processor runs inside its scope's task: taking its cancellation out
    // would change what that task polls, and with it when everything else
    // on the bus runs. It stays, unless the symptom does not depend on
    // when things run: a refused send (the bus answers at once, whenever
    // the processor is polled), a stream stuck or unended however long the
    // bus is let run (at a settle; unless a poll on these channels was
    // preempted: what runs at a yield point depends on what that task
    // polls), a pull that raises.
    let processors: BTreeSet<SubId> = prefix
        .iter()
        .filter_map(|e| match e {
            Entry::Op(Op::SpawnProcessor { sub, .. }) => Some(*sub),
            _ => None,
        })
        .collect();
    let is_drop = |e: &Entry| match e {
        Entry::Op(
            Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::FailSubscriber { sub, .. },
        ) => {
            (timeless || !processors.contains(sub))
                && shape
                    .sub_channel(*sub)
                    .is_some_and(|c| channels.contains(&c))
        }
        _ => false,
    };
    taken_out(prefix, is_drop, stand_in)
}

/// What may stand in for the drop of a subscription (its last entry) to
/// ask whether only the receives it abandoned did it: those `abandons`
/// alone, and, for a failed subscriber, with its cleanup's send after them
/// and before them.
fn abandon_variants(abandons: &[Entry], cleanup: &[Entry]) -> Vec<Vec<Entry>> {
    let mut variants = vec![abandons.to_vec()];
    if !cleanup.is_empty() {
        variants.push(abandons.iter().chain(cleanup).cloned().collect());
        variants.push(cleanup.iter().chain(abandons).cloned().collect());
    }
    variants
}

/// Whether a poll of `prefix` was preempted on one of `channels`: a send on
/// them interjected, or a poll of a subscriber of them (or of the root
/// scope task a processor of them runs in) preempted or interjected.
fn preempts_channels(prefix: &[Entry], shape: &Shape, channels: &[(ScopeId, EventType)]) -> bool {
    let on = |c: Option<(ScopeId, EventType)>| c.is_some_and(|c| channels.contains(&c));
    let roots: BTreeSet<ScopeId> = prefix
        .iter()
        .filter_map(|e| match e {
            Entry::Op(Op::SpawnProcessor { scope, ty, .. })
                if on(shape.channel(*scope, ty.route())) =>
            {
                shape.ancestors(*scope).last().copied()
            }
            _ => None,
        })
        .collect();
    let task_on = |t: &TaskRef| match t {
        TaskRef::Sub(s) => on(shape.sub_channel(*s)),
        TaskRef::Scope(s) => roots.contains(s),
        TaskRef::Any => true,
    };
    prefix.iter().any(|e| match e {
        Entry::Preempt(task, with) => {
            task_on(task)
                || match with {
                    Interjection::Op(Op::Send {
                        scope: Some(s), ty, ..
                    }) => on(shape.channel(*s, ty.route())),
                    Interjection::Op(_) => false,
                    Interjection::Poll(other) => task_on(other),
                }
        }
        _ => false,
    })
}

/// `prefix` with the entries before its last that `take` picks taken out
/// (or replaced by what `stand_in` gives, asked only if `take` picks
/// some), and the entries that named only what they created dropped with
/// them; `None` if `take` picks none.
pub(super) fn taken_out(
    prefix: &[Entry],
    take: impl Fn(&Entry) -> bool,
    stand_in: impl FnOnce() -> Option<Entry>,
) -> Option<Vec<Entry>> {
    let (last, earlier) = prefix.split_last()?;
    if !earlier.iter().any(&take) {
        return None;
    }
    let stand_in = stand_in();
    let stand_in = stand_in.as_ref();
    let kept: Vec<Entry> = earlier
        .iter()
        .flat_map(|e| match (take(e), stand_in) {
            (false, _) => vec![e.clone()],
            // A failed subscriber taken out keeps its cleanup's send.
            (true, stand_in) => stand_in
                .cloned()
                .into_iter()
                .chain(super::failure::cleanup_send(prefix, e))
                .collect(),
        })
        .chain(std::iter::once(last.clone()))
        .collect();
    Some(close_references(&kept))
}

/// What stands in for a drop (or an abandon) taken out of a replay. An
/// implementation that schedules itself (it declares `step` but not
/// `schedule`: an asyncio event loop, say) may run its loop while it
/// handles a drop, so that the subscriber's task unwinds; taking the drop
/// out would take that step out too, and a close requested earlier, say,
/// would then happen later. For it, a drop is replaced by one scheduling
/// step of its own choice (`poll any`); for every other implementation it
/// is simply taken out. Asked of a fresh instance (an empty replay).
pub(super) fn stand_in(
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Entry> {
    use crate::rules::Capability;
    let declared = rerun(&[], layout).capabilities;
    (declared.has(Capability::Step) && !declared.has(Capability::Schedule))
        .then_some(Entry::Poll(crate::op::TaskRef::Any))
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
fn blame_drops(failure: &Failure) -> Violation {
    Violation::new(
        Rule::Cancel1,
        failure.mode,
        format!(
            "{} (without the drops and cancellations of subscribers earlier in the trace this does not happen: they disturbed it)",
            failure.message
        ),
    )
}
