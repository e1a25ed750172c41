//! Errors. None of them is ever a panic: every misuse the API allows ends in
//! one of these values.

#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt;

/// No event bus is in reach: an ambient call ([`crate::send`],
/// [`crate::subscribe`], [`crate::spawn`], [`crate::current_bus`]) was made
/// outside every scope (MISSING-1). Haiway raises `ContextMissing` in the
/// same situation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContextMissing;

impl fmt::Display for ContextMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no event bus in reach: this call must run inside a scope \
             (wrap the code in `scopebus::scope(...)`, or enter one with `Scope::enter`)",
        )
    }
}

impl Error for ContextMissing {}

/// A send on a closed bus (CLOSE-2). The event comes back untouched and was
/// delivered to nobody.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Closed<T>(pub T);

impl<T> Closed<T> {
    /// The event that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bus is closed: the event was not delivered")
    }
}

impl<T> Error for Closed<T> {}

/// Why an ambient [`crate::send`] did not send. Either way the event comes
/// back untouched.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendError<T> {
    /// No scope, hence no bus, in reach (MISSING-1).
    ContextMissing(T),
    /// The bus in reach is closed: its scope is exiting (CLOSE-2).
    Closed(T),
}

impl<T> SendError<T> {
    /// The event that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::ContextMissing(t) | SendError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::ContextMissing(_) => f.write_str("ContextMissing(..)"),
            SendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::ContextMissing(_) => fmt::Display::fmt(&ContextMissing, f),
            SendError::Closed(_) => f.write_str("the bus is closed: the event was not delivered"),
        }
    }
}

impl<T> Error for SendError<T> {}

/// A spawn on a scope that has already exited: nothing waits for tasks
/// there any more, so the task was not started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeExited;

impl fmt::Display for ScopeExited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the scope has exited: it no longer accepts tasks")
    }
}

impl Error for ScopeExited {}

/// Why an ambient [`crate::spawn`] did not start its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpawnError {
    /// No scope in reach (MISSING-1).
    ContextMissing,
    /// The scope in reach has already exited.
    ScopeExited,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::ContextMissing => fmt::Display::fmt(&ContextMissing, f),
            SpawnError::ScopeExited => fmt::Display::fmt(&ScopeExited, f),
        }
    }
}

impl Error for SpawnError {}

/// Why a spawned task produced no value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskError {
    /// The task was cancelled, by [`crate::TaskHandle::cancel`] or because its
    /// scope was cancelled or failed (TASK-2).
    Cancelled,
    /// The task panicked; the message, if the panic carried a string. The
    /// panic stays inside the task: its scope and the other tasks go on.
    Panicked(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("the task was cancelled"),
            TaskError::Panicked(message) => write!(f, "the task panicked: {message}"),
        }
    }
}

impl Error for TaskError {}
