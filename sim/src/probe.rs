//! REENTER-1's probe for implementations driven in-process: a waker that,
//! when the bus calls back into it (wakes it, or lets go of it), uses the
//! bus from inside that callback, and reports whether that returned.
//!
//! A [`Probe`] is armed on a subscriber task by `reenter`. While it is
//! armed, the task polls its receive with a [`hooked`](poll_hooked) waker:
//! a fresh one per poll, wrapping the task's own. The first of those the
//! bus wakes or drops fires the probe.
//!
//! # Invariants
//!
//! - A probe fires at most once, whichever hooked waker the bus calls
//!   first; it then reports exactly one `reentered` observation.
//! - Only the bus's own calls fire it: a hooked waker the bus did not keep
//!   (the poll returned without registering it) is disarmed before the
//!   task drops it.
//! - The action runs on a helper thread (the [`Prober`]), while the
//!   callback waits for it: once started, at most [`BLOCKED_AFTER`]. A bus
//!   that calls back
//!   while it holds a lock the action needs blocks the prober, never the
//!   simulator: the callback reports "did not return" and returns, the bus
//!   lets go of its lock, and the prober finishes late; a probe that comes
//!   while the prober is still blocked runs on a thread of its own, so
//!   each blocked probe costs [`BLOCKED_AFTER`], not more. On the same thread
//!   the action would deadlock (std's locks are not re-entrant) and hang
//!   the run.
//! - A probe changes nothing the model can see: it reads statistics, or
//!   subscribes to a [`ProbeEvent`] type, outside the catalogue and new to
//!   the bus (so the bus's write lock is needed), and lets go at once.
//! - The prober is one thread per thread that drives implementations, so
//!   runs on other threads never queue behind a blocked probe; a probe
//!   that blocked finishes as soon as the bus lets go of its lock (the
//!   callback that waited for it has returned by then), before the next
//!   run on that thread can probe. It ends with its thread's queue.

use crate::op::{Observation, ReentryAction, ReentryOutcome, ReentryPoint, SubId};
use scopebus::Bus;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// How long a callback waits for the prober to start its probe's action:
/// only a machine too loaded to schedule the prober takes more than
/// microseconds. Past it the probe is reported failed, not blocked.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a started action may take before it counts as blocked. It is
/// a read of statistics or a subscribe, microseconds when no lock stops
/// it; a bus that blocks it costs this much once per failing run.
pub const BLOCKED_AFTER: Duration = Duration::from_millis(250);

/// The types the `subscribe` action subscribes to: no catalogue type, so no
/// op, observation or statistic of the run ever names them. Each probe of a
/// run takes the next of [`PROBE_TYPES`] of them, so that its subscribe
/// finds no channel of that type on the bus and must add one under the
/// bus's write lock (a type subscribed to before needs only the read lock,
/// which a bus that holds its own read lock would let through).
#[derive(Debug)]
pub struct ProbeEvent<const N: u8>;

/// How many [`ProbeEvent`] types there are: a run that arms more probes
/// than this reuses them, and its later `subscribe` probes may need only
/// the read lock.
pub const PROBE_TYPES: u8 = 64;

macro_rules! subscribe_probe_type {
    ($bus:expr, $n:expr, $($k:literal)*) => {
        match $n % PROBE_TYPES {
            $($k => drop($bus.subscribe::<ProbeEvent<$k>>()),)*
            _ => unreachable!("n % PROBE_TYPES < PROBE_TYPES"),
        }
    };
}

/// Subscribes to the `n`th probe type on `bus` and lets go at once.
fn subscribe_fresh(bus: &Bus, n: u8) {
    subscribe_probe_type!(bus, n,
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59
        60 61 62 63)
}

type Job = Box<dyn FnOnce() + Send>;

/// The helper thread that runs probes' actions (see the module docs).
/// Cheap to clone; started at the first probe.
#[derive(Clone, Default)]
pub struct Prober {
    jobs: Arc<OnceLock<mpsc::Sender<Job>>>,
    /// Set while the prober thread runs a job: if one is still running
    /// when the next comes (it was blocked), the next runs on a thread of
    /// its own rather than queue behind it.
    busy: Arc<AtomicBool>,
}

thread_local! {
    static PROBER: Prober = Prober::default();
}

impl Prober {
    /// The prober of the calling thread: the runner's worker threads each
    /// have their own, so one run's blocked probe never delays another
    /// thread's, and starting it is paid once per thread, not per run.
    pub fn of_this_thread() -> Prober {
        PROBER.with(Prober::clone)
    }

    /// Runs `job` on the prober thread and waits for it, at most
    /// [`PROBE_TIMEOUT`].
    ///
    /// # Errors
    /// What happened instead of a return, and a line for the report:
    /// blocked (started, and no return within [`BLOCKED_AFTER`]), or
    /// failed ("panicked: ...", or the prober did not start within
    /// [`PROBE_TIMEOUT`]).
    fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), (ReentryOutcome, String)> {
        let (done, finished) = mpsc::channel();
        let started = done.clone();
        let busy = self.busy.clone();
        let job: Job = Box::new(move || {
            busy.store(true, Ordering::Release);
            let _ = started.send(None);
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).map_err(|p| {
                    let message = crate::exec::panic_message(p.as_ref());
                    (ReentryOutcome::Failed, format!("panicked: {message}"))
                });
            busy.store(false, Ordering::Release);
            let _ = done.send(Some(outcome));
        });
        let sent = match self.busy.load(Ordering::Acquire) {
            // An earlier probe is still blocked on the prober: this one
            // must not wait behind it.
            true => std::thread::Builder::new()
                .name("scopebus-probe".to_owned())
                .spawn(job)
                .map(drop)
                .map_err(drop),
            false => {
                // `Sender` is `Sync`: the clones of a prober share it as is.
                self.jobs.get_or_init(spawn_prober).send(job).map_err(drop)
            }
        };
        if sent.is_err() {
            let gone = "could not be run: the prober thread is gone";
            return Err((ReentryOutcome::Failed, gone.to_owned()));
        }
        if finished.recv_timeout(PROBE_TIMEOUT).is_err() {
            let late = format!("the prober did not start within {PROBE_TIMEOUT:?}");
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
}

fn spawn_prober() -> mpsc::Sender<Job> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("scopebus-prober".to_owned())
        .spawn(move || {
            for job in queue {
                job();
            }
        });
    // Without a thread the queue's receiver is gone: every probe then
    // reports that it could not be run.
    drop(spawned);
    jobs
}

/// A probe armed on the task of one subscription.
pub struct Probe {
    sub: SubId,
    action: ReentryAction,
    bus: Bus,
    log: Arc<Mutex<Vec<Observation>>>,
    prober: Prober,
    /// Which [`ProbeEvent`] type its `subscribe` takes.
    fresh: u8,
    fired: AtomicBool,
}

impl Probe {
    /// A probe that, when fired, does `action` on `bus` and reports to `log`
    /// as `sub`'s; `fresh` numbers the probe within its run (which
    /// [`ProbeEvent`] type a `subscribe` takes).
    pub fn new(
        sub: SubId,
        action: ReentryAction,
        bus: Bus,
        log: Arc<Mutex<Vec<Observation>>>,
        prober: Prober,
        fresh: u8,
    ) -> Arc<Probe> {
        Arc::new(Probe {
            sub,
            action,
            bus,
            log,
            prober,
            fresh,
            fired: AtomicBool::new(false),
        })
    }

    /// Whether it has fired.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Disarms it without a report (a new `reenter` replaced it), if it
    /// has not fired.
    pub fn disarm(&self) {
        self.fired.store(true, Ordering::Release);
    }

    /// Runs the action from inside the bus's callback `during`, once.
    fn fire(&self, during: ReentryPoint) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        let bus = self.bus.clone();
        let action = self.action;
        let fresh = self.fresh;
        let outcome = self.prober.run(move || match action {
            ReentryAction::Stats => drop(bus.stats()),
            ReentryAction::Subscribe => subscribe_fresh(&bus, fresh),
        });
        let (outcome, detail) = match outcome {
            Ok(()) => (ReentryOutcome::Returned, None),
            Err((outcome, detail)) => (outcome, Some(detail)),
        };
        let observation = Observation::Reentered {
            sub: self.sub,
            action,
            during,
            outcome,
            detail,
        };
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(observation);
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

/// Polls `future` with a waker that wraps `cx`'s and carries `probe`: the
/// bus's wake or drop of it fires the probe. If the bus kept no clone, it
/// is disarmed before it is dropped here.
pub fn poll_hooked<F: Future + ?Sized>(
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
