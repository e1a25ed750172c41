//! One event type's part of one bus: its chain of events, its live
//! subscriptions, its waiter list and its `closed` flag.
//!
//! # Invariants
//!
//! - Everything here but the chain's [`Pool`] lives under the channel's
//!   `Mutex`. Sends, subscribes, ends, close and stats take it; a receive
//!   takes it only when it found nothing (to look again and register its
//!   waker), so a subscription that keeps up receives without a lock.
//! - `subscriptions` is the number of live subscriptions (neither dropped
//!   nor ended), the count every send writes into its slot (the chain's
//!   invariant 2). A send with none stores nothing (DROP-1).
//! - `closed` is set once, under the lock, by [`Bus::close`](crate::Bus::close).
//!   A send that takes the lock after it fails (CLOSE-2); every send before
//!   it was appended before it, and is received before the end (CLOSE-1).
//! - No user code runs under the lock (REENTER-1): an event is turned into
//!   its `Arc` (a move) or dropped (a destructor) outside it, wakers are
//!   woken and dropped after it.

#![forbid(unsafe_code)]

use crate::bus::{Event, TypeStats};
use crate::chain::{Chain, Pool};
#[cfg(feature = "mutants")]
use crate::mutants::Mutant;
use crate::mutants::{hook, planted};
use crate::sync::{self, Mutex, MutexGuard};
use crate::waiters::{Waiters, Woken};
use std::any::{Any, TypeId, type_name};
use std::sync::Arc;
use std::task::Waker;

/// The per-type part of a bus, behind a type-erased handle.
pub(crate) trait ErasedChannel: Any + Send + Sync {
    /// Marks the channel closed and moves its waiting wakers into `wakers`.
    fn close(&self, wakers: &mut Vec<Waker>);
    fn stats(&self) -> TypeStats;
}

pub(crate) struct Channel<T> {
    /// What cursors reach without the lock.
    pub(crate) pool: Pool<T>,
    state: Mutex<ChannelState<T>>,
    /// The planted bug, if any (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) mutant: Option<Mutant>,
}

pub(crate) struct ChannelState<T> {
    pub(crate) chain: Chain<T>,
    /// Live subscriptions: neither dropped nor ended.
    pub(crate) subscriptions: usize,
    pub(crate) closed: bool,
    pub(crate) waiters: Waiters,
    /// What the planted bugs keep (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) planted: crate::mutants::channel::Planted<T>,
}

/// An event on its way in, turned into the `Arc` every receiver shares only
/// if someone will receive it.
pub(crate) trait Payload<T> {
    fn into_arc(self) -> Arc<T>;
}

/// An event passed by value to [`Bus::send`](crate::Bus::send).
pub(crate) struct Owned<T>(pub(crate) T);

impl<T> Payload<T> for Owned<T> {
    fn into_arc(self) -> Arc<T> {
        Arc::new(self.0)
    }
}

impl<T> Payload<T> for Arc<T> {
    fn into_arc(self) -> Arc<T> {
        self
    }
}

impl<T: Event> Channel<T> {
    /// A new, open channel with no subscriptions. `mutant` is the bus's
    /// planted bug (ignored without the `mutants` feature).
    pub(crate) fn new(
        #[allow(unused_variables)] mutant: Option<crate::mutants::Mutant>,
    ) -> Channel<T> {
        let pool = Pool::new();
        let state = ChannelState {
            chain: Chain::new(&pool),
            subscriptions: 0,
            closed: false,
            waiters: hook!(Waiters::default(), Waiters::planted(mutant)),
            #[cfg(feature = "mutants")]
            planted: Default::default(),
        };
        Channel {
            pool,
            state: Mutex::new(state),
            #[cfg(feature = "mutants")]
            mutant,
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, ChannelState<T>> {
        sync::lock(&self.state)
    }

    /// Appends `event` for every live subscription (SEND-1: no list is
    /// walked). What is left to do, waking the waiters or dropping an
    /// event nobody receives, is returned for the caller to do once it
    /// holds no lock (REENTER-1).
    #[inline(always)]
    pub(crate) fn append<P: Payload<T>>(&self, event: P) -> Appended<P> {
        let mut state = self.lock();
        if state.closed
            && !hook!(
                false,
                crate::mutants::is(self.mutant, Mutant::SendAfterClose)
            )
        {
            return Appended::Closed(event);
        }
        let receivers = state.subscriptions;
        if receivers == 0 {
            // DROP-1: no live subscription, nothing is stored.
            return Appended::Unreceived(hook!(
                Some(event),
                crate::mutants::channel::keep_unreceived(self, &mut state, event)
            ));
        }
        let event = event.into_arc();
        planted!(crate::mutants::channel::sent(self, &mut state, &event););
        // `subscribe` keeps `receivers` within `u32` (MAX_SUBSCRIPTIONS).
        state.chain.push(&self.pool, event, receivers as u32);
        let woken = state.waiters.take_any();
        Appended::Sent { receivers, woken }
    }
}

/// What [`Channel::append`] did, and what is left to do with no lock held.
#[must_use = "the waiters must be woken, after every lock is released"]
pub(crate) enum Appended<P> {
    /// Appended for `receivers` live subscriptions; `woken` waited for it
    /// (`None`: nobody did).
    Sent {
        receivers: usize,
        woken: Option<Woken>,
    },
    /// Nobody was subscribed: the event, to drop (`None`: a planted bug
    /// kept it).
    Unreceived(Option<P>),
    /// The channel was closed (CLOSE-2): the event, given back.
    Closed(P),
}

impl<T> Channel<T> {
    /// Gives the waiter list back its spill vector, if the lock is free
    /// (else the vector is simply dropped: it is empty).
    pub(crate) fn restore(&self, spill: Vec<Option<Waker>>) {
        if let Ok(mut state) = self.state.try_lock() {
            state.waiters.restore(spill);
        }
    }
}

impl<T: Event> ErasedChannel for Channel<T> {
    fn close(&self, wakers: &mut Vec<Waker>) {
        let mut state = self.lock();
        state.closed = true;
        wakers.extend(state.waiters.take_all());
    }

    fn stats(&self) -> TypeStats {
        let state = self.lock();
        TypeStats {
            type_name: type_name::<T>(),
            type_id: TypeId::of::<T>(),
            subscriptions: state.subscriptions,
            retained: state.chain.retained(&self.pool),
        }
    }
}
