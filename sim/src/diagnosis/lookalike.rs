//! ROUTE-1 before its symptoms: a bus that keeps look-alike types as one.
//!
//! A bus that routes by name, by base class or by generic base delivers one
//! type's events to another's subscriptions, loses them from their own,
//! miscounts, ends streams early. The receipt of another type's event is
//! ROUTE-1 by itself; every other symptom on a channel is replayed without
//! the subscriptions and sends of its look-alike types (the same family,
//! another route) on the same bus: if it then goes, the look-alikes caused
//! it, and it is ROUTE-1's.

use super::causal::{Shape, evidence_channel};
use super::{Cleared, Rerun};
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Layout, Mode, Violation};
use crate::op::{Entry, Interjection, Op};
use crate::rules::Rule;
use crate::shrink::close_references;

/// ROUTE-1, when replaying without the failing channel's look-alikes clears
/// the failure; `None` otherwise.
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
    let lookalike = |ty: EventType| ty.route() != route && ty.family() == route.family();
    let on_bus = |s: &Option<crate::op::ScopeId>| {
        s.and_then(|s| shape.channel(s, route))
            .is_some_and(|(b, _)| b == bus)
    };
    let is_lookalike = |op: &Op| match op {
        Op::Subscribe { scope, ty, .. } | Op::Send { scope, ty, .. } => {
            lookalike(*ty) && on_bus(scope)
        }
        _ => false,
    };
    // Each look-alike op goes; a poll it was interjected into stays.
    let without: Vec<Entry> = prefix
        .iter()
        .filter_map(|e| match e {
            Entry::Op(op) if is_lookalike(op) => None,
            Entry::Preempt(t, Interjection::Op(op)) if is_lookalike(op) => Some(Entry::Poll(*t)),
            other => Some(other.clone()),
        })
        .collect();
    if without == prefix || without.last() != prefix.last() {
        return None;
    }
    let candidate = close_references(&without);
    let outcome = Rerun::of(&candidate, rerun(&candidate, layout));
    (outcome.cleared(failure) == Cleared::Yes).then(|| {
        Violation::new(
            Rule::Route1,
            Mode::MergedTypes,
            format!(
                "{} (without the look-alike types of {route} on its bus this does not happen: the bus does not keep them apart)",
                failure.message
            ),
        )
    })
}
