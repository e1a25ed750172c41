//! ROUTE-1 (or ROUTE-2, for the instantiations of a generic type) before
//! its symptoms: a bus that keeps look-alike types as one.
//!
//! A bus that routes by name, by base class or by generic base delivers one
//! type's events to another's subscriptions, loses them from their own,
//! miscounts, ends streams early. The receipt of another type's event is
//! ROUTE-1 by itself; every other symptom on a channel is replayed with the
//! look-alike types on the same bus (the same family, another route)
//! renamed to unrelated types the trace does not use: if it then goes, the
//! look-alikes caused it, and it is ROUTE-1's (ROUTE-2's if they are the
//! instantiations of one generic type).
//!
//! Invariant: the counterfactual differs from the failing prefix in the
//! look-alikes only, and never in a drop or cancellation of a subscriber
//! (a failure those cause is CANCEL-1's, and must not be blamed on
//! ROUTE-1). Renaming keeps every op. A look-alike is renamed to an
//! unrelated route the bus does not use if there is one left, else, for a
//! failure a settle or an `observe` finds (but a lost wakeup on a bus a
//! processor reads), to one it does use (shared among look-alikes if need
//! be): that merges the look-alike's traffic into an unrelated channel,
//! which cannot change what a bus that keeps types apart holds for the
//! failing channel once everything has run (a receipt at one point in
//! time could move with the schedule), unless its dispatcher keeps state
//! across channels (the last event it handled, whatever its channel): so
//! an event held is blamed on the look-alikes after such a merge only if
//! taking them out clears it too. Otherwise the
//! look-alikes' subscriptions and sends are taken out instead, but only if
//! none of those subscriptions was dropped or cancelled; else nothing is
//! asked.

use super::Cleared;
use super::causal::{Shape, evidence_channel};
use super::rerun::ask;
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Mode, Violation};
use crate::op::{Entry, Interjection, Op, ScopeId, SubId, TaskId};
use crate::rules::Rule;
use crate::shrink::close_references;
use std::collections::BTreeMap;

/// ROUTE-1, when replaying with the failing channel's look-alikes renamed
/// to unrelated types (or taken out; see the module documentation) clears
/// the failure; `None` otherwise.
pub fn lookalikes(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    if matches!(failure.rule, Rule::Route1 | Rule::Route2) {
        return None;
    }
    let (scope, route) = failure.evidence.as_deref().and_then(evidence_channel)?;
    let shape = Shape::of(prefix, layout);
    let (bus, _) = shape.channel(scope, route)?;
    let on_bus = |s: &Option<ScopeId>| {
        s.and_then(|s| shape.channel(s, route))
            .is_some_and(|(b, _)| b == bus)
    };
    let task_on_bus = |t: &TaskId| on_bus(&shape.task_scope(*t));
    let sub_on_bus = |s: &SubId| on_bus(&shape.sub_scope(*s));
    // Something kept (an event held, a subscription counted) is the
    // look-alikes' doing only if some subscription of a look-alike route on
    // this bus is still held, for which a bus that merges them would keep
    // it: with none, what renaming them changes is only when the
    // implementation's own tasks run (a dispatcher task that keeps the last
    // event it handled, say), which is no evidence about routing.
    if let Some(Disagreement::Stats(stats)) = failure.evidence.as_deref()
        && stats.holds_more()
        && !lookalike_held(prefix, route, &sub_on_bus)
    {
        return None;
    }
    // Renaming onto routes the bus uses adds traffic to their channels,
    // which moves the schedule of a processor's scope task: asked only of
    // what a settle or an `observe` checks, not of a receipt or an end at
    // one point in time; and not of a lost wakeup on a bus a processor
    // reads, since when a wakeup is due moves with that schedule (an event
    // never delivered stays undelivered).
    let processor_on_bus = prefix
        .iter()
        .any(|e| matches!(e, Entry::Op(Op::SpawnProcessor { scope, .. }) if on_bus(&Some(*scope))));
    let at_rest = match failure.evidence.as_deref() {
        Some(Disagreement::Stuck(s)) => !(processor_on_bus && s.woken == Some(true)),
        Some(Disagreement::Unended(_) | Disagreement::Stats(_)) => true,
        _ => false,
    };
    let without = || removed(prefix, route, &on_bus, &task_on_bus, &sub_on_bus);
    let (candidate, merged) =
        match renames(prefix, route, &on_bus, &task_on_bus, &sub_on_bus, at_rest) {
            Some((renames, merged)) => (
                renamed(prefix, &renames, &on_bus, &task_on_bus, &sub_on_bus),
                merged,
            ),
            None => (without()?, false),
        };
    let clears = |candidate: &[Entry], rerun: &mut dyn FnMut(&[Entry], Layout) -> Run| {
        ask(prefix, candidate, layout, rerun).is_some_and(|o| o.cleared(failure) == Cleared::Yes)
    };
    // Merging into a used channel adds traffic to it; a bus whose
    // dispatcher keeps the last event it handled for any channel
    // (broadcaster's listener task) lets that go then, routing or not. So
    // an event held is the look-alikes' doing only if taking them out
    // clears it as well.
    let holds =
        matches!(failure.evidence.as_deref(), Some(Disagreement::Stats(s)) if s.holds_more());
    let confirmed = !(merged && holds) || without().is_some_and(|c| clears(&c, rerun));
    (confirmed && clears(&candidate, rerun)).then(|| {
        Violation::new(
            route.routing_rule(),
            Mode::MergedTypes,
            format!(
                "{} (without the look-alike types of {route} on its bus this does not happen: the bus does not keep them apart)",
                failure.message
            ),
        )
    })
}

/// `prefix` with the ops on the failing bus (`on_bus`) of each look-alike
/// route renamed as `renames` says.
fn renamed(
    prefix: &[Entry],
    renames: &BTreeMap<EventType, EventType>,
    on_bus: &dyn Fn(&Option<ScopeId>) -> bool,
    task_on_bus: &dyn Fn(&TaskId) -> bool,
    sub_on_bus: &dyn Fn(&SubId) -> bool,
) -> Vec<Entry> {
    let rename = |op: &Op| -> Option<Op> {
        let mut op = op.clone();
        match &mut op {
            Op::Subscribe { scope, ty, .. } | Op::Send { scope, ty, .. } if on_bus(scope) => {
                *ty = *renames.get(&ty.route())?;
                Some(op)
            }
            Op::SpawnProcessor { scope, ty, .. } | Op::SubscribeShared { scope, ty, .. }
                if on_bus(&Some(*scope)) =>
            {
                *ty = *renames.get(&ty.route())?;
                Some(op)
            }
            Op::Release {
                task,
                send: Some(spec),
            } if task_on_bus(task) => {
                spec.ty = *renames.get(&spec.ty.route())?;
                Some(op)
            }
            Op::FailSubscriber {
                sub,
                send: Some(spec),
            } if sub_on_bus(sub) => {
                spec.ty = *renames.get(&spec.ty.route())?;
                Some(op)
            }
            _ => None,
        }
    };
    prefix
        .iter()
        .map(|e| match e {
            Entry::Op(op) => rename(op).map_or_else(|| e.clone(), Entry::Op),
            Entry::Preempt(t, Interjection::Op(op)) => {
                rename(op).map_or_else(|| e.clone(), |op| Entry::Preempt(*t, Interjection::Op(op)))
            }
            other => other.clone(),
        })
        .collect()
}

/// `prefix` without the subscriptions and sends on the failing bus of the
/// look-alikes of `route` (a poll they were interjected into stays);
/// `None` if that would take out anything else: a drop or cancellation of
/// a subscriber, or a scheduling choice (a poll, wake or move of a
/// look-alike's subscriber, or a look-alike processor, which runs inside
/// its scope's task: without it, everything else would run at other
/// times).
fn removed(
    prefix: &[Entry],
    route: EventType,
    on_bus: &dyn Fn(&Option<ScopeId>) -> bool,
    task_on_bus: &dyn Fn(&TaskId) -> bool,
    sub_on_bus: &dyn Fn(&SubId) -> bool,
) -> Option<Vec<Entry>> {
    let lookalike = |ty: &EventType| ty.route() != route && ty.family() == route.family();
    let is_lookalike = |op: &Op| match op {
        Op::Subscribe { scope, ty, .. } | Op::Send { scope, ty, .. } => {
            lookalike(ty) && on_bus(scope)
        }
        Op::SpawnProcessor { scope, ty, .. } | Op::SubscribeShared { scope, ty, .. } => {
            lookalike(ty) && on_bus(&Some(*scope))
        }
        _ => false,
    };
    // A processor runs inside its scope's task: without it, that task's
    // polls (and what is interjected at their yield points) run otherwise.
    let a_processor = prefix
        .iter()
        .any(|e| matches!(e, Entry::Op(op @ Op::SpawnProcessor { .. }) if is_lookalike(op)));
    if a_processor {
        return None;
    }
    let without: Vec<Entry> = prefix
        .iter()
        .filter_map(|e| match e {
            Entry::Op(op) if is_lookalike(op) => None,
            // A worker's look-alike send goes; the worker stays.
            Entry::Op(Op::Release {
                task,
                send: Some(spec),
            }) if lookalike(&spec.ty) && task_on_bus(task) => Some(Entry::Op(Op::Release {
                task: *task,
                send: None,
            })),
            // A failing subscriber's look-alike cleanup send goes too.
            Entry::Op(Op::FailSubscriber {
                sub,
                send: Some(spec),
            }) if lookalike(&spec.ty) && sub_on_bus(sub) => Some(Entry::Op(Op::FailSubscriber {
                sub: *sub,
                send: None,
            })),
            Entry::Preempt(t, Interjection::Op(op)) if is_lookalike(op) => Some(Entry::Poll(*t)),
            other => Some(other.clone()),
        })
        .collect();
    let candidate = close_references(&without);
    let kept = |entries: &[Entry]| {
        entries
            .iter()
            .filter(|e| {
                !matches!(
                    e,
                    Entry::Op(
                        Op::Subscribe { .. }
                            | Op::SubscribeShared { .. }
                            | Op::SpawnProcessor { .. }
                            | Op::Send { .. }
                            | Op::Consume { .. }
                    )
                )
            })
            .count()
    };
    (kept(&candidate) == kept(prefix)).then_some(candidate)
}

/// Each look-alike route of `route` used on the failing bus (`on_bus`),
/// mapped to a catalogue route of another family: distinct ones the bus
/// never uses while they last, then (if `onto_used`) ones it uses; `None`
/// if there is no look-alike, or too few routes to go round.
fn renames(
    entries: &[Entry],
    route: EventType,
    on_bus: &dyn Fn(&Option<ScopeId>) -> bool,
    task_on_bus: &dyn Fn(&TaskId) -> bool,
    sub_on_bus: &dyn Fn(&SubId) -> bool,
    onto_used: bool,
) -> Option<(BTreeMap<EventType, EventType>, bool)> {
    let used: Vec<EventType> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Op(Op::Subscribe { ty, scope, .. } | Op::Send { ty, scope, .. })
            | Entry::Preempt(
                _,
                Interjection::Op(Op::Subscribe { ty, scope, .. } | Op::Send { ty, scope, .. }),
            ) if on_bus(scope) => Some(ty.route()),
            Entry::Op(
                Op::SpawnProcessor { ty, scope, .. } | Op::SubscribeShared { ty, scope, .. },
            ) if on_bus(&Some(*scope)) => Some(ty.route()),
            Entry::Op(Op::Release {
                task,
                send: Some(spec),
            }) if task_on_bus(task) => Some(spec.ty.route()),
            Entry::Op(Op::FailSubscriber {
                sub,
                send: Some(spec),
            }) if sub_on_bus(sub) => Some(spec.ty.route()),
            _ => None,
        })
        .collect();
    let mut lookalikes: Vec<EventType> = used
        .iter()
        .copied()
        .filter(|ty| *ty != route && ty.family() == route.family())
        .collect();
    lookalikes.sort();
    lookalikes.dedup();
    // Unrelated routes the bus does not use first; when too few are left,
    // routes of other families it does use, shared if need be: merging a
    // look-alike's traffic into an unrelated channel (or two look-alikes
    // into one) changes nothing on the failing channel of a bus that keeps
    // types apart, and its drops stay in the trace, renamed.
    let other = |ty: &EventType| ty.route() == *ty && ty.family() != route.family();
    let unused = EventType::ALL
        .into_iter()
        .filter(|ty| other(ty) && !used.contains(ty));
    let in_use = EventType::ALL
        .into_iter()
        .filter(|ty| onto_used && other(ty) && used.contains(ty));
    let unused_count = unused.clone().count();
    let targets: Vec<EventType> = unused.chain(in_use).collect();
    if targets.is_empty() || (!onto_used && unused_count < lookalikes.len()) {
        return None;
    }
    let renames: BTreeMap<_, _> = lookalikes
        .iter()
        .enumerate()
        .map(|(i, ty)| (*ty, targets[i % targets.len()]))
        .collect();
    let merged = renames.values().any(|to| used.contains(to));
    (!renames.is_empty()).then_some((renames, merged))
}

/// Whether `prefix` leaves a subscription of a look-alike of `route` (the
/// same family, another route) on the failing bus held: made, and not
/// dropped, cancelled or failed.
fn lookalike_held(prefix: &[Entry], route: EventType, sub_on_bus: &dyn Fn(&SubId) -> bool) -> bool {
    let lookalike = |ty: &EventType| ty.family() == route.family() && ty.route() != route;
    let mut held: Vec<SubId> = Vec::new();
    for entry in prefix {
        match entry {
            Entry::Op(
                Op::Subscribe { sub, ty, .. }
                | Op::SubscribeShared { sub, ty, .. }
                | Op::SpawnProcessor { sub, ty, .. },
            ) if lookalike(ty) && sub_on_bus(sub) => held.push(*sub),
            Entry::Op(
                Op::DropSubscription { sub }
                | Op::CancelSubscriber { sub }
                | Op::FailSubscriber { sub, .. },
            ) => held.retain(|s| s != sub),
            _ => {}
        }
    }
    !held.is_empty()
}
