//! CANCEL-2 (or CANCEL-1) for processors cancelled with their scope while
//! they wait in a pull.
//!
//! A processor is a task of its scope's task group that iterates a
//! subscription; when a scope it is in (its own or an ancestor) is
//! cancelled or its body fails, the processor is cancelled too, and if it
//! waits in a pull then, that cancellation abandons the receive
//! ("cancelling the code that awaits it", CANCEL-2's own words). On a bus
//! whose receive is not cancel-safe this breaks every subscription of the
//! type (Haiway 0.30 to 0.40: one future all of them wait on, cancelled),
//! and what shows later (a pull that raises, a send that asserts, a
//! stream that never ends) reads as a close rule's, though the bus never
//! closed (0.30 never closes one) or closed cleanly.
//!
//! So a failure on a channel with such processors is replayed with each of
//! them made a plain subscriber of the same scope and type (a `subscribe`
//! and ample `consume` credit: not a task of the group, so the
//! cancellation leaves it alone). If the symptom goes, their cancellation
//! caused it; then, asked again with a settle and each one's pending
//! receive abandoned just before the first such cancellation (the
//! subscriptions kept): if the symptom is back, the abandoned receive did it, CANCEL-2;
//! if not, the cancellation of a subscriber disturbed the others,
//! CANCEL-1.
//!
//! Invariants: asked only of a refused send or a pull that raised
//! (symptoms that do not move with the schedule, which the swap changes),
//! when the prefix has a processor of the failing
//! channel spawned before a cancellation or failure of a scope it is in;
//! the counterfactual changes nothing but those processors (their spawns,
//! and, in the second question, one `abandon` each after a settle).

use super::Cleared;
use super::cancel::on_a_channel;
use super::causal::Shape;
use super::rerun::{Rerun, ask_same_schedule};
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Violation};
use crate::op::{Entry, Op, ScopeId, SubId};
use crate::rules::Rule;

/// Credit that stands for a processor's unlimited one: more events than
/// any workload sends to one subscription.
const AMPLE: u32 = 10_000;

/// CANCEL-2 (or CANCEL-1), when replaying `prefix` with the failing
/// channel's processors that a scope's cancellation or failure took down
/// made plain subscribers clears `failure`; `None` otherwise.
pub fn cancelled_processors(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    // A plain subscriber is a task of its own, a processor runs inside its
    // scope's task: the swap changes when things run. Asked only of
    // symptoms that do not depend on that: a refused send, a pull that
    // raised (a lost wakeup, say, moves with the schedule).
    let timeless = match failure.evidence.as_deref() {
        Some(Disagreement::SendRefused(_)) => true,
        Some(Disagreement::EarlyEnd(e)) => e.raised.is_some(),
        _ => false,
    };
    if !timeless {
        return None;
    }
    let (shape, channel) = on_a_channel(prefix, failure, layout)?;
    let (first_cancel, processors) = taken_down(prefix, &shape, channel)?;
    let plain = as_subscribers(prefix, &processors, first_cancel, Variant::Plain);
    let without = ask_same_schedule(prefix, &plain, layout, rerun)?;
    if without.cleared(failure) != Cleared::Yes {
        return None;
    }
    // Asked with a settle before the first cancellation, and each one's
    // pending receive abandoned after it: a failure anywhere then (the
    // abandoning subscriptions' own pulls raising at once count: the
    // receive broke) says the abandoned receive did it, provided the
    // trace up to that settle passes (the settle alone breaks nothing).
    let abandoned = as_subscribers(prefix, &processors, first_cancel, Variant::Abandoned);
    let mut up_to_settle = as_subscribers(
        &prefix[..first_cancel],
        &processors,
        first_cancel,
        Variant::Plain,
    );
    up_to_settle.push(Entry::Op(Op::Settle));
    let fails =
        |outcome: &Option<Rerun>| matches!(outcome, Some(Rerun::AtEnd(_) | Rerun::Before(_)));
    let pull_alone = fails(&ask_same_schedule(prefix, &abandoned, layout, rerun))
        && rerun(&up_to_settle, layout).failure.is_none();
    let (rule, why) = match pull_alone {
        true => (
            Rule::Cancel2,
            "processors of its type were cancelled with their scope while they waited in a pull: \
             made plain subscribers, which the cancellation leaves alone, nothing fails, and \
             abandoning their pending receives instead does the same: the receive is not cancel-safe",
        ),
        false => (
            Rule::Cancel1,
            "processors of its type were cancelled with their scope: made plain subscribers, \
             which the cancellation leaves alone, nothing fails, so their cancellation disturbed it",
        ),
    };
    Some(Violation::new(
        rule,
        failure.mode,
        format!("{} ({why})", failure.message),
    ))
}

/// The index of the first `cancel_scope` or `fail_scope` (before the
/// failing entry) that takes down a processor of `channel` spawned before
/// it, and those processors; `None` if there is none.
fn taken_down(
    prefix: &[Entry],
    shape: &Shape,
    channel: (ScopeId, EventType),
) -> Option<(usize, Vec<SubId>)> {
    let (_, earlier) = prefix.split_last()?;
    let mut spawned: Vec<(SubId, ScopeId)> = Vec::new();
    let mut first = None;
    let mut down = Vec::new();
    for (i, entry) in earlier.iter().enumerate() {
        match entry {
            Entry::Op(Op::SpawnProcessor { sub, scope, .. })
                if shape.sub_channel(*sub) == Some(channel) =>
            {
                spawned.push((*sub, *scope));
            }
            Entry::Op(Op::CancelScope { scope } | Op::FailScope { scope }) => {
                for (sub, in_scope) in &spawned {
                    if shape.is_within(*in_scope, *scope) && !down.contains(sub) {
                        first.get_or_insert(i);
                        down.push(*sub);
                    }
                }
            }
            _ => {}
        }
    }
    Some((first?, down))
}

/// What [`as_subscribers`] adds before the first cancellation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Nothing.
    Plain,
    /// A settle, then an abandon of each processor's pending receive.
    Abandoned,
}

/// `prefix` with each of `processors` spawned as a plain subscriber (a
/// `subscribe` and [`AMPLE`] credit), what `variant` says just before
/// entry `cancel` (the first cancellation that took them down), and
/// without the `abandon`s of them after it (on processors already
/// cancelled they did nothing; on live subscribers they would).
fn as_subscribers(
    prefix: &[Entry],
    processors: &[SubId],
    cancel: usize,
    variant: Variant,
) -> Vec<Entry> {
    let mut out = Vec::with_capacity(prefix.len() + 3 * processors.len());
    for (i, entry) in prefix.iter().enumerate() {
        if i == cancel && variant != Variant::Plain {
            // A settle first, so that each waits in its pull when it is
            // abandoned (a processor that was cancelled had started).
            out.push(Entry::Op(Op::Settle));
            if variant == Variant::Abandoned {
                out.extend(
                    processors
                        .iter()
                        .map(|sub| Entry::Op(Op::Abandon { sub: *sub })),
                );
            }
        }
        match entry {
            Entry::Op(Op::SpawnProcessor { sub, scope, ty }) if processors.contains(sub) => {
                out.push(Entry::Op(Op::Subscribe {
                    sub: *sub,
                    scope: Some(*scope),
                    ty: *ty,
                }));
                out.push(Entry::Op(Op::Consume {
                    sub: *sub,
                    k: AMPLE,
                }));
            }
            Entry::Op(Op::Abandon { sub }) if i > cancel && processors.contains(sub) => {}
            other => out.push(other.clone()),
        }
    }
    out
}
