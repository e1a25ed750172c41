//! The runner's time budgets, applied to every wait for an adapter's reply.
//!
//! Shrinking has a time budget, reproduction another, and `--deadline` one
//! for the whole run; a budget is checked between runs, but one reply can
//! take the whole per-request timeout (ten times as long for `settle`). So
//! the budget also bounds each wait: while [`within`] runs, no wait for a
//! reply on this thread lasts past its deadline, and a wait the deadline
//! cut short (not the per-request timeout) ends the run with
//! [`Fault::OutOfTime`](scopebus_sim::iut::Fault::OutOfTime): not a hang,
//! not a verdict; the runner drops such a run.
//!
//! # Invariants
//!
//! - Deadlines nest: the one in force is the earliest set on this thread.
//! - A wait can also be cut by a *stop flag* ([`within_stoppable`]): when
//!   the run stops early (its breaker trips), seeds still in flight are cut
//!   within [`SLICE`] instead of waiting out their timeouts.
//! - A deadline is per thread (each seed, shrink and rerun runs on one
//!   worker thread from start to end), and is restored when [`within`]
//!   returns, even by unwinding.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often a wait with a stop flag looks at it.
pub const SLICE: Duration = Duration::from_millis(50);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static STOP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` as [`within`] does, and with every wait on this thread also
/// cut short once `stop` is set.
pub fn within_stoppable<R>(
    deadline: Option<Instant>,
    stop: &Arc<AtomicBool>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STOP.set(self.0.take());
        }
    }
    let _restore = Restore(STOP.replace(Some(stop.clone())));
    within(deadline, f)
}

/// How a wait for a message ended.
pub enum Waited<T> {
    /// It came.
    Got(T),
    /// The wait's own timeout passed: the other side hung.
    TimedOut,
    /// The deadline in force, or the stop flag, cut the wait short: no
    /// verdict.
    Cut,
    /// The other side is gone.
    Gone,
}

/// Waits for the next message on `rx` for at most `timeout`, cut short by
/// the deadline and the stop flag in force on this thread.
pub fn recv<T>(rx: &Receiver<T>, timeout: Duration) -> Waited<T> {
    let (wait, cut) = limit(timeout);
    let until = Instant::now() + wait;
    let stop = STOP.with_borrow(Clone::clone);
    loop {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Waited::Cut;
        }
        let left = until.saturating_duration_since(Instant::now());
        let slice = match &stop {
            Some(_) => left.min(SLICE),
            None => left,
        };
        match rx.recv_timeout(slice) {
            Ok(message) => return Waited::Got(message),
            Err(RecvTimeoutError::Disconnected) => return Waited::Gone,
            Err(RecvTimeoutError::Timeout) if Instant::now() < until => {}
            Err(RecvTimeoutError::Timeout) if cut => return Waited::Cut,
            Err(RecvTimeoutError::Timeout) => return Waited::TimedOut,
        }
    }
}

/// Runs `f` with every wait for a reply on this thread ending by
/// `deadline` at the latest (`None`: no deadline of its own; an outer one
/// still holds).
pub fn within<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.set(self.0);
        }
    }
    let outer = DEADLINE.get();
    let inner = match (outer, deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    DEADLINE.set(inner);
    let _restore = Restore(outer);
    f()
}

/// How long a wait whose own timeout is `timeout` may last now, and
/// whether it is the deadline (not the timeout) that limits it.
pub fn limit(timeout: Duration) -> (Duration, bool) {
    match DEADLINE.get() {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < timeout {
                (left, true)
            } else {
                (timeout, false)
            }
        }
        None => (timeout, false),
    }
}

/// The time left before the deadline in force on this thread, if one is.
pub fn left() -> Option<Duration> {
    DEADLINE
        .get()
        .map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether `run` was cut short by the runner's budgets: a wait for a reply
/// was cut ([`Fault::OutOfTime`](scopebus_sim::iut::Fault::OutOfTime)), or
/// the deadline passed (or the stop flag was set) before it was judged. Such
/// a run counts for nothing, either way.
pub fn cut_short(run: &scopebus_sim::harness::Run) -> bool {
    passed() || run.failure.as_ref().is_some_and(|f| f.cut)
}

/// Whether the deadline in force on this thread has passed, or its stop
/// flag is set.
pub fn passed() -> bool {
    DEADLINE.get().is_some_and(|d| Instant::now() >= d)
        || STOP.with_borrow(|s| s.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_nest_and_are_restored() {
        let far = Instant::now() + Duration::from_secs(3600);
        let near = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            limit(Duration::from_secs(1)),
            (Duration::from_secs(1), false)
        );
        within(Some(near), || {
            within(Some(far), || {
                let (left, cut) = limit(Duration::from_secs(1));
                assert!(cut && left <= Duration::from_millis(50));
            });
            within(None, || assert!(limit(Duration::from_secs(1)).1));
        });
        assert_eq!(
            limit(Duration::from_secs(1)),
            (Duration::from_secs(1), false)
        );
        assert!(!passed());
    }
}
