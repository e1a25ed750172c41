//! The bus: a map from each exact event type to its [`Channel`], and the
//! `closed` flag they share.
//!
//! # Data structure
//!
//! For every event type `T` that has ever been subscribed to, the bus keeps
//! a channel (`channel.rs`): a chain of blocks of slots (`chain.rs`), one
//! slot per event sent while some subscription of `T` was live, and the
//! channel's waiter list (`waiters.rs`). A subscription (`subscription.rs`)
//! is a cursor into the chain. Each slot counts the subscriptions still to
//! pass it; the last one takes the event, so an event is freed the moment
//! every live subscription has received it or been dropped (RECLAIM-1,
//! RECLAIM-2). No list of subscribers is walked to send (SEND-1): a send
//! fills one slot and wakes the subscriptions that registered a waker since
//! the previous send; each wake is paid for by the receive it enables.
//!
//! # Invariants
//!
//! - A type's channel, once made, is never replaced: a subscription and
//!   every later send of its type on this bus meet in the same channel
//!   (ROUTE-1 routes by `TypeId`, nothing else).
//! - `closed` is set once, under the bus's write lock, and then every
//!   channel's own flag under that channel's lock; a channel made after the
//!   close never exists (subscribe re-checks `closed` under the write lock
//!   before it makes one). A send checks the bus's flag under the read lock
//!   and its channel's flag under the channel's lock: whichever it sees,
//!   a send after close delivers nothing (CLOSE-2).
//!
//! # Locks
//!
//! Two kinds, always taken in this order: the bus's `RwLock` (the map and
//! `closed`), then one channel's `Mutex`. A send holds the bus's read lock
//! over its append (finding the channel, then taking its lock) and
//! releases both before it wakes anyone or drops anything.
//! No lock is held while user code runs (REENTER-1): a waker's `wake`,
//! `clone` and `drop` and an event's destructor may send, subscribe, close
//! or read stats on the same bus. So wakers are cloned before a lock and
//! woken or dropped after it, and events are dropped after it.
//!
//! # Why no wakeup is lost
//!
//! A receive that finds nothing takes its channel's lock, looks again, and
//! only then registers its waker, under the lock. A send fills its slot and
//! takes the waiter list under the same lock; close marks the channel and
//! takes the list under it too. So every send or close is ordered either
//! before the second look (which sees its event, or the close) or after the
//! registration (and wakes it). The loom tests (`loom/tests/bus.rs`) check this
//! in every interleaving of a send, a close or a drop with a receive.

#![forbid(unsafe_code)]

use crate::channel::{Appended, Channel, ErasedChannel, Owned, Payload};
use crate::error::Closed;
use crate::mutants::{self, YieldPoint, hook, planted};
use crate::subscription::Subscription;
use crate::sync::{self, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What can travel on a bus: any `'static` type that may be shared between
/// threads. Routing is by the exact type (its [`TypeId`]), ROUTE-1: a newtype,
/// a type with the same name in another module and another instantiation of a
/// generic type are all different events; a type alias is the same event.
pub trait Event: Any + Send + Sync {}

impl<T: Any + Send + Sync> Event for T {}

static NEXT_BUS_ID: AtomicU64 = AtomicU64::new(1);

/// A handle to one event bus. Cloning it is cheap and gives another handle to
/// the same bus.
///
/// A bus routes each event to the live subscriptions of its exact type
/// (ROUTE-1), in send order (FIFO-1), each subscription seeing exactly the
/// events sent after it was created (VIS-1, FANOUT-1). Events nobody
/// subscribed to are dropped on the spot (DROP-1); events are freed as soon as
/// every live subscription has moved past them (RECLAIM-1, RECLAIM-2).
///
/// A `Bus` is `Send + Sync` and not tied to any executor or thread: unlike
/// Haiway's, it can be shared across tokio worker threads.
///
/// Most code never touches a `Bus` directly: [`crate::scope`] installs one and
/// [`crate::send`] / [`crate::subscribe`] find it.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    id: u64,
    state: RwLock<BusState>,
    /// The planted bug, if any (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    mutant: Option<crate::mutants::Mutant>,
}

pub(crate) struct BusState {
    pub(crate) closed: bool,
    pub(crate) channels: HashMap<TypeId, Arc<dyn ErasedChannel>, BuildHasherDefault<IdHasher>>,
    /// What the planted bugs keep (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) planted: crate::mutants::bus::Planted,
}

/// Live subscriptions and retained events of one event type on one bus, as
/// returned by [`Bus::stats`] and [`Bus::stats_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeStats {
    /// The event type, as given by [`std::any::type_name`].
    pub type_name: &'static str,
    /// The event type's identity, the routing key.
    pub type_id: TypeId,
    /// Subscriptions of this type that are neither dropped nor ended.
    pub subscriptions: usize,
    /// Events of this type the bus still holds because some live subscription
    /// has not received them yet (RECLAIM-1). Events a receiver still holds
    /// through its own `Arc<T>` are not counted: the bus no longer holds them.
    pub retained: usize,
}

/// A snapshot of a bus, from [`Bus::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusStats {
    /// Whether the bus was closed.
    pub closed: bool,
    /// One entry per event type that was ever subscribed to on this bus,
    /// sorted by type name.
    pub types: Vec<TypeStats>,
}

impl BusStats {
    /// The entry for event type `T`, if it was ever subscribed to.
    pub fn get<T: Event>(&self) -> Option<&TypeStats> {
        let id = TypeId::of::<T>();
        self.types.iter().find(|t| t.type_id == id)
    }

    /// Events retained over all types.
    pub fn retained(&self) -> usize {
        self.types.iter().map(|t| t.retained).sum()
    }

    /// Live subscriptions over all types.
    pub fn subscriptions(&self) -> usize {
        self.types.iter().map(|t| t.subscriptions).sum()
    }
}

impl Bus {
    /// Creates a new, open bus with no subscriptions.
    pub fn new() -> Bus {
        Bus {
            inner: Arc::new(BusInner {
                id: NEXT_BUS_ID.fetch_add(1, Ordering::Relaxed),
                state: RwLock::new(BusState {
                    closed: false,
                    channels: HashMap::default(),
                    #[cfg(feature = "mutants")]
                    planted: crate::mutants::bus::Planted::new(mutants::active()),
                }),
                #[cfg(feature = "mutants")]
                mutant: mutants::active(),
            }),
        }
    }

    /// A number that identifies this bus within the process (never reused).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether `self` and `other` are handles to the same bus.
    pub fn same_bus(&self, other: &Bus) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Publishes `event` to every live subscription of type `T` on this bus.
    ///
    /// Synchronous and non-blocking; its cost does not grow with the number of
    /// subscriptions (SEND-1). Returns how many live subscriptions will
    /// receive the event; `Ok(0)` means nobody subscribed to `T`, and the event
    /// was dropped without being stored (DROP-1).
    ///
    /// # Errors
    /// [`Closed`], carrying the event back, if the bus was closed (CLOSE-2):
    /// nothing sent after close is ever delivered.
    pub fn send<T: Event>(&self, event: T) -> Result<usize, Closed<T>> {
        self.publish(Owned(event))
            .map_err(|Owned(event)| Closed(event))
    }

    /// Like [`send`](Bus::send), for an event already behind an `Arc`: every
    /// subscription receives that same `Arc`, no copy is made.
    ///
    /// # Errors
    /// [`Closed`], carrying the event back, if the bus was closed (CLOSE-2).
    pub fn send_arc<T: Event>(&self, event: Arc<T>) -> Result<usize, Closed<Arc<T>>> {
        self.publish(event).map_err(Closed)
    }

    /// Appends under the bus's read lock and the channel's lock; wakes the
    /// waiters and drops an event nobody receives only once both are
    /// released, so that no waker and no event destructor (user code) runs
    /// under a lock of the bus (REENTER-1). The channel's own `closed`
    /// flag, set under its lock by [`close`](Bus::close), orders the append
    /// against a close.
    #[inline]
    fn publish<T: Event, P: Payload<T>>(&self, event: P) -> Result<usize, P> {
        let appended = {
            let state = self.read();
            if state.closed && !hook!(false, crate::mutants::bus::sends_after_close(&state)) {
                return Err(event);
            }
            match state.find::<T>() {
                Some(channel) => channel.append(event),
                // Nobody ever subscribed to `T` here: drop on the spot (DROP-1).
                None => Appended::Unreceived(Some(event)),
            }
        };
        match appended {
            Appended::Sent {
                receivers,
                woken: None,
            } => Ok(receivers),
            Appended::Sent {
                receivers,
                woken: Some(woken),
            } => {
                let spill = {
                    // (A planted bug holds the read lock over the wakes only.)
                    planted!(let _held = crate::mutants::bus::hold_read_lock(self, self.inner.mutant););
                    woken.wake(hook!(
                        false,
                        crate::mutants::is(self.inner.mutant, crate::mutants::Mutant::WakeOne)
                    ))
                };
                if spill.capacity() > 0 {
                    self.restore_spill::<T>(spill);
                }
                Ok(receivers)
            }
            Appended::Unreceived(event) => {
                drop(event);
                Ok(0)
            }
            Appended::Closed(event) => Err(event),
        }
    }

    /// Gives `T`'s waiter list back the spill vector a send took with two or
    /// more wakers, once they are woken (so that waiting subscriptions cost
    /// no allocation per send). Off the hot path: it takes the bus's read
    /// lock again.
    #[cold]
    #[inline(never)]
    fn restore_spill<T: Event>(&self, spill: Vec<Option<std::task::Waker>>) {
        let state = self.read();
        if let Some(channel) = state.find::<T>() {
            channel.restore(spill);
        }
    }

    /// Creates a subscription to events of exactly type `T` sent on this bus
    /// from now on (VIS-1).
    ///
    /// On a closed bus the subscription is already ended: it yields nothing
    /// and its stream ends at the first poll (CLOSE-3).
    pub fn subscribe<T: Event>(&self) -> Subscription<T> {
        planted!(
            if let Some(planted) = crate::mutants::bus::subscribe::<T>(self) {
                return planted;
            }
        );
        {
            let state = self.read();
            if state.closed {
                return Subscription::ended();
            }
            if let Some(channel) = state.find_arc::<T>() {
                return Subscription::start(channel);
            }
        }
        mutants::yield_point(YieldPoint::BetweenSubscribeLocks);
        let mut state = self.write();
        // Closed between the two locks: no channel may appear after close.
        if state.closed {
            return Subscription::ended();
        }
        let channel = state.find_or_create::<T>();
        Subscription::start(channel)
    }

    /// Closes the bus. Idempotent.
    ///
    /// Afterwards, sends fail with [`Closed`] and deliver nothing (CLOSE-2),
    /// new subscriptions end at once (CLOSE-3), and every live subscription
    /// first yields the events sent before the close, then ends (CLOSE-1).
    pub fn close(&self) {
        let mut wakers = Vec::new();
        {
            let mut state = self.write();
            if state.closed {
                return;
            }
            state.closed = true;
            for channel in state.channels.values() {
                channel.close(&mut wakers);
            }
            planted!(crate::mutants::bus::close_renamed(&state, &mut wakers););
        }
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether [`close`](Bus::close) was called.
    pub fn is_closed(&self) -> bool {
        self.read().closed
    }

    /// Live subscriptions and retained events per event type, for checking
    /// reclamation (RECLAIM-1, RECLAIM-2, DROP-1).
    pub fn stats(&self) -> BusStats {
        let state = self.read();
        let mut types: Vec<TypeStats> = state.channels.values().map(|c| c.stats()).collect();
        planted!(types.extend(crate::mutants::bus::renamed_stats(&state)););
        types.sort_by(|a, b| a.type_name.cmp(b.type_name));
        BusStats {
            closed: state.closed,
            types,
        }
    }

    /// Live subscriptions and retained events of event type `T`; zeroes if
    /// `T` was never subscribed to on this bus.
    pub fn stats_of<T: Event>(&self) -> TypeStats {
        let state = self.read();
        match state.find::<T>() {
            Some(channel) => channel.stats(),
            None => TypeStats {
                type_name: type_name::<T>(),
                type_id: TypeId::of::<T>(),
                subscriptions: 0,
                retained: 0,
            },
        }
    }

    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, BusState> {
        sync::read(&self.inner.state)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, BusState> {
        sync::write(&self.inner.state)
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("id", &self.inner.id)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl BusState {
    /// `T`'s channel, if `T` was ever subscribed to, borrowed from the map
    /// (the send path: no reference count is touched).
    #[inline]
    pub(crate) fn find<T: Event>(&self) -> Option<&Channel<T>> {
        let channel = hook!(
            self.channels.get(&TypeId::of::<T>()),
            crate::mutants::bus::route::<T>(self)
        )?;
        let any: &dyn Any = &**channel;
        any.downcast_ref::<Channel<T>>()
    }

    /// `T`'s channel, if `T` was ever subscribed to (ROUTE-1: by `TypeId`).
    pub(crate) fn find_arc<T: Event>(&self) -> Option<Arc<Channel<T>>> {
        let channel = hook!(
            self.channels.get(&TypeId::of::<T>()),
            crate::mutants::bus::route::<T>(self)
        )?;
        let any: Arc<dyn Any + Send + Sync> = channel.clone();
        any.downcast::<Channel<T>>().ok()
    }

    pub(crate) fn find_or_create<T: Event>(&mut self) -> Arc<Channel<T>> {
        if let Some(found) = self.find_arc::<T>() {
            return found;
        }
        let channel = Arc::new(Channel::<T>::new(hook!(None, self.planted.mutant)));
        let erased: Arc<dyn ErasedChannel> = channel.clone();
        hook!(
            self.channels.insert(TypeId::of::<T>(), erased),
            crate::mutants::bus::insert::<T>(self, erased)
        );
        channel
    }
}

/// Hashes a [`TypeId`] as what it already is: a hash. (`TypeId` feeds its
/// hasher one `u64`; anything else is folded in, FxHash-style.) The send
/// path looks its channel up on every send; SipHash would be most of it.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
