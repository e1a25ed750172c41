//! Scopes: the ambient context that holds a bus and the tasks spawned in it,
//! as Haiway's `ctx.scope`.
//!
//! A scope is a future ([`ScopeFuture`]) that polls its body and the tasks
//! spawned into it together, and installs itself as the ambient context of
//! the current thread around every poll, the way `tracing::Instrument` does.
//! That makes scopes work on any executor: tokio, `futures::executor`, or the
//! simulator's seeded one.
//!
//! Rules (SPEC.md): a root scope owns a bus (SCOPE-1); a nested scope shares
//! its parent's bus (SCOPE-2) unless it is isolated, which owns a separate one
//! (SCOPE-3); with no scope in reach, ambient calls fail with
//! [`ContextMissing`] (MISSING-1).
//!
//! Tasks go the same way as buses, as in Haiway (the `isolated` parameter's
//! docstring: "When set to True, the scope uses its own TaskGroup and event
//! bus"): a root or isolated scope owns a *task group*; a nested,
//! non-isolated scope shares the task group of its nearest root or isolated
//! ancestor. A task spawned in a nested scope (a nested scope itself is one)
//! still runs in that nested scope's context, but it belongs to the group
//! owner: the owner waits for it at exit (TASK-1) and cancels it when
//! cancelled (TASK-2); the nested scope's own exit or cancellation does
//! neither. So a processor spawned in a nested scope that `async for`s over
//! the shared bus ends when that bus closes, with the owner, instead of
//! holding the nested scope open for ever.
//!
//! At exit a scope first closes the bus it owns (CLOSE-1; first, so that the
//! processors among its tasks, which read that bus until it closes, end:
//! PROC-1), then, if it owns a
//! task group, waits for its tasks (TASK-1); a scope that is dropped early
//! (cancelled) or whose body panics (failed) closes its bus and cancels the
//! tasks of the group it owns (TASK-2).

#![forbid(unsafe_code)]

use crate::bus::{Bus, Event};
use crate::error::{ContextMissing, ScopeExited, SendError, SpawnError};
use crate::mutants::{self, YieldPoint, hook, planted};
use crate::subscription::Subscription;
use crate::task::{Task, TaskHandle, task};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

thread_local! {
    pub(crate) static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

/// A handle to a live (or exited) scope. Cheap to clone; `Send + Sync`.
///
/// Inside a scope's body and its tasks, [`Scope::current`] returns it. From
/// outside, [`Scope::enter`] and [`Scope::in_scope`] run code in its context.
#[derive(Clone)]
pub struct Scope {
    pub(crate) inner: Arc<ScopeInner>,
}

pub(crate) struct ScopeInner {
    id: u64,
    name: Cow<'static, str>,
    bus: Bus,
    owns_bus: bool,
    isolated: bool,
    pub(crate) parent: Option<Scope>,
    /// The owner of the task group this scope's tasks join: `None` if this
    /// scope owns one (a root or isolated scope), else the nearest root or
    /// isolated ancestor.
    group: Option<Scope>,
    /// The planted bug, if any (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) mutant: Option<crate::mutants::Mutant>,
    incoming: Mutex<Incoming>,
    waker: AtomicWaker,
}

/// Tasks spawned since the scope future last ran, and whether it still
/// accepts tasks.
pub(crate) struct Incoming {
    pub(crate) tasks: Vec<Task>,
    pub(crate) open: bool,
}

impl Scope {
    /// The innermost scope the current code runs in, if any.
    pub fn current() -> Option<Scope> {
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// A number that identifies this scope within the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The scope's name, as given to [`ScopeBuilder::new`] (`"scope"` by
    /// default).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The bus in reach in this scope: its own, or its parent's (SCOPE-1..3).
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// Whether this scope owns its bus (a root or isolated scope, SCOPE-1 and
    /// SCOPE-3) and so closes it at exit (CLOSE-1).
    pub fn owns_bus(&self) -> bool {
        self.inner.owns_bus
    }

    /// Whether the scope was opened with `isolated(true)`.
    pub fn is_isolated(&self) -> bool {
        self.inner.isolated
    }

    /// The scope this one was opened in; `None` for a root scope.
    pub fn parent(&self) -> Option<&Scope> {
        self.inner.parent.as_ref()
    }

    /// Runs `f` with this scope as the ambient context, then restores the
    /// previous one (also if `f` panics).
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = enter(self);
        f()
    }

    /// Wraps `future` so that every poll of it runs in this scope's context,
    /// e.g. to hand it to `tokio::spawn`. The future is not tied to the scope:
    /// the scope does not wait for it; use [`Scope::spawn`] for that.
    pub fn in_scope<F: Future>(&self, future: F) -> InScope<F> {
        InScope {
            scope: self.clone(),
            future: Some(Box::pin(future)),
        }
    }

    /// Spawns `future` as a task that runs in this scope's context and
    /// belongs to this scope's task group: its own if it is a root or
    /// isolated scope, else its nearest root or isolated ancestor's. The
    /// group's owner polls it and does not finish exiting before it is done
    /// (TASK-1); cancelling the owner cancels it (TASK-2).
    ///
    /// # Errors
    /// [`ScopeExited`] if the group's owner has already exited.
    pub fn spawn<F>(&self, future: F) -> Result<TaskHandle<F::Output>, ScopeExited>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.group_owner() {
            Some(owner) => {
                let (task, handle) = task(self.in_scope(future));
                owner.push_task(task).map(|()| handle)
            }
            None => {
                let (task, handle) = task(future);
                self.push_task(task).map(|()| handle)
            }
        }
    }

    /// Whether this scope owns a task group (a root or isolated scope): it
    /// waits for, and cancels, the tasks spawned in it and in the nested,
    /// non-isolated scopes within it.
    pub fn owns_task_group(&self) -> bool {
        self.inner.group.is_none()
    }

    /// The scope whose task group this scope's tasks join, if not its own.
    fn group_owner(&self) -> Option<&Scope> {
        let owner = self.inner.group.as_ref()?;
        hook!(
            Some(owner),
            crate::mutants::scope::group_owner(self.inner.mutant, owner)
        )
    }

    pub(crate) fn push_task(&self, task: Task) -> Result<(), ScopeExited> {
        let mut incoming = self.inner.lock_incoming();
        if !incoming.open {
            return Err(ScopeExited);
        }
        incoming.tasks.push(task);
        drop(incoming);
        self.inner.waker.wake();
        Ok(())
    }
}

impl ScopeInner {
    pub(crate) fn lock_incoming(&self) -> MutexGuard<'_, Incoming> {
        self.incoming.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ScopeInner {
    /// Lets go of the chain of parents iteratively, so that dropping the
    /// last handle of a deeply nested scope does not recurse once per level.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(scope) = next {
            next = Arc::into_inner(scope.inner).and_then(|mut inner| inner.parent.take());
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .field("isolated", &self.inner.isolated)
            .field("bus", &self.inner.bus)
            .finish()
    }
}

/// Installs `scope` as the thread's ambient context until the guard drops
/// (also a scope that has exited: its handle keeps its bus, EXIT-1).
fn enter(scope: &Scope) -> EnterGuard {
    planted!(if crate::mutants::scope::forgets_bus(scope) {
        return EnterGuard {
            previous: None,
            leak: false,
        };
    });
    let previous = CURRENT
        .try_with(|c| c.replace(Some(scope.clone())))
        .ok()
        .flatten();
    EnterGuard {
        previous: Some(previous),
        #[cfg(feature = "mutants")]
        leak: crate::mutants::scope::leaks_context(scope),
    }
}

/// Restores the ambient context it holds when dropped.
pub(crate) struct EnterGuard {
    /// The context to restore; `None`: nothing to restore.
    pub(crate) previous: Option<Option<Scope>>,
    /// Restores nothing (`context-leak`; the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) leak: bool,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        planted!(if self.leak {
            return;
        });
        if let Some(previous) = self.previous.take() {
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
        }
    }
}

/// Opens a scope around `body`: nested in the scope the caller runs in,
/// sharing its bus (SCOPE-2), or a root scope with a bus of its own if there
/// is none (SCOPE-1). The scope's parent and bus are fixed here, when
/// `scope` is called, not when the future is first polled.
pub fn scope<F: Future>(body: F) -> ScopeFuture<F> {
    ScopeBuilder::new("scope").run(body)
}

/// Opens an isolated scope around `body`: it owns a new bus that neither its
/// parent nor any other scope sees, and it sees none of theirs (SCOPE-3).
pub fn isolated_scope<F: Future>(body: F) -> ScopeFuture<F> {
    ScopeBuilder::new("scope").isolated(true).run(body)
}

/// Configures a scope before opening it: its name, whether it is isolated, or
/// an explicit bus.
#[derive(Debug, Clone)]
pub struct ScopeBuilder {
    name: Cow<'static, str>,
    isolated: bool,
    bus: Option<Bus>,
}

impl ScopeBuilder {
    /// A builder for a scope called `name` (names are for humans: logs and
    /// `Debug` output).
    pub fn new(name: impl Into<Cow<'static, str>>) -> ScopeBuilder {
        ScopeBuilder {
            name: name.into(),
            isolated: false,
            bus: None,
        }
    }

    /// Whether the scope gets a bus of its own, separate from its parent's in
    /// both directions (SCOPE-3). Default `false`.
    pub fn isolated(mut self, isolated: bool) -> ScopeBuilder {
        self.isolated = isolated;
        self
    }

    /// Runs the scope on `bus`, e.g. one shared with code outside any scope.
    /// The scope does not own that bus, so it does not close it at exit.
    pub fn bus(mut self, bus: Bus) -> ScopeBuilder {
        self.bus = Some(bus);
        self
    }

    /// Opens the scope around `body`. The parent (the caller's scope, if
    /// any) and the bus are fixed now.
    pub fn run<F: Future>(self, body: F) -> ScopeFuture<F> {
        let parent = Scope::current();
        planted!(let mutant = mutants::active(););
        let (bus, owns_bus) = match (self.bus, &parent) {
            (Some(bus), _) => (bus, false),
            (None, None) => (Bus::new(), true),
            (None, Some(parent)) => {
                let own = hook!(
                    self.isolated,
                    crate::mutants::scope::owns_bus(mutant, self.isolated)
                );
                if own {
                    (Bus::new(), true)
                } else {
                    (parent.inner.bus.clone(), false)
                }
            }
        };
        // The task group: its own for a root or isolated scope, else its
        // parent's (which is its parent's own, or the one it joined).
        let group = match &parent {
            Some(p) if !self.isolated => Some(p.inner.group.clone().unwrap_or_else(|| p.clone())),
            _ => None,
        };
        let scope = Scope {
            inner: Arc::new(ScopeInner {
                id: NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed),
                name: self.name,
                bus,
                owns_bus,
                isolated: self.isolated,
                parent,
                group,
                #[cfg(feature = "mutants")]
                mutant,
                incoming: Mutex::new(Incoming {
                    tasks: Vec::new(),
                    open: true,
                }),
                waker: AtomicWaker::new(),
            }),
        };
        ScopeFuture {
            scope,
            body: Some(Box::pin(body)),
            output: None,
            tasks: FuturesUnordered::new(),
            done: false,
            #[cfg(feature = "mutants")]
            planted: Default::default(),
        }
    }
}

/// A running scope: polls its body and its tasks in the scope's context.
///
/// It resolves to the body's output once the body has finished, the bus the
/// scope owns has been closed (CLOSE-1), and every task spawned into the scope
/// has finished (TASK-1). Dropping it before then cancels the scope: its bus
/// is closed and its tasks are dropped (TASK-2). Polling it again after it
/// completed returns `Pending`.
#[must_use = "a scope does nothing unless awaited"]
pub struct ScopeFuture<F: Future> {
    pub(crate) scope: Scope,
    pub(crate) body: Option<Pin<Box<F>>>,
    output: Option<F::Output>,
    pub(crate) tasks: FuturesUnordered<Task>,
    pub(crate) done: bool,
    /// What the planted bugs keep (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) planted: crate::mutants::scope::Planted,
}

// No field is ever pinned in place: the body is boxed, the output is moved
// out by value, and `FuturesUnordered` is `Unpin`.
impl<F: Future> Unpin for ScopeFuture<F> {}

impl<F: Future> ScopeFuture<F> {
    /// The scope this future runs, available before the first poll.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Polls the body (which must be there). A panic unwinds through the
    /// scope, which the caller then drops (FAIL-1: its bus closes, its
    /// tasks are cancelled), except under mutant `FailureWaitsForTasks`.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        planted!(
            if let Some(polled) = crate::mutants::scope::poll_body(self, cx) {
                return polled;
            }
        );
        let body = self.body.as_mut().expect("poll_body with the body gone");
        body.as_mut().poll(cx)
    }

    /// Moves tasks spawned since the last look into the running set; returns
    /// whether there were any.
    fn adopt_incoming(&mut self) -> bool {
        let spawned = std::mem::take(&mut self.scope.inner.lock_incoming().tasks);
        let any = !spawned.is_empty();
        for task in spawned {
            self.tasks.push(task);
        }
        any
    }
}

impl<F: Future> Future for ScopeFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if this.done {
            return Poll::Pending;
        }
        this.scope.inner.waker.register(cx.waker());
        let _entered = enter(&this.scope);

        if this.body.is_some()
            && let Poll::Ready(output) = this.poll_body(cx)
        {
            this.body = None;
            this.output = Some(output);
            // CLOSE-1: exit starts by closing the bus the scope owns, so that
            // subscribers drain what was sent and end.
            if this.scope.inner.owns_bus
                && !hook!(
                    false,
                    crate::mutants::scope::defers_close(this.scope.inner.mutant)
                )
            {
                this.scope.inner.bus.close();
            }
        }

        loop {
            this.adopt_incoming();
            if let Poll::Ready(Some(())) = this.tasks.poll_next_unpin(cx) {
                continue;
            }
            // Empty or all pending: done, unless a task spawned another.
            if !this.adopt_incoming() {
                break;
            }
        }

        planted!(crate::mutants::scope::reraise_deferred_panic(this););
        if this.output.is_some() {
            mutants::yield_point(YieldPoint::BeforeExitCheck);
            let mut incoming = this.scope.inner.lock_incoming();
            // TASK-1: exit completes only when no task is left, including
            // tasks spawned (from elsewhere) since the loop above.
            let (none_running, none_spawned) = (this.tasks.is_empty(), incoming.tasks.is_empty());
            if hook!(
                none_running && none_spawned,
                crate::mutants::scope::exit_ready(
                    this.scope.inner.mutant,
                    none_running,
                    none_spawned
                )
            ) {
                incoming.open = false;
                let abandoned = std::mem::take(&mut incoming.tasks);
                drop(incoming);
                drop(abandoned);
                this.tasks.clear();
                this.done = true;
                planted!(crate::mutants::scope::close_after_tasks(&this.scope););
                if let Some(output) = this.output.take() {
                    return Poll::Ready(output);
                }
            }
        }
        Poll::Pending
    }
}

impl<F: Future> Drop for ScopeFuture<F> {
    /// A scope dropped before it completed was cancelled (or its body
    /// panicked): close the bus it owns, then cancel its tasks (TASK-2).
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Destructors of the body and of the tasks run in this scope's
        // context, as their code did: a guard that sends on drop sends on
        // this scope's (now closed) bus, not on the caller's.
        let _entered = enter(&self.scope);
        if self.scope.inner.owns_bus
            && !hook!(
                false,
                crate::mutants::scope::leaves_bus_open(self.scope.inner.mutant)
            )
        {
            self.scope.inner.bus.close();
        }
        drop(self.body.take());
        planted!(crate::mutants::scope::run_woken_tasks(self););
        let abandoned = {
            let mut incoming = self.scope.inner.lock_incoming();
            incoming.open = false;
            std::mem::take(&mut incoming.tasks)
        };
        let running = std::mem::take(&mut self.tasks);
        planted!(let Some((running, abandoned)) = crate::mutants::scope::hand_orphans_to_parent(&self.scope, running, abandoned) else { return; };);
        drop(abandoned);
        drop(running);
    }
}

impl<F: Future> fmt::Debug for ScopeFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeFuture")
            .field("scope", &self.scope)
            .field("body_done", &self.body.is_none())
            .field("tasks", &self.tasks.len())
            .field("done", &self.done)
            .finish()
    }
}

/// A future that runs in a scope's context at every poll, and is dropped
/// in it; see [`Scope::in_scope`].
#[must_use = "futures do nothing unless polled"]
pub struct InScope<F> {
    scope: Scope,
    /// `None` only while it is being dropped.
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for InScope<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = enter(&this.scope);
        match this.future.as_mut() {
            Some(future) => future.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<F> Drop for InScope<F> {
    /// The future's destructors (a cancelled task's guards, say) run in the
    /// scope's context, as its code did.
    fn drop(&mut self) {
        let _entered = enter(&self.scope);
        drop(self.future.take());
    }
}

impl<F> fmt::Debug for InScope<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InScope")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Sends `event` on the bus in reach, like Haiway's `ctx.send`. Returns how
/// many live subscriptions will receive it (0: nobody subscribed, the event
/// was dropped, DROP-1). Never blocks (SEND-1).
///
/// # Errors
/// [`SendError::ContextMissing`] outside every scope (MISSING-1);
/// [`SendError::Closed`] if the bus in reach was closed because its scope is
/// exiting (CLOSE-2). Both give the event back.
pub fn send<T: Event>(event: T) -> Result<usize, SendError<T>> {
    match Scope::current() {
        None => Err(SendError::ContextMissing(event)),
        Some(scope) => scope
            .inner
            .bus
            .send(event)
            .map_err(|closed| SendError::Closed(closed.0)),
    }
}

/// Subscribes to events of exactly type `T` sent on the bus in reach from now
/// on, like Haiway's `ctx.subscribe` (VIS-1). If the bus was closed, the
/// subscription is already ended (CLOSE-3).
///
/// # Errors
/// [`ContextMissing`] outside every scope (MISSING-1).
pub fn subscribe<T: Event>() -> Result<Subscription<T>, ContextMissing> {
    Scope::current()
        .map(|scope| scope.inner.bus.subscribe::<T>())
        .ok_or(ContextMissing)
}

/// Spawns `future` as a task of the scope in reach, like Haiway's `ctx.spawn`:
/// it runs in that scope's context and joins its task group (see
/// [`Scope::spawn`]), whose owner waits for it at exit (TASK-1) and cancels
/// it if cancelled (TASK-2).
///
/// # Errors
/// [`SpawnError::ContextMissing`] outside every scope;
/// [`SpawnError::ScopeExited`] if the task group's owner has already exited.
pub fn spawn<F>(future: F) -> Result<TaskHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let scope = Scope::current().ok_or(SpawnError::ContextMissing)?;
    scope
        .spawn(future)
        .map_err(|ScopeExited| SpawnError::ScopeExited)
}

/// The bus in reach.
///
/// # Errors
/// [`ContextMissing`] outside every scope (MISSING-1).
pub fn current_bus() -> Result<Bus, ContextMissing> {
    Scope::current()
        .map(|scope| scope.inner.bus.clone())
        .ok_or(ContextMissing)
}
