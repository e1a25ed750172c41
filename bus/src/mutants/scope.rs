//! Planted bugs of scopes: buses owned or shared against the rules
//! (`isolated-shares-parent`, `nested-owns-bus`), a bus closed late or never
//! (`close-after-tasks`, `exit-leaves-bus-open`), tasks not waited for
//! (`exit-skips-tasks`, `exit-drops-late-spawns`), kept to a nested scope
//! (`nested-scope-owns-tasks`), run or left running after a cancellation
//! (`cancel-runs-woken-tasks`, `cancel-leaves-tasks`), a failure handled as a
//! return (`failure-waits-for-tasks`) and an ambient context leaked
//! (`context-leak`) or not installed (`exited-scope-forgets-bus`); and the
//! ambient context reset between the simulator's runs.

#![forbid(unsafe_code)]

use super::{Mutant, is};
use crate::scope::{CURRENT, EnterGuard, Scope, ScopeFuture};
use crate::task::Task;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::{Context, Poll};

/// What a scope future's planted bugs keep.
#[derive(Default)]
pub(crate) struct Planted {
    /// The body's panic, re-raised once the tasks are done
    /// (`failure-waits-for-tasks`).
    deferred_panic: Option<Box<dyn Any + Send>>,
}

/// Clears the thread's ambient context (see `mutants::reset_thread`).
pub(crate) fn reset_ambient() {
    let _ = CURRENT.try_with(|c| c.replace(None));
}

/// Runs `f` with no ambient context, then restores the one there was (see
/// `mutants::as_another_thread`).
pub(crate) fn without_ambient<R>(f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.try_with(|c| c.replace(None)).ok().flatten();
    let _restore = EnterGuard {
        previous: Some(previous),
        leak: false,
    };
    f()
}

/// `isolated-shares-parent`, `nested-owns-bus`: whether a scope opened in
/// another, with no bus given, owns a bus.
pub(crate) fn owns_bus(mutant: Option<Mutant>, isolated: bool) -> bool {
    if isolated {
        !is(mutant, Mutant::IsolatedSharesParent)
    } else {
        is(mutant, Mutant::NestedOwnsBus)
    }
}

/// `nested-scope-owns-tasks`: a nested scope keeps its tasks to itself
/// (`None`) instead of handing them to `owner`.
pub(crate) fn group_owner(mutant: Option<Mutant>, owner: &Scope) -> Option<&Scope> {
    (!is(mutant, Mutant::NestedScopeOwnsTasks)).then_some(owner)
}

/// `exited-scope-forgets-bus`: whether entering `scope` installs nothing,
/// because it has exited.
pub(crate) fn forgets_bus(scope: &Scope) -> bool {
    is(scope.inner.mutant, Mutant::ExitedScopeForgetsBus) && !scope.inner.lock_incoming().open
}

/// `context-leak`: whether leaving `scope` keeps it as the ambient context.
pub(crate) fn leaks_context(scope: &Scope) -> bool {
    is(scope.inner.mutant, Mutant::ContextLeak)
}

/// `exit-leaves-bus-open`: whether a cancelled scope leaves its bus open.
pub(crate) fn leaves_bus_open(mutant: Option<Mutant>) -> bool {
    is(mutant, Mutant::ExitLeavesBusOpen)
}

/// `exit-leaves-bus-open`, `close-after-tasks`: whether exit skips closing
/// the bus when the body returns.
pub(crate) fn defers_close(mutant: Option<Mutant>) -> bool {
    leaves_bus_open(mutant) || is(mutant, Mutant::CloseAfterTasks)
}

/// `close-after-tasks`: the bus the scope owns closes only once its tasks
/// are done and it exits.
pub(crate) fn close_after_tasks(scope: &Scope) {
    if scope.owns_bus() && is(scope.inner.mutant, Mutant::CloseAfterTasks) {
        scope.bus().close();
    }
}

/// `exit-skips-tasks`, `exit-drops-late-spawns`: whether exit completes,
/// given whether no task is running and whether none was spawned since.
pub(crate) fn exit_ready(mutant: Option<Mutant>, none_running: bool, none_spawned: bool) -> bool {
    is(mutant, Mutant::ExitSkipsTasks)
        || (none_running && (is(mutant, Mutant::ExitDropsLateSpawns) || none_spawned))
}

/// `failure-waits-for-tasks`: polls the body with its panic held back and
/// treated as a return (the bus closes, the tasks are waited for). `None`:
/// poll it as the reference.
pub(crate) fn poll_body<F: Future>(
    future: &mut ScopeFuture<F>,
    cx: &mut Context<'_>,
) -> Option<Poll<F::Output>> {
    if !is(future.scope.inner.mutant, Mutant::FailureWaitsForTasks) {
        return None;
    }
    let body = future.body.as_mut().expect("poll_body with the body gone");
    // The bug: the panic is held back, and treated as a return.
    let polled = catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx)));
    Some(polled.unwrap_or_else(|panic| {
        future.body = None;
        future.planted.deferred_panic = Some(panic);
        if future.scope.owns_bus() {
            future.scope.bus().close();
        }
        Poll::Pending
    }))
}

/// `failure-waits-for-tasks`: once no task is left, the body's held-back
/// panic goes on unwinding.
pub(crate) fn reraise_deferred_panic<F: Future>(future: &mut ScopeFuture<F>) {
    if future.planted.deferred_panic.is_some()
        && future.tasks.is_empty()
        && future.scope.inner.lock_incoming().tasks.is_empty()
    {
        future.done = true;
        if let Some(panic) = future.planted.deferred_panic.take() {
            resume_unwind(panic);
        }
    }
}

/// `cancel-runs-woken-tasks`: a cancelled scope first lets the tasks already
/// woken finish the step they were woken for (a "graceful" cancel).
pub(crate) fn run_woken_tasks<F: Future>(future: &mut ScopeFuture<F>) {
    if is(future.scope.inner.mutant, Mutant::CancelRunsWokenTasks) {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        while let Poll::Ready(Some(())) = future.tasks.poll_next_unpin(&mut cx) {}
    }
}

/// `cancel-leaves-tasks`: a cancelled scope hands its orphans to its parent
/// instead of cancelling them (`None`). Else they are given back, to drop.
pub(crate) fn hand_orphans_to_parent(
    scope: &Scope,
    running: FuturesUnordered<Task>,
    abandoned: Vec<Task>,
) -> Option<(FuturesUnordered<Task>, Vec<Task>)> {
    if is(scope.inner.mutant, Mutant::CancelLeavesTasks)
        && let Some(parent) = scope.inner.parent.clone()
    {
        for task in running.into_iter().chain(abandoned) {
            let _ = parent.push_task(task);
        }
        return None;
    }
    Some((running, abandoned))
}
