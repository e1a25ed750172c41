//! A single-threaded executor that polls exactly the task it is told to.
//!
//! It has no policy of its own: the harness decides which runnable task to
//! poll next (from the seeded [`Scheduler`](crate::schedule::Scheduler), or a
//! trace), so every interleaving is chosen, recorded and replayable. Tasks are
//! keyed by a stable name ([`TaskRef`]), and the set of runnable tasks is kept
//! sorted, so the order in which an implementation happens to call wakers
//! never leaks into the schedule.

use crate::op::TaskRef;
use futures::task::{ArcWake, waker};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

struct Slot {
    future: LocalTask,
    waker: Waker,
}

#[derive(Default)]
struct Runnable(Mutex<BTreeSet<TaskRef>>);

impl Runnable {
    fn insert(&self, task: TaskRef) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(task);
    }
    fn remove(&self, task: TaskRef) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&task)
    }
    fn snapshot(&self) -> Vec<TaskRef> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

struct TaskWaker {
    task: TaskRef,
    runnable: Arc<Runnable>,
}

impl ArcWake for TaskWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.runnable.insert(arc_self.task);
    }
}

/// What [`Executor::poll`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Polled {
    /// The task was not runnable (or does not exist): nothing happened.
    Skipped,
    /// The task ran and is waiting again.
    Pending,
    /// The task ran to completion and was removed.
    Finished,
    /// The task panicked (message); it was removed.
    Panicked(String),
}

/// The executor. See the module documentation.
#[derive(Default)]
pub struct Executor {
    tasks: BTreeMap<TaskRef, Slot>,
    runnable: Arc<Runnable>,
}

impl Executor {
    /// An executor with no tasks.
    pub fn new() -> Executor {
        Executor::default()
    }

    /// Adds a task under `name`, runnable at once. A task already under that
    /// name is dropped first.
    pub fn spawn(&mut self, name: TaskRef, future: impl Future<Output = ()> + 'static) {
        let waker = waker(Arc::new(TaskWaker {
            task: name,
            runnable: self.runnable.clone(),
        }));
        self.tasks.insert(
            name,
            Slot {
                future: Box::pin(future),
                waker,
            },
        );
        self.runnable.insert(name);
    }

    /// The tasks that were woken and not polled since, in sorted order.
    pub fn runnable(&self) -> Vec<TaskRef> {
        let mut runnable = self.runnable.snapshot();
        runnable.retain(|t| self.tasks.contains_key(t));
        runnable
    }

    /// Whether a task of that name exists (finished tasks do not).
    pub fn contains(&self, task: TaskRef) -> bool {
        self.tasks.contains_key(&task)
    }

    /// The existing tasks, in sorted order.
    pub fn tasks(&self) -> Vec<TaskRef> {
        self.tasks.keys().copied().collect()
    }

    /// Polls `task` once if it is runnable. Panics of the task are caught and
    /// reported, never propagated.
    pub fn poll(&mut self, task: TaskRef) -> Polled {
        if !self.runnable.remove(task) {
            return Polled::Skipped;
        }
        let Some(slot) = self.tasks.get_mut(&task) else {
            return Polled::Skipped;
        };
        let mut cx = Context::from_waker(&slot.waker);
        let future = &mut slot.future;
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => Polled::Pending,
            Ok(Poll::Ready(())) => {
                self.tasks.remove(&task);
                Polled::Finished
            }
            Err(panic) => {
                self.tasks.remove(&task);
                Polled::Panicked(panic_message(panic.as_ref()))
            }
        }
    }

    /// Marks `task` runnable without any reason: a spurious wakeup. Returns
    /// whether the task exists.
    pub fn wake(&mut self, task: TaskRef) -> bool {
        if self.tasks.contains_key(&task) {
            self.runnable.insert(task);
            true
        } else {
            false
        }
    }

    /// Drops `task`'s future now, wherever it is waiting: cancellation.
    /// Returns the future's destructor's panic message, if it panicked.
    pub fn cancel(&mut self, task: TaskRef) -> Result<bool, String> {
        self.runnable.remove(task);
        match self.tasks.remove(&task) {
            None => Ok(false),
            Some(slot) => catch_unwind(AssertUnwindSafe(move || drop(slot)))
                .map(|()| true)
                .map_err(|p| panic_message(p.as_ref())),
        }
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
