//! The bus: one chain of events per exact type, each subscription a cursor into it.
//!
//! # How it works
//!
//! For every event type `T` that has ever been subscribed to, the bus keeps a
//! [`Channel<T>`]: a singly linked chain of nodes. The channel holds only the
//! *tail*, an empty node whose `next` slot the next send fills. A subscription
//! holds a cursor: the node whose `next` slot it reads next. Nodes are
//! reference counted, so a node stays alive exactly as long as some cursor is
//! at or before it (RECLAIM-1), and dropping a subscription, even one never
//! polled, lets go of everything only it held (RECLAIM-2). No list of
//! subscribers is walked to send (SEND-1): a send fills one slot and wakes the
//! subscriptions that registered a waker since the previous send; each wake is
//! paid for by the receive it enables.
//!
//! Reading a filled slot takes no lock; only a subscription that finds nothing
//! takes the channel's lock, re-checks and registers its waker.
//!
//! # Locks
//!
//! Two kinds, always taken in this order: the bus's `RwLock` (the map of
//! channels and the bus's `closed` flag), then one channel's `Mutex` (its
//! tail, live count, `closed` flag and waiter list). A send holds the bus's
//! read lock only to find its channel; the channel's `closed` flag, set by
//! close under the channel's lock, is what orders a send against a close.
//!
//! No user code runs under either lock (REENTER-1): a waker's `wake` and
//! `drop` and an event's destructor may send, subscribe, close or read stats
//! on the same bus. So wakers are woken, replaced wakers and vacated ones
//! dropped, and freed events dropped only after every lock is released.

use crate::error::Closed;
use crate::mutants::{self, Mutant, YieldPoint};
use futures_core::{FusedStream, Stream};
use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::task::{Context, Poll, Waker};

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
    mutant: Option<Mutant>,
    state: RwLock<BusState>,
}

#[derive(Default)]
struct BusState {
    closed: bool,
    channels: HashMap<TypeId, Arc<dyn ErasedChannel>>,
    /// Used instead of `channels` by the name-routing mutants only.
    by_name: HashMap<&'static str, Arc<dyn ErasedChannel>>,
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
                mutant: mutants::active(),
                state: RwLock::new(BusState::default()),
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

    /// Appends under the channel's lock only; the bus's read lock is held
    /// just long enough to find the channel, so that no waker and no event
    /// destructor (user code) runs under any lock of the bus (REENTER-1).
    /// The channel's own `closed` flag, set under its lock by
    /// [`close`](Bus::close), orders the append against a close.
    fn publish<T: Event, P: Payload<T>>(&self, event: P) -> Result<usize, P> {
        let channel = {
            let state = self.read();
            let mutant = self.inner.mutant;
            if state.closed
                && !mutants::is(mutant, Mutant::SendAfterClose)
                && !mutants::is(mutant, Mutant::LateSubscribersReopen)
            {
                return Err(event);
            }
            match state.find_arc::<T>(mutant) {
                Some(channel) => channel,
                // Nobody ever subscribed to `T` here: drop on the spot (DROP-1).
                None => return Ok(0),
            }
        };
        let _held = mutants::is(self.inner.mutant, Mutant::WakeUnderBusLock).then(|| self.read());
        channel.append(event)
    }

    /// Creates a subscription to events of exactly type `T` sent on this bus
    /// from now on (VIS-1).
    ///
    /// On a closed bus the subscription is already ended: it yields nothing
    /// and its stream ends at the first poll (CLOSE-3).
    pub fn subscribe<T: Event>(&self) -> Subscription<T> {
        let mutant = self.inner.mutant;
        if mutants::is(mutant, Mutant::LateSubscribersReopen) && self.read().closed {
            return Subscription::start(self.write().reopen::<T>(mutant));
        }
        {
            let state = self.read();
            if state.closed && !mutants::is(mutant, Mutant::SubscribeAfterCloseHangs) {
                return Subscription::ended();
            }
            if let Some(channel) = state.find_arc::<T>(mutant) {
                return Subscription::start(channel);
            }
        }
        let mut state = self.write();
        if state.closed && !mutants::is(mutant, Mutant::SubscribeAfterCloseHangs) {
            return Subscription::ended();
        }
        let channel = state.find_or_create::<T>(mutant);
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
            for channel in state.channels.values().chain(state.by_name.values()) {
                channel.close(&mut wakers);
            }
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
        let mut types: Vec<TypeStats> = state
            .channels
            .values()
            .chain(state.by_name.values())
            .map(|c| c.stats())
            .collect();
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
        match state.find::<T>(self.inner.mutant) {
            Some(channel) => channel.stats(),
            None => TypeStats {
                type_name: type_name::<T>(),
                type_id: TypeId::of::<T>(),
                subscriptions: 0,
                retained: 0,
            },
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BusState> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BusState> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
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

/// The name a mutant routes `T` by, if one of the name-routing mutants is
/// planted: `colliding-type-names` drops the module path (`Ping` for
/// `alpha::Ping` and `beta::Ping`, `Generic<u8>` kept whole), and
/// `erased-generics` drops the generic parameters (`a::Generic` for both
/// `a::Generic<u8>` and `a::Generic<u16>`). `None`: route by `TypeId`.
fn mutant_key<T>(mutant: Option<Mutant>) -> Option<&'static str> {
    let by_short_name = mutants::is(mutant, Mutant::CollidingTypeNames);
    if !by_short_name && !mutants::is(mutant, Mutant::ErasedGenerics) {
        // The reference: not a string in sight (this is on every send).
        return None;
    }
    let full = type_name::<T>();
    let params = full.find('<').unwrap_or(full.len());
    if by_short_name {
        let start = full[..params].rfind("::").map_or(0, |i| i + 2);
        Some(&full[start..])
    } else {
        Some(&full[..params])
    }
}

impl BusState {
    fn find<T: Event>(&self, mutant: Option<Mutant>) -> Option<&Channel<T>> {
        let channel = match mutant_key::<T>(mutant) {
            Some(key) => self.by_name.get(key)?,
            None => self.channels.get(&TypeId::of::<T>())?,
        };
        let any: &dyn Any = &**channel;
        any.downcast_ref::<Channel<T>>()
    }

    fn find_arc<T: Event>(&self, mutant: Option<Mutant>) -> Option<Arc<Channel<T>>> {
        let channel = match mutant_key::<T>(mutant) {
            Some(key) => self.by_name.get(key)?,
            None => self.channels.get(&TypeId::of::<T>())?,
        };
        let any: Arc<dyn Any + Send + Sync> = channel.clone();
        any.downcast::<Channel<T>>().ok()
    }

    /// The `late-subscribers-reopen` mutant: `T`'s channel, replaced by a
    /// fresh, open one if it was closed.
    fn reopen<T: Event>(&mut self, mutant: Option<Mutant>) -> Arc<Channel<T>> {
        if let Some(found) = self.find_arc::<T>(mutant).filter(|c| !c.lock().closed) {
            return found;
        }
        let channel = Arc::new(Channel::<T>::new(mutant));
        self.channels.insert(TypeId::of::<T>(), channel.clone());
        channel
    }

    fn find_or_create<T: Event>(&mut self, mutant: Option<Mutant>) -> Arc<Channel<T>> {
        if let Some(found) = self.find_arc::<T>(mutant) {
            return found;
        }
        let channel = Arc::new(Channel::<T>::new(mutant));
        match mutant_key::<T>(mutant) {
            // The look-alike's channel under the same name is evicted.
            Some(key) => drop(self.by_name.insert(key, channel.clone())),
            None => drop(self.channels.insert(TypeId::of::<T>(), channel.clone())),
        }
        channel
    }
}

/// An event on its way in, turned into the `Arc` every receiver shares only
/// if someone will receive it.
trait Payload<T> {
    fn into_arc(self) -> Arc<T>;
}

/// An event passed by value to [`Bus::send`].
struct Owned<T>(T);

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

/// The per-type part of a bus, behind a type-erased handle.
trait ErasedChannel: Any + Send + Sync {
    /// Marks the channel closed and moves its waiting wakers into `wakers`.
    fn close(&self, wakers: &mut Vec<Waker>);
    fn stats(&self) -> TypeStats;
}

/// One link of a chain: the slot a send fills.
struct Node<T> {
    next: OnceLock<Link<T>>,
}

/// A filled slot: the event, and the node after it.
struct Link<T> {
    event: Arc<T>,
    node: Arc<Node<T>>,
}

impl<T> Node<T> {
    fn empty() -> Arc<Node<T>> {
        Arc::new(Node {
            next: OnceLock::new(),
        })
    }
}

impl<T> Drop for Node<T> {
    /// Unlinks iteratively, so that freeing a chain of a million events does
    /// not recurse a million deep. The counting path is [`Channel::release`];
    /// this is the fallback that keeps any other path safe.
    fn drop(&mut self) {
        let mut next = self.next.take();
        while let Some(link) = next.take() {
            if let Some(mut node) = Arc::into_inner(link.node) {
                next = node.next.take();
            }
        }
    }
}

struct Channel<T> {
    mutant: Option<Mutant>,
    /// Filled nodes still alive: the retained events (RECLAIM-1).
    retained: AtomicUsize,
    state: Mutex<ChannelState<T>>,
}

struct ChannelState<T> {
    /// The empty node the next send fills.
    tail: Arc<Node<T>>,
    /// Live subscriptions: neither dropped nor ended.
    subscriptions: usize,
    closed: bool,
    /// Wakers of subscriptions that found nothing since the last send. A
    /// subscription remembers its index and the generation it registered in;
    /// a send takes the whole list and starts a new generation.
    waiters: Vec<Option<Waker>>,
    vacant: usize,
    generation: u64,
    // The fields below serve mutants only.
    previous: Weak<Node<T>>,
    backlog: Option<Arc<Node<T>>>,
    graveyard: Vec<Arc<Node<T>>>,
}

/// Waiter lists with more than this many vacated entries, and more vacated
/// than used, are rebuilt.
const COMPACT_AFTER: usize = 16;

impl<T: Event> Channel<T> {
    fn new(mutant: Option<Mutant>) -> Channel<T> {
        Channel {
            mutant,
            retained: AtomicUsize::new(0),
            state: Mutex::new(ChannelState {
                tail: Node::empty(),
                subscriptions: 0,
                closed: false,
                waiters: Vec::new(),
                vacant: 0,
                generation: 0,
                previous: Weak::new(),
                backlog: None,
                graveyard: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `event` for every live subscription, then, with no lock held,
    /// frees what only the old tail held and wakes the waiters (REENTER-1).
    fn append<P: Payload<T>>(&self, event: P) -> Result<usize, P> {
        let mut state = self.lock();
        if state.closed && !mutants::is(self.mutant, Mutant::SendAfterClose) {
            return Err(event);
        }
        let receivers = state.subscriptions;
        if receivers == 0 {
            if mutants::is(self.mutant, Mutant::DeliverWithoutSubscribers) {
                if state.backlog.is_none() {
                    state.backlog = Some(state.tail.clone());
                }
            } else {
                // DROP-1: no live subscription, nothing is stored.
                return Ok(0);
            }
        }
        let node = Node::empty();
        let filled = std::mem::replace(&mut state.tail, node.clone());
        // Count before publishing: a receiver may release the node at once.
        self.retained.fetch_add(1, Ordering::Relaxed);
        // The old tail was empty (only sends fill tails, under this lock), so
        // `set` cannot fail; if it somehow did, the count is undone.
        if filled
            .next
            .set(Link {
                event: event.into_arc(),
                node,
            })
            .is_err()
        {
            self.retained.fetch_sub(1, Ordering::Relaxed);
        }
        if mutants::is(self.mutant, Mutant::VisibleLastEvent) {
            state.previous = Arc::downgrade(&filled);
        }
        let wakers = if state.waiters.is_empty() {
            Vec::new()
        } else {
            state.generation = state.generation.wrapping_add(1);
            state.vacant = 0;
            std::mem::take(&mut state.waiters)
        };
        drop(state);
        self.release(filled);
        let wake_all = !mutants::is(self.mutant, Mutant::WakeOne);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
            if !wake_all {
                break;
            }
        }
        Ok(receivers)
    }

    /// Lets go of one reference to `node`, freeing every node that nobody
    /// else holds and counting the events freed (RECLAIM-1).
    ///
    /// An event's own destructor may panic. Then the rest of the chain is
    /// still freed and counted, later panics are swallowed (a second panic
    /// while unwinding would abort the process), and the first one is
    /// resumed at the end, in the caller that freed the event, as dropping
    /// it anywhere else would.
    fn release(&self, mut node: Arc<Node<T>>) {
        let mut panicked = None;
        loop {
            let Some(mut owned) = Arc::into_inner(node) else {
                break;
            };
            let Some(Link { event, node: next }) = owned.next.take() else {
                break;
            };
            self.retained.fetch_sub(1, Ordering::Relaxed);
            if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(event))) {
                panicked.get_or_insert(panic);
            }
            node = next;
        }
        if let Some(panic) = panicked {
            resume_unwind(panic);
        }
    }
}

impl<T: Event> ErasedChannel for Channel<T> {
    fn close(&self, wakers: &mut Vec<Waker>) {
        let mut state = self.lock();
        state.closed = true;
        state.generation = state.generation.wrapping_add(1);
        state.vacant = 0;
        wakers.extend(state.waiters.drain(..).flatten());
    }

    fn stats(&self) -> TypeStats {
        let state = self.lock();
        TypeStats {
            type_name: type_name::<T>(),
            type_id: TypeId::of::<T>(),
            subscriptions: state.subscriptions,
            retained: self.retained.load(Ordering::Relaxed),
        }
    }
}

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
    /// `None` once ended.
    channel: Option<Arc<Channel<T>>>,
    /// The node whose `next` slot holds the next event for this subscription.
    cursor: Option<Arc<Node<T>>>,
    /// Where this subscription's waker sits: (generation, index).
    wait: Option<(u64, usize)>,
    /// Events taken ahead of time (mutant `lifo` only).
    stash: Vec<Arc<T>>,
    /// Ignores close (mutant `subscribe-after-close-hangs` only).
    deaf: bool,
}

impl<T: Event> Subscription<T> {
    fn ended() -> Subscription<T> {
        Subscription {
            channel: None,
            cursor: None,
            wait: None,
            stash: Vec::new(),
            deaf: false,
        }
    }

    fn start(channel: Arc<Channel<T>>) -> Subscription<T> {
        let mut state = channel.lock();
        let deaf = state.closed && mutants::is(channel.mutant, Mutant::SubscribeAfterCloseHangs);
        state.subscriptions += 1;
        let mut cursor = state.tail.clone();
        if mutants::is(channel.mutant, Mutant::VisibleLastEvent)
            && let Some(previous) = state.previous.upgrade()
        {
            cursor = previous;
        }
        if mutants::is(channel.mutant, Mutant::DeliverWithoutSubscribers)
            && let Some(backlog) = state.backlog.take()
        {
            cursor = backlog;
        }
        drop(state);
        Subscription {
            channel: Some(channel),
            cursor: Some(cursor),
            wait: None,
            stash: Vec::new(),
            deaf,
        }
    }

    /// The mutant planted in its bus, if any (for [`Subscription::share`]).
    pub(crate) fn mutant(&self) -> Option<Mutant> {
        self.channel.as_ref().and_then(|c| c.mutant)
    }

    /// Takes the next event if one is there, without waiting.
    pub fn try_recv(&mut self) -> TryRecv<T> {
        let Some(channel) = self.channel.as_ref() else {
            return TryRecv::Ended;
        };
        if let Some(event) = self.stash.pop() {
            return TryRecv::Event(event);
        }
        if let Some(event) = advance(&mut self.cursor, channel) {
            return TryRecv::Event(event);
        }
        let state = channel.lock();
        if let Some(event) = advance(&mut self.cursor, channel) {
            return TryRecv::Event(event);
        }
        if state.closed && !self.deaf {
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
        if let Some(channel) = &self.channel
            && mutants::is(channel.mutant, Mutant::RecvHoldsCursor)
        {
            return self.recv_holding_cursor().await;
        }
        futures_util::StreamExt::next(self).await
    }

    /// Mutant `recv-holds-cursor`: the cursor lives in this future while it
    /// waits, and is released (the events before it freed as if received)
    /// when the future is dropped unfinished.
    async fn recv_holding_cursor(&mut self) -> Option<Arc<T>> {
        struct Held<T: Event>(Option<Arc<Node<T>>>, Option<Arc<Channel<T>>>);
        impl<T: Event> Drop for Held<T> {
            fn drop(&mut self) {
                if let (Some(cursor), Some(channel)) = (self.0.take(), self.1.take()) {
                    channel.release(cursor);
                }
            }
        }
        let mut held = Held(self.cursor.take(), self.channel.clone());
        let event = std::future::poll_fn(|cx| {
            std::mem::swap(&mut self.cursor, &mut held.0);
            let polled = Pin::new(&mut *self).poll_next(cx);
            std::mem::swap(&mut self.cursor, &mut held.0);
            polled
        })
        .await;
        self.cursor = held.0.take();
        event
    }

    /// Whether the subscription has ended; an ended subscription holds
    /// nothing and yields nothing more.
    pub fn is_ended(&self) -> bool {
        self.channel.is_none()
    }

    /// Ends the subscription after the stream returned `None`: it stops
    /// counting as live and releases its cursor.
    fn finish(&mut self) {
        if let Some(channel) = self.channel.take() {
            let mut state = channel.lock();
            state.subscriptions = state.subscriptions.saturating_sub(1);
            let waker = vacate(&mut self.wait, &mut state);
            drop(state);
            drop(waker);
            if let Some(cursor) = self.cursor.take() {
                channel.release(cursor);
            }
        }
    }
}

/// Moves `cursor` one event forward, if that event was sent.
fn advance<T: Event>(cursor: &mut Option<Arc<Node<T>>>, channel: &Channel<T>) -> Option<Arc<T>> {
    let node = cursor.as_mut()?;
    let link = node.next.get()?;
    let event = link.event.clone();
    let old = std::mem::replace(node, link.node.clone());
    channel.release(old);
    Some(event)
}

/// Removes this subscription's waker from the waiter list, if it is there,
/// and returns it, for the caller to drop once it has let go of the channel's
/// lock (REENTER-1).
#[must_use = "the waker must be dropped after the lock is released"]
fn vacate<T>(wait: &mut Option<(u64, usize)>, state: &mut ChannelState<T>) -> Option<Waker> {
    let (generation, index) = wait.take()?;
    if generation != state.generation {
        return None;
    }
    let waker = state.waiters.get_mut(index)?.take()?;
    state.vacant += 1;
    Some(waker)
}

impl<T: Event> Stream for Subscription<T> {
    type Item = Arc<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        let this = self.get_mut();
        let Some(channel) = this.channel.as_ref() else {
            return Poll::Ready(None);
        };
        let mutant = channel.mutant;
        if mutants::is(mutant, Mutant::Lifo) {
            if let Some(event) = this.stash.pop() {
                return Poll::Ready(Some(event));
            }
            while let Some(event) = advance(&mut this.cursor, channel) {
                this.stash.push(event);
            }
            if let Some(event) = this.stash.pop() {
                return Poll::Ready(Some(event));
            }
        }
        if mutants::is(mutant, Mutant::CloseDropsPending) && channel.lock().closed {
            this.finish();
            return Poll::Ready(None);
        }
        // Fast path: the next slot is already filled; no lock.
        if let Some(event) = advance(&mut this.cursor, channel) {
            return Poll::Ready(Some(event));
        }
        if mutants::is(mutant, Mutant::CloseCheckedEarly) && channel.lock().closed && !this.deaf {
            this.finish();
            return Poll::Ready(None);
        }
        mutants::yield_point(YieldPoint::BeforeRegister);
        // Cloning a waker runs user code (its vtable's `clone`): done before
        // the lock is taken (REENTER-1); dropped after it, if not needed.
        let waker = cx.waker().clone();
        let mut state = channel.lock();
        // A send may have filled the slot (and woken the waiters it found,
        // not us) after we looked and before we took the lock: look again
        // under the lock, which sends also hold.
        if !mutants::is(mutant, Mutant::RecheckSkipped)
            && let Some(event) = advance(&mut this.cursor, channel)
        {
            return Poll::Ready(Some(event));
        }
        if state.closed && !this.deaf && !mutants::is(mutant, Mutant::CloseCheckedEarly) {
            drop(state);
            this.finish();
            return Poll::Ready(None);
        }
        let unused = register(&mut this.wait, &mut state, waker, mutant);
        let unused = mutants::drop_if(mutant, Mutant::WakerDroppedUnderLock, unused);
        drop(state);
        drop(unused);
        Poll::Pending
    }
}

/// Registers `waker` to be woken by the next send or by close, refreshing the
/// existing registration of this subscription if it has one in this
/// generation (so repeated polls do not grow the list).
///
/// `waker` was cloned by the caller before it took the lock (cloning runs
/// user code, REENTER-1). Returns the wakers left over (the one it
/// replaced, or `waker` itself if it was not needed), for the caller to drop
/// once it has let go of the channel's lock (dropping runs user code too).
#[must_use = "the left-over waker must be dropped after the lock is released"]
fn register<T>(
    wait: &mut Option<(u64, usize)>,
    state: &mut ChannelState<T>,
    waker: Waker,
    mutant: Option<Mutant>,
) -> [Option<Waker>; 2] {
    if let Some((generation, index)) = *wait
        && generation == state.generation
        && let Some(Some(registered)) = state.waiters.get_mut(index)
    {
        if mutants::is(mutant, Mutant::SpuriousWakeDeregisters) {
            state.vacant += 1;
            *wait = None;
            return [state.waiters[index].take(), Some(waker)];
        }
        if !registered.will_wake(&waker) && !mutants::is(mutant, Mutant::WakerNotRefreshed) {
            return [Some(std::mem::replace(registered, waker)), None];
        }
        return [Some(waker), None];
    }
    state.waiters.push(Some(waker));
    *wait = Some((state.generation, state.waiters.len() - 1));
    [None, None]
}

impl<T: Event> FusedStream for Subscription<T> {
    fn is_terminated(&self) -> bool {
        self.channel.is_none()
    }
}

impl<T: Event> Drop for Subscription<T> {
    fn drop(&mut self) {
        let Some(channel) = self.channel.take() else {
            return;
        };
        let mut state = channel.lock();
        if std::thread::panicking() && mutants::is(channel.mutant, Mutant::DropWhilePanickingLeaks)
        {
            // The bug: no release during an unwind; the cursor stays parked.
            state.graveyard.extend(self.cursor.take());
            return;
        }
        state.subscriptions = state.subscriptions.saturating_sub(1);
        let (own, cleared) = if mutants::is(channel.mutant, Mutant::DropClearsWaiters) {
            self.wait = None;
            state.vacant = 0;
            (None, std::mem::take(&mut state.waiters))
        } else {
            (vacate(&mut self.wait, &mut state), Vec::new())
        };
        // Too many holes: start a new generation; the waiters are woken once,
        // spuriously, and register afresh in a compact list.
        let woken = if state.vacant > COMPACT_AFTER && state.vacant * 2 > state.waiters.len() {
            if !mutants::is(channel.mutant, Mutant::CompactionKeepsGeneration) {
                state.generation = state.generation.wrapping_add(1);
            }
            state.vacant = 0;
            std::mem::take(&mut state.waiters)
        } else {
            Vec::new()
        };
        let own = mutants::drop_if(channel.mutant, Mutant::WakerDroppedUnderLock, own);
        let cursor = self.cursor.take();
        if mutants::is(channel.mutant, Mutant::LeakOnDrop) {
            state.graveyard.extend(cursor);
            drop(state);
        } else {
            drop(state);
            if let Some(cursor) = cursor {
                channel.release(cursor);
            }
        }
        // User code (a waker's destructor) runs only now, with no lock held.
        drop(own);
        drop(cleared);
        if mutants::is(channel.mutant, Mutant::CompactionLosesWakers) {
            return;
        }
        for waker in woken.into_iter().flatten() {
            waker.wake();
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
