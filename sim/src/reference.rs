//! The reference bus (and its mutants) as an implementation under test,
//! driven in-process on the simulator's executor.
//!
//! Everything goes through the bus's public, ambient API, as a user would
//! write it: scopes are `scopebus::ScopeBuilder` futures (nested ones spawned
//! into their parent with `scopebus::spawn`), subscriptions come from
//! `scopebus::subscribe` inside `Scope::enter`, workers are `scopebus::spawn`ed
//! tasks that call `scopebus::send` from their scope's context.

use crate::catalogue::{self, EventType, SendFailure, SharedSub};
use crate::exec::{Executor, Polled};
use crate::iut::{Fault, ImplInfo, Implementation, Preempted};
use crate::op::{
    Answer, Interjection, Observation, Op, OpError, ReentryAction, Reply, ScopeId, SendSpec, SubId,
    TaskId, TaskRef, TypeCount,
};
use crate::probe::{Probe, Prober, poll_hooked};
use crate::rules::Capabilities;
use futures::FutureExt;
use futures::channel::oneshot;
use scopebus::mutants::{Mutant, YieldHook, as_another_thread, set_yield_hook, with_mutant};
use scopebus::{Scope, ScopeBuilder, TaskHandle};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Consecutive polls without any observation after which `settle` declares a
/// busy loop, on top of a few per existing task (each may need some quiet
/// polls to register where it waits).
const IDLE_POLL_LIMIT: u64 = 10_000;

/// Quiet polls allowed per existing task, on top of [`IDLE_POLL_LIMIT`].
const IDLE_POLLS_PER_TASK: u64 = 4;

type Log = Arc<Mutex<Vec<Observation>>>;

fn push(log: &Log, observation: Observation) {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(observation);
}

/// The reference bus, or one of its mutants, under test.
pub struct ReferenceImpl {
    mutant: Option<Mutant>,
    exec: Executor,
    log: Log,
    scopes: BTreeMap<ScopeId, RefScope>,
    subs: BTreeMap<SubId, Arc<Mutex<SubSlot>>>,
    workers: BTreeMap<TaskId, oneshot::Sender<Option<SendSpec>>>,
    /// The tasks of the processors (PROC-1), to cancel them, and the root
    /// scope whose executor task polls each (to wake or move it).
    processors: BTreeMap<SubId, (TaskHandle<()>, ScopeId)>,
    /// Shared subscriptions (SHARE-1): each one's owning subscriber, and its
    /// second puller.
    pullers: BTreeMap<SubId, SubId>,
    /// Runs REENTER-1's probes off the simulator's thread.
    prober: Prober,
    /// Probes armed so far (each `subscribe` probe takes a new type).
    armed: u8,
}

struct RefScope {
    handle: Scope,
    /// How the body is told to return (`false`) or fail (`true`).
    close: Option<oneshot::Sender<bool>>,
    /// How to cancel it: drop the root task, or cancel its task in the parent.
    nested: Option<TaskHandle<()>>,
    /// The root scope whose executor task runs it (itself, for a root).
    root: ScopeId,
}

/// A receive in flight.
type Pull = futures::future::BoxFuture<'static, Option<catalogue::EventId>>;

struct SubSlot {
    /// `None` once dropped or ended.
    stream: Option<SharedSub>,
    /// The receive the subscriber waits in, if any (CANCEL-2: `abandon`
    /// drops it mid-wait).
    pull: Option<Pull>,
    credits: u64,
    waker: Option<Waker>,
    /// The scope it was subscribed in (where a failing subscriber's
    /// cleanup sends, FAIL-2).
    scope: Option<ScopeId>,
    /// The probe `reenter` armed on the task, until it fires (REENTER-1).
    probe: Option<Arc<Probe>>,
}

impl ReferenceImpl {
    /// The reference bus, or the reference with `mutant` planted.
    pub fn new(mutant: Option<Mutant>) -> ReferenceImpl {
        // A run must not see what an earlier run on this thread left behind.
        scopebus::mutants::reset_thread();
        ReferenceImpl {
            mutant,
            exec: Executor::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            scopes: BTreeMap::new(),
            subs: BTreeMap::new(),
            workers: BTreeMap::new(),
            processors: BTreeMap::new(),
            pullers: BTreeMap::new(),
            prober: Prober::of_this_thread(),
            armed: 0,
        }
    }

    /// The implementation's name: `reference` or `mutant:NAME`.
    pub fn name(mutant: Option<Mutant>) -> String {
        match mutant {
            None => "reference".to_owned(),
            Some(m) => format!("mutant:{}", m.name()),
        }
    }

    fn scope(&self, id: ScopeId) -> Result<&RefScope, Fault> {
        self.scopes
            .get(&id)
            .ok_or_else(|| Fault::Protocol(format!("{id} is not a scope of this run")))
    }

    fn slot(&self, id: SubId) -> Result<&Arc<Mutex<SubSlot>>, Fault> {
        self.subs
            .get(&id)
            .ok_or_else(|| Fault::Protocol(format!("{id} is not a subscription of this run")))
    }

    fn open_scope(
        &mut self,
        id: ScopeId,
        parent: Option<ScopeId>,
        isolated: bool,
    ) -> Result<Reply, Fault> {
        let (close, closed) = oneshot::channel::<bool>();
        let body = scope_body(id, self.log.clone(), closed);
        let builder = ScopeBuilder::new(id.to_string()).isolated(isolated);
        let log = self.log.clone();
        let wrap = move |future| reported(id, log, future);
        match parent {
            None => {
                let future = builder.run(body);
                let handle = future.scope().clone();
                self.exec.spawn(TaskRef::Scope(id), wrap(future));
                self.scopes.insert(
                    id,
                    RefScope {
                        handle,
                        close: Some(close),
                        nested: None,
                        root: id,
                    },
                );
                Ok(Ok(Answer::Done))
            }
            Some(parent) => {
                let (parent, root) = {
                    let parent = self.scope(parent)?;
                    (parent.handle.clone(), parent.root)
                };
                let spawned = parent.enter(|| {
                    let future = builder.run(body);
                    let handle = future.scope().clone();
                    scopebus::spawn(wrap(future)).map(|task| (handle, task))
                });
                match spawned {
                    Ok((handle, task)) => {
                        self.scopes.insert(
                            id,
                            RefScope {
                                handle,
                                close: Some(close),
                                nested: Some(task),
                                root,
                            },
                        );
                        Ok(Ok(Answer::Done))
                    }
                    Err(e) => Ok(Err(OpError::Other(e.to_string()))),
                }
            }
        }
    }

    fn subscribe(
        &mut self,
        sub: SubId,
        scope: Option<ScopeId>,
        ty: EventType,
    ) -> Result<Reply, Fault> {
        let stream = match scope {
            None => catalogue::subscribe_ambient(ty),
            Some(s) => self
                .scope(s)?
                .handle
                .enter(|| catalogue::subscribe_ambient(ty)),
        };
        match stream {
            Ok(stream) => {
                self.start_subscriber(sub, stream, scope);
                Ok(Ok(Answer::Done))
            }
            Err(scopebus::ContextMissing) => Ok(Err(OpError::ContextMissing)),
        }
    }

    /// A subscriber task `sub` pulling `stream`, with no credit yet.
    fn start_subscriber(&mut self, sub: SubId, stream: SharedSub, scope: Option<ScopeId>) {
        let slot = Arc::new(Mutex::new(SubSlot {
            stream: Some(stream),
            pull: None,
            credits: 0,
            waker: None,
            probe: None,
            scope,
        }));
        self.subs.insert(sub, slot.clone());
        self.exec.spawn(
            TaskRef::Sub(sub),
            Subscriber {
                sub,
                slot,
                log: self.log.clone(),
            },
        );
    }

    /// SHARE-1: one subscription, shared ([`scopebus::Subscription::share`]),
    /// pulled by two subscriber tasks, `sub` and `puller`.
    fn subscribe_shared(
        &mut self,
        sub: SubId,
        puller: SubId,
        scope: ScopeId,
        ty: EventType,
    ) -> Result<Reply, Fault> {
        let stream = self
            .scope(scope)?
            .handle
            .enter(|| catalogue::subscribe_shared_ambient(ty));
        match stream {
            Ok(stream) => {
                self.start_subscriber(sub, stream.clone(), Some(scope));
                self.start_subscriber(puller, stream, Some(scope));
                self.pullers.insert(sub, puller);
                Ok(Ok(Answer::Done))
            }
            Err(scopebus::ContextMissing) => Ok(Err(OpError::ContextMissing)),
        }
    }

    /// The seed's background processor, as a user writes it: the
    /// subscription is made in the scope, then a task spawned into the
    /// scope pulls it until it ends (a [`Subscriber`] with unlimited
    /// credit, which lets go of the subscription when the task is dropped).
    fn spawn_processor(
        &mut self,
        sub: SubId,
        scope: ScopeId,
        ty: EventType,
    ) -> Result<Reply, Fault> {
        let (handle, root) = {
            let scope = self.scope(scope)?;
            (scope.handle.clone(), scope.root)
        };
        let stream = match handle.enter(|| catalogue::subscribe_ambient(ty)) {
            Ok(stream) => stream,
            Err(scopebus::ContextMissing) => return Ok(Err(OpError::ContextMissing)),
        };
        let slot = Arc::new(Mutex::new(SubSlot {
            stream: Some(stream),
            pull: None,
            credits: u64::MAX,
            waker: None,
            probe: None,
            scope: Some(scope),
        }));
        let processor = Processor(Subscriber {
            sub,
            slot: slot.clone(),
            log: self.log.clone(),
        });
        match handle.enter(|| scopebus::spawn(processor)) {
            Ok(task) => {
                self.subs.insert(sub, slot);
                self.processors.insert(sub, (task, root));
                Ok(Ok(Answer::Done))
            }
            // The refused task was dropped, and its subscription with it.
            Err(e) => Ok(Err(spawn_error(e))),
        }
    }

    fn send(&mut self, scope: Option<ScopeId>, ty: EventType, event: u64) -> Result<Reply, Fault> {
        let sent = match scope {
            None => catalogue::send_ambient(ty, event),
            Some(s) => self
                .scope(s)?
                .handle
                .enter(|| catalogue::send_ambient(ty, event)),
        };
        Ok(sent.map(|()| Answer::Done).map_err(op_error))
    }

    fn spawn_worker(&mut self, task: TaskId, scope: ScopeId) -> Result<Reply, Fault> {
        let (release, worker) = worker(task, self.log.clone());
        let spawned = self.scope(scope)?.handle.enter(|| scopebus::spawn(worker));
        match spawned {
            // Detached: the scope waits for it (TASK-1).
            Ok(handle) => drop(handle),
            Err(e) => return Ok(Err(spawn_error(e))),
        }
        self.workers.insert(task, release);
        Ok(Ok(Answer::Done))
    }

    /// What a preempting interjection does, as a closure the yield hook can
    /// own: its reply (`None` for a poll), or a fault.
    fn interjection(&self, with: &Interjection) -> Result<Interjected, Fault> {
        let handle = |scope: &Option<ScopeId>| -> Result<Option<Scope>, Fault> {
            scope
                .map(|s| self.scope(s).map(|r| r.handle.clone()))
                .transpose()
        };
        match with {
            Interjection::Op(Op::Send { scope, ty, event }) => {
                let (handle, ty, event) = (handle(scope)?, *ty, *event);
                // The send, as another thread would make it: in the scope's
                // context.
                Ok(Interjected {
                    run: Box::new(move || {
                        let sent = match &handle {
                            Some(h) => h.enter(|| catalogue::send_ambient(ty, event)),
                            None => catalogue::send_ambient(ty, event),
                        };
                        Ok(Some(sent.map(|()| Answer::Done).map_err(op_error)))
                    }),
                    release: None,
                })
            }
            Interjection::Op(Op::Spawn { task, scope }) => {
                let handle = self.scope(*scope)?.handle.clone();
                let (release, worker) = worker(*task, self.log.clone());
                let mut worker = Some(worker);
                let accepted: Accepted = Rc::new(RefCell::new(None));
                let mut release = Some(release);
                let keep = accepted.clone();
                Ok(Interjected {
                    run: Box::new(move || {
                        let Some(worker) = worker.take() else {
                            return Err(Fault::Protocol("a spawn ran twice".to_owned()));
                        };
                        match handle.enter(|| scopebus::spawn(worker)) {
                            Ok(task) => {
                                drop(task);
                                *keep.borrow_mut() = release.take();
                                Ok(Some(Ok(Answer::Done)))
                            }
                            Err(e) => Ok(Some(Err(spawn_error(e)))),
                        }
                    }),
                    release: Some((*task, accepted)),
                })
            }
            Interjection::Op(op) => Err(Fault::Protocol(format!(
                "`preempt` runs a send, a spawn or a poll, not `{}`",
                op.name()
            ))),
            Interjection::Poll(other) => {
                let (exec, other) = (self.exec.clone(), *other);
                Ok(Interjected {
                    run: Box::new(move || match exec.poll(other) {
                        Polled::Panicked(message) => {
                            Err(Fault::Panicked(format!("polling {other}: {message}")))
                        }
                        _ => Ok(None),
                    }),
                    release: None,
                })
            }
        }
    }

    fn observe(&mut self, scope: ScopeId) -> Result<Reply, Fault> {
        let stats = self.scope(scope)?.handle.bus().stats();
        let counts = stats
            .types
            .iter()
            .filter_map(|t| {
                EventType::from_type_id(t.type_id).map(|ty| TypeCount {
                    ty,
                    subscriptions: Some(t.subscriptions as u64),
                    retained_events: None,
                    retained: t.retained as u64,
                })
            })
            .collect();
        Ok(Ok(Answer::Stats(counts)))
    }

    fn settle(&mut self) -> Result<Reply, Fault> {
        let mut idle = 0;
        loop {
            let Some(task) = self.exec.first_runnable() else {
                return Ok(Ok(Answer::Done));
            };
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
    }

    fn log_len(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn poll_task(&mut self, task: TaskRef) -> Result<bool, Fault> {
        // `any`: the reference's own choice, the first runnable task.
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
            Polled::Panicked(message) => Err(Fault::Panicked(format!("polling {task}: {message}"))),
        }
    }

    fn dispatch(&mut self, op: &Op) -> Result<Reply, Fault> {
        match op {
            Op::OpenScope { scope, .. } if self.scopes.contains_key(scope) => Err(Fault::Protocol(
                format!("{scope} already exists in this run"),
            )),
            Op::Subscribe { sub, .. } | Op::SpawnProcessor { sub, .. }
                if self.subs.contains_key(sub) =>
            {
                Err(Fault::Protocol(format!("{sub} already exists in this run")))
            }
            Op::SubscribeShared { sub, puller, .. }
                if sub == puller
                    || self.subs.contains_key(sub)
                    || self.subs.contains_key(puller) =>
            {
                Err(Fault::Protocol(format!(
                    "{sub} or {puller} already exists in this run"
                )))
            }
            Op::Spawn { task, .. } if self.workers.contains_key(task) => Err(Fault::Protocol(
                format!("{task} already exists in this run"),
            )),
            Op::OpenScope {
                scope,
                parent,
                isolated,
            } => self.open_scope(*scope, *parent, *isolated),
            Op::CloseScope { scope } => self.close_scope(*scope),
            Op::CancelScope { scope } => self.cancel_scope(*scope),
            Op::FailScope { scope } => self.fail_scope(*scope),
            Op::Subscribe { sub, scope, ty } => self.subscribe(*sub, *scope, *ty),
            Op::SubscribeShared {
                sub,
                puller,
                scope,
                ty,
            } => self.subscribe_shared(*sub, *puller, *scope, *ty),
            Op::SpawnProcessor { sub, scope, ty } => self.spawn_processor(*sub, *scope, *ty),
            Op::Send { scope, ty, event } => self.send(*scope, *ty, *event),
            Op::Consume { sub, k } => self.consume(*sub, *k),
            Op::DropSubscription { sub } => self.drop_subscription(*sub),
            Op::Abandon { sub } => {
                // The receive it waits in is dropped, as a timeout would; the
                // subscription and the credit stay, and the subscriber's next
                // poll starts a new receive. Not woken: it is polled when its
                // wait would have woken it anyway (a send, a close).
                let pull = lock(self.slot(*sub)?).pull.take();
                drop(pull);
                Ok(Ok(Answer::Done))
            }
            Op::Reenter { sub, action } => self.arm(*sub, *action),
            Op::CancelSubscriber { sub } => self.cancel_subscriber(*sub),
            Op::FailSubscriber { sub, send } => self.fail_subscriber(*sub, *send),
            Op::Spawn { task, scope } => self.spawn_worker(*task, *scope),
            Op::Release { task, send } => {
                let release = self.workers.remove(task).ok_or_else(|| {
                    Fault::Protocol(format!(
                        "{task} is not a waiting task of this run (never spawned, or released already)"
                    ))
                })?;
                // Its scope may be gone (cancelled): then it never runs.
                let _ = release.send(*send);
                Ok(Ok(Answer::Done))
            }
            Op::Settle => self.settle(),
            Op::Observe { scope } => self.observe(*scope),
        }
    }

    /// REENTER-1: arms a probe on the task of `sub`, acting on the bus of
    /// the scope it subscribed in; the task's next polls of its receive
    /// carry it.
    fn arm(&mut self, sub: SubId, action: ReentryAction) -> Result<Reply, Fault> {
        let slot = self.slot(sub)?.clone();
        let scope = lock(&slot).scope.ok_or_else(|| {
            Fault::Protocol(format!(
                "{sub} was made outside every scope: no bus to probe"
            ))
        })?;
        let bus = self.scope(scope)?.handle.bus().clone();
        let fresh = self.armed;
        self.armed = self.armed.wrapping_add(1);
        let probe = Probe::new(
            sub,
            action,
            bus,
            self.log.clone(),
            self.prober.clone(),
            fresh,
        );
        if let Some(old) = lock(&slot).probe.replace(probe) {
            old.disarm();
        }
        Ok(Ok(Answer::Done))
    }

    fn consume(&mut self, sub: SubId, k: u32) -> Result<Reply, Fault> {
        let mut slot = lock(self.slot(sub)?);
        slot.credits += u64::from(k);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
        Ok(Ok(Answer::Done))
    }

    /// The subscriber lets go of its subscription, mid-wait or not (with its
    /// second puller, if it is shared); each task then ends at its next poll.
    fn drop_subscription(&mut self, sub: SubId) -> Result<Reply, Fault> {
        for sub in [Some(sub), self.pullers.remove(&sub)].into_iter().flatten() {
            let taken = lock(self.slot(sub)?).take();
            drop(taken);
            self.exec.wake(TaskRef::Sub(sub));
        }
        Ok(Ok(Answer::Done))
    }

    fn close_scope(&mut self, scope: ScopeId) -> Result<Reply, Fault> {
        let entry = self
            .scopes
            .get_mut(&scope)
            .ok_or_else(|| Fault::Protocol(format!("{scope} is not a scope of this run")))?;
        if let Some(close) = entry.close.take() {
            // The body may be gone already (scope cancelled): fine.
            let _ = close.send(false);
        }
        Ok(Ok(Answer::Done))
    }

    /// The body is told to fail, and its root task polled at once, so that
    /// it fails at this op, as a cancellation drops it at its op.
    fn fail_scope(&mut self, scope: ScopeId) -> Result<Reply, Fault> {
        let entry = self
            .scopes
            .get_mut(&scope)
            .ok_or_else(|| Fault::Protocol(format!("{scope} is not a scope of this run")))?;
        if entry.nested.is_some() {
            return Err(Fault::Protocol(format!(
                "{scope} is nested: only a root scope's body is made to fail"
            )));
        }
        let Some(close) = entry.close.take() else {
            return Err(Fault::Protocol(format!("{scope} is not open")));
        };
        let _ = close.send(true);
        match self.exec.poll(TaskRef::Scope(scope)) {
            Polled::Panicked(message) => {
                Err(Fault::Panicked(format!("failing {scope}: {message}")))
            }
            _ => Ok(Ok(Answer::Done)),
        }
    }

    fn cancel_scope(&mut self, scope: ScopeId) -> Result<Reply, Fault> {
        if let Some(task) = self.scope(scope)?.nested.as_ref() {
            task.cancel();
            return Ok(Ok(Answer::Done));
        }
        self.exec
            .cancel(TaskRef::Scope(scope))
            .map_err(|m| Fault::Panicked(format!("dropping {scope}: {m}")))?;
        Ok(Ok(Answer::Done))
    }

    /// FAIL-2: the subscriber task panics where it is. Its task is dropped
    /// (as the executor drops a task whose poll panicked), and the panic
    /// unwinds through what it held: first its subscription and the
    /// receive in flight, then its cleanup guard, which sends `send` from
    /// the subscription's scope. The panic stops here, as a task handle
    /// nobody awaits would keep it; `subscriber_failed` reports the
    /// cleanup send's outcome.
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
            let mut slot = lock(&slot);
            (slot.take(), slot.scope)
        };
        let handle = match scope {
            Some(s) => Some(self.scope(s)?.handle.clone()),
            None => None,
        };
        let sent = Rc::new(RefCell::new(None));
        let cleanup = CleanupSend {
            send,
            scope: handle,
            sent: sent.clone(),
        };
        let unwound = catch_unwind(AssertUnwindSafe(move || {
            let _cleanup = cleanup;
            let _held = held;
            std::panic::resume_unwind(Box::new(SubscriberFailure))
        }));
        match unwound {
            Err(panic) if panic.is::<SubscriberFailure>() => {}
            Err(other) => std::panic::resume_unwind(other),
            Ok(()) => unreachable!("the subscriber's failure unwinds"),
        }
        let sent = sent.borrow_mut().take();
        let sent = send
            .zip(sent)
            .map(|(spec, reply)| (spec.event, reply.map(|_| ())));
        push(&self.log, Observation::SubscriberFailed { sub, sent });
        Ok(Ok(Answer::Done))
    }

    /// The task is dropped wherever it waits; the subscription it owned
    /// goes with it.
    fn cancel_subscriber(&mut self, sub: SubId) -> Result<Reply, Fault> {
        if let Some(puller) = self.pullers.remove(&sub) {
            // A shared subscription: its second puller's task goes too.
            let _done = self.cancel_subscriber(puller)?;
        }
        if let Some((task, _)) = self.processors.remove(&sub) {
            // A processor's task: dropped, unpolled, when its scope next
            // runs; its subscription is let go of now (below).
            task.cancel();
        } else {
            self.exec
                .cancel(TaskRef::Sub(sub))
                .map_err(|m| Fault::Panicked(format!("cancelling {sub}: {m}")))?;
        }
        if let Some(slot) = self.subs.remove(&sub) {
            let taken = lock(&slot).take();
            drop(taken);
        }
        Ok(Ok(Answer::Done))
    }
}

/// A worker task: waits to be released, then sends (or not) from its
/// scope's context and reports. Returns the sender that releases it.
fn worker(
    task: TaskId,
    log: Log,
) -> (
    oneshot::Sender<Option<SendSpec>>,
    impl Future<Output = ()> + 'static,
) {
    let (release, released) = oneshot::channel::<Option<SendSpec>>();
    let worker = async move {
        push(&log, Observation::TaskStarted { task });
        // Dropped unreleased (its group was cancelled): nothing to report.
        let Ok(spec) = released.await else {
            return;
        };
        let sent = spec.map(|s| {
            let result = catalogue::send_ambient(s.ty, s.event).map_err(op_error);
            (s.event, result)
        });
        push(&log, Observation::TaskDone { task, sent });
    };
    (release, worker)
}

/// Where the release sender of a worker spawned at a yield point lands, if
/// its scope accepted it.
type Accepted = Rc<RefCell<Option<oneshot::Sender<Option<SendSpec>>>>>;

/// What an interjection did at a yield point: how many observations came
/// before it, and its outcome.
type Fired = Rc<RefCell<Option<(usize, Result<Option<Reply>, Fault>)>>>;

/// A preempting interjection, ready to run at a yield point.
struct Interjected {
    run: Box<dyn FnMut() -> Result<Option<Reply>, Fault>>,
    /// For a spawn: the task, and where its release sender lands if the
    /// scope accepted it.
    release: Option<(TaskId, Accepted)>,
}

fn spawn_error(e: scopebus::SpawnError) -> OpError {
    match e {
        scopebus::SpawnError::ContextMissing => OpError::ContextMissing,
        // An exiting scope refuses new tasks, as a closed bus refuses sends.
        scopebus::SpawnError::ScopeExited => OpError::Closed,
    }
}

impl SubSlot {
    /// Takes the subscription and the receive in flight, for the caller to
    /// drop once it has let go of the slot (a drop runs the bus's code).
    fn take(&mut self) -> (Option<SharedSub>, Option<Pull>) {
        (self.stream.take(), self.pull.take())
    }
}

fn lock(slot: &Arc<Mutex<SubSlot>>) -> MutexGuard<'_, SubSlot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

fn op_error(failure: SendFailure) -> OpError {
    match failure {
        SendFailure::ContextMissing => OpError::ContextMissing,
        SendFailure::Closed => OpError::Closed,
    }
}

impl Implementation for ReferenceImpl {
    fn info(&self) -> ImplInfo {
        ImplInfo {
            name: ReferenceImpl::name(self.mutant),
            language: "rust".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime: Some("rust, the simulator's single-threaded executor".to_owned()),
            capabilities: Capabilities::all(),
            emulates: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        let mutant = self.mutant;
        catch_unwind(AssertUnwindSafe(|| {
            with_mutant(mutant, || self.dispatch(op))
        }))
        .unwrap_or_else(|panic| {
            Err(Fault::Panicked(format!(
                "`{op}`: {}",
                crate::exec::panic_message(panic.as_ref())
            )))
        })
    }

    fn runnable(&self) -> Vec<TaskRef> {
        self.exec.runnable()
    }

    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
        let mutant = self.mutant;
        with_mutant(mutant, || self.poll_task(task))
    }

    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
        if let TaskRef::Sub(sub) = task
            && self.processors.contains_key(&sub)
        {
            // A processor runs inside its scope's task: wake it where its
            // last poll left its waker (a spurious wakeup of that task), or,
            // not yet polled, wake the root task that will poll it.
            let waker = self.subs.get(&sub).and_then(|s| lock(s).waker.clone());
            return Ok(match waker {
                Some(waker) => {
                    waker.wake();
                    true
                }
                None => self.exec.wake(TaskRef::Scope(self.processors[&sub].1)),
            });
        }
        Ok(self.exec.wake(task))
    }

    fn take_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn poll_preempted(
        &mut self,
        task: TaskRef,
        with: &Interjection,
    ) -> Result<Option<Preempted>, Fault> {
        if !self.exec.is_runnable(task) {
            return Ok(None);
        }
        let Interjected { run, release } = self.interjection(with)?;
        let run = Rc::new(RefCell::new(run));
        let start = self.log_len();
        let fired: Fired = Rc::new(RefCell::new(None));
        let hook: YieldHook = {
            let (run, fired, log) = (run.clone(), fired.clone(), self.log.clone());
            Box::new(move |_point| {
                if fired.borrow().is_some() {
                    return;
                }
                let before = log.lock().unwrap_or_else(PoisonError::into_inner).len() - start;
                // The hook is taken out while it runs: a poll inside it
                // reaches no further interjection.
                let result = as_another_thread(|| (run.borrow_mut())());
                *fired.borrow_mut() = Some((before, result));
            })
        };
        let mutant = self.mutant;
        let polled = with_mutant(mutant, || {
            let previous = set_yield_hook(Some(hook));
            let polled = self.poll_task(task);
            set_yield_hook(previous);
            polled
        });
        polled?;
        let taken = fired.borrow_mut().take();
        let (observations_before, reply, at_yield_point) = match taken {
            Some((before, reply)) => (before, reply?, true),
            None => {
                let before = self.log_len() - start;
                let reply = with_mutant(mutant, || (run.borrow_mut())())?;
                (before, reply, false)
            }
        };
        if let Some((id, accepted)) = release
            && let Some(sender) = accepted.borrow_mut().take()
        {
            self.workers.insert(id, sender);
        }
        Ok(Some(Preempted {
            reply,
            observations_before,
            at_yield_point,
        }))
    }

    fn migrate(&mut self, task: TaskRef) -> Result<bool, Fault> {
        // A processor runs inside its root scope's task: that task moves.
        let task = match task {
            TaskRef::Sub(sub) => self
                .processors
                .get(&sub)
                .map_or(task, |(_, root)| TaskRef::Scope(*root)),
            other => other,
        };
        Ok(task != TaskRef::Any && self.exec.migrate(task))
    }
}

impl Drop for ReferenceImpl {
    fn drop(&mut self) {
        // Tear down with the mutant still in force, so that destructors take
        // the same (possibly broken) paths as during the run.
        let mutant = self.mutant;
        let exec = std::mem::take(&mut self.exec);
        let subs = std::mem::take(&mut self.subs);
        let scopes = std::mem::take(&mut self.scopes);
        let workers = std::mem::take(&mut self.workers);
        let processors = std::mem::take(&mut self.processors);
        let _ = catch_unwind(AssertUnwindSafe(|| {
            with_mutant(mutant, move || {
                drop(subs);
                drop(scopes);
                drop(workers);
                drop(processors);
                exec.clear();
            })
        }));
        scopebus::mutants::reset_thread();
    }
}

/// A scope's body in the reference's runs: it waits until the workload
/// closes the scope (then reports `scope_closing` and returns), or makes it
/// fail (FAIL-1): a Rust body fails by panicking, unwound without the
/// panic hook, so that a failure the workload asked for prints nothing.
async fn scope_body(id: ScopeId, log: Log, closed: oneshot::Receiver<bool>) {
    if closed.await == Ok(true) {
        std::panic::resume_unwind(Box::new(BodyFailure(id)));
    }
    push(&log, Observation::ScopeClosing { scope: id });
}

/// Runs a scope future and reports how it ended: `scope_exited`,
/// `scope_failed` for its body's failure (after the scope future was
/// dropped: its bus closed, its tasks cancelled), or, if it is dropped
/// unfinished, even before its first poll, `scope_cancelled` (the
/// [`ExitGuard`] is made at once). Any other panic goes on.
fn reported<B: Future<Output = ()>>(
    id: ScopeId,
    log: Log,
    future: scopebus::ScopeFuture<B>,
) -> impl Future<Output = ()> {
    let guard = ExitGuard {
        scope: id,
        log,
        exited: false,
    };
    async move {
        let mut guard = guard;
        let outcome = AssertUnwindSafe(future).catch_unwind().await;
        guard.exited = true;
        match outcome {
            Ok(()) => push(&guard.log, Observation::ScopeExited { scope: id }),
            Err(panic) => match panic.downcast::<BodyFailure>() {
                Ok(failure) => push(&guard.log, failure.observation(true)),
                Err(other) => {
                    guard.exited = false;
                    std::panic::resume_unwind(other)
                }
            },
        }
    }
}

/// The panic a subscriber task unwinds with when the workload makes it
/// fail (FAIL-2).
struct SubscriberFailure;

/// A failing subscriber's cleanup: on drop (during the unwind), sends its
/// event from the subscription's scope and keeps the outcome.
struct CleanupSend {
    send: Option<SendSpec>,
    scope: Option<Scope>,
    sent: Rc<RefCell<Option<Reply>>>,
}

impl Drop for CleanupSend {
    fn drop(&mut self) {
        let (Some(spec), Some(scope)) = (self.send, self.scope.as_ref()) else {
            return;
        };
        let sent = scope.enter(|| catalogue::send_ambient(spec.ty, spec.event));
        *self.sent.borrow_mut() = Some(sent.map(|()| Answer::Done).map_err(op_error));
    }
}

/// The panic a scope's body unwinds with when the workload makes it fail.
struct BodyFailure(ScopeId);

impl BodyFailure {
    fn observation(&self, own: bool) -> Observation {
        Observation::ScopeFailed {
            scope: self.0,
            error: format!("BodyFailure: {}'s body failed", self.0),
            own,
        }
    }
}

/// Reports a scope's cancellation if its future is dropped before it exits.
struct ExitGuard {
    scope: ScopeId,
    log: Log,
    exited: bool,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if !self.exited {
            push(&self.log, Observation::ScopeCancelled { scope: self.scope });
        }
    }
}

/// A subscriber task: pulls one event per poll while it has credit, like a
/// processor that awaits something between events.
struct Subscriber {
    sub: SubId,
    slot: Arc<Mutex<SubSlot>>,
    log: Log,
}

impl Future for Subscriber {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut guard = lock(&self.slot);
        let slot = &mut *guard;
        let Some(stream) = slot.stream.as_ref() else {
            // Its subscription was dropped: the task ends.
            return Poll::Ready(());
        };
        if slot.credits == 0 {
            slot.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // A new receive is the only time the subscription is cloned.
        let pull = slot.pull.get_or_insert_with(|| stream.clone().recv());
        // An armed probe rides on the waker the receive registers.
        let polled = match slot.probe.take().filter(|p| !p.fired()) {
            Some(probe) => {
                slot.probe = Some(probe.clone());
                poll_hooked(pull.as_mut(), cx, probe)
            }
            None => pull.as_mut().poll(cx),
        };
        match polled {
            Poll::Ready(Some(event)) => {
                slot.pull = None;
                slot.credits -= 1;
                push(
                    &self.log,
                    Observation::Received {
                        sub: self.sub,
                        event,
                    },
                );
                // Yield between events, so the scheduler can interleave.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                let taken = slot.take();
                drop(guard);
                drop(taken);
                push(&self.log, Observation::Ended { sub: self.sub });
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A processor's task (PROC-1): a [`Subscriber`] that runs in a scope's
/// task group. Dropped (its group cancelled, or the task cancelled), it
/// lets go of its subscription at once, as a cancelled task's does.
struct Processor(Subscriber);

impl Future for Processor {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Its credit never runs out, so the slot's waker is free to keep
        // the task's, for a spurious wakeup (`wake`).
        lock(&self.0.slot).waker = Some(cx.waker().clone());
        Pin::new(&mut self.0).poll(cx)
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        // Taken under the slot's lock, dropped after it (a drop runs the
        // bus's code).
        let taken = lock(&self.0.slot).take();
        drop(taken);
    }
}
