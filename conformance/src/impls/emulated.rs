//! An emulated world: scopes, task groups, subscriber tasks, workers,
//! processors and `ContextMissing`, built around a plain in-process bus that
//! has none of them, so that such a bus is judged on every rule
//! (PROTOCOL.md, "Emulated features"; the Python kit's `EmulatedScopes` is
//! the same idea for asyncio). A bus plugs in through [`PlainBus`]: open a
//! bus, send, subscribe, close, count live subscriptions if it can, and
//! run REENTER-1's probe action.
//!
//! # Invariants
//!
//! - **Layout** (SCOPE-1..3, TASK-1): a root or isolated scope owns a bus
//!   ([`PlainBus::open`]) and a task group; a nested, non-isolated scope uses
//!   its parent's bus and its parent's group. A nested scope is itself a task
//!   of the group it is opened in; a spawn into a group that is gone is
//!   refused with `closed`.
//! - **Close** (CLOSE-1, PROC-1): an owner's bus is closed
//!   ([`PlainBus::close`]) the moment its body returns (`scope_closing`),
//!   before the scope waits for its group, and when the owner is cancelled
//!   or its body fails. What subscriptions and sends do on a closed bus is
//!   the bus's own behaviour: the world adds nothing.
//! - **Handles** (EXIT-1): every scope's handle (its bus, its group) is kept
//!   for the whole run; ops through a scope that has gone reach the bus it
//!   had. The world never checks whether a scope is gone.
//! - **No scope, no bus** (MISSING-1): `send` and `subscribe` outside every
//!   scope answer `context_missing` and touch no bus.
//! - **Cancellation is synchronous** (TASK-2, TASK-3): `cancel_scope` drops
//!   the scope's future during the op, and with an owner its whole group
//!   (nested scopes report `scope_cancelled`, workers and processors report
//!   nothing more); nothing of it runs afterwards. Taking a task out of a
//!   group wakes the group's root task, whose owner may wait only for it.
//! - **Nothing the bus raises is hidden** (ROBUST-1): a pull that fails is
//!   reported as `failed` with the bus's error, and its task ends.
//! - **Receives are the bus's**: a subscriber's pending receive is one
//!   future of the bus's ([`Pull::recv`]); `abandon` drops it as a timeout
//!   would and wakes the task (as the timeout does) to start a new one;
//!   `drop_subscription`, `cancel_subscriber` and `fail_subscriber` let go
//!   of the subscription during the op.
//! - **Scheduling**: each root scope is one executor task (`scope#N`) that
//!   checks its body and polls every task of its group (workers,
//!   processors, nested scopes, in key order) with its own waker; each
//!   subscriber is one task (`sub#N`). The world's own waits (credit, a
//!   release, a close) are woken by name; only the bus's receives register
//!   wakers. Ops never poll, except `fail_scope` (the failing root is
//!   polled so that it fails at its op); the executor is the simulator's
//!   (`scopebus_sim::exec::Executor`), so every interleaving is chosen by
//!   the runner and replayable, and a run is deterministic if the bus is.
//! - **Statistics**: retained events are counted by a [`Tracker`] inside
//!   each event: exact only if the bus keeps an event's tracker exactly as
//!   long as it keeps the event ([`About::keeps_trackers`]); only then is
//!   `stats` declared.
//! - **Capabilities**: isolated, cancel, tasks, step, schedule, wake,
//!   migrate, started, abandon, processors, failures, exited_scopes; stats
//!   and reenter as [`About`] says. Never `preempt` (a plain bus has no
//!   yield points the world could reach) nor `share` (one subscription
//!   pulled by two tasks is the bus's feature, not the world's).
//!
//! The world's tasks are in `tasks`, its ops in `world`, REENTER-1's probe
//! in `reentry`.

mod reentry;
mod tasks;
mod world;

pub use world::World;

use scopebus_sim::catalogue::{EventId, EventType};
use scopebus_sim::emulation::Emulated;
use scopebus_sim::op::{OpError, ReentryAction, TypeCount};
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

// ----- the plain bus's side ----------------------------------------------

/// What one receive of a plain bus's subscription gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pulled {
    /// The next event, by id.
    Event(EventId),
    /// The subscription ended (its bus closed and it drained).
    End,
    /// The receive raised an error: the bus's own words, as
    /// `error type: message`.
    Failed(String),
}

/// A receive in flight. It may be dropped before it completes (`abandon`),
/// the subscription kept.
pub type PullFuture = Pin<Box<dyn Future<Output = Pulled>>>;

/// A subscription of a plain bus, pulled by one task at a time.
pub trait Pull {
    /// Starts a receive.
    fn recv(&self) -> PullFuture;
}

/// The bus refused a send: it is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

/// Who a plain bus is, and what the world may claim about it.
#[derive(Clone, Debug)]
pub struct About {
    /// The implementation's name (`--impl`), e.g. `typeid-broadcast`.
    pub name: &'static str,
    /// Its version.
    pub version: String,
    /// What it runs on, for reports.
    pub runtime: String,
    /// The features its binding builds itself besides the world's scopes,
    /// tasks and `context_missing`: `close` if the binding decides how the
    /// bus closes, `types` if the bus is keyed by something other than the
    /// language's types.
    pub also_emulates: Vec<Emulated>,
    /// Whether the bus keeps each event's [`Tracker`] exactly as long as it
    /// keeps the event (the tracker is inside the event): then retained
    /// counts are exact and `stats` is declared.
    pub keeps_trackers: bool,
    /// Whether [`PlainBus::reenter`] works, so that `reenter` is declared:
    /// the bus calls wakers, user code, synchronously (any Rust bus does).
    pub reenters: bool,
}

/// A plain in-process bus: no scopes, no task groups, no `ContextMissing`.
/// Shared with other threads only by REENTER-1's probes.
pub trait PlainBus: Send + Sync + Sized + 'static {
    /// Who it is.
    fn about() -> About;
    /// A fresh bus, for one root or isolated scope.
    fn open() -> Self;
    /// Sends catalogue event `ty` carrying `id`, with `tracker` inside it.
    ///
    /// # Errors
    /// [`Closed`] if the bus refuses because it is closed.
    fn send(&self, ty: EventType, id: EventId, tracker: Tracker) -> Result<(), Closed>;
    /// Subscribes to `ty` now.
    fn subscribe(&self, ty: EventType) -> Box<dyn Pull>;
    /// Closes the bus; may be called again, which does nothing.
    fn close(&self);
    /// The bus's count of live subscriptions of `route`, if it has one.
    fn live_subscriptions(&self, route: EventType) -> Option<u64>;
    /// REENTER-1's probe action, run on another thread from inside a
    /// callback of the bus into a waker: read the bus's statistics, or
    /// subscribe to the `fresh`th type of the bus's own that no op names
    /// (new on the bus) and let go of it at once. Only if
    /// [`About::reenters`].
    fn reenter(&self, action: ReentryAction, fresh: u8);
}

/// The events a bus still holds, per route: each is in the ledger from
/// its send until the last copy of its [`Tracker`] is dropped.
#[derive(Clone, Debug, Default)]
struct Ledger(Arc<Mutex<BTreeSet<(EventType, EventId)>>>);

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, BTreeSet<(EventType, EventId)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held(&self, route: EventType) -> Vec<EventId> {
        self.lock()
            .iter()
            .filter(|(r, _)| *r == route)
            .map(|(_, id)| *id)
            .collect()
    }
}

/// Rides inside an event (its clones share it): while any copy of the
/// event exists, the event counts as retained by its bus. The world's
/// measuring instrument, as the Haiway adapter's finalizers are.
#[derive(Clone)]
pub struct Tracker(Arc<Tracked>);

struct Tracked {
    ledger: Ledger,
    route: EventType,
    id: EventId,
}

impl Tracker {
    fn new(ledger: &Ledger, ty: EventType, id: EventId) -> Tracker {
        ledger.lock().insert((ty.route(), id));
        Tracker(Arc::new(Tracked {
            ledger: ledger.clone(),
            route: ty.route(),
            id,
        }))
    }
}

/// A tracker on a ledger of its own, for unit tests of buses.
#[cfg(test)]
pub(crate) fn tracker_for_tests(id: EventId) -> Tracker {
    Tracker::new(&Ledger::default(), EventType::Login, id)
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.lock().remove(&(self.route, self.id));
    }
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracker({} event#{})", self.0.route, self.0.id)
    }
}

/// A bus of the world: the plain bus and the ledger of its events.
struct Owned<B: PlainBus> {
    bus: Arc<B>,
    ledger: Ledger,
}

impl<B: PlainBus> Owned<B> {
    fn open() -> Owned<B> {
        Owned {
            bus: Arc::new(B::open()),
            ledger: Ledger::default(),
        }
    }

    fn send(&self, ty: EventType, id: EventId) -> Result<(), OpError> {
        let tracker = Tracker::new(&self.ledger, ty, id);
        self.bus
            .send(ty, id, tracker)
            .map_err(|Closed| OpError::Closed)
    }

    /// Every route's live subscriptions (the bus's count) and retained
    /// events (the ledger's).
    fn stats(&self) -> Vec<TypeCount> {
        EventType::ALL
            .into_iter()
            .filter(|t| t.route() == *t)
            .map(|route| {
                let held = self.ledger.held(route);
                TypeCount {
                    ty: route,
                    subscriptions: self.bus.live_subscriptions(route),
                    retained: held.len() as u64,
                    retained_events: Some(held),
                }
            })
            .collect()
    }
}
