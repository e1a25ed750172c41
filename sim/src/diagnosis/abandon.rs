//! CANCEL-2, confirmed counterfactually: were abandoned receives what broke
//! the subscription or its siblings ("abandoning a pending receive loses,
//! duplicates and disturbs nothing")?
//!
//! The failing prefix is replayed without the `abandon`s of the failing
//! channel's subscribers (its route, on its bus as the implementation lays
//! buses out), the abandoning subscription's own included: a receive that
//! is not cancel-safe may lose the abandoner's own place, or break what
//! every subscription of the type waits on.
//!
//! - a symptom that then disappears (see [`super::Rerun::cleared`]) was
//!   caused by them: CANCEL-2, whatever the symptom (a stuck or unended
//!   stream, a pull that raised, a failed send, an event lost or freed too
//!   early);
//! - a symptom that showed during an abandon of its channel is asked with a
//!   `settle` in the abandon's place: if nothing then fails there, the
//!   abandon caused it;
//! - anything else answers nothing, and the first reading stands.
//!
//! Dropping or cancelling a subscriber that waits in a pull abandons that
//! pull too; when such a drop is what [`super::cancel`] blames, it asks
//! whether the abandoned pull alone does the same ([`pull_not_drop`]), so
//! that a receive that is not cancel-safe is reported once, as CANCEL-2.

use super::Cleared;
use super::cancel::{moved_to_a_sibling, on_a_channel, stand_in, taken_out};
use super::causal::Shape;
use super::rerun::{Rerun, ask, ask_instead, ask_same_schedule};
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Layout, Violation};
use crate::op::{Entry, Op, ScopeId, SubId};
use crate::rules::Rule;

/// CANCEL-2, when replaying `prefix` (a failing trace up to its failing
/// entry) without the abandoned receives of the failing channel's
/// subscribers clears `failure`; `None` otherwise.
pub fn abandons(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let (shape, channel) = on_a_channel(prefix, failure, layout)?;
    let last = prefix.last()?;
    let during =
        matches!(last, Entry::Op(Op::Abandon { sub }) if shape.sub_channel(*sub) == Some(channel));
    earlier_abandons(prefix, failure, &shape, channel, layout, rerun).or_else(|| {
        during
            .then(|| ask_instead(prefix, &[Entry::Op(Op::Settle)], layout, rerun))
            .flatten()
            .filter(|outcome| matches!(outcome, Rerun::Passed))
            .map(|_| {
                blame(
                    failure,
                    "it showed while a receive of its type was abandoned; with a settle there instead, nothing fails",
                )
            })
    })
}

/// CANCEL-2, when replaying without the abandons of `channel`'s
/// subscribers before the failing entry clears `failure`.
fn earlier_abandons(
    prefix: &[Entry],
    failure: &Failure,
    shape: &Shape,
    channel: (ScopeId, EventType),
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let on_channel =
        |e: &Entry| abandoned(e).is_some_and(|sub| shape.sub_channel(sub) == Some(channel));
    let candidate = taken_out(prefix, on_channel, || stand_in(layout, rerun))?;
    // An abandon changes nothing the model sees, but the implementation
    // may wake its subscriber differently without it, so that a preempted
    // poll finds it not runnable: asked all the same.
    let outcome = ask_same_schedule(prefix, &candidate, layout, rerun)
        .or_else(|| ask(prefix, &candidate, layout, rerun))?;
    if moved_to_a_sibling(&outcome, shape, &[channel]) {
        return None;
    }
    (outcome.cleared(failure) == Cleared::Yes).then(|| {
        blame(
            failure,
            "without the abandoned receives of its type earlier in the trace this does not happen: they disturbed it",
        )
    })
}

/// Asked by [`super::cancel::drops`] once it has found that the drops and
/// cancellations of `channels`' subscribers caused `failure`: with each of
/// them replaced by an `abandon` of the same subscription (its pending
/// receive abandoned, the subscription kept), does `failure` still happen?
/// Then the receive the drop abandoned, not the drop, caused it: CANCEL-2.
/// `None` otherwise (and when the implementation cannot `abandon`: the
/// replay then answers nothing).
pub fn pull_not_drop(
    prefix: &[Entry],
    failure: &Failure,
    channels: &[(ScopeId, EventType)],
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let shape = Shape::of(prefix, layout);
    let (last, earlier) = prefix.split_last()?;
    let mut abandoners = Vec::new();
    let replaced: Vec<Entry> = earlier
        .iter()
        .flat_map(|e| match e {
            Entry::Op(
                Op::DropSubscription { sub }
                | Op::CancelSubscriber { sub }
                | Op::FailSubscriber { sub, .. },
            ) if shape
                .sub_channel(*sub)
                .is_some_and(|c| channels.contains(&c)) =>
            {
                let abandons = abandons_of(prefix, *sub);
                abandoners.extend(abandons.iter().filter_map(|a| match a {
                    Entry::Op(Op::Abandon { sub }) => Some(*sub),
                    _ => None,
                }));
                // A failed subscriber's cleanup still sends.
                abandons
                    .into_iter()
                    .chain(super::failure::cleanup_send(prefix, e))
                    .collect()
            }
            other => vec![other.clone()],
        })
        .chain(std::iter::once(last.clone()))
        .collect();
    let outcome = ask_same_schedule(prefix, &replaced, layout, rerun)?;
    let why = abandoning_explains(&outcome, failure, &abandoners)?;
    Some(blame(
        failure,
        &format!(
            "the drops and cancellations of subscribers earlier in the trace disturbed it, and abandoning their pending receives instead, keeping the subscriptions, {why}: the receive is not cancel-safe"
        ),
    ))
}

/// What abandons the pending receives a drop of `sub` gives up: `sub`'s,
/// and, if `sub` is shared (`subscribe_shared`), its second puller's too,
/// since a drop ends both tasks (SHARE-1).
pub(super) fn abandons_of(prefix: &[Entry], sub: SubId) -> Vec<Entry> {
    let puller = prefix.iter().find_map(|e| match e {
        Entry::Op(Op::SubscribeShared { sub: s, puller, .. }) if *s == sub => Some(*puller),
        _ => None,
    });
    std::iter::once(sub)
        .chain(puller)
        .map(|sub| Entry::Op(Op::Abandon { sub }))
        .collect()
}

/// Whether `outcome`, a rerun with `abandoners` abandoning their pending
/// receives where they were dropped, shows that the abandoned receives
/// explain `failure`: it fails the same way there ("does the same"), or it
/// breaks one of the abandoning subscriptions itself ("breaks those very
/// subscriptions").
pub(super) fn abandoning_explains(
    outcome: &Rerun,
    failure: &Failure,
    abandoners: &[SubId],
) -> Option<&'static str> {
    match outcome {
        o if o.cleared(failure) == Cleared::No => Some("does the same"),
        Rerun::AtEnd(f) | Rerun::Before(f) if breaks_an_abandoner(f, abandoners) => {
            Some("breaks those very subscriptions")
        }
        _ => None,
    }
}

/// Whether `failure`, in a rerun where `abandoners` abandoned their
/// receives instead of being dropped, is about one of them: a receive that
/// is not cancel-safe breaks its own subscription first (a pull that
/// raises, an event lost).
fn breaks_an_abandoner(failure: &Failure, abandoners: &[SubId]) -> bool {
    use crate::model::Disagreement as D;
    if failure.fault {
        return false;
    }
    let subject = match failure.evidence.as_deref() {
        Some(D::Misdelivery(m)) => Some(m.sub.sub),
        Some(D::EarlyEnd(e)) => Some(e.sub.sub),
        Some(D::Stuck(s)) => Some(s.sub.sub),
        Some(D::Unended(u)) => Some(u.sub.sub),
        _ => None,
    };
    subject.is_some_and(|s| abandoners.contains(&s))
}

/// The subscription whose receive `entry` abandons, if it is an `abandon`.
fn abandoned(entry: &Entry) -> Option<SubId> {
    match entry {
        Entry::Op(Op::Abandon { sub }) => Some(*sub),
        _ => None,
    }
}

fn blame(failure: &Failure, why: &str) -> Violation {
    Violation::new(
        Rule::Cancel2,
        failure.mode,
        format!("{} ({why})", failure.message),
    )
}
