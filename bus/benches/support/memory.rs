//! Memory probes, measured with a counting global allocator
//! (`stats_alloc::INSTRUMENTED_SYSTEM`, which the including binary installs
//! as `#[global_allocator]`). Shared by `benches/memory.rs`, which reports
//! the figures, and `tests/memory.rs`, which holds the bus to them.
//!
//! Bytes are as requested from the allocator (its own bookkeeping not
//! counted). Every probe runs on the calling thread, with nothing else
//! allocating meanwhile.

#![allow(dead_code)]

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats};
use std::sync::Arc;

/// The payload of every probe's events.
pub type Payload = u64;

/// Bytes allocated and not freed. (stats_alloc already counts a
/// reallocation's growth or shrinkage in `bytes_allocated` or
/// `bytes_deallocated`; `bytes_reallocated` repeats it.)
fn live(stats: &Stats) -> i64 {
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// What a channel holds for events sent and not yet received.
#[derive(Clone, Debug)]
pub struct Retained {
    /// The channel.
    pub peer: &'static str,
    /// Live subscriptions, none of which received anything.
    pub subscribers: usize,
    /// Events pending.
    pub events: usize,
    /// Bytes the channel, its subscriptions and the pending events hold, per
    /// pending event.
    pub bytes_per_event: f64,
    /// `bytes_per_event` less the payload (`size_of::<Payload>()`): the
    /// channel's overhead per retained event.
    pub overhead_per_event: f64,
}

impl Retained {
    fn new(peer: &'static str, subscribers: usize, events: usize, bytes: i64) -> Retained {
        let per = bytes as f64 / events as f64;
        Retained {
            peer,
            subscribers,
            events,
            bytes_per_event: per,
            overhead_per_event: per - std::mem::size_of::<Payload>() as f64,
        }
    }
}

/// scopebus: `subscribers` subscriptions, `events` sends, nothing received.
/// Bytes counted from before the bus was made.
pub fn retained_scopebus(subscribers: usize, events: usize) -> Retained {
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    let bus = scopebus::Bus::new();
    let subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    for n in 0..events {
        let _ = bus.send(n as Payload);
    }
    let bytes = live(&region.change());
    assert_eq!(bus.stats_of::<Payload>().retained, events);
    drop((subs, bus));
    Retained::new("scopebus", subscribers, events, bytes)
}

/// `tokio::sync::broadcast` with capacity `events` (a power of two, so the
/// ring is exactly full): as [`retained_scopebus`].
pub fn retained_tokio(subscribers: usize, events: usize) -> Retained {
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    let (tx, rx) = tokio::sync::broadcast::channel::<Arc<Payload>>(events);
    let subs: Vec<_> = (1..subscribers).map(|_| tx.subscribe()).collect();
    for n in 0..events {
        let _ = tx.send(Arc::new(n as Payload));
    }
    let bytes = live(&region.change());
    assert_eq!(rx.len(), events);
    drop((subs, rx, tx));
    Retained::new("tokio-broadcast", subscribers, events, bytes)
}

/// `async-broadcast` with capacity `events`: as [`retained_scopebus`].
pub fn retained_async_broadcast(subscribers: usize, events: usize) -> Retained {
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    let (tx, rx) = async_broadcast::broadcast::<Arc<Payload>>(events);
    let subs: Vec<_> = (1..subscribers).map(|_| tx.new_receiver()).collect();
    for n in 0..events {
        let _ = tx.try_broadcast(Arc::new(n as Payload));
    }
    let bytes = live(&region.change());
    assert_eq!(rx.len(), events);
    drop((subs, rx, tx));
    Retained::new("async-broadcast", subscribers, events, bytes)
}

/// What sends that nobody receives cost.
#[derive(Clone, Debug)]
pub struct Unreceived {
    /// The channel, and the situation.
    pub case: &'static str,
    /// Sends made.
    pub sends: usize,
    /// Allocations during the sends.
    pub allocations: usize,
    /// Bytes still held after the sends (by anything made during them).
    pub bytes_left: i64,
}

/// scopebus: `sends` sends of a type nobody ever subscribed to, then of a
/// type whose only subscription was dropped (DROP-1). The bus exists before
/// the region starts.
pub fn unreceived_scopebus(sends: usize) -> [Unreceived; 2] {
    let bus = scopebus::Bus::new();
    drop(bus.subscribe::<u32>());
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    for n in 0..sends {
        let _ = bus.send(n as Payload);
    }
    let never = region.change();
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    for n in 0..sends {
        let _ = bus.send(n as u32);
    }
    let dropped = region.change();
    [
        Unreceived {
            case: "scopebus, never subscribed",
            sends,
            allocations: never.allocations + never.reallocations,
            bytes_left: live(&never),
        },
        Unreceived {
            case: "scopebus, subscription dropped",
            sends,
            allocations: dropped.allocations + dropped.reallocations,
            bytes_left: live(&dropped),
        },
    ]
}

/// `tokio::sync::broadcast` with no receiver: the sender must make the
/// `Arc` before it knows nobody listens.
pub fn unreceived_tokio(sends: usize) -> Unreceived {
    let (tx, rx) = tokio::sync::broadcast::channel::<Arc<Payload>>(16);
    drop(rx);
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    for n in 0..sends {
        let _ = tx.send(Arc::new(n as Payload));
    }
    let stats = region.change();
    Unreceived {
        case: "tokio-broadcast, no receiver",
        sends,
        allocations: stats.allocations + stats.reallocations,
        bytes_left: live(&stats),
    }
}

/// scopebus: bytes still held once every one of `subscribers` subscriptions
/// received all of `events` events (and dropped them), with the bus and the
/// subscriptions still alive (RECLAIM-1). Counted from after subscribing.
pub fn reclaimed_scopebus(subscribers: usize, events: usize) -> i64 {
    let bus = scopebus::Bus::new();
    let mut subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    for n in 0..events {
        let _ = bus.send(n as Payload);
    }
    for sub in &mut subs {
        for _ in 0..events {
            match sub.try_recv() {
                scopebus::TryRecv::Event(event) => drop(event),
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }
    let left = live(&region.change());
    assert_eq!(bus.stats_of::<Payload>().retained, 0);
    drop((subs, bus));
    left
}

/// scopebus: bytes still held once a bus, its `subscribers` subscriptions
/// (each with some of `events` events received, the rest pending) and every
/// handle are dropped: nothing, the channel's pooled block and every
/// pending event included. Counted from before the bus was made.
pub fn dropped_bus_scopebus(subscribers: usize, events: usize) -> i64 {
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    let bus = scopebus::Bus::new();
    let mut subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    for n in 0..events {
        let _ = bus.send(n as Payload);
    }
    // Half of each subscription's events received: blocks freed into the
    // pool, the rest still pending in the chain.
    for sub in &mut subs {
        for _ in 0..events / 2 {
            drop(sub.try_recv());
        }
    }
    drop((subs, bus));
    live(&region.change())
}

/// scopebus: bytes still held after `rounds` rounds in which 64
/// subscriptions each waited (a waker registered) and were then dropped,
/// with no send in between, while two others wait throughout:
/// the waiter list's vacated entries are reclaimed by compaction, so this
/// stays flat however many rounds.
pub fn waited_and_dropped_scopebus(rounds: usize) -> i64 {
    use futures::StreamExt;
    use std::task::{Context, Waker};
    let bus = scopebus::Bus::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut keep = [bus.subscribe::<Payload>(), bus.subscribe::<Payload>()];
    for sub in &mut keep {
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
    }
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    for _ in 0..rounds {
        let mut crowd: Vec<_> = (0..64).map(|_| bus.subscribe::<Payload>()).collect();
        for sub in &mut crowd {
            assert!(sub.poll_next_unpin(&mut cx).is_pending());
        }
        drop(crowd);
        // A compaction wakes the waiters spuriously: those kept register
        // again, as their executor would poll them.
        for sub in &mut keep {
            let _ = sub.poll_next_unpin(&mut cx);
        }
    }
    let left = live(&region.change());
    drop((keep, bus));
    left
}

/// scopebus: bytes still held after `subscribers` subscriptions with
/// `events` pending each were dropped unpolled (RECLAIM-2), the bus alive.
pub fn dropped_unpolled_scopebus(subscribers: usize, events: usize) -> i64 {
    let bus = scopebus::Bus::new();
    drop(bus.subscribe::<Payload>());
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    let subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    for n in 0..events {
        let _ = bus.send(n as Payload);
    }
    drop(subs);
    let left = live(&region.change());
    drop(bus);
    left
}

/// scopebus, the asynchronous paths: bytes still held after `subscribers`
/// subscriptions were polled until they waited (a waker registered), got
/// `events` events, and were then dropped: half of them after receiving
/// some of the events, the other half without receiving any (RECLAIM-2,
/// CANCEL-1). Counted from after the channel was made; the bus stays alive.
pub fn dropped_waiting_scopebus(subscribers: usize, events: usize) -> i64 {
    use futures::StreamExt;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let bus = scopebus::Bus::new();
    drop(bus.subscribe::<Payload>());
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    let mut subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    for sub in &mut subs {
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
    }
    for n in 0..events {
        let _ = bus.send(n as Payload);
    }
    for sub in subs.iter_mut().step_by(2) {
        for _ in 0..events / 2 {
            match sub.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(event)) => drop(event),
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }
    drop(subs);
    let left = live(&region.change());
    assert_eq!(bus.stats_of::<Payload>().retained, 0);
    drop(bus);
    left
}

/// scopebus: bytes still held after a bus with `subscribers` waiting
/// subscriptions got `events` events and was closed, and every subscription
/// received them all and then its end (CLOSE-1, RECLAIM-1). Counted from
/// after subscribing, the bus and the subscriptions still alive.
pub fn closed_and_drained_scopebus(subscribers: usize, events: usize) -> i64 {
    use futures::StreamExt;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let bus = scopebus::Bus::new();
    let mut subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    for sub in &mut subs {
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
    }
    for n in 0..events {
        let _ = bus.send(n as Payload);
    }
    bus.close();
    for sub in &mut subs {
        for _ in 0..events {
            match sub.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(event)) => drop(event),
                other => panic!("expected an event, got {other:?}"),
            }
        }
        assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(None)));
    }
    let left = live(&region.change());
    drop((subs, bus));
    left
}

/// Allocations per send for a channel whose subscriptions keep up.
#[derive(Clone, Debug)]
pub struct PerSend {
    /// The channel.
    pub peer: &'static str,
    /// Subscriptions, each receiving every event.
    pub subscribers: usize,
    /// Sends measured (after a warm-up of as many).
    pub sends: usize,
    /// Allocations (of any size) per send, the event's own included.
    pub allocations: f64,
}

/// Sends per batch in the allocation probes: the sender sends this many,
/// then every subscription takes what it was sent (as the `live` benchmark
/// does, yielding after every 16 sends).
const BATCH: usize = 16;

/// Allocations per send of `run(sends)` in its steady state: run once to
/// warm up (blocks, rings and waiter lists made), then counted.
fn steady_allocations(sends: usize, mut run: impl FnMut(usize)) -> f64 {
    run(sends);
    let region = Region::new(&INSTRUMENTED_SYSTEM);
    run(sends);
    region.change().allocations as f64 / sends as f64
}

/// `sends` sends in batches of [`BATCH`], each batch received in full by
/// every subscription before the next: `send(n)` sends event `n`,
/// `receive_all()` lets every subscription take what it was sent.
fn in_batches(sends: usize, mut send: impl FnMut(usize), mut receive_all: impl FnMut()) {
    for batch in 0..sends / BATCH {
        for n in 0..BATCH {
            send(batch * BATCH + n);
        }
        receive_all();
    }
}

/// scopebus: allocations per `send` by value (the event's `Arc` is made by
/// the bus) with `subscribers` subscriptions that keep up, in batches of
/// [`BATCH`]; a warm-up of `sends` sends first, so that only the steady
/// state is counted.
pub fn per_send_scopebus(subscribers: usize, sends: usize) -> PerSend {
    let bus = scopebus::Bus::new();
    let mut subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    let allocations = steady_allocations(sends, |sends| {
        let receive_all = || {
            for sub in &mut subs {
                while let scopebus::TryRecv::Event(event) = sub.try_recv() {
                    drop(event);
                }
            }
        };
        in_batches(
            sends,
            |n| {
                let _ = bus.send(n as Payload);
            },
            receive_all,
        );
    });
    PerSend {
        peer: "scopebus",
        subscribers,
        sends,
        allocations,
    }
}

/// `tokio::sync::broadcast` (capacity 1,024), as [`per_send_scopebus`]:
/// the caller makes the event's `Arc`, counted here too.
pub fn per_send_tokio(subscribers: usize, sends: usize) -> PerSend {
    let (tx, rx) = tokio::sync::broadcast::channel::<Arc<Payload>>(1024);
    let mut subs: Vec<_> = (1..subscribers).map(|_| tx.subscribe()).collect();
    subs.push(rx);
    let allocations = steady_allocations(sends, |sends| {
        let receive_all = || {
            for sub in &mut subs {
                while let Ok(event) = sub.try_recv() {
                    drop(event);
                }
            }
        };
        in_batches(
            sends,
            |n| drop(tx.send(Arc::new(n as Payload))),
            receive_all,
        );
    });
    PerSend {
        peer: "tokio-broadcast",
        subscribers,
        sends,
        allocations,
    }
}

/// scopebus: allocations per send when every subscription waits for each
/// event (polled until it has registered its waker, then woken by the
/// send and polled again), as tasks that keep up do; after a warm-up.
pub fn per_send_waiting_scopebus(subscribers: usize, sends: usize) -> PerSend {
    use futures::StreamExt;
    use std::task::{Context, Poll, Waker};
    let bus = scopebus::Bus::new();
    let mut subs: Vec<_> = (0..subscribers)
        .map(|_| bus.subscribe::<Payload>())
        .collect();
    let mut cx = Context::from_waker(Waker::noop());
    let allocations = steady_allocations(sends, |sends| {
        for n in 0..sends {
            for sub in &mut subs {
                assert!(sub.poll_next_unpin(&mut cx).is_pending());
            }
            let _ = bus.send(n as Payload);
            for sub in &mut subs {
                assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(Some(_))));
            }
        }
    });
    PerSend {
        peer: "scopebus (waiting)",
        subscribers,
        sends,
        allocations,
    }
}
