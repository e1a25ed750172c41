//! TASK-1 for a processor taken down with the nested scope it was spawned
//! in.
//!
//! A processor spawned in a nested, non-isolated scope belongs to the task
//! group of that scope's owner (TASK-1, as Haiway's `isolated` docstring
//! says): cancelling the nested scope ends its body only. An
//! implementation whose nested scopes keep their tasks to themselves
//! cancels the processor with the scope, and nothing reports it: the model
//! sees a live processor that stops receiving (read as FANOUT-1 or WAKE-1),
//! never ends (CLOSE-1), or an owner that exits without it. So such a
//! failure (one of those processors stuck or never ended, an owner that
//! exited early, or counts that miss a subscription), whose prefix
//! cancels a nested scope after a processor was spawned in it, is
//! replayed without those cancellations: if it then goes, the
//! cancellations took the processors, and it is TASK-1's. (Other
//! failures are not asked: taking a cancellation out changes what the
//! scope's task runs, and with it when a receipt shows.)
//!
//! Invariant: asked only when the prefix has such a cancellation; the
//! counterfactual removes nothing else (ops that name the nested scope
//! after its cancellation cannot exist: the workload never names a scope
//! being cancelled).

use super::Cleared;
use super::rerun::ask;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Mode, Violation};
use crate::op::{Entry, Op, ScopeId, SubId};
use crate::rules::Rule;
use std::collections::{BTreeMap, BTreeSet};

/// TASK-1, when replaying without the cancellations of nested,
/// non-isolated scopes that processors were spawned in clears the failure;
/// `None` otherwise.
pub fn taken_down(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let (cancels, processors) = cancelled_processor_scopes(prefix);
    // A processor that went down shows as one stuck or never ended, as an
    // owner that exited without it, or in its bus's counts: asked only
    // then.
    let about_one = match failure.evidence.as_deref() {
        Some(Disagreement::Stuck(s)) => processors.contains(&s.sub.sub),
        Some(Disagreement::Unended(u)) => processors.contains(&u.sub.sub),
        Some(Disagreement::Certain(v)) => v.rule == Rule::Task1 && v.mode == Mode::ExitedEarly,
        // The counts of a bus a processor was taken down from.
        Some(Disagreement::Stats(_)) => true,
        _ => false,
    };
    if cancels.is_empty() || !about_one {
        return None;
    }
    let candidate: Vec<Entry> = prefix
        .iter()
        .filter(|e| !matches!(e, Entry::Op(Op::CancelScope { scope }) if cancels.contains(scope)))
        .cloned()
        .collect();
    let outcome = ask(prefix, &candidate, layout, rerun)?;
    if outcome.cleared(failure) != Cleared::Yes {
        return None;
    }
    let scopes: Vec<String> = cancels.iter().map(ScopeId::to_string).collect();
    Some(Violation::new(
        Rule::Task1,
        Mode::WrongTaskGroup,
        format!(
            "{} (without the cancellation of {} this does not happen: the processors spawned there belong to the task group of its root or isolated scope, and went down with the nested scope instead)",
            failure.message,
            scopes.join(", ")
        ),
    ))
}

/// The nested, non-isolated scopes of `prefix` cancelled after a processor
/// was spawned in them, and those processors.
fn cancelled_processor_scopes(prefix: &[Entry]) -> (BTreeSet<ScopeId>, BTreeSet<SubId>) {
    let mut nested = BTreeSet::new();
    let mut with_processors: BTreeMap<ScopeId, Vec<SubId>> = BTreeMap::new();
    let mut cancelled = BTreeSet::new();
    for entry in prefix {
        match entry {
            Entry::Op(Op::OpenScope {
                scope,
                parent: Some(_),
                isolated: false,
            }) => {
                nested.insert(*scope);
            }
            Entry::Op(Op::SpawnProcessor { sub, scope, .. }) if nested.contains(scope) => {
                with_processors.entry(*scope).or_default().push(*sub);
            }
            Entry::Op(Op::CancelScope { scope }) if with_processors.contains_key(scope) => {
                cancelled.insert(*scope);
            }
            _ => {}
        }
    }
    let processors = cancelled
        .iter()
        .flat_map(|s| with_processors[s].iter().copied())
        .collect();
    (cancelled, processors)
}
