//! Root cause first: buses laid out otherwise than the spec says.
//!
//! An implementation whose isolated scopes share their parent's bus (or
//! whose nested scopes each get one, or whose buses never close) fails in
//! many ways downstream: events cross where they should not (SCOPE-3),
//! events "sent with no subscriber" are held because a subscription on the
//! same real bus holds them (DROP-1), a drop in one scope disturbs a send
//! in another; sends and subscribes after an exit that never closed
//! anything work (CLOSE-2, CLOSE-3). Reported rule by rule, one design
//! choice would be many failures. Instead:
//!
//! 1. [`probe`]: one small trace, run once per implementation, tells which
//!    [`Layout`] it uses: the spec's, or one of [`Layout::ALL`] (the spec's
//!    is assumed if none fits); a second, for an implementation with tasks,
//!    whether its buses close only after their scope's tasks (PROC-1).
//! 2. [`explains`]: if the implementation's layout is not the spec's, a
//!    failing trace is rerun with models of the layout's parts that differ,
//!    one part at a time (which scopes own a bus, then whether buses
//!    close), then of the whole layout. If one accepts everything up to the
//!    failing entry, that part is the root cause: the failure is reported
//!    under its rule. If none does, the layout does not explain it and the
//!    spec's attribution stands, but the counterfactual replays that follow
//!    ([`super::holder`], [`super::cancel`]) are judged by a model of the
//!    implementation's own layout, so that the layout does not get in
//!    their way (a CANCEL-1 across a shared bus is then seen for what it
//!    is).
//!
//! The probe is a property of the implementation, not of a trace, so it
//! cannot make one trace's attribution move with another's ops.

use super::Rerun;
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Closing, Layout, Mode, Violation};
use crate::op::{Entry, Op, ScopeId, SubId, TaskId};
use crate::rules::{Capability, Rule};

/// The layout probe: a root with an isolated and a nested scope, a
/// subscription and a send in each, then a settle (each way of owning buses
/// predicts a different set of receipts); then another root with a
/// subscription, closed, and a settle (the subscription ends if buses
/// close).
pub fn probe_trace() -> Vec<Entry> {
    let mut entries = owners_probe_trace();
    entries.pop(); // its settle: the one at the end covers both parts
    // Whether buses close: a root with a subscription that has credit
    // left, closed.
    let (closed, sub) = (ScopeId(4), SubId(4));
    entries.extend([
        Entry::Op(Op::OpenScope {
            scope: closed,
            parent: None,
            isolated: false,
        }),
        Entry::Op(Op::Subscribe {
            sub,
            scope: Some(closed),
            ty: EventType::Login,
        }),
        Entry::Op(Op::Consume { sub, k: 1 }),
        Entry::Op(Op::CloseScope { scope: closed }),
        Entry::Op(Op::Settle),
    ]);
    entries
}

/// The first part of [`probe_trace`] alone, then a settle: which scopes own
/// a bus, whatever a closing bus does. Asked when no layout accepts the
/// whole probe (a bus that closes by making its pending pulls raise, as
/// Haiway 0.36 to 0.40 do, fits no closing a model knows, yet its buses
/// are laid out in a way one does).
pub fn owners_probe_trace() -> Vec<Entry> {
    let (root, isolated, nested) = (ScopeId(1), ScopeId(2), ScopeId(3));
    let open = |scope, parent, isolated| {
        Entry::Op(Op::OpenScope {
            scope,
            parent,
            isolated,
        })
    };
    let mut entries = vec![
        open(root, None, false),
        open(isolated, Some(root), true),
        open(nested, Some(root), false),
    ];
    for (n, scope) in [root, isolated, nested].into_iter().enumerate() {
        let sub = SubId(n as u32 + 1);
        entries.push(Entry::Op(Op::Subscribe {
            sub,
            scope: Some(scope),
            ty: EventType::Login,
        }));
        entries.push(Entry::Op(Op::Consume { sub, k: 3 }));
    }
    for (n, scope) in [root, isolated, nested].into_iter().enumerate() {
        entries.push(Entry::Op(Op::Send {
            scope: Some(scope),
            ty: EventType::Login,
            event: n as u64 + 1,
        }));
    }
    entries.push(Entry::Op(Op::Settle));
    entries
}

/// The second probe, for an implementation with tasks whose buses close
/// at exit: a root with a subscription that has credit left and a worker
/// that waits, closed, then a settle (the subscription ends if the bus
/// closed when the body returned, PROC-1); then the worker released and
/// a settle (it ends now if the bus closed only after the worker).
pub fn after_tasks_probe_trace() -> Vec<Entry> {
    let (scope, sub, task) = (ScopeId(1), SubId(1), TaskId(1));
    vec![
        Entry::Op(Op::OpenScope {
            scope,
            parent: None,
            isolated: false,
        }),
        Entry::Op(Op::Subscribe {
            sub,
            scope: Some(scope),
            ty: EventType::Login,
        }),
        Entry::Op(Op::Consume { sub, k: 1 }),
        Entry::Op(Op::Spawn { task, scope }),
        Entry::Op(Op::CloseScope { scope }),
        Entry::Op(Op::Settle),
        Entry::Op(Op::Release { task, send: None }),
        Entry::Op(Op::Settle),
    ]
}

/// Which layout the implementation uses: the first of [`Layout::ALL`]
/// whose model accepts the [`probe_trace`] run on it (the spec's if none
/// does: the layout is then not what fails); then, if that layout closes
/// its buses at exit and the implementation has tasks, whether they close
/// only after the scope's tasks ([`after_tasks_probe_trace`]: the spec's
/// model fails it and one with [`Closing::AfterTasks`] accepts it, or
/// fails it only later, once the tasks are done).
///
/// An implementation that breaks on a probe (hangs, crashes, panics) is
/// not probed further: what it does does not depend on the model it is
/// judged by, so every other layout would only break it again (an adapter
/// that hangs would cost a timeout per layout).
pub fn probe(rerun: &mut dyn FnMut(&[Entry], Layout) -> Run) -> Layout {
    let trace = probe_trace();
    let mut found = None;
    for layout in Layout::ALL {
        match rerun(&trace, layout).failure {
            None => {
                found = Some(layout);
                break;
            }
            Some(f) if f.fault => return Layout::SPEC,
            Some(_) => {}
        }
    }
    let Some(found) = found.or_else(|| owners_alone(rerun)) else {
        return Layout::SPEC;
    };
    if !found.closes_when_body_returns() {
        return found;
    }
    let trace = after_tasks_probe_trace();
    let as_found = rerun(&trace, found);
    if as_found.failure.as_ref().is_none_or(|f| f.fault)
        || !as_found.capabilities.has(Capability::Tasks)
    {
        return found;
    }
    let after_tasks = Layout::of(found.owners, Closing::AfterTasks);
    // Closing after the tasks explains the probe if that model accepts it,
    // or gets past the point where the spec's failed (the subscription
    // not ended at the first settle) and fails only later, at the close
    // itself (Haiway 0.36 to 0.40 close after their task group by
    // cancelling pending receives: a pull then raises, which is CLOSE-1's,
    // and the timing is still PROC-1's).
    let found_at = as_found.failure.as_ref().map_or(usize::MAX, |f| f.entry);
    match rerun(&trace, after_tasks).failure {
        None => after_tasks,
        Some(f) if !f.fault && f.entry > found_at => after_tasks,
        Some(_) => found,
    }
}

/// Which scopes own a bus, from [`owners_probe_trace`] alone (buses
/// closing as the spec says): the first ownership, the spec's first, whose
/// model accepts it; `None` if none does.
fn owners_alone(rerun: &mut dyn FnMut(&[Entry], Layout) -> Run) -> Option<Layout> {
    let trace = owners_probe_trace();
    Layout::ALL
        .into_iter()
        .filter(|l| l.closing == Closing::AtExit)
        .find(|layout| rerun(&trace, *layout).failure.is_none())
}

/// If the implementation's `layout` is not the spec's and a model of one
/// part of it (or of all of it) accepts the failing `prefix` (the trace up
/// to and including the failing entry), the failure follows from that part:
/// the violation of its rule that reports it. `None` otherwise.
pub fn explains(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let parts = layout.differences();
    let first_rule = parts.first()?.1;
    let whole = (parts.len() > 1).then_some((layout, first_rule));
    let (part, rule) = parts
        .into_iter()
        .chain(whole)
        .find(|(part, _)| Rerun::of(prefix, rerun(prefix, *part)) == Rerun::Passed)?;
    let mode = match rule {
        Rule::Close1 => Mode::NeverCloses,
        Rule::Proc1 => Mode::ClosesAfterTasks,
        _ => Mode::Layout,
    };
    Some(Violation::new(
        rule,
        mode,
        format!(
            "the implementation's bus layout is not the spec's: {part}, as its layout probe shows; \
             that explains this: {}",
            failure.message
        ),
    ))
}
