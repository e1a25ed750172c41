//! Model checking of the bus's synchronization with loom: every
//! interleaving (up to loom's preemption bound) of a send against a
//! receive, a close, a subscribe, a drop and a waker's registration.
//!
//! Run with `cargo xtask loom` (which sets `RUSTFLAGS="--cfg loom"`, a
//! target directory of its own, `LOOM_MAX_PREEMPTIONS` and debug
//! assertions on). Under `cfg(loom)` the bus's atomics and locks are
//! loom's (`bus/src/sync.rs`), a block of its chain has two slots, and each
//! slot carries a tracked cell standing for the event's `Arc`
//! (`bus/src/chain.rs`): the send and the pass that releases the slot's
//! reference write it, every other pass reads it before touching the
//! `Arc`. So loom reports a pass that takes its reference unordered with
//! the release (a use-after-free) or the publication (a data race on the
//! payload), and switches threads around every `Arc` operation.
//!
//! What the tests reach: the lone and the counted pass (`take`), the
//! skip of an ending subscription (`skip`), linking a new block, stepping
//! a cursor across blocks, freeing a block into the pool and taking it out
//! again (`blocks_recycled_through_the_pool`), and the waiter list. What
//! they do not: the sweep of a block dropped with events in it and a
//! cursor dropped without passing, which only planted bugs reach (the
//! mutants' runs and `bus/tests/memory.rs` cover those), and leaks of
//! blocks, which are `std` allocations loom does not track (the memory
//! tests count them).
//!
//! Each test checks what the rules promise in every interleaving:
//! FIFO-1 and exactly-once delivery, VIS-1 for a concurrent subscribe,
//! CLOSE-1 for a concurrent close, WAKE-1 (a receive woken by the send or
//! close it waits for), and RECLAIM-1/RECLAIM-2: every event's destructor
//! runs exactly once, by the time every subscription has passed it, and
//! the retained count returns to zero. Loom fails a test on a causality
//! violation, a deadlock, or a leaked loom object.

#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use scopebus::{Bus, Subscription, TryRecv};

/// An event that counts its drops.
struct Tracked {
    n: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn send(bus: &Bus, n: usize, drops: &Arc<AtomicUsize>) -> usize {
    let event = Tracked {
        n,
        drops: drops.clone(),
    };
    bus.send(event).unwrap_or(0)
}

/// Receives until the stream ends, returning the numbers seen.
fn drain(sub: &mut Subscription<Tracked>) -> Vec<usize> {
    let mut seen = Vec::new();
    while let Some(event) = block_on(sub.recv()) {
        seen.push(event.n);
    }
    seen
}

/// A send on one thread against a receive on another, across a block
/// boundary: every event once, in order, each freed once; the receiver is
/// woken for each (or finds it), and ends at the close.
#[test]
fn send_against_receive() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut sub = bus.subscribe::<Tracked>();
        let sender = {
            let (bus, drops) = (bus.clone(), drops.clone());
            thread::spawn(move || {
                for n in 0..3 {
                    assert_eq!(send(&bus, n, &drops), 1);
                }
                bus.close();
            })
        };
        assert_eq!(drain(&mut sub), vec![0, 1, 2]);
        sender.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        assert_eq!(bus.stats_of::<Tracked>().retained, 0);
    });
}

/// Two subscriptions passing the same slots at once (the lone-passer path
/// against the counted one): both get every event, each event is freed
/// once, after both passed it.
#[test]
fn two_receivers_share_slots() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut first = bus.subscribe::<Tracked>();
        let mut second = bus.subscribe::<Tracked>();
        for n in 0..3 {
            assert_eq!(send(&bus, n, &drops), 2);
        }
        bus.close();
        let other = thread::spawn(move || drain(&mut second));
        assert_eq!(drain(&mut first), vec![0, 1, 2]);
        assert_eq!(other.join().unwrap(), vec![0, 1, 2]);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        assert_eq!(bus.stats_of::<Tracked>().retained, 0);
    });
}

/// A subscription dropped while sends go on (and while another receives):
/// nothing it did not receive stays behind (RECLAIM-2), the other
/// subscription gets everything.
#[test]
fn drop_against_send() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut kept = bus.subscribe::<Tracked>();
        let dropped = bus.subscribe::<Tracked>();
        let dropper = thread::spawn(move || drop(dropped));
        for n in 0..3 {
            send(&bus, n, &drops);
        }
        dropper.join().unwrap();
        bus.close();
        assert_eq!(drain(&mut kept), vec![0, 1, 2]);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        assert_eq!(bus.stats_of::<Tracked>().retained, 0);
    });
}

/// A close against a receive that may be waiting: the receiver gets what
/// was sent before the close and then ends (CLOSE-1; no lost wakeup).
#[test]
fn close_against_waiting_receive() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut sub = bus.subscribe::<Tracked>();
        let closer = {
            let (bus, drops) = (bus.clone(), drops.clone());
            thread::spawn(move || {
                send(&bus, 0, &drops);
                bus.close();
                // After close nothing is delivered (CLOSE-2).
                assert_eq!(send(&bus, 9, &drops), 0);
            })
        };
        assert_eq!(drain(&mut sub), vec![0]);
        closer.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

/// A subscribe against sends: the new subscription sees exactly a suffix
/// of what was sent (VIS-1), and its retained events are freed once it is
/// dropped.
#[test]
fn subscribe_against_send() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let _anchor = bus.subscribe::<Tracked>();
        let subscriber = {
            let bus = bus.clone();
            thread::spawn(move || bus.subscribe::<Tracked>())
        };
        for n in 0..3 {
            send(&bus, n, &drops);
        }
        let mut late = subscriber.join().unwrap();
        let mut seen = Vec::new();
        while let TryRecv::Event(event) = late.try_recv() {
            seen.push(event.n);
        }
        let suffix: Vec<usize> = (3 - seen.len()..3).collect();
        assert_eq!(
            seen, suffix,
            "VIS-1: a subscription sees a suffix of the sends"
        );
        drop((late, _anchor));
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        assert_eq!(bus.stats_of::<Tracked>().retained, 0);
    });
}

/// A close against a subscribe: the subscription is either live and ends
/// after the close, or ended at once (CLOSE-3); it never hangs.
#[test]
fn subscribe_against_close() {
    loom::model(|| {
        let bus = Bus::new();
        let closer = {
            let bus = bus.clone();
            thread::spawn(move || bus.close())
        };
        let mut sub = bus.subscribe::<Tracked>();
        closer.join().unwrap();
        assert_eq!(drain(&mut sub), Vec::<usize>::new());
        assert!(sub.is_ended());
    });
}

/// A receive re-polled from a second task (a new waker) while a send
/// lands: the new waker is the one woken (WAKE-1), and the event arrives.
#[test]
fn waker_moved_against_send() {
    use futures_core::Stream;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut sub = bus.subscribe::<Tracked>();
        let noop = Waker::noop();
        assert!(
            Pin::new(&mut sub)
                .poll_next(&mut Context::from_waker(noop))
                .is_pending()
        );
        let sender = {
            let (bus, drops) = (bus.clone(), drops.clone());
            thread::spawn(move || send(&bus, 0, &drops))
        };
        // Polled again by a task that really waits: it must be woken.
        let event = block_on(std::future::poll_fn(|cx| {
            match Pin::new(&mut sub).poll_next(cx) {
                Poll::Ready(event) => Poll::Ready(event),
                Poll::Pending => Poll::Pending,
            }
        }));
        assert_eq!(event.map(|e| e.n), Some(0));
        sender.join().unwrap();
    });
}

/// Two senders at once, a receiver on a third thread: every event arrives
/// once, each sender's in its order (FIFO-1 per sender), and all are freed.
#[test]
fn two_senders_against_receive() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut sub = bus.subscribe::<Tracked>();
        let senders: Vec<_> = [0, 10]
            .into_iter()
            .map(|base| {
                let (bus, drops) = (bus.clone(), drops.clone());
                thread::spawn(move || {
                    send(&bus, base, &drops);
                    send(&bus, base + 1, &drops);
                })
            })
            .collect();
        let receiver = thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < 4 {
                match block_on(sub.recv()) {
                    Some(event) => seen.push(event.n),
                    None => break,
                }
            }
            seen
        });
        for sender in senders {
            sender.join().unwrap();
        }
        let seen = receiver.join().unwrap();
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 10, 11], "every event once: {seen:?}");
        let position = |n: usize| seen.iter().position(|&m| m == n);
        assert!(
            position(0) < position(1) && position(10) < position(11),
            "FIFO-1: {seen:?}"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    });
}

/// A block freed into the pool and taken out again while a receiver reads
/// on: with two slots a block, the third receive frees the first block into
/// the pool, and the fifth send takes it back, concurrently with receives.
#[test]
fn blocks_recycled_through_the_pool() {
    loom::model(|| {
        let bus = Bus::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let mut sub = bus.subscribe::<Tracked>();
        for n in 0..3 {
            send(&bus, n, &drops);
        }
        for n in 0..3 {
            assert!(matches!(sub.try_recv(), TryRecv::Event(e) if e.n == n));
        }
        let sender = {
            let (bus, drops) = (bus.clone(), drops.clone());
            thread::spawn(move || {
                for n in 3..6 {
                    send(&bus, n, &drops);
                }
                bus.close();
            })
        };
        assert_eq!(drain(&mut sub), vec![3, 4, 5]);
        sender.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 6);
        assert_eq!(bus.stats_of::<Tracked>().retained, 0);
    });
}
