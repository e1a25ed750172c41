//! The world: the handles of a run's scopes, subscriptions and workers, the
//! executor, and the ops. See [`super`] for its invariants.

use super::reentry::Probe;
use super::tasks::{
    Ending, Group, GroupRef, Log, Member, NestedScope, OwnerScope, Phase, Processor, Release,
    Signal, SubSlot, Subscriber, Task, Worker, push,
};
use super::{About, Owned, PlainBus};
use scopebus_sim::catalogue::{EventId, EventType};
use scopebus_sim::emulation::Emulated;
use scopebus_sim::exec::{Executor, Polled, panic_message};
use scopebus_sim::iut::{Fault, ImplInfo, Implementation};
use scopebus_sim::op::{
    Answer, Observation, Op, OpError, ReentryAction, Reply, ScopeId, SendSpec, SubId, TaskId,
    TaskRef,
};
use scopebus_sim::rules::{Capabilities, Capability};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, PoisonError};

/// Consecutive polls without any observation after which `settle` declares
/// a busy loop (as the reference's adapter does), plus a few per task.
const IDLE_POLL_LIMIT: u64 = 10_000;

/// Quiet polls allowed per existing task, on top of [`IDLE_POLL_LIMIT`].
const IDLE_POLLS_PER_TASK: u64 = 4;

/// What the world keeps of a scope, for the whole run.
struct Handle<B: PlainBus> {
    /// The bus in reach (its owner's).
    bus: Rc<Owned<B>>,
    /// The group tasks spawned in it join (its owner's).
    group: Weak<RefCell<Group>>,
    /// The root scope whose executor task runs it.
    root: ScopeId,
    ending: Signal,
    /// The group its own future is a task of; `None` for a root.
    holder: Option<Weak<RefCell<Group>>>,
}

/// A plain bus in an emulated world of scopes and tasks, as an
/// [`Implementation`]. See the module documentation.
pub struct World<B: PlainBus> {
    about: About,
    exec: Executor,
    log: Log,
    scopes: BTreeMap<ScopeId, Handle<B>>,
    subs: BTreeMap<SubId, Rc<RefCell<SubSlot>>>,
    /// Each processor's root scope (its executor task) and group.
    processors: BTreeMap<SubId, (ScopeId, Weak<RefCell<Group>>)>,
    /// Each waiting worker's release and root scope.
    workers: BTreeMap<TaskId, (Release, ScopeId)>,
    /// Probes armed so far (each `subscribe` probe takes a new type).
    armed: u8,
}

impl<B: PlainBus> Default for World<B> {
    fn default() -> Self {
        World::new()
    }
}

impl<B: PlainBus> World<B> {
    /// A fresh world: no scope, no bus.
    pub fn new() -> World<B> {
        World {
            about: B::about(),
            exec: Executor::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            scopes: BTreeMap::new(),
            subs: BTreeMap::new(),
            processors: BTreeMap::new(),
            workers: BTreeMap::new(),
            armed: 0,
        }
    }

    /// The capabilities the world implements for any bus; `stats` only if
    /// retained events are measured exactly.
    fn capabilities(&self) -> Capabilities {
        let mut set: Capabilities = [
            Capability::Isolated,
            Capability::Cancel,
            Capability::Tasks,
            Capability::Step,
            Capability::Schedule,
            Capability::Wake,
            Capability::Migrate,
            Capability::Started,
            Capability::Abandon,
            Capability::Processors,
            Capability::Failures,
            Capability::ExitedScopes,
        ]
        .into_iter()
        .collect();
        if self.about.keeps_trackers {
            set = set.with(Capability::Stats);
        }
        if self.about.reenters {
            set = set.with(Capability::Reenter);
        }
        set
    }

    fn handle(&self, id: ScopeId) -> Result<&Handle<B>, Fault> {
        self.scopes
            .get(&id)
            .ok_or_else(|| Fault::Protocol(format!("{id} is not a scope of this run")))
    }

    fn slot(&self, id: SubId) -> Result<&Rc<RefCell<SubSlot>>, Fault> {
        self.subs
            .get(&id)
            .ok_or_else(|| Fault::Protocol(format!("{id} is not a subscription of this run")))
    }

    /// Adds `task` to `group` and wakes the root task that polls it.
    fn join(&self, group: &GroupRef, member: Member, task: Task, root: ScopeId) {
        group.borrow_mut().tasks.insert(member, task);
        self.exec.wake(TaskRef::Scope(root));
    }

    fn open_root(&mut self, id: ScopeId) -> Reply {
        let ending = Signal::default();
        let bus = Rc::new(Owned::open());
        let group = GroupRef::default();
        self.scopes.insert(
            id,
            Handle {
                bus: bus.clone(),
                group: Rc::downgrade(&group),
                root: id,
                ending: ending.clone(),
                holder: None,
            },
        );
        let scope = OwnerScope {
            id,
            ending,
            bus,
            group,
            log: self.log.clone(),
            phase: Phase::Open,
        };
        self.exec.spawn(TaskRef::Scope(id), scope);
        Ok(Answer::Done)
    }

    /// A nested scope: a task of its parent's group, with a bus and group
    /// of its own if isolated. Refused (`closed`) if that group is gone.
    fn open_nested(
        &mut self,
        id: ScopeId,
        parent: ScopeId,
        isolated: bool,
    ) -> Result<Reply, Fault> {
        let parent = self.handle(parent)?;
        let (root, holder, parent_bus) = (parent.root, parent.group.clone(), parent.bus.clone());
        let Some(holder_group) = holder.upgrade() else {
            return Ok(Err(OpError::Closed));
        };
        let ending = Signal::default();
        let log = self.log.clone();
        let (bus, group, task): (_, _, Task) = if isolated {
            let bus = Rc::new(Owned::open());
            let group = GroupRef::default();
            let weak = Rc::downgrade(&group);
            let scope = OwnerScope {
                id,
                ending: ending.clone(),
                bus: bus.clone(),
                group,
                log,
                phase: Phase::Open,
            };
            (bus, weak, Box::pin(scope))
        } else {
            let scope = NestedScope {
                id,
                ending: ending.clone(),
                log,
                done: false,
            };
            (parent_bus, holder.clone(), Box::pin(scope))
        };
        self.join(&holder_group, Member::Scope(id), task, root);
        self.scopes.insert(
            id,
            Handle {
                bus,
                group,
                root,
                ending,
                holder: Some(holder),
            },
        );
        Ok(Ok(Answer::Done))
    }

    fn close_scope(&mut self, id: ScopeId) -> Result<Reply, Fault> {
        let handle = self.handle(id)?;
        if handle.ending.get().is_none() {
            handle.ending.set(Some(Ending::Return));
        }
        self.exec.wake(TaskRef::Scope(handle.root));
        Ok(Ok(Answer::Done))
    }

    /// A root's executor task is dropped; a nested scope's future is taken
    /// out of the group holding it and dropped.
    fn cancel_scope(&mut self, id: ScopeId) -> Result<Reply, Fault> {
        let handle = self.handle(id)?;
        match &handle.holder {
            None => {
                self.exec
                    .cancel(TaskRef::Scope(id))
                    .map_err(|m| Fault::Panicked(format!("cancelling {id}: {m}")))?;
            }
            Some(holder) => self.leave(holder, Member::Scope(id), handle.root),
        }
        Ok(Ok(Answer::Done))
    }

    /// Takes `member` out of `group` (if both are still there) and drops
    /// it: cancellation. The root task is woken: the group's owner may have
    /// been waiting only for that member.
    fn leave(&self, group: &Weak<RefCell<Group>>, member: Member, root: ScopeId) {
        if let Some(group) = group.upgrade() {
            let task = group.borrow_mut().tasks.remove(&member);
            drop(task);
            self.exec.wake(TaskRef::Scope(root));
        }
    }

    /// The root's body is told to fail, and its task polled at once, so
    /// that it fails at this op.
    fn fail_scope(&mut self, id: ScopeId) -> Result<Reply, Fault> {
        let handle = self.handle(id)?;
        if handle.holder.is_some() {
            return Err(Fault::Protocol(format!(
                "{id} is nested: only a root scope's body is made to fail"
            )));
        }
        if handle.ending.get().is_some() {
            return Err(Fault::Protocol(format!("{id} is not open")));
        }
        handle.ending.set(Some(Ending::Fail));
        self.exec.wake(TaskRef::Scope(id));
        match self.exec.poll(TaskRef::Scope(id)) {
            Polled::Panicked(m) => Err(Fault::Panicked(format!("failing {id}: {m}"))),
            _ => Ok(Ok(Answer::Done)),
        }
    }

    fn subscribe(
        &mut self,
        sub: SubId,
        scope: Option<ScopeId>,
        ty: EventType,
    ) -> Result<Reply, Fault> {
        let Some(scope) = scope else {
            return Ok(Err(OpError::ContextMissing));
        };
        let stream = self.handle(scope)?.bus.bus.subscribe(ty);
        let slot = SubSlot::new(stream, 0, Some(scope));
        self.subs.insert(sub, slot.clone());
        let log = self.log.clone();
        self.exec
            .spawn(TaskRef::Sub(sub), Subscriber { sub, slot, log });
        Ok(Ok(Answer::Done))
    }

    /// The subscription is made now, then its task joins the scope's group
    /// (refused, `closed`, if the group is gone: the subscription is let go).
    fn spawn_processor(
        &mut self,
        sub: SubId,
        scope: ScopeId,
        ty: EventType,
    ) -> Result<Reply, Fault> {
        let handle = self.handle(scope)?;
        let (weak, root) = (handle.group.clone(), handle.root);
        let stream = handle.bus.bus.subscribe(ty);
        let Some(group) = weak.upgrade() else {
            drop(stream);
            return Ok(Err(OpError::Closed));
        };
        let slot = SubSlot::new(stream, u64::MAX, Some(scope));
        let log = self.log.clone();
        let processor = Processor(Subscriber {
            sub,
            slot: slot.clone(),
            log,
        });
        self.join(&group, Member::Processor(sub), Box::pin(processor), root);
        self.subs.insert(sub, slot);
        self.processors.insert(sub, (root, weak));
        Ok(Ok(Answer::Done))
    }

    /// A send through `scope`'s handle, or `context_missing` outside every
    /// scope.
    fn send(
        &self,
        scope: Option<ScopeId>,
        ty: EventType,
        event: EventId,
    ) -> Result<Result<(), OpError>, Fault> {
        match scope {
            None => Ok(Err(OpError::ContextMissing)),
            Some(s) => Ok(self.handle(s)?.bus.send(ty, event)),
        }
    }

    fn spawn_worker(&mut self, task: TaskId, scope: ScopeId) -> Result<Reply, Fault> {
        let handle = self.handle(scope)?;
        let Some(group) = handle.group.upgrade() else {
            return Ok(Err(OpError::Closed));
        };
        let release = Release::default();
        let worker = Worker {
            task,
            release: release.clone(),
            bus: handle.bus.clone(),
            log: self.log.clone(),
            started: false,
        };
        let root = handle.root;
        self.join(&group, Member::Worker(task), Box::pin(worker), root);
        self.workers.insert(task, (release, root));
        Ok(Ok(Answer::Done))
    }

    fn release(&mut self, task: TaskId, send: Option<SendSpec>) -> Result<Reply, Fault> {
        let (release, root) = self.workers.remove(&task).ok_or_else(|| {
            Fault::Protocol(format!(
                "{task} is not a waiting task of this run (never spawned, or released already)"
            ))
        })?;
        // Its group may be gone (cancelled): then it never runs.
        release.set(Some(send));
        self.exec.wake(TaskRef::Scope(root));
        Ok(Ok(Answer::Done))
    }

    fn consume(&mut self, sub: SubId, k: u32) -> Result<Reply, Fault> {
        let slot = self.slot(sub)?;
        let credits = slot.borrow().credits.saturating_add(u64::from(k));
        slot.borrow_mut().credits = credits;
        self.exec.wake(TaskRef::Sub(sub));
        Ok(Ok(Answer::Done))
    }

    /// The subscription is let go of now; the task ends at its next poll.
    fn drop_subscription(&mut self, sub: SubId) -> Result<Reply, Fault> {
        let held = self.slot(sub)?.borrow_mut().take();
        drop(held);
        self.exec.wake(TaskRef::Sub(sub));
        Ok(Ok(Answer::Done))
    }

    /// The task is dropped where it waits (a processor: taken out of its
    /// group), and its subscription let go of.
    fn cancel_subscriber(&mut self, sub: SubId) -> Result<Reply, Fault> {
        if let Some((root, group)) = self.processors.remove(&sub) {
            self.leave(&group, Member::Processor(sub), root);
        } else {
            self.exec
                .cancel(TaskRef::Sub(sub))
                .map_err(|m| Fault::Panicked(format!("cancelling {sub}: {m}")))?;
        }
        if let Some(slot) = self.subs.remove(&sub) {
            let held = slot.borrow_mut().take();
            drop(held);
        }
        Ok(Ok(Answer::Done))
    }

    /// The pending receive is dropped, as a timeout around it would drop
    /// it, and the task is woken, as the timeout wakes it, to start a new
    /// receive; the subscription and the credit stay.
    fn abandon(&mut self, sub: SubId) -> Result<Reply, Fault> {
        let pull = self.slot(sub)?.borrow_mut().pull.take();
        if pull.is_some() {
            drop(pull);
            let task = match self.processors.get(&sub) {
                Some((root, _)) => TaskRef::Scope(*root),
                None => TaskRef::Sub(sub),
            };
            self.exec.wake(task);
        }
        Ok(Ok(Answer::Done))
    }

    /// FAIL-2: the task is dropped where it waits, as an unwinding panic
    /// drops what it holds: the subscription goes first, then its cleanup
    /// sends from the subscription's scope.
    fn fail_subscriber(&mut self, sub: SubId, send: Option<SendSpec>) -> Result<Reply, Fault> {
        if self.processors.contains_key(&sub) {
            return Err(Fault::Protocol(format!(
                "{sub} is a processor: `fail_subscriber` names subscriber tasks only"
            )));
        }
        let slot = self.slot(sub)?.clone();
        self.subs.remove(&sub);
        self.exec
            .cancel(TaskRef::Sub(sub))
            .map_err(|m| Fault::Panicked(format!("dropping the task of {sub}: {m}")))?;
        let (held, scope) = {
            let mut slot = slot.borrow_mut();
            (slot.take(), slot.scope)
        };
        drop(held);
        let sent = match send {
            Some(spec) => Some((spec.event, self.send(scope, spec.ty, spec.event)?)),
            None => None,
        };
        push(&self.log, Observation::SubscriberFailed { sub, sent });
        Ok(Ok(Answer::Done))
    }

    /// REENTER-1: arms a probe on the task of `sub`, acting on the bus of
    /// the scope it subscribed in; the task's next polls of its receive
    /// carry it.
    fn arm(&mut self, sub: SubId, action: ReentryAction) -> Result<Reply, Fault> {
        let slot = self.slot(sub)?.clone();
        let scope = slot.borrow().scope.ok_or_else(|| {
            Fault::Protocol(format!(
                "{sub} was made outside every scope: no bus to probe"
            ))
        })?;
        let bus = self.handle(scope)?.bus.bus.clone();
        let fresh = self.armed;
        self.armed = self.armed.wrapping_add(1);
        let run = Arc::new(move || bus.reenter(action, fresh));
        let probe = Probe::new(sub, action, run, self.log.clone());
        let old = slot.borrow_mut().probe.replace(probe);
        if let Some(old) = old {
            old.disarm();
        }
        Ok(Ok(Answer::Done))
    }

    fn observe(&self, scope: ScopeId) -> Result<Reply, Fault> {
        if !self.about.keeps_trackers {
            return Ok(Err(OpError::NotSupported(
                "retained events cannot be counted exactly".to_owned(),
            )));
        }
        Ok(Ok(Answer::Stats(self.handle(scope)?.bus.stats())))
    }

    fn log_len(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn settle(&mut self) -> Result<Reply, Fault> {
        let mut idle = 0;
        while let Some(task) = self.exec.first_runnable() {
            let before = self.log_len();
            self.poll_task(task)?;
            if self.log_len() == before {
                idle += 1;
                let limit = IDLE_POLL_LIMIT + IDLE_POLLS_PER_TASK * self.exec.len() as u64;
                if idle > limit {
                    return Err(Fault::DidNotSettle { polls: idle });
                }
            } else {
                idle = 0;
            }
        }
        Ok(Ok(Answer::Done))
    }

    fn poll_task(&mut self, task: TaskRef) -> Result<bool, Fault> {
        let task = match task {
            TaskRef::Any => match self.exec.first_runnable() {
                Some(first) => first,
                None => return Ok(false),
            },
            named => named,
        };
        match self.exec.poll(task) {
            Polled::Skipped => Ok(false),
            Polled::Pending | Polled::Finished => Ok(true),
            Polled::Panicked(m) => Err(Fault::Panicked(format!("polling {task}: {m}"))),
        }
    }

    /// A processor runs inside its root scope's task: that task stands for
    /// it when it is woken or moved.
    fn task_of(&self, task: TaskRef) -> TaskRef {
        match task {
            TaskRef::Sub(sub) => self
                .processors
                .get(&sub)
                .map_or(task, |(root, _)| TaskRef::Scope(*root)),
            other => other,
        }
    }

    /// An op naming a handle that already exists breaks the protocol.
    fn check_fresh(&self, op: &Op) -> Result<(), Fault> {
        let taken = match op {
            Op::OpenScope { scope, .. } => self.scopes.contains_key(scope),
            Op::Subscribe { sub, .. } | Op::SpawnProcessor { sub, .. } => {
                self.subs.contains_key(sub)
            }
            Op::Spawn { task, .. } => self.workers.contains_key(task),
            _ => false,
        };
        if taken {
            return Err(Fault::Protocol(format!(
                "`{op}` names a handle that already exists in this run"
            )));
        }
        Ok(())
    }

    fn dispatch(&mut self, op: &Op) -> Result<Reply, Fault> {
        self.check_fresh(op)?;
        let unsupported = |what: &str| Ok(Err(OpError::NotSupported(what.to_owned())));
        match op {
            Op::OpenScope {
                scope,
                parent: None,
                ..
            } => Ok(self.open_root(*scope)),
            Op::OpenScope {
                scope,
                parent: Some(parent),
                isolated,
            } => self.open_nested(*scope, *parent, *isolated),
            Op::CloseScope { scope } => self.close_scope(*scope),
            Op::CancelScope { scope } => self.cancel_scope(*scope),
            Op::FailScope { scope } => self.fail_scope(*scope),
            Op::Subscribe { sub, scope, ty } => self.subscribe(*sub, *scope, *ty),
            Op::SubscribeShared { .. } => unsupported("one subscription pulled by two tasks"),
            Op::Reenter { sub, action } if self.about.reenters => self.arm(*sub, *action),
            Op::Reenter { .. } => unsupported("probes inside the bus's callbacks"),
            Op::SpawnProcessor { sub, scope, ty } => self.spawn_processor(*sub, *scope, *ty),
            Op::Send { scope, ty, event } => {
                Ok(self.send(*scope, *ty, *event)?.map(|()| Answer::Done))
            }
            Op::Consume { sub, k } => self.consume(*sub, *k),
            Op::DropSubscription { sub } => self.drop_subscription(*sub),
            Op::CancelSubscriber { sub } => self.cancel_subscriber(*sub),
            Op::Abandon { sub } => self.abandon(*sub),
            Op::FailSubscriber { sub, send } => self.fail_subscriber(*sub, *send),
            Op::Spawn { task, scope } => self.spawn_worker(*task, *scope),
            Op::Release { task, send } => self.release(*task, *send),
            Op::Settle => self.settle(),
            Op::Observe { scope } => self.observe(*scope),
        }
    }
}

impl<B: PlainBus> Implementation for World<B> {
    fn info(&self) -> ImplInfo {
        let mut emulates = vec![Emulated::Scopes, Emulated::Tasks, Emulated::ContextMissing];
        emulates.extend(self.about.also_emulates.iter().copied());
        emulates.sort();
        emulates.dedup();
        ImplInfo {
            name: self.about.name.to_owned(),
            language: "rust".to_owned(),
            version: self.about.version.clone(),
            runtime: Some(self.about.runtime.clone()),
            capabilities: self.capabilities(),
            emulates,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        catch_unwind(AssertUnwindSafe(|| self.dispatch(op))).unwrap_or_else(|panic| {
            Err(Fault::Panicked(format!(
                "`{op}`: {}",
                panic_message(panic.as_ref())
            )))
        })
    }

    fn runnable(&self) -> Vec<TaskRef> {
        self.exec.runnable()
    }

    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.poll_task(task)
    }

    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
        Ok(task != TaskRef::Any && self.exec.wake(self.task_of(task)))
    }

    fn take_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn migrate(&mut self, task: TaskRef) -> Result<bool, Fault> {
        Ok(task != TaskRef::Any && self.exec.migrate(self.task_of(task)))
    }
}

impl<B: PlainBus> Drop for World<B> {
    fn drop(&mut self) {
        // Tasks first (their destructors close buses and let go of
        // subscriptions), then what the world kept; a panic in a
        // destructor must not take the runner down.
        // No probe fires while the run is torn down.
        for slot in self.subs.values() {
            if let Some(probe) = slot.borrow_mut().probe.take() {
                probe.disarm();
            }
        }
        let exec = std::mem::take(&mut self.exec);
        let subs = std::mem::take(&mut self.subs);
        let scopes = std::mem::take(&mut self.scopes);
        let _ = catch_unwind(AssertUnwindSafe(move || {
            exec.clear();
            drop(subs);
            drop(scopes);
        }));
    }
}
