//! The interface every implementation under test (IUT) offers the harness,
//! whatever its language: apply an op, report what happened, and, if it can,
//! let the harness choose which of its tasks runs next.
//!
//! It lives here, not in the conformance crate, because the simulator, the
//! shrinker and the proptest state machine all drive implementations through
//! it; see ARCHITECTURE.md.

use crate::emulation::Emulated;
use crate::op::{Interjection, Observation, Op, Reply, TaskRef};
use crate::rules::Capabilities;
use std::fmt;

/// Who the implementation is and what it can do (the handshake's content).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImplInfo {
    /// Its name, e.g. `reference` or `mutant:lifo`.
    pub name: String,
    /// Its language, e.g. `rust`.
    pub language: String,
    /// Its version.
    pub version: String,
    /// What it runs on, when the adapter says (e.g. `CPython 3.13.0`,
    /// `Node.js v20.11.1`): the runtime's name and version, apart from the
    /// implementation's own [`version`](ImplInfo::version).
    pub runtime: Option<String>,
    /// What it can do; rules needing anything else are "not tested".
    pub capabilities: Capabilities,
    /// The features its adapter provides itself rather than the library
    /// (PROTOCOL.md, "Emulated features"), in [`Emulated::ALL`] order: the
    /// rules they touch judge the adapter's code there.
    pub emulates: Vec<Emulated>,
}

/// The implementation itself broke, rather than answering: no verdict on the
/// op's semantics can be drawn from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// It panicked (Rust) or raised where it must not.
    Panicked(String),
    /// `settle` found it still runnable after this many polls: a busy loop.
    DidNotSettle {
        /// Polls made before giving up.
        polls: u64,
    },
    /// It did not answer in time.
    Hung {
        /// What it was asked.
        request: String,
        /// How long the runner waited, in milliseconds.
        waited_ms: u64,
    },
    /// Its process ended.
    Crashed {
        /// Its exit status, as text.
        status: String,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// It broke the wire protocol.
    Protocol(String),
    /// The run's time budget ran out while the runner waited for a reply to
    /// `request` (a shrink budget, a `--deadline`): the run was cut short,
    /// and says nothing about the implementation.
    OutOfTime {
        /// What it was asked.
        request: String,
    },
    /// Something failed before this entry's own request, while the runner
    /// was doing something else (listing runnable tasks, resetting the
    /// adapter); the entry only found the implementation broken.
    Earlier {
        /// What the runner was doing.
        during: String,
        /// What went wrong then.
        fault: Box<Fault>,
    },
}

impl Fault {
    /// Whether the fault says the implementation could not be driven at all
    /// (a protocol error, now or earlier): nothing can be judged.
    pub fn is_protocol(&self) -> bool {
        match self {
            Fault::Protocol(_) => true,
            Fault::Earlier { fault, .. } => fault.is_protocol(),
            _ => false,
        }
    }

    /// Whether the run was cut short by the runner's own time budget
    /// ([`Fault::OutOfTime`], now or earlier): not a verdict either way.
    pub fn is_cut(&self) -> bool {
        match self {
            Fault::OutOfTime { .. } => true,
            Fault::Earlier { fault, .. } => fault.is_cut(),
            _ => false,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Panicked(m) => write!(f, "the implementation panicked: {m}"),
            Fault::DidNotSettle { polls } => write!(
                f,
                "the implementation was still runnable after {polls} polls: it never settles (busy loop or wake storm)"
            ),
            Fault::Hung { request, waited_ms } => {
                write!(f, "no reply to {request} within {waited_ms} ms")
            }
            Fault::Crashed {
                status,
                stderr_tail,
            } => write!(
                f,
                "the implementation exited ({status}); stderr ends with:\n{stderr_tail}"
            ),
            Fault::Protocol(m) => write!(f, "protocol error: {m}"),
            Fault::OutOfTime { request } => write!(
                f,
                "the run's time budget ran out while waiting for the reply to {request} (not a verdict)"
            ),
            Fault::Earlier { during, fault } => {
                write!(f, "while {during} (before this entry): {fault}")
            }
        }
    }
}

/// An implementation under test, driven op by op.
pub trait Implementation {
    /// Who it is and what it can do.
    fn info(&self) -> ImplInfo;

    /// Applies one op and answers it. Ops are always valid in the model's
    /// view (handles exist); the answer may still be an error the model
    /// expects (e.g. `ContextMissing`).
    ///
    /// # Errors
    /// A [`Fault`] when the implementation broke instead of answering.
    fn apply(&mut self, op: &Op) -> Result<Reply, Fault>;

    /// Tasks that would make progress if polled, in a stable order. Empty
    /// for implementations that schedule themselves (no `schedule`
    /// capability).
    fn runnable(&self) -> Vec<TaskRef>;

    /// Polls one task (a scheduling step). Returns whether anything ran.
    ///
    /// # Errors
    /// A [`Fault`] if the implementation broke.
    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault>;

    /// Injects a spurious wakeup of `task`. Returns whether it exists.
    ///
    /// # Errors
    /// A [`Fault`] if the implementation broke.
    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault>;

    /// Everything observed since the last call, in order.
    fn take_observations(&mut self) -> Vec<Observation>;

    /// Every request and reply of the current run, one per line, if the
    /// implementation keeps such a transcript (out-of-process adapters do).
    fn transcript(&self) -> Option<Vec<String>> {
        None
    }

    /// Polls `task` and runs `with` (a `send` or `spawn` op, or a poll of
    /// another task) at the first yield point inside that poll (or right
    /// after the poll if it reaches none), as another thread could at that
    /// moment. `None` if `task` is not runnable (nothing ran). Only for
    /// implementations with the `preempt` capability.
    ///
    /// # Errors
    /// A [`Fault`] if the implementation broke.
    fn poll_preempted(
        &mut self,
        task: TaskRef,
        with: &Interjection,
    ) -> Result<Option<Preempted>, Fault> {
        let _ = (task, with);
        Err(Fault::Protocol(
            "the implementation does not implement `Implementation::poll_preempted`, \
             which the `preempt` capability needs"
                .to_owned(),
        ))
    }

    /// Moves `task` to a new waker, as when its future is moved into
    /// another task: from now on it is polled with a new waker, wakeups
    /// through the old ones are lost, and it is runnable. Returns whether
    /// the task exists. Only for implementations with the `migrate`
    /// capability.
    ///
    /// # Errors
    /// A [`Fault`] if the implementation broke.
    fn migrate(&mut self, task: TaskRef) -> Result<bool, Fault> {
        let _ = task;
        Err(Fault::Protocol(
            "the implementation does not implement `Implementation::migrate`, \
             which the `migrate` capability needs"
                .to_owned(),
        ))
    }
}

/// What [`Implementation::poll_preempted`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preempted {
    /// The reply to the interjected op; `None` when it was a poll.
    pub reply: Option<Reply>,
    /// How many of the observations of this poll came before the op ran.
    pub observations_before: usize,
    /// Whether the op ran at a yield point (`false`: after the poll).
    pub at_yield_point: bool,
}

/// Every method forwarded to the implementation behind a pointer, so that
/// `&mut I` and `Box<I>` (and `Box<dyn Implementation>`) are
/// implementations too; one list, so the two cannot drift apart.
macro_rules! forward_implementation {
    ($($pointer:ty),+) => {$(
        impl<T: Implementation + ?Sized> Implementation for $pointer {
            fn info(&self) -> ImplInfo {
                (**self).info()
            }
            fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
                (**self).apply(op)
            }
            fn runnable(&self) -> Vec<TaskRef> {
                (**self).runnable()
            }
            fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
                (**self).poll(task)
            }
            fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
                (**self).wake(task)
            }
            fn take_observations(&mut self) -> Vec<Observation> {
                (**self).take_observations()
            }
            fn transcript(&self) -> Option<Vec<String>> {
                (**self).transcript()
            }
            fn poll_preempted(
                &mut self,
                task: TaskRef,
                with: &Interjection,
            ) -> Result<Option<Preempted>, Fault> {
                (**self).poll_preempted(task, with)
            }
            fn migrate(&mut self, task: TaskRef) -> Result<bool, Fault> {
                (**self).migrate(task)
            }
        }
    )+};
}

forward_implementation!(&mut T, Box<T>);
