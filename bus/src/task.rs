//! Tasks spawned into a scope, and the handles that cancel or await them.

#![forbid(unsafe_code)]

use crate::error::TaskError;
use futures_channel::oneshot;
use futures_util::FutureExt;
use futures_util::future::{AbortHandle, Abortable, Aborted};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A type-erased task, as a scope runs it.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A handle to a task spawned into a scope ([`crate::spawn`],
/// [`crate::Scope::spawn`]).
///
/// Awaiting it gives the task's output, or a [`TaskError`] if the task was
/// cancelled or panicked. Dropping it detaches the task: it keeps running, and
/// its scope still waits for it (TASK-1).
pub struct TaskHandle<T> {
    abort: AbortHandle,
    result: oneshot::Receiver<Result<T, TaskError>>,
}

impl<T> TaskHandle<T> {
    /// Requests cancellation. The task is dropped, without being polled again,
    /// the next time its scope runs; awaiting the handle then gives
    /// [`TaskError::Cancelled`]. Cancelling a finished task does nothing.
    pub fn cancel(&self) {
        self.abort.abort();
    }

    /// Whether [`cancel`](TaskHandle::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.abort.is_aborted()
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.result.poll_unpin(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            // The task was dropped before it finished: its scope was cancelled.
            Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(TaskError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Wraps `future` into a task that catches its panics, can be aborted, and
/// reports its outcome to the returned handle.
pub(crate) fn task<F>(future: F) -> (Task, TaskHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (abort, registration) = AbortHandle::new_pair();
    let guarded = Abortable::new(AssertUnwindSafe(future).catch_unwind(), registration);
    let (sender, result) = oneshot::channel();
    let task = Box::pin(async move {
        let outcome = match guarded.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(TaskError::Panicked(panic_message(panic.as_ref()))),
            Err(Aborted) => Err(TaskError::Cancelled),
        };
        // The handle may have been dropped (detached task): nobody to tell.
        let _ = sender.send(outcome);
    });
    (task, TaskHandle { abort, result })
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
