//! REENTER-1's probe for plain buses: a waker that, when the bus calls back
//! into it (wakes it, or lets go of it), has another thread use the same
//! bus, and reports whether that returned. The same protocol as the
//! reference's (`scopebus_sim::probe`), for any [`super::PlainBus`].
//!
//! Invariants:
//! - a probe fires at most once, at the first hooked waker the bus wakes
//!   or drops, and then reports exactly one `reentered`;
//! - only the bus's own calls fire it: a hooked waker the bus kept no
//!   clone of is disarmed before the subscriber drops it;
//! - the action runs on a thread of its own while the callback waits (for
//!   its start, at most [`PROBE_TIMEOUT`]; once started, at most
//!   [`BLOCKED_AFTER`]), so a bus that calls back while holding a lock the
//!   action needs blocks that thread, never the run; the blocked action
//!   finishes once the bus lets go, and touches nothing the run observes.

use super::tasks::{Log, push};
use scopebus_sim::exec::panic_message;
use scopebus_sim::op::{Observation, ReentryAction, ReentryOutcome, ReentryPoint, SubId};
use scopebus_sim::probe::{BLOCKED_AFTER, PROBE_TIMEOUT};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};

/// What a probe does on the bus (a closure holding a handle of it).
pub(super) type Action = Arc<dyn Fn() + Send + Sync>;

/// A probe armed on the task of one subscription.
pub(super) struct Probe {
    sub: SubId,
    action: ReentryAction,
    run: Action,
    log: Log,
    fired: AtomicBool,
}

impl Probe {
    /// A probe reporting as `sub`'s, that runs `run` (which does `action`).
    pub(super) fn new(sub: SubId, action: ReentryAction, run: Action, log: Log) -> Arc<Probe> {
        Arc::new(Probe {
            sub,
            action,
            run,
            log,
            fired: AtomicBool::new(false),
        })
    }

    /// Whether it has fired (or was disarmed).
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Disarms it without a report, if it has not fired.
    pub(super) fn disarm(&self) {
        self.fired.store(true, Ordering::Release);
    }

    /// Runs the action from inside the bus's callback `during`, once.
    fn fire(&self, during: ReentryPoint) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        let (outcome, detail) = match run_elsewhere(self.run.clone()) {
            Ok(()) => (ReentryOutcome::Returned, None),
            Err((outcome, detail)) => (outcome, Some(detail)),
        };
        push(
            &self.log,
            Observation::Reentered {
                sub: self.sub,
                action: self.action,
                during,
                outcome,
                detail,
            },
        );
    }
}

/// Runs `action` on a thread of its own and waits: for its start, then
/// [`BLOCKED_AFTER`] for its return.
fn run_elsewhere(action: Action) -> Result<(), (ReentryOutcome, String)> {
    let (done, finished) = mpsc::channel();
    let started = done.clone();
    let spawned = std::thread::Builder::new()
        .name("typeid-probe".to_owned())
        .spawn(move || {
            let _ = started.send(None);
            let outcome = catch_unwind(AssertUnwindSafe(|| action())).map_err(|p| {
                let message = panic_message(p.as_ref());
                (ReentryOutcome::Failed, format!("panicked: {message}"))
            });
            let _ = done.send(Some(outcome));
        });
    if spawned.is_err() {
        let why = "could not be run: no thread could be started";
        return Err((ReentryOutcome::Failed, why.to_owned()));
    }
    if finished.recv_timeout(PROBE_TIMEOUT).is_err() {
        let late = format!("the probe's thread did not start within {PROBE_TIMEOUT:?}");
        return Err((ReentryOutcome::Failed, late));
    }
    match finished.recv_timeout(BLOCKED_AFTER) {
        Ok(Some(outcome)) => outcome,
        Ok(None) | Err(_) => Err((
            ReentryOutcome::Blocked,
            format!("no return within {BLOCKED_AFTER:?} of starting"),
        )),
    }
}

/// A task's waker with a probe on it; live while the bus may hold it.
struct Hooked {
    inner: Waker,
    probe: Arc<Probe>,
    live: AtomicBool,
}

impl Wake for Hooked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.live.load(Ordering::Acquire) {
            self.probe.fire(ReentryPoint::Wake);
        }
        self.inner.wake_by_ref();
    }
}

impl Drop for Hooked {
    fn drop(&mut self) {
        if *self.live.get_mut() {
            self.probe.fire(ReentryPoint::Drop);
        }
    }
}

/// Polls `future` with a fresh waker that wraps `cx`'s and carries
/// `probe`; if the bus kept no clone of it, it is disarmed before it is
/// dropped here.
pub(super) fn poll_hooked<F: Future + ?Sized>(
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
    probe: Arc<Probe>,
) -> Poll<F::Output> {
    let hooked = Arc::new(Hooked {
        inner: cx.waker().clone(),
        probe,
        live: AtomicBool::new(true),
    });
    let waker = Waker::from(hooked.clone());
    let polled = future.poll(&mut Context::from_waker(&waker));
    drop(waker);
    if Arc::strong_count(&hooked) == 1 {
        hooked.live.store(false, Ordering::Release);
    }
    polled
}
