//! A single-threaded executor that polls exactly the task it is told to.
//!
//! It has no policy of its own: the harness decides which runnable task to
//! poll next (from the seeded [`Scheduler`](crate::schedule::Scheduler), or a
//! trace), so every interleaving is chosen, recorded and replayable. Tasks are
//! keyed by a stable name ([`TaskRef`]), and the set of runnable tasks is kept
//! sorted, so the order in which an implementation happens to call wakers
//! never leaks into the schedule.
//!
//! Two things real executors do are modelled on purpose:
//! - a task may be polled *while another task's poll is in progress* (the
//!   executor is a cheap handle with interior state), which is how the
//!   simulator runs another task at a yield point, as a second thread would;
//! - a task may *migrate*: from then on it is polled with a new waker, and
//!   wakeups through its old wakers are lost, as when a future is moved into
//!   another task. A bus that does not refresh a registered waker is caught
//!   this way.

use crate::op::TaskRef;
use futures::task::{ArcWake, waker};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

struct Slot {
    /// `None` while the task is being polled.
    future: Option<LocalTask>,
    waker: Waker,
}

/// Which tasks are runnable, and which waker generation of each is current.
#[derive(Default)]
struct Wakeups {
    runnable: BTreeSet<TaskRef>,
    generation: BTreeMap<TaskRef, u64>,
}

#[derive(Default)]
struct Shared(Mutex<Wakeups>);

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Wakeups) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct TaskWaker {
    task: TaskRef,
    generation: u64,
    shared: Arc<Shared>,
}

impl ArcWake for TaskWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.shared.with(|w| {
            // A waker of a generation the task has left behind is lost.
            if w.generation.get(&arc_self.task) == Some(&arc_self.generation) {
                w.runnable.insert(arc_self.task);
            }
        });
    }
}

/// What [`Executor::poll`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Polled {
    /// The task was not runnable (or does not exist, or is being polled
    /// already): nothing happened.
    Skipped,
    /// The task ran and is waiting again.
    Pending,
    /// The task ran to completion and was removed.
    Finished,
    /// The task panicked (message); it was removed.
    Panicked(String),
}

#[derive(Default)]
struct Inner {
    tasks: RefCell<BTreeMap<TaskRef, Slot>>,
    shared: Arc<Shared>,
}

/// The executor: a cheap handle; clones share the same tasks. See the module
/// documentation.
#[derive(Clone, Default)]
pub struct Executor {
    inner: Rc<Inner>,
}

impl Executor {
    /// An executor with no tasks.
    pub fn new() -> Executor {
        Executor::default()
    }

    fn waker_for(&self, task: TaskRef) -> Waker {
        let generation = self.inner.shared.with(|w| {
            let g = w.generation.entry(task).or_insert(0);
            *g += 1;
            *g
        });
        waker(Arc::new(TaskWaker {
            task,
            generation,
            shared: self.inner.shared.clone(),
        }))
    }

    /// Adds a task under `name`, runnable at once. A task already under that
    /// name is dropped first.
    pub fn spawn(&self, name: TaskRef, future: impl Future<Output = ()> + 'static) {
        let waker = self.waker_for(name);
        let old = self.inner.tasks.borrow_mut().insert(
            name,
            Slot {
                future: Some(Box::pin(future)),
                waker,
            },
        );
        drop(old);
        self.inner.shared.with(|w| w.runnable.insert(name));
    }

    /// The tasks that were woken and not polled since, in sorted order.
    pub fn runnable(&self) -> Vec<TaskRef> {
        let runnable: Vec<TaskRef> = self
            .inner
            .shared
            .with(|w| w.runnable.iter().copied().collect());
        let tasks = self.inner.tasks.borrow();
        runnable
            .into_iter()
            .filter(|t| tasks.get(t).is_some_and(|s| s.future.is_some()))
            .collect()
    }

    /// The first of [`runnable`](Executor::runnable), without listing them
    /// all.
    pub fn first_runnable(&self) -> Option<TaskRef> {
        let tasks = self.inner.tasks.borrow();
        self.inner.shared.with(|w| {
            w.runnable
                .iter()
                .copied()
                .find(|t| tasks.get(t).is_some_and(|s| s.future.is_some()))
        })
    }

    /// Whether `task` is runnable now.
    pub fn is_runnable(&self, task: TaskRef) -> bool {
        let exists = self
            .inner
            .tasks
            .borrow()
            .get(&task)
            .is_some_and(|s| s.future.is_some());
        exists && self.inner.shared.with(|w| w.runnable.contains(&task))
    }

    /// How many tasks exist.
    pub fn len(&self) -> usize {
        self.inner.tasks.borrow().len()
    }

    /// Whether no task exists.
    pub fn is_empty(&self) -> bool {
        self.inner.tasks.borrow().is_empty()
    }

    /// Whether a task of that name exists (finished tasks do not).
    pub fn contains(&self, task: TaskRef) -> bool {
        self.inner.tasks.borrow().contains_key(&task)
    }

    /// The existing tasks, in sorted order.
    pub fn tasks(&self) -> Vec<TaskRef> {
        self.inner.tasks.borrow().keys().copied().collect()
    }

    /// Polls `task` once if it is runnable. Panics of the task are caught and
    /// reported, never propagated. May be called from inside another task's
    /// poll (not from inside the same task's).
    pub fn poll(&self, task: TaskRef) -> Polled {
        let taken = {
            let mut tasks = self.inner.tasks.borrow_mut();
            match tasks.get_mut(&task) {
                Some(slot) if slot.future.is_some() => {
                    if !self.inner.shared.with(|w| w.runnable.remove(&task)) {
                        return Polled::Skipped;
                    }
                    slot.future.take().map(|f| (f, slot.waker.clone()))
                }
                _ => None,
            }
        };
        let Some((mut future, waker)) = taken else {
            return Polled::Skipped;
        };
        let mut cx = Context::from_waker(&waker);
        let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        let mut finished = Some(future);
        let polled = match outcome {
            Ok(Poll::Pending) => {
                let mut tasks = self.inner.tasks.borrow_mut();
                if let Some(slot) = tasks.get_mut(&task) {
                    slot.future = finished.take();
                }
                // Else it was cancelled during its own poll: dropped below.
                Polled::Pending
            }
            Ok(Poll::Ready(())) => {
                let slot = self.inner.tasks.borrow_mut().remove(&task);
                drop(slot);
                Polled::Finished
            }
            Err(panic) => {
                let slot = self.inner.tasks.borrow_mut().remove(&task);
                drop(slot);
                Polled::Panicked(panic_message(panic.as_ref()))
            }
        };
        // Futures are dropped outside every borrow: their destructors may
        // use the executor.
        drop(finished);
        polled
    }

    /// Marks `task` runnable without any reason: a spurious wakeup. Returns
    /// whether the task exists.
    pub fn wake(&self, task: TaskRef) -> bool {
        if self.contains(task) {
            self.inner.shared.with(|w| w.runnable.insert(task));
            true
        } else {
            false
        }
    }

    /// Moves `task` to a new waker: wakeups through its old wakers are lost
    /// from now on, and it is runnable (its new owner polls it). Returns
    /// whether the task exists.
    pub fn migrate(&self, task: TaskRef) -> bool {
        if !self.contains(task) {
            return false;
        }
        let waker = self.waker_for(task);
        if let Some(slot) = self.inner.tasks.borrow_mut().get_mut(&task) {
            slot.waker = waker;
        }
        self.inner.shared.with(|w| w.runnable.insert(task));
        true
    }

    /// Drops `task`'s future now, wherever it is waiting: cancellation. (A
    /// task being polled right now is dropped when that poll returns.)
    /// Returns the future's destructor's panic message, if it panicked.
    pub fn cancel(&self, task: TaskRef) -> Result<bool, String> {
        self.inner.shared.with(|w| w.runnable.remove(&task));
        let slot = self.inner.tasks.borrow_mut().remove(&task);
        match slot {
            None => Ok(false),
            Some(slot) => catch_unwind(AssertUnwindSafe(move || drop(slot)))
                .map(|()| true)
                .map_err(|p| panic_message(p.as_ref())),
        }
    }

    /// Drops every task, outside every borrow.
    pub fn clear(&self) {
        let tasks = std::mem::take(&mut *self.inner.tasks.borrow_mut());
        drop(tasks);
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
