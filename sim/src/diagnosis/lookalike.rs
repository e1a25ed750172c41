//! ROUTE-1 before its symptoms: a bus that keeps look-alike types as one.
//!
//! A bus that routes by name, by base class or by generic base delivers one
//! type's events to another's subscriptions, loses them from their own,
//! miscounts, ends streams early. The receipt of another type's event is
//! ROUTE-1 by itself; every other symptom on a channel is replayed with the
//! look-alike types on the same bus (the same family, another route)
//! renamed to unrelated types the trace does not use: if it then goes, the
//! look-alikes caused it, and it is ROUTE-1's.
//!
//! Invariant: the counterfactual keeps every op, so the replay differs from
//! the failing prefix in type identity only. (Taking the look-alikes' ops out
//! would also take out their subscriptions' drops and cancellations, and a
//! failure those cause, CANCEL-1's, would be blamed on ROUTE-1.) When the
//! trace leaves too few unrelated types to rename to, nothing is asked.

use super::Cleared;
use super::causal::{Shape, evidence_channel};
use super::rerun::ask;
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Layout, Mode, Violation};
use crate::op::{Entry, Interjection, Op, ScopeId};
use crate::rules::Rule;
use std::collections::BTreeMap;

/// ROUTE-1, when replaying with the failing channel's look-alikes renamed
/// to unrelated types clears the failure; `None` otherwise.
pub fn lookalikes(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    if failure.rule == Rule::Route1 {
        return None;
    }
    let (scope, route) = failure.evidence.as_deref().and_then(evidence_channel)?;
    let shape = Shape::of(prefix, layout);
    let (bus, _) = shape.channel(scope, route)?;
    let on_bus = |s: &Option<ScopeId>| {
        s.and_then(|s| shape.channel(s, route))
            .is_some_and(|(b, _)| b == bus)
    };
    let renames = renames(prefix, route)?;
    let rename = |op: &Op| -> Option<Op> {
        let mut op = op.clone();
        match &mut op {
            Op::Subscribe { scope, ty, .. } | Op::Send { scope, ty, .. } if on_bus(scope) => {
                *ty = *renames.get(&ty.route())?;
                Some(op)
            }
            _ => None,
        }
    };
    let candidate: Vec<Entry> = prefix
        .iter()
        .map(|e| match e {
            Entry::Op(op) => rename(op).map_or_else(|| e.clone(), Entry::Op),
            Entry::Preempt(t, Interjection::Op(op)) => {
                rename(op).map_or_else(|| e.clone(), |op| Entry::Preempt(*t, Interjection::Op(op)))
            }
            other => other.clone(),
        })
        .collect();
    let outcome = ask(prefix, &candidate, layout, rerun)?;
    (outcome.cleared(failure) == Cleared::Yes).then(|| {
        Violation::new(
            Rule::Route1,
            Mode::MergedTypes,
            format!(
                "{} (with the look-alike types of {route} on its bus renamed to unrelated types this does not happen: the bus does not keep them apart)",
                failure.message
            ),
        )
    })
}

/// Each look-alike route of `route` used in `entries`, mapped to a distinct
/// catalogue route of another family that `entries` never uses; `None` if
/// there is no look-alike or too few unused routes to go round.
fn renames(entries: &[Entry], route: EventType) -> Option<BTreeMap<EventType, EventType>> {
    let used: Vec<EventType> =
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Op(Op::Subscribe { ty, .. } | Op::Send { ty, .. })
                | Entry::Preempt(
                    _,
                    Interjection::Op(Op::Subscribe { ty, .. } | Op::Send { ty, .. }),
                ) => Some(ty.route()),
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
    let mut free = EventType::ALL
        .into_iter()
        .filter(|ty| ty.route() == *ty && ty.family() != route.family() && !used.contains(ty));
    let renames: BTreeMap<_, _> = lookalikes
        .iter()
        .map(|ty| free.next().map(|to| (*ty, to)))
        .collect::<Option<_>>()?;
    (!renames.is_empty()).then_some(renames)
}
