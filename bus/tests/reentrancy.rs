//! REENTER-1: no user code runs under the bus's locks.
//!
//! A waker's `wake` and `drop`, and an event's `drop`, are user code the bus
//! calls. Each scenario here makes that code act on the very bus that called
//! it (send, subscribe to a type never seen before, close, read stats) and
//! checks that the call returns. A bus that runs such code while it holds a
//! lock deadlocks (std's locks are not re-entrant) or panics; so every
//! scenario runs on its own thread under a watchdog, and a scenario that does
//! not finish within [`WATCHDOG`] fails the test instead of hanging it.
//!
//! A waker's `clone` is user code too, but only a hand-made `RawWakerVTable`
//! can make it so (`std::task::Wake` and `futures`' wakers clone an `Arc`),
//! which takes `unsafe`, forbidden in this workspace. The bus clones the
//! waker before it takes the channel's lock (`poll_next`); a review found it
//! cloned under the lock, and a vtable whose `clone` sends deadlocked.

use futures::task::noop_waker;
use scopebus::{Bus, Subscription, TryRecv};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

mod support;

/// How long a scenario may take before it counts as deadlocked. Each one is
/// a handful of operations on one thread: microseconds when it works.
const WATCHDOG: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Ping(#[allow(dead_code)] u32);
#[derive(Debug)]
struct Pong(u32);
#[derive(Debug)]
struct Fresh;

/// What user code does to the bus when the bus calls it.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Sends a `Ping` (the type being waited on).
    Send,
    /// Subscribes to `Fresh`, a type never subscribed to before (so the bus
    /// must create its channel: a write).
    SubscribeNew,
    /// Closes the bus.
    Close,
    /// Reads the statistics.
    Stats,
}

impl Action {
    const ALL: [Action; 4] = [
        Action::Send,
        Action::SubscribeNew,
        Action::Close,
        Action::Stats,
    ];

    fn run(self, bus: &Bus) {
        match self {
            Action::Send => {
                let _ = bus.send(Ping(99));
            }
            Action::SubscribeNew => drop(bus.subscribe::<Fresh>()),
            Action::Close => bus.close(),
            Action::Stats => drop(bus.stats()),
        }
    }
}

/// A waker that runs its action on `bus` when woken (`on_wake`) or when its
/// last clone is dropped (otherwise).
struct Hook {
    bus: Bus,
    action: Action,
    on_wake: bool,
    done: mpsc::Sender<&'static str>,
}

impl Hook {
    fn waker(bus: &Bus, action: Action, on_wake: bool) -> (Waker, mpsc::Receiver<&'static str>) {
        let (done, ran) = mpsc::channel();
        let hook = Hook {
            bus: bus.clone(),
            action,
            on_wake,
            done,
        };
        (Waker::from(Arc::new(hook)), ran)
    }
}

impl Wake for Hook {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.on_wake {
            self.action.run(&self.bus);
            let _ = self.done.send("wake");
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if !self.on_wake {
            self.action.run(&self.bus);
            let _ = self.done.send("drop");
        }
    }
}

/// Runs `scenario` on its own thread and fails if it neither returns nor
/// panics within [`WATCHDOG`] (a deadlocked thread is left behind; the test
/// process ends anyway).
fn watchdog(name: &str, scenario: impl FnOnce() + Send + 'static) {
    let (finished, outcome) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        scenario();
        let _ = finished.send(());
    });
    match outcome.recv_timeout(WATCHDOG) {
        Ok(()) => thread.join().expect("scenario thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("REENTER-1: {name} did not return within {WATCHDOG:?}: the bus deadlocked")
        }
    }
}

/// Polls `sub` once with `waker`; it must wait (nothing was sent).
fn park(sub: &mut Subscription<Ping>, waker: &Waker) {
    let mut cx = Context::from_waker(waker);
    let poll = futures::Stream::poll_next(Pin::new(sub), &mut cx);
    assert!(poll.is_pending(), "nothing was sent, so the poll must wait");
}

/// Whatever the action did, the bus still works for a fresh subscription of
/// another type (unless the action closed it).
fn still_usable(bus: &Bus) {
    let mut pong = bus.subscribe::<Pong>();
    let sent = bus.send(Pong(1));
    if bus.is_closed() {
        assert!(sent.is_err(), "a closed bus refuses sends (CLOSE-2)");
    } else {
        assert_eq!(sent.ok(), Some(1));
        assert!(matches!(pong.try_recv(), TryRecv::Event(e) if e.0 == 1));
    }
}

/// For every [`Action`]: a bus, a subscription parked with a hooked waker
/// (its hook runs the action when woken, `on_wake`, or when dropped), then
/// `step`, which must make the bus call the hook (it gets the caller's
/// waker, to drop or keep); the hook must have run, under a watchdog, and
/// the bus must still work.
fn each_action(what: &'static str, on_wake: bool, step: fn(&Bus, &mut Subscription<Ping>, Waker)) {
    for action in Action::ALL {
        watchdog(&format!("{what}, the hook doing {action:?}"), move || {
            let bus = Bus::new();
            let mut sub = bus.subscribe::<Ping>();
            let (waker, ran) = Hook::waker(&bus, action, on_wake);
            park(&mut sub, &waker);
            step(&bus, &mut sub, waker);
            let hook = if on_wake { "wake" } else { "drop" };
            assert_eq!(ran.try_recv(), Ok(hook), "{what}: the hook did not run");
            still_usable(&bus);
        });
    }
}

#[test]
fn reenter_1_waker_woken_by_send_may_use_the_bus() {
    let _watchdog = support::watchdog();
    each_action("a wake() woken by send", true, |bus, _, _waker| {
        bus.send(Ping(1)).ok();
    });
}

#[test]
fn reenter_1_waker_woken_by_close_may_use_the_bus() {
    let _watchdog = support::watchdog();
    each_action("a wake() woken by close", true, |bus, _, _waker| {
        bus.close()
    });
}

#[test]
fn reenter_1_waker_replaced_by_a_new_poll_may_use_the_bus_in_its_drop() {
    let _watchdog = support::watchdog();
    each_action("a waker replaced by a poll", false, |_, sub, old| {
        drop(old); // the bus now holds the last clone
        // A poll with another waker (the task moved) replaces the old one.
        let other = noop_waker();
        let _ = futures::Stream::poll_next(Pin::new(sub), &mut Context::from_waker(&other));
    });
}

#[test]
fn reenter_1_waker_of_a_dropped_subscription_may_use_the_bus_in_its_drop() {
    let _watchdog = support::watchdog();
    each_action(
        "the waker of a dropped subscription",
        false,
        |_, sub, waker| {
            drop(waker);
            // Dropping the subscription vacates its waker.
            drop(std::mem::replace(sub, Bus::new().subscribe::<Ping>()));
        },
    );
}

#[test]
fn reenter_1_waker_of_an_ended_subscription_may_use_the_bus_in_its_drop() {
    let _watchdog = support::watchdog();
    each_action(
        "the waker of an ended subscription",
        false,
        |bus, sub, waker| {
            drop(waker);
            bus.close(); // wakes (a no-op for this hook), handing the waker back
            assert!(matches!(sub.try_recv(), TryRecv::Ended));
        },
    );
}

/// An event whose destructor acts on the bus it travelled on.
struct Loaded {
    bus: Bus,
    action: Action,
    done: mpsc::Sender<()>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.action.run(&self.bus);
        let _ = self.done.send(());
    }
}

#[test]
fn reenter_1_event_freed_by_the_bus_may_use_the_bus_in_its_drop() {
    let _watchdog = support::watchdog();
    for action in Action::ALL {
        watchdog(&format!("an event drop that does {action:?}"), move || {
            let bus = Bus::new();
            let first = bus.subscribe::<Loaded>();
            let second = bus.subscribe::<Loaded>();
            let (done, ran) = mpsc::channel();
            bus.send(Loaded {
                bus: bus.clone(),
                action,
                done,
            })
            .ok();
            drop(first);
            assert!(
                ran.try_recv().is_err(),
                "the second subscription still needs it"
            );
            drop(second); // the last reader goes: the bus frees the event
            assert_eq!(ran.try_recv(), Ok(()), "the event must have been freed");
            still_usable(&bus);
        });
    }
}

#[test]
fn reenter_1_waker_woken_by_the_rebuilding_of_the_waiter_list_may_use_the_bus() {
    let _watchdog = support::watchdog();
    each_action(
        "a wake() woken when a waiter list of dropped subscriptions is rebuilt",
        true,
        |bus, _, _waker| {
            // More waiting subscriptions dropped than the bus tolerates as
            // holes: it rebuilds the list, waking every waiter (ours too)
            // once, spuriously, from the drop.
            let others: Vec<Subscription<Ping>> = (0..20)
                .map(|_| {
                    let mut other = bus.subscribe::<Ping>();
                    park(&mut other, &noop_waker());
                    other
                })
                .collect();
            drop(others);
        },
    );
}

/// A waker that, when woken, polls another puller of the same shared
/// subscription at once, as an executor that runs woken tasks inline
/// would.
struct Inline {
    other: scopebus::SharedSubscription<Ping>,
    done: mpsc::Sender<bool>,
}

impl Wake for Inline {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let ready = self.other.poll_recv(&mut cx).is_ready();
        let _ = self.done.send(ready);
    }
}

#[test]
fn reenter_1_a_shared_subscriptions_waker_may_pull_it_again() {
    let _watchdog = support::watchdog();
    watchdog("a wake() of a shared pull that pulls again", || {
        let bus = Bus::new();
        let shared = bus.subscribe::<Ping>().share();
        let (done, ran) = mpsc::channel();
        let waker = Waker::from(Arc::new(Inline {
            other: shared.clone(),
            done,
        }));
        let poll = shared.poll_recv(&mut Context::from_waker(&waker));
        assert!(poll.is_pending(), "nothing was sent, so the pull must wait");
        bus.send(Ping(1)).ok();
        assert_eq!(ran.try_recv(), Ok(true), "the woken waker pulled the event");
        still_usable(&bus);
    });
}
