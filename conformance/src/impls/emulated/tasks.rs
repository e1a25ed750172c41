//! The tasks of the emulated world: scopes (an owner's future polls its
//! body and its task group), workers, subscribers and processors.
//!
//! Invariants: a group polls its members in key order, each taken out of
//! the group while it runs (no borrow is held across a poll); a task that
//! is dropped unfinished reports its cancellation (scopes) or nothing
//! (workers, processors) and lets go of what it holds; nothing here drops a
//! bus object while a `RefCell` of the world is borrowed.

use super::reentry::{Probe, poll_hooked};
use super::{Owned, PlainBus, Pull, PullFuture, Pulled};
use scopebus_sim::op::{Observation, ScopeId, SendSpec, SubId, TaskId};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Observations, in the order they happened; shared with REENTER-1's
/// probes, which report from inside the bus's callbacks.
pub(super) type Log = Arc<Mutex<Vec<Observation>>>;

pub(super) fn push(log: &Log, observation: Observation) {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(observation);
}

/// A task of a group, by kind and handle (the order groups poll them in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Member {
    Scope(ScopeId),
    Worker(TaskId),
    Processor(SubId),
}

pub(super) type Task = Pin<Box<dyn Future<Output = ()>>>;

/// A task group: its owner's future polls every member each time it runs.
#[derive(Default)]
pub(super) struct Group {
    pub(super) tasks: BTreeMap<Member, Task>,
}

pub(super) type GroupRef = Rc<RefCell<Group>>;

/// Polls every member once (each taken out while it runs, so no borrow is
/// held); a member that finishes is dropped.
pub(super) fn run_group(group: &GroupRef, cx: &mut Context<'_>) {
    let members: Vec<Member> = group.borrow().tasks.keys().copied().collect();
    for member in members {
        let Some(mut task) = group.borrow_mut().tasks.remove(&member) else {
            continue;
        };
        if task.as_mut().poll(cx).is_pending() {
            group.borrow_mut().tasks.insert(member, task);
        }
    }
}

/// Drops every member, outside the borrow: cancellation.
pub(super) fn cancel_group(group: &GroupRef) {
    let tasks = std::mem::take(&mut group.borrow_mut().tasks);
    drop(tasks);
}

/// How a scope's body ends: it returns, or fails (`fail_scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    Return,
    Fail,
}

/// Set by `close_scope` or `fail_scope`; the body reads it when it runs.
pub(super) type Signal = Rc<Cell<Option<Ending>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// The body waits for its ending.
    Open,
    /// The body returned and the bus is closed; waiting for the group.
    Waiting,
    /// Reported as exited, failed or cancelled.
    Gone,
}

/// A root or isolated scope: a bus and a task group of its own.
pub(super) struct OwnerScope<B: PlainBus> {
    pub(super) id: ScopeId,
    pub(super) ending: Signal,
    pub(super) bus: Rc<Owned<B>>,
    pub(super) group: GroupRef,
    pub(super) log: Log,
    pub(super) phase: Phase,
}

impl<B: PlainBus> Future for OwnerScope<B> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.phase == Phase::Open {
            match this.ending.get() {
                Some(Ending::Return) => {
                    push(&this.log, Observation::ScopeClosing { scope: this.id });
                    this.bus.bus.close();
                    this.phase = Phase::Waiting;
                }
                Some(Ending::Fail) => {
                    // The body's error: the group is cancelled, the bus
                    // closed, and the error comes out of the scope.
                    this.phase = Phase::Gone;
                    cancel_group(&this.group);
                    this.bus.bus.close();
                    push(
                        &this.log,
                        Observation::ScopeFailed {
                            scope: this.id,
                            error: format!("BodyFailure: {}'s body failed", this.id),
                            own: true,
                        },
                    );
                    return Poll::Ready(());
                }
                None => {}
            }
        }
        run_group(&this.group, cx);
        if this.phase == Phase::Waiting && this.group.borrow().tasks.is_empty() {
            this.phase = Phase::Gone;
            push(&this.log, Observation::ScopeExited { scope: this.id });
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl<B: PlainBus> Drop for OwnerScope<B> {
    /// Dropped before it is gone: cancelled. Its group's tasks go first,
    /// then its bus closes.
    fn drop(&mut self) {
        if self.phase == Phase::Gone {
            return;
        }
        self.phase = Phase::Gone;
        cancel_group(&self.group);
        self.bus.bus.close();
        push(&self.log, Observation::ScopeCancelled { scope: self.id });
    }
}

/// A nested, non-isolated scope: only a body (its bus and group are its
/// parent's), a task of its parent's group. It waits for nothing.
pub(super) struct NestedScope {
    pub(super) id: ScopeId,
    pub(super) ending: Signal,
    pub(super) log: Log,
    pub(super) done: bool,
}

impl Future for NestedScope {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.ending.get().is_none() {
            return Poll::Pending;
        }
        self.done = true;
        push(&self.log, Observation::ScopeClosing { scope: self.id });
        push(&self.log, Observation::ScopeExited { scope: self.id });
        Poll::Ready(())
    }
}

impl Drop for NestedScope {
    fn drop(&mut self) {
        if !self.done {
            push(&self.log, Observation::ScopeCancelled { scope: self.id });
        }
    }
}

/// Set by `release`: what the worker sends (`Some(None)`: nothing).
pub(super) type Release = Rc<Cell<Option<Option<SendSpec>>>>;

/// A worker: reports its start, waits for its release, sends from its
/// scope, reports and finishes.
pub(super) struct Worker<B: PlainBus> {
    pub(super) task: TaskId,
    pub(super) release: Release,
    pub(super) bus: Rc<Owned<B>>,
    pub(super) log: Log,
    pub(super) started: bool,
}

impl<B: PlainBus> Future for Worker<B> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if !self.started {
            self.started = true;
            push(&self.log, Observation::TaskStarted { task: self.task });
        }
        let Some(spec) = self.release.take() else {
            return Poll::Pending;
        };
        let sent = spec.map(|s| (s.event, self.bus.send(s.ty, s.event)));
        push(
            &self.log,
            Observation::TaskDone {
                task: self.task,
                sent,
            },
        );
        Poll::Ready(())
    }
}

/// A subscription's state, shared by its task and the world's ops.
pub(super) struct SubSlot {
    /// `None` once let go of (dropped, cancelled, ended, failed).
    stream: Option<Box<dyn Pull>>,
    /// The receive the task waits in, if any (`abandon` drops it).
    pub(super) pull: Option<PullFuture>,
    pub(super) credits: u64,
    /// Where it was subscribed (a failing subscriber's cleanup sends there).
    pub(super) scope: Option<ScopeId>,
    /// The probe `reenter` armed on the task, until it fires (REENTER-1).
    pub(super) probe: Option<Arc<Probe>>,
}

pub(super) type Held = (Option<Box<dyn Pull>>, Option<PullFuture>);

impl SubSlot {
    pub(super) fn new(
        stream: Box<dyn Pull>,
        credits: u64,
        scope: Option<ScopeId>,
    ) -> Rc<RefCell<SubSlot>> {
        Rc::new(RefCell::new(SubSlot {
            stream: Some(stream),
            pull: None,
            credits,
            scope,
            probe: None,
        }))
    }

    /// The subscription and the receive in flight, for the caller to drop
    /// once it has let go of the slot (a drop runs the bus's code).
    pub(super) fn take(&mut self) -> Held {
        (self.stream.take(), self.pull.take())
    }
}

/// A subscriber task: with credit, one receive per poll; after each event
/// it yields once (wakes itself), so the scheduler can interleave.
pub(super) struct Subscriber {
    pub(super) sub: SubId,
    pub(super) slot: Rc<RefCell<SubSlot>>,
    pub(super) log: Log,
}

impl Future for Subscriber {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut guard = self.slot.borrow_mut();
        let slot = &mut *guard;
        let Some(stream) = slot.stream.as_ref() else {
            return Poll::Ready(());
        };
        if slot.credits == 0 {
            // `consume` wakes the task by name.
            return Poll::Pending;
        }
        let pull = slot.pull.get_or_insert_with(|| stream.recv());
        // An armed probe rides on the waker this receive registers.
        let polled = match slot.probe.as_ref().filter(|p| !p.fired()) {
            Some(probe) => poll_hooked(pull.as_mut(), cx, probe.clone()),
            None => pull.as_mut().poll(cx),
        };
        let Poll::Ready(pulled) = polled else {
            return Poll::Pending;
        };
        slot.pull = None;
        let sub = self.sub;
        let last = match pulled {
            Pulled::Event(event) => {
                slot.credits -= 1;
                push(&self.log, Observation::Received { sub, event });
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Pulled::End => Observation::Ended { sub },
            Pulled::Failed(error) => Observation::Failed { sub, error },
        };
        let held = slot.take();
        drop(guard);
        drop(held);
        push(&self.log, last);
        Poll::Ready(())
    }
}

/// A processor: a [`Subscriber`] with unlimited credit, a task of its
/// scope's group. Dropped (cancelled), it lets go of its subscription.
pub(super) struct Processor(pub(super) Subscriber);

impl Future for Processor {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let held = self.0.slot.borrow_mut().take();
        drop(held);
    }
}
