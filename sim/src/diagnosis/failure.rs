//! FAIL-1 and FAIL-2 before the cancellation rules: a failure handled
//! otherwise than the cancellation or drop it stands for.
//!
//! The seed puts the two side by side: scope exit "does not automatically
//! cancel healthy long-running processors unless the scope itself is
//! cancelled, fails, or you cancel the task explicitly". So the model
//! treats a body made to fail (`fail_scope`) as a cancellation of its scope
//! whose report is `scope_failed`, and a failed scope that keeps its tasks
//! running reads, at first, as TASK-2 or TASK-3. Which one it is depends on
//! whether cancellation itself is broken: the failing prefix is replayed
//! with every `fail_scope` turned into a `cancel_scope` of the same scope,
//! at the same point. If the failure then goes, cancellation works and the
//! failure path does not: FAIL-1, reported once. If it stays, the root
//! cause is the cancellation's, and the first reading stands.
//!
//! A failed subscriber (`fail_subscriber`) is, to the bus, a drop of its
//! subscription followed by its cleanup's send. The failing prefix is
//! replayed with each such failure turned into that `drop_subscription`
//! and `send`: if the failure then goes, the bus treats a subscription let
//! go of during an unwind (or a send from a cleanup) otherwise than a
//! plain drop (or send): FAIL-2. If it stays, the drop path is the cause,
//! and the drops step (CANCEL-1) asks about it (and asks the same swap
//! again before it blames a drop that is a failure). The swap is honest
//! only if the implementation runs the cleanup's send when a `send` right
//! after the drop would run (PROTOCOL.md asks adapters to), and only if
//! every swapped-in op is valid where it lands (a send in a scope that
//! exited during the drop is not: no answer). When the failing entry is
//! the failure itself, the swapped trace ends with that drop and send, and
//! passing them and a settle after them is the answer.
//!
//! Invariant: the counterfactuals swap ops for what they stand for and
//! take nothing out; each is asked only of traces with such a failure, and
//! never of a failure already that rule's (the model's own checks).

use super::Cleared;
use super::Rerun;
use super::causal::Shape;
use super::rerun::{ask, ask_all_valid};
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Violation};
use crate::op::{Entry, Op, ScopeId, SubId};
use crate::rules::Rule;

/// FAIL-1, when replaying `prefix` with each failed body cancelled instead
/// clears `failure`, unless it shows as well with each spelled as the
/// plain exit FAIL-1 says it is (its processors cancelled, then its body
/// returning: then the failure path does what a plain exit does, and the symptom is
/// that exit's: Haiway 0.36 to 0.37 close a bus whose body failed as they
/// close one whose body returned, by cancelling its pending receives, and
/// leave a cancelled scope's bus open: the pull that raises is CLOSE-1's,
/// not a failure handled otherwise than a cancellation); `None` otherwise.
pub fn failures(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    if failure.rule == Rule::Fail1 {
        return None;
    }
    let cancelled = fail_swapped(prefix, |scope| Op::CancelScope { scope })?;
    let outcome = ask(prefix, &cancelled, layout, rerun)?;
    if outcome.cleared(failure) != Cleared::Yes {
        return None;
    }
    // A failure from the plain exit on (this symptom at the failing point,
    // or any already at the swapped-in settle: a pull that raises as the
    // bus closes): the exit itself is broken, failing or not, and the
    // failure path is not to blame.
    let (returned, swapped_at) = as_plain_exit(prefix, layout);
    match ask(prefix, &returned, layout, rerun) {
        Some(Rerun::AtEnd(f) | Rerun::Before(f)) if f.entry >= swapped_at => return None,
        _ => {}
    }
    let scope = match failure.evidence.as_deref() {
        Some(Disagreement::Certain(v)) => v.scope,
        _ => None,
    };
    let violation = Violation::new(
        Rule::Fail1,
        failure.mode,
        format!(
            "{} (with each failing body cancelled instead, this does not happen: the scope handles its body's failure otherwise than a cancellation, though a failure must take its tasks down as a cancellation does)",
            failure.message
        ),
    );
    Some(match scope {
        Some(s) => violation.about(s),
        None => violation,
    })
}

/// `prefix` with each `fail_scope` replaced by what FAIL-1 says it does,
/// spelled as a plain exit: its task group emptied (a `cancel_subscriber`
/// of each processor, a `release` of each waiting task, spawned in it or
/// a scope within it), a `close_scope` of each nested scope still open,
/// innermost first, then of the scope itself (the body returns) and a
/// `settle` (the exit completes before what follows, as a failing body's
/// unwinding does). Also the index of the first swapped-in entry.
fn as_plain_exit(prefix: &[Entry], layout: Layout) -> (Vec<Entry>, usize) {
    let shape = Shape::of(prefix, layout);
    let mut group: Vec<(Entry, ScopeId)> = Vec::new();
    let mut out = Vec::with_capacity(prefix.len());
    let mut first = usize::MAX;
    let mut open: Vec<ScopeId> = Vec::new();
    for entry in prefix {
        match entry {
            Entry::Op(Op::SpawnProcessor { sub, scope, .. }) => {
                group.push((Entry::Op(Op::CancelSubscriber { sub: *sub }), *scope));
            }
            Entry::Op(Op::Spawn { task, scope }) => {
                let release = Op::Release {
                    task: *task,
                    send: None,
                };
                group.push((Entry::Op(release), *scope));
            }
            Entry::Op(Op::Release { task, .. }) => {
                group.retain(
                    |(e, _)| !matches!(e, Entry::Op(Op::Release { task: t, .. }) if t == task),
                );
            }
            Entry::Op(Op::OpenScope { scope, .. }) => open.push(*scope),
            Entry::Op(Op::CloseScope { scope } | Op::CancelScope { scope }) => {
                open.retain(|s| s != scope);
            }
            _ => {}
        }
        let Entry::Op(Op::FailScope { scope }) = entry else {
            out.push(entry.clone());
            continue;
        };
        first = first.min(out.len());
        let (down, kept): (Vec<_>, Vec<_>) = group
            .into_iter()
            .partition(|(_, in_scope)| shape.is_within(*in_scope, *scope));
        out.extend(down.into_iter().map(|(e, _)| e));
        group = kept;
        // Its open nested scopes first, innermost first, as the failure
        // unwinds them.
        let nested: Vec<ScopeId> = open
            .iter()
            .rev()
            .filter(|s| *s != scope && shape.is_within(**s, *scope))
            .copied()
            .collect();
        out.extend(
            nested
                .into_iter()
                .map(|s| Entry::Op(Op::CloseScope { scope: s })),
        );
        open.retain(|s| !shape.is_within(*s, *scope));
        out.push(Entry::Op(Op::CloseScope { scope: *scope }));
        out.push(Entry::Op(Op::Settle));
    }
    (out, first)
}

/// `prefix` with each `fail_scope` replaced by `instead` of its scope;
/// `None` if it has none.
fn fail_swapped(prefix: &[Entry], instead: impl Fn(ScopeId) -> Op) -> Option<Vec<Entry>> {
    let mut swapped = false;
    let candidate = prefix
        .iter()
        .map(|entry| match entry {
            Entry::Op(Op::FailScope { scope }) => {
                swapped = true;
                Entry::Op(instead(*scope))
            }
            other => other.clone(),
        })
        .collect();
    swapped.then_some(candidate)
}

/// FAIL-2, when replaying `prefix` with each failed subscriber's failure
/// turned into a drop of its subscription and its cleanup's send clears
/// `failure`; `None` otherwise.
pub fn subscriber_failures(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    swapped_clears(prefix, failure, layout, rerun)
}

/// FAIL-2, when `prefix` with each failed subscriber turned into the drop
/// and send it stands for clears `failure`, whatever the symptom: for the
/// drops step, which has found that taking the drops (failures included)
/// out clears it, and asks whether a plain drop would have done it.
pub(super) fn swapped_clears(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    if failure.rule == Rule::Fail2 {
        return None;
    }
    let mut swapped = false;
    let mut candidate = Vec::with_capacity(prefix.len() + 4);
    for entry in prefix {
        let Entry::Op(Op::FailSubscriber { sub, send }) = entry else {
            candidate.push(entry.clone());
            continue;
        };
        swapped = true;
        candidate.push(Entry::Op(Op::DropSubscription { sub: *sub }));
        if let Some(s) = send {
            candidate.push(Entry::Op(Op::Send {
                scope: scope_of(prefix, *sub),
                ty: s.ty,
                event: s.event,
            }));
        }
    }
    if !swapped {
        return None;
    }
    let at_the_failure = matches!(prefix.last(), Some(Entry::Op(Op::FailSubscriber { .. })));
    let cleared = if at_the_failure {
        // What the failure's unwinding made happen may show only once the
        // implementation runs on: the swapped trace must pass a settle too.
        candidate.push(Entry::Op(Op::Settle));
        let run = rerun(&candidate, layout);
        run.counts.skipped == 0 && Rerun::of(&candidate, run) == Rerun::Passed
    } else {
        ask_all_valid(prefix, &candidate, layout, rerun)?.cleared(failure) == Cleared::Yes
    };
    cleared.then(|| {
        Violation::new(
            Rule::Fail2,
            failure.mode,
            format!(
                "{} (with each failing subscriber's subscription dropped and its cleanup's send sent instead, this does not happen: the bus treats a subscriber that fails otherwise than the drop and the send it stands for)",
                failure.message
            ),
        )
    })
}

/// The send a failed subscriber's cleanup stands for, if `entry` is such a
/// failure with one: what a counterfactual that takes the failure out (a
/// drop, an abandon, the subscription itself) keeps, since it asks about
/// the failure, not about the send.
pub(super) fn cleanup_send(prefix: &[Entry], entry: &Entry) -> Option<Entry> {
    let Entry::Op(Op::FailSubscriber { sub, send: Some(s) }) = entry else {
        return None;
    };
    Some(Entry::Op(Op::Send {
        scope: scope_of(prefix, *sub),
        ty: s.ty,
        event: s.event,
    }))
}

/// The scope `sub` was subscribed in (its failure's cleanup sends there).
fn scope_of(prefix: &[Entry], sub: SubId) -> Option<ScopeId> {
    prefix.iter().find_map(|e| match e {
        Entry::Op(Op::Subscribe { sub: s, scope, .. }) if *s == sub => *scope,
        _ => None,
    })
}
