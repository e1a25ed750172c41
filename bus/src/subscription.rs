//! A subscription: a cursor into its channel's chain, and the stream that
//! reads it.
//!
//! # Invariants
//!
//! - A subscription is live (counted in its channel's `subscriptions`, and
//!   so in every later send's slot) exactly while `live` is `Some`. It stops
//!   being live once, by ending (the bus closed and everything before the
//!   close was received, CLOSE-1) or by being dropped; either way it skips
//!   the slots it did not receive, so that it holds nothing (RECLAIM-2).
//! - No lost wakeup (WAKE-1): a poll that finds nothing looks again under
//!   the channel's lock before registering its waker there. Sends fill a
//!   slot and take the waiter list under that same lock, so a send either
//!   came before the look under the lock (which then finds its event) or
//!   after the registration (and wakes it). Close sets `closed` and takes
//!   the list under the lock in the same way.
//! - A subscription's waker is registered at most once per generation of
//!   the waiter list (polled again, it refreshes its entry), and it leaves
//!   the list when it ends or is dropped.
//! - No user code runs under the channel's lock (REENTER-1): the waker is
//!   cloned before it, and left-over wakers and skipped events are dropped
//!   after it.

#![forbid(unsafe_code)]

use crate::bus::Event;
use crate::chain::{Cursor, MAX_SUBSCRIPTIONS};
use crate::channel::Channel;
#[cfg(feature = "mutants")]
use crate::mutants::Mutant;
use crate::mutants::{self, YieldPoint, hook, planted};
use crate::waiters::Ticket;
use futures_core::{FusedStream, Stream};
use std::any::type_name;
use std::fmt;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// What [`Subscription::try_recv`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryRecv<T> {
    /// The next event.
    Event(Arc<T>),
    /// Nothing yet; the subscription is still live.
    Empty,
    /// The bus was closed and everything sent before the close was received;
    /// nothing more will come (CLOSE-1).
    Ended,
}

/// A stream of the events of exactly type `T` sent on one bus after the
/// subscription was created (VIS-1), in send order (FIFO-1).
///
/// It is a [`futures_core::Stream`] of `Arc<T>`: every subscription receives
/// the same `Arc`, no event is copied. It ends (`None`) once its bus is closed
/// and every event sent before the close was received (CLOSE-1).
///
/// Dropping a subscription, at any time, even while a task waits on it and
/// even if it was never polled, releases every event only it still needed
/// (RECLAIM-2) and disturbs no other subscription (CANCEL-1).
pub struct Subscription<T: Event> {
    /// `None` once ended (or for a subscription made on a closed bus).
    pub(crate) live: Option<Live<T>>,
    /// Where this subscription's waker sits in the waiter list, if it does.
    pub(crate) ticket: Option<Ticket>,
    /// What the planted bugs keep (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) planted: crate::mutants::subscription::Planted<T>,
}

/// A live subscription's channel and place in it.
pub(crate) struct Live<T> {
    pub(crate) channel: Arc<Channel<T>>,
    pub(crate) cursor: Cursor<T>,
}

impl<T: Event> Subscription<T> {
    /// A subscription that has already ended (CLOSE-3).
    pub(crate) fn ended() -> Subscription<T> {
        Subscription {
            live: None,
            ticket: None,
            #[cfg(feature = "mutants")]
            planted: Default::default(),
        }
    }

    /// A live subscription at the end of `channel`'s chain (VIS-1).
    ///
    /// # Panics
    /// If the channel already has `u32::MAX` live subscriptions.
    pub(crate) fn start(channel: Arc<Channel<T>>) -> Subscription<T> {
        let mut state = channel.lock();
        assert!(
            state.subscriptions < MAX_SUBSCRIPTIONS,
            "more than {MAX_SUBSCRIPTIONS} live subscriptions of {}",
            type_name::<T>()
        );
        state.subscriptions += 1;
        let cursor = state.chain.cursor();
        planted!(let planted = crate::mutants::subscription::start(&channel, &mut state););
        drop(state);
        Subscription {
            live: Some(Live { channel, cursor }),
            ticket: None,
            #[cfg(feature = "mutants")]
            planted,
        }
    }

    /// The mutant planted in its bus, if any (for [`crate::SharedSubscription`]).
    #[cfg(feature = "mutants")]
    pub(crate) fn mutant(&self) -> Option<Mutant> {
        self.live.as_ref().and_then(|live| live.channel.mutant)
    }

    /// Takes the next event if one is there, without waiting.
    #[inline]
    pub fn try_recv(&mut self) -> TryRecv<T> {
        planted!(
            if let Some(event) = crate::mutants::subscription::take_first(self) {
                return TryRecv::Event(event);
            }
        );
        // Fast path: the next slot is already filled; no lock.
        if let Some(live) = self.live.as_mut()
            && let Some(event) = live.cursor.next(&live.channel.pool)
        {
            return TryRecv::Event(event);
        }
        self.try_recv_locked()
    }

    /// [`try_recv`](Subscription::try_recv) once the fast path found
    /// nothing: look again under the lock, and end if the bus closed.
    #[cold]
    fn try_recv_locked(&mut self) -> TryRecv<T> {
        mutants::yield_point(YieldPoint::BeforeTryRecvLock);
        let Some(live) = self.live.as_mut() else {
            return TryRecv::Ended;
        };
        let state = live.channel.lock();
        if let Some(event) = live.cursor.next(&live.channel.pool) {
            return TryRecv::Event(event);
        }
        if state.closed && !hook!(false, self.planted.deaf) {
            drop(state);
            self.finish();
            return TryRecv::Ended;
        }
        TryRecv::Empty
    }

    /// Waits for the next event; `None` once the subscription ended (its bus
    /// closed and everything sent before was received).
    ///
    /// Cancel-safe (CANCEL-2): dropping the returned future before it
    /// completes (a timeout, a `select`) loses nothing; the next `recv`
    /// yields the event this one would have.
    pub async fn recv(&mut self) -> Option<Arc<T>> {
        planted!(
            if crate::mutants::is(self.mutant(), Mutant::RecvHoldsCursor) {
                return crate::mutants::subscription::recv_losing_place(self).await;
            }
        );
        futures_util::StreamExt::next(self).await
    }

    /// Whether the subscription has ended; an ended subscription holds
    /// nothing and yields nothing more.
    pub fn is_ended(&self) -> bool {
        self.live.is_none()
    }

    /// Ends the subscription after the stream returned `None` (or, for a
    /// planted bug, earlier): it stops counting as live and skips what it
    /// did not receive.
    pub(crate) fn finish(&mut self) {
        let Some(Live { channel, cursor }) = self.live.take() else {
            return;
        };
        let mut state = channel.lock();
        state.subscriptions -= 1;
        let end = state.chain.end();
        let own = state.waiters.vacate(&mut self.ticket);
        drop(state);
        drop(own);
        if let Err(panic) = cursor.skip_to(end, &channel.pool) {
            resume_unwind(panic);
        }
    }
}

impl<T: Event> Stream for Subscription<T> {
    type Item = Arc<T>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        let this = self.get_mut();
        planted!(
            if let Some(polled) = crate::mutants::subscription::poll_first(this) {
                return polled;
            }
        );
        let Some(live) = this.live.as_mut() else {
            return Poll::Ready(None);
        };
        // Fast path: the next slot is already filled; no lock.
        if let Some(event) = live.cursor.next(&live.channel.pool) {
            return Poll::Ready(Some(event));
        }
        this.poll_registering(cx)
    }
}

impl<T: Event> Subscription<T> {
    /// `poll_next` once the fast path found nothing: look again under the
    /// lock, then end (closed) or register the waker (WAKE-1).
    #[cold]
    fn poll_registering(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        let this = self;
        planted!(if crate::mutants::subscription::closed_early(this) {
            return Poll::Ready(None);
        });
        mutants::yield_point(YieldPoint::BeforeRegister);
        // Cloning a waker runs user code (its vtable's `clone`): done before
        // the lock is taken (REENTER-1); dropped after it, if not needed.
        let waker = cx.waker().clone();
        let Some(live) = this.live.as_mut() else {
            return Poll::Ready(None);
        };
        let mut state = live.channel.lock();
        // A send may have filled the slot (and woken the waiters it found,
        // not us) after we looked and before we took the lock: look again
        // under the lock, which sends also hold.
        if hook!(
            true,
            !crate::mutants::is(live.channel.mutant, Mutant::RecheckSkipped)
        ) && let Some(event) = live.cursor.next(&live.channel.pool)
        {
            return Poll::Ready(Some(event));
        }
        if state.closed
            && !hook!(
                false,
                crate::mutants::subscription::ignores_close(&this.planted, live.channel.mutant)
            )
        {
            drop(state);
            this.finish();
            return Poll::Ready(None);
        }
        let unused = state.waiters.register(&mut this.ticket, waker);
        let unused = hook!(
            unused,
            crate::mutants::drop_if(live.channel.mutant, Mutant::WakerDroppedUnderLock, unused)
        );
        drop(state);
        drop(unused);
        Poll::Pending
    }
}

impl<T: Event> FusedStream for Subscription<T> {
    fn is_terminated(&self) -> bool {
        self.live.is_none()
    }
}

impl<T: Event> Drop for Subscription<T> {
    fn drop(&mut self) {
        let Some(Live { channel, cursor }) = self.live.take() else {
            return;
        };
        let mut state = channel.lock();
        planted!(let Some(cursor) = crate::mutants::subscription::park_while_panicking(&channel, &mut state, cursor) else { return; };);
        state.subscriptions -= 1;
        // (`_cleared`: the list a planted bug clears, dropped at the end.)
        let (own, _cleared) = hook!(
            (state.waiters.vacate(&mut self.ticket), ()),
            crate::mutants::waiters::vacate_on_drop(&mut state.waiters, &mut self.ticket)
        );
        // Too many holes: a new generation; the waiters are woken once,
        // spuriously, and register afresh in a compact list.
        let woken = state.waiters.compact_if_sparse();
        let end = state.chain.end();
        planted!(let cursor = crate::mutants::subscription::park_on_drop(&channel, &mut state, cursor););
        let own = hook!(
            own,
            crate::mutants::drop_if(channel.mutant, Mutant::WakerDroppedUnderLock, own)
        );
        drop(state);
        let skipped = cursor.skip_to(end, &channel.pool);
        // User code (a waker's destructor, its `wake`) runs only now, with
        // no lock held.
        drop(own);
        planted!(let woken = crate::mutants::waiters::lose_woken(channel.mutant, woken););
        for waker in woken {
            waker.wake();
        }
        if let Err(panic) = skipped
            && !std::thread::panicking()
        {
            resume_unwind(panic);
        }
    }
}

impl<T: Event> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("type", &type_name::<T>())
            .field("ended", &self.is_ended())
            .finish()
    }
}
