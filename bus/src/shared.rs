//! Shared subscriptions: one subscription pulled by several tasks, each
//! event going to one of them (SHARE-1), as a work queue's consumers share
//! it.
//!
//! A [`Subscription`] is pulled through `&mut`, so two tasks cannot pull the
//! same one; [`Subscription::share`] turns it into a [`SharedSubscription`],
//! which is `Clone`: every clone pulls the one subscription.
//!
//! # Invariants
//!
//! - **One cursor.** The clones hold one [`Subscription`] behind a mutex;
//!   a pull takes the mutex, polls the subscription and takes what it
//!   yields. So each event of the subscription goes to exactly one pull
//!   (none is received twice, none is skipped), in send order across the
//!   clones (FIFO-1 for the subscription as a whole), and the end reaches
//!   every clone that pulls after it (CLOSE-1).
//! - **No lost wakeup.** The subscription is polled with one waker of its
//!   own, which wakes every pull waiting at that moment: whichever runs
//!   first takes the event, the others look again and wait anew. A pull
//!   that takes an event also wakes the pulls still waiting, since more
//!   events (or the end) may be there for them. The waiting pulls' wakers
//!   sit behind a second mutex, with a count of the wakeups so far: a pull
//!   reads the count before it polls the subscription, and if a wakeup came
//!   while it polled (the count moved by the time it would register), it
//!   wakes itself instead of waiting for a wakeup that has already been.
//! - **Locks.** The subscription's mutex, then the waiting list's; the
//!   subscription's own waker takes only the waiting list's, so a send
//!   that wakes it from inside a pull's poll (on the same thread: the
//!   simulator preempts a poll there; or on another) never waits for the
//!   subscription's mutex. No user code runs under either (REENTER-1): a
//!   pull's waker is cloned before they are taken, and the wakers to wake
//!   or drop are taken out and woken or dropped after they are released.
//! - **Never blocks on another pull.** A pull that finds the subscription
//!   being polled by another (on another thread, or from a yield point
//!   inside that poll, where the simulator runs other tasks) registers its
//!   waker, marks the subscription contended, looks once more, and waits:
//!   the pull that lets go wakes every waiting pull if it took an event,
//!   and the contended ones if it did not.
//! - **Cancel-safe** (CANCEL-2): a pull dropped while it waits leaves at
//!   most its waker behind, which a later wakeup wakes for nothing.

#![forbid(unsafe_code)]

use crate::bus::Event;
use crate::mutants::{self, YieldPoint, planted};
use crate::subscription::Subscription;
use futures_core::Stream;
use futures_core::stream::FusedStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

/// One subscription pulled by several tasks: each clone is a puller, and
/// each event goes to exactly one pull among them (SHARE-1). A
/// `futures_core::Stream` of `Arc<T>`, like [`Subscription`]; it ends
/// (`None`, for every clone that pulls) once the subscription has ended
/// (CLOSE-1). The subscription is dropped, and what it held released
/// (RECLAIM-2), when the last clone is.
pub struct SharedSubscription<T: Event> {
    inner: Arc<Inner<T>>,
}

impl<T: Event> Clone for SharedSubscription<T> {
    fn clone(&self) -> Self {
        SharedSubscription {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<T: Event> {
    state: Mutex<State<T>>,
    waiting: Mutex<Waiting>,
    /// The waker the subscription is polled with: wakes every waiting pull.
    wake_all: Waker,
}

struct State<T: Event> {
    subscription: Subscription<T>,
    /// What the planted bugs keep (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    planted: crate::mutants::shared::Planted<T>,
}

/// The pulls waiting now, how many wakeups there have been, and whether a
/// pull found the subscription busy (another pull polling it) since the
/// last pull let go of it.
#[derive(Default)]
struct Waiting {
    wakers: Vec<Waker>,
    wakeups: u64,
    contended: bool,
}

/// Wakes every pull waiting on a shared subscription.
struct WakeAll<T: Event>(Weak<Inner<T>>);

impl<T: Event> Wake for WakeAll<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(inner) = self.0.upgrade() {
            inner.wake_waiting();
        }
    }
}

impl<T: Event> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The subscription, unless another pull is polling it.
    fn try_lock(&self) -> Option<MutexGuard<'_, State<T>>> {
        match self.state.try_lock() {
            Ok(state) => Some(state),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a wakeup and wakes every pull waiting now (after letting go
    /// of the list).
    fn wake_waiting(&self) {
        let wakers = {
            let mut waiting = self.waiting();
            waiting.wakeups += 1;
            waiting.contended = false;
            std::mem::take(&mut waiting.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<T: Event> Subscription<T> {
    /// Turns this subscription into one that several tasks may pull, each
    /// event going to one of them (SHARE-1); clone the result for each
    /// puller.
    pub fn share(self) -> SharedSubscription<T> {
        planted!(let planted = crate::mutants::shared::Planted::new(self.mutant()););
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<T>>| Inner {
            state: Mutex::new(State {
                subscription: self,
                #[cfg(feature = "mutants")]
                planted,
            }),
            waiting: Mutex::new(Waiting::default()),
            wake_all: Waker::from(Arc::new(WakeAll(weak.clone()))),
        });
        SharedSubscription { inner }
    }
}

impl<T: Event> SharedSubscription<T> {
    /// Waits for the next event of the subscription that no other puller
    /// took; `None` once the subscription ended. Cancel-safe, as
    /// [`Subscription::recv`].
    pub async fn recv(&self) -> Option<Arc<T>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event; see [`SharedSubscription::recv`].
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        let waker = cx.waker().clone();
        let wakeups = self.inner.waiting().wakeups;
        let Some(mut state) = self.inner.try_lock().or_else(|| {
            // Another pull is polling the subscription (on another thread,
            // or inside its poll, from a yield point): wait for it to let
            // go, as an async mutex would, instead of blocking on it; it
            // wakes the pulls that found it busy. Looked at once more after
            // registering, in case it let go in between.
            let mut waiting = self.inner.waiting();
            waiting.contended = true;
            waiting.wakers.push(waker.clone());
            drop(waiting);
            self.inner.try_lock()
        }) else {
            return Poll::Pending;
        };
        planted!(
            if let Some(event) = crate::mutants::shared::take_handout(&mut state.planted) {
                return Poll::Ready(Some(event));
            }
        );
        let mut all = Context::from_waker(&self.inner.wake_all);
        match Pin::new(&mut state.subscription).poll_next(&mut all) {
            Poll::Ready(item) => {
                planted!(crate::mutants::shared::hand_out(&mut state.planted, &item););
                drop(state);
                // More events, or the end, may be there for the others.
                self.inner.wake_waiting();
                drop(waker);
                Poll::Ready(item)
            }
            Poll::Pending => {
                planted!(crate::mutants::shared::waited(&mut state.planted););
                mutants::yield_point(YieldPoint::BeforeSharedWait);
                let mut waiting = self.inner.waiting();
                if std::mem::take(&mut waiting.contended) {
                    // Pulls that found it busy wait for this one to let go:
                    // wake them all, this one with them.
                    waiting.wakeups += 1;
                    waiting.wakers.push(waker);
                    let wakers = std::mem::take(&mut waiting.wakers);
                    drop((waiting, state));
                    wakers.into_iter().for_each(Waker::wake);
                    return Poll::Pending;
                }
                if waiting.wakeups != wakeups {
                    // Woken while it polled: look again at once.
                    drop((waiting, state));
                    waker.wake();
                    return Poll::Pending;
                }
                let unused = match waiting.wakers.iter().any(|w| w.will_wake(&waker)) {
                    true => Some(waker),
                    false => {
                        waiting.wakers.push(waker);
                        None
                    }
                };
                drop((waiting, state));
                drop(unused);
                Poll::Pending
            }
        }
    }
}

impl<T: Event> Stream for SharedSubscription<T> {
    type Item = Arc<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        self.poll_recv(cx)
    }
}

impl<T: Event> FusedStream for SharedSubscription<T> {
    fn is_terminated(&self) -> bool {
        self.inner.lock().subscription.is_terminated()
    }
}
