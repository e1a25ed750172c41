//! `typeid-broadcast`: the event bus most Rust users would write in ten
//! minutes, judged as it is. A map from `TypeId` to a
//! `tokio::sync::broadcast::Sender<T>` per event type, behind a `Mutex`:
//!
//! ```text
//! struct Bus { channels: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>> }
//! ```
//!
//! # Invariants (what this bus is, on purpose)
//!
//! - Routing is by the real [`TypeId`] of real, distinct Rust types (the
//!   catalogue below: `alpha::PingAlias` is a type alias of `alpha::Ping`,
//!   `Generic<u8>` and `Generic<u16>` two instantiations of one generic
//!   type, `Wrapped` holds a `Ping`, `beta::Ping` lives in another module):
//!   `types` is not emulated.
//! - Each channel is bounded: [`CAPACITY`] events. A subscriber more than
//!   that many events behind loses the oldest, and its next `recv` raises
//!   `RecvError::Lagged(n)` (tokio's documented behaviour); the world
//!   reports that as a pull that failed, never hides it.
//! - `subscribe::<T>()` creates `T`'s channel on first use and returns a
//!   receiver that sees what is sent after it (tokio's `Sender::subscribe`).
//! - `send` with no channel, or with a channel whose receivers are all gone,
//!   drops the event: tokio's `SendError` ("no receivers") is what a user
//!   ignores, so `send` returns `Ok(0)`, the receivers reached. The only
//!   error `send` reports is [`BusClosed`].
//! - `close()` is what a user does when a scope ends: clear the map, which
//!   drops every sender, so that receivers read what they hold and then end
//!   (`RecvError::Closed`). The one thing added to the ten-minute version is
//!   a `closed` flag beside the map: without it a `subscribe` after `close`
//!   would open a new channel that nothing ever closes. After `close`,
//!   `send` answers [`BusClosed`] and `subscribe` returns a receiver that
//!   ends at once. How and when `close` is called is the emulated world's
//!   ([`super::emulated`]), declared as `close`.
//! - As a user writes it, `send` and `close` hold the map's lock while
//!   tokio sends or drops the senders, and tokio wakes the receivers'
//!   wakers (user code) right there: under that lock. A waker that uses
//!   the bus then deadlocks (REENTER-1; `reenter` is declared, as for any
//!   Rust bus, whose wakers are called synchronously).
//! - Events carry the world's [`Tracker`] (as the Haiway adapter uses
//!   finalizers): tokio drops a value once every receiver alive at its send
//!   has seen it (or it is overwritten), so the trackers alive are exactly
//!   the events the bus retains, and `stats` is exact. Live subscriptions
//!   are tokio's `Sender::receiver_count` while the bus is open, and
//!   unknown (`null`) once its senders are gone.
//! - The world pulls a receiver through an uncontended
//!   `tokio::sync::Mutex` (`Rx`), only so that a receive is a future of its
//!   own that an `abandon` can drop mid-wait, as a timeout around
//!   `rx.recv()` does, while the receiver is kept.

use super::emulated::{About, Closed, Pull, PullFuture, Pulled, Tracker, World};
use scopebus_sim::catalogue::{EventId, EventType};
use scopebus_sim::emulation::Emulated;
use scopebus_sim::op::ReentryAction;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::broadcast;

/// The name `--impl` knows it by.
pub const NAME: &str = "typeid-broadcast";

/// Events each channel holds before the oldest is overwritten.
pub const CAPACITY: usize = 16;

/// The catalogue as a user would write it: real, distinct types.
pub mod types {
    use super::{EventId, Tracker};

    /// An event of the catalogue, as the bus's users make them.
    pub trait Event: Clone + Send + Sync + 'static {
        /// The event carrying `id` (and the world's tracker).
        fn make(id: EventId, tracker: Tracker) -> Self;
        /// Its id.
        fn id(&self) -> EventId;
    }

    /// `alpha.*`: the base event, a "subclass" of it and an alias of it.
    pub mod alpha {
        use super::{Event, EventId, Tracker};

        /// `alpha.Ping`.
        #[derive(Clone, Debug)]
        pub struct Ping {
            /// The workload's id.
            pub id: EventId,
            /// The world's tracker (instrumentation, not payload).
            pub tracker: Tracker,
        }

        /// `alpha.PingAlias`: the same type as [`Ping`].
        pub type PingAlias = Ping;

        /// `alpha.DerivedPing`: derefs to a [`Ping`], a type of its own.
        #[derive(Clone, Debug)]
        pub struct DerivedPing {
            /// The `Ping` it extends.
            pub base: Ping,
        }

        impl std::ops::Deref for DerivedPing {
            type Target = Ping;
            fn deref(&self) -> &Ping {
                &self.base
            }
        }

        impl Event for Ping {
            fn make(id: EventId, tracker: Tracker) -> Self {
                Ping { id, tracker }
            }
            fn id(&self) -> EventId {
                self.id
            }
        }

        impl Event for DerivedPing {
            fn make(id: EventId, tracker: Tracker) -> Self {
                DerivedPing {
                    base: Ping { id, tracker },
                }
            }
            fn id(&self) -> EventId {
                self.base.id
            }
        }
    }

    /// `beta.*`: the same short name as `alpha.Ping`, another type.
    pub mod beta {
        use super::{Event, EventId, Tracker};

        /// `beta.Ping`.
        #[derive(Clone, Debug)]
        pub struct Ping {
            /// The workload's id.
            pub id: EventId,
            /// The world's tracker.
            pub tracker: Tracker,
        }

        impl Event for Ping {
            fn make(id: EventId, tracker: Tracker) -> Self {
                Ping { id, tracker }
            }
            fn id(&self) -> EventId {
                self.id
            }
        }
    }

    /// `Wrapped`: a newtype around an `alpha.Ping`.
    #[derive(Clone, Debug)]
    pub struct Wrapped(pub alpha::Ping);

    impl Event for Wrapped {
        fn make(id: EventId, tracker: Tracker) -> Self {
            Wrapped(alpha::Ping { id, tracker })
        }
        fn id(&self) -> EventId {
            self.0.id
        }
    }

    /// `Generic<u8>`, `Generic<u16>`: one generic type, two instantiations.
    #[derive(Clone, Debug)]
    pub struct Generic<T> {
        /// The workload's id.
        pub id: EventId,
        /// The world's tracker.
        pub tracker: Tracker,
        _parameter: std::marker::PhantomData<fn() -> T>,
    }

    impl<T: Clone + 'static> Event for Generic<T> {
        fn make(id: EventId, tracker: Tracker) -> Self {
            Generic {
                id,
                tracker,
                _parameter: std::marker::PhantomData,
            }
        }
        fn id(&self) -> EventId {
            self.id
        }
    }

    /// `Login`: unrelated to the others.
    #[derive(Clone, Debug)]
    pub struct Login {
        /// The workload's id.
        pub id: EventId,
        /// The world's tracker.
        pub tracker: Tracker,
    }

    impl Event for Login {
        fn make(id: EventId, tracker: Tracker) -> Self {
            Login { id, tracker }
        }
        fn id(&self) -> EventId {
            self.id
        }
    }
}

/// Runs `$body` with `$t` bound to this bus's Rust type of catalogue entry
/// `$ty` (its own event types, in [`types`]).
macro_rules! with_type {
    ($ty:expr, $t:ident => $body:expr) => {
        scopebus_sim::with_catalogue_type!(self::types; $ty, $t => $body)
    };
}

/// A send on a closed bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusClosed;

impl fmt::Display for BusClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bus is closed")
    }
}

impl std::error::Error for BusClosed {}

/// The senders, one per event type, and whether the bus was closed.
#[derive(Default)]
struct Channels {
    senders: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    closed: bool,
}

/// The bus. See the module documentation.
#[derive(Default)]
pub struct Bus {
    channels: Mutex<Channels>,
}

impl Bus {
    /// An open bus with no channels.
    pub fn new() -> Bus {
        Bus::default()
    }

    fn lock(&self) -> MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `event` to every receiver of its type; returns how many there
    /// were (0: nobody subscribed, the event is dropped).
    ///
    /// # Errors
    /// [`BusClosed`] after [`Bus::close`].
    pub fn send<T: Clone + Send + 'static>(&self, event: T) -> Result<usize, BusClosed> {
        let channels = self.lock();
        if channels.closed {
            return Err(BusClosed);
        }
        let sender = channels
            .senders
            .get(&TypeId::of::<T>())
            .and_then(|s| s.downcast_ref::<broadcast::Sender<T>>());
        // No receivers: tokio hands the event back, and it is dropped.
        Ok(sender.map_or(0, |tx| tx.send(event).unwrap_or(0)))
    }

    /// A receiver of every `T` sent from now on; the channel is made on
    /// first use. After [`Bus::close`], a receiver that ends at once.
    pub fn subscribe<T: Clone + Send + 'static>(&self) -> broadcast::Receiver<T> {
        let mut channels = self.lock();
        if channels.closed {
            let (sender, receiver) = broadcast::channel::<T>(CAPACITY);
            drop(sender);
            return receiver;
        }
        let entry = channels
            .senders
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(broadcast::channel::<T>(CAPACITY).0));
        match entry.downcast_ref::<broadcast::Sender<T>>() {
            Some(sender) => sender.subscribe(),
            // The map is keyed by the sender's own `TypeId`.
            None => unreachable!("the channel of a TypeId holds that type's sender"),
        }
    }

    /// Drops every sender: receivers read what they hold, then end.
    pub fn close(&self) {
        let mut channels = self.lock();
        channels.closed = true;
        channels.senders.clear();
    }

    /// Live receivers of `T` (tokio's count); `None` once closed.
    pub fn receiver_count<T: Clone + Send + 'static>(&self) -> Option<usize> {
        let channels = self.lock();
        if channels.closed {
            return None;
        }
        let sender = channels
            .senders
            .get(&TypeId::of::<T>())
            .and_then(|s| s.downcast_ref::<broadcast::Sender<T>>());
        Some(sender.map_or(0, broadcast::Sender::receiver_count))
    }
}

/// A receiver, behind an async mutex so that a receive can be a future of
/// its own that the world may drop mid-wait (a timeout around `recv`)
/// while keeping the receiver. Never contended: one task pulls it.
struct Rx<T>(Arc<tokio::sync::Mutex<broadcast::Receiver<T>>>);

impl<T: types::Event> Pull for Rx<T> {
    fn recv(&self) -> PullFuture {
        let receiver = self.0.clone();
        Box::pin(async move {
            let mut receiver = receiver.lock_owned().await;
            match receiver.recv().await {
                Ok(event) => Pulled::Event(event.id()),
                Err(broadcast::error::RecvError::Closed) => Pulled::End,
                Err(lagged @ broadcast::error::RecvError::Lagged(_)) => Pulled::Failed(format!(
                    "tokio::sync::broadcast::error::RecvError::Lagged: {lagged}"
                )),
            }
        })
    }
}

impl super::emulated::PlainBus for Bus {
    fn about() -> About {
        About {
            name: NAME,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime: "rust, tokio::sync::broadcast (tokio 1.x), on the simulator's executor"
                .to_owned(),
            also_emulates: vec![Emulated::Close],
            keeps_trackers: true,
            reenters: true,
        }
    }

    fn open() -> Self {
        Bus::new()
    }

    fn send(&self, ty: EventType, id: EventId, tracker: Tracker) -> Result<(), Closed> {
        with_type!(ty, T => Bus::send(self, <T as types::Event>::make(id, tracker)))
            .map(|_reached| ())
            .map_err(|BusClosed| Closed)
    }

    fn subscribe(&self, ty: EventType) -> Box<dyn Pull> {
        with_type!(ty, T => Box::new(Rx(Arc::new(tokio::sync::Mutex::new(
            Bus::subscribe::<T>(self)
        )))))
    }

    fn close(&self) {
        Bus::close(self);
    }

    fn live_subscriptions(&self, route: EventType) -> Option<u64> {
        with_type!(route, T => self.receiver_count::<T>()).map(|n| n as u64)
    }

    /// `stats`: every catalogue type's receiver count; `subscribe`: a
    /// [`ProbeEvent`] type's receiver, dropped at once.
    fn reenter(&self, action: ReentryAction, fresh: u8) {
        match action {
            ReentryAction::Stats => {
                let counts: Vec<Option<u64>> = EventType::ALL
                    .into_iter()
                    .map(|ty| self.live_subscriptions(ty))
                    .collect();
                drop(counts);
            }
            ReentryAction::Subscribe => subscribe_probe_type(self, fresh),
        }
    }
}

/// The types REENTER-1's `subscribe` probes take: outside the catalogue, a
/// new one for each probe of a run (so that its channel must be added to
/// the map), [`PROBE_TYPES`] of them.
#[derive(Clone, Debug)]
pub struct ProbeEvent<const N: u8>;

/// How many [`ProbeEvent`] types there are.
pub const PROBE_TYPES: u8 = 64;

macro_rules! subscribe_probe_types {
    ($bus:expr, $n:expr, $($k:literal)*) => {
        match $n % PROBE_TYPES {
            $($k => drop($bus.subscribe::<ProbeEvent<$k>>()),)*
            _ => unreachable!("n % PROBE_TYPES < PROBE_TYPES"),
        }
    };
}

/// Subscribes to the `n`th probe type on `bus` and lets go at once.
fn subscribe_probe_type(bus: &Bus, n: u8) {
    subscribe_probe_types!(bus, n,
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59
        60 61 62 63)
}

/// A fresh `typeid-broadcast` world, for one run.
pub fn implementation() -> World<Bus> {
    World::new()
}

#[cfg(test)]
mod tests {
    use super::types::Event;
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn now<F: Future>(future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn routes_by_type_drops_unheard_events_and_ends_after_close() {
        let bus = Bus::new();
        let tracker = super::super::emulated::tracker_for_tests;
        assert_eq!(bus.send(types::Login::make(1, tracker(1))), Ok(0));
        let mut pings = bus.subscribe::<types::alpha::Ping>();
        let mut aliases = bus.subscribe::<types::alpha::PingAlias>();
        let mut wrapped = bus.subscribe::<types::Wrapped>();
        assert_eq!(bus.send(types::alpha::Ping::make(2, tracker(2))), Ok(2));
        assert_eq!(now(pings.recv()).map(|e| e.map(|e| e.id)), Some(Ok(2)));
        assert_eq!(now(aliases.recv()).map(|e| e.map(|e| e.id)), Some(Ok(2)));
        assert!(now(wrapped.recv()).is_none(), "a Wrapped is not a Ping");
        bus.close();
        assert_eq!(
            bus.send(types::alpha::Ping::make(3, tracker(3))),
            Err(BusClosed)
        );
        assert!(matches!(
            now(pings.recv()),
            Some(Err(broadcast::error::RecvError::Closed))
        ));
        let mut late = bus.subscribe::<types::Login>();
        assert!(matches!(
            now(late.recv()),
            Some(Err(broadcast::error::RecvError::Closed))
        ));
    }

    #[test]
    fn a_reader_more_than_capacity_behind_lags() {
        let bus = Bus::new();
        let mut slow = bus.subscribe::<types::Login>();
        for id in 0..=CAPACITY as u64 {
            let tracker = super::super::emulated::tracker_for_tests(id);
            assert_eq!(bus.send(types::Login::make(id, tracker)), Ok(1));
        }
        assert!(matches!(
            now(slow.recv()),
            Some(Err(broadcast::error::RecvError::Lagged(1)))
        ));
        assert_eq!(now(slow.recv()).map(|e| e.map(|e| e.id)), Some(Ok(1)));
    }
}
