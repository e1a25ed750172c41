//! SHARE-1: one subscription pulled by several tasks gives each event to
//! exactly one of them, in send order across them, and the end to all.

use futures::StreamExt;
use futures::task::noop_waker_ref;
use scopebus::{Bus, SharedSubscription};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

mod support;

#[derive(Debug, PartialEq)]
struct Job(u32);

/// Two pulls wait at once; each event goes to one of them, none twice.
#[test]
fn share_1_two_waiting_pulls_get_each_event_once() {
    let _watchdog = support::watchdog();
    waiting_pulls(Bus::new()).unwrap();
}

#[cfg(feature = "mutants")]
#[test]
fn share_1_test_catches_an_event_handed_to_every_waiting_pull() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    let bus = with_mutant(Some(Mutant::SharedPullDuplicates), Bus::new);
    assert!(waiting_pulls(bus).is_err());
}

/// Parks two pulls of one shared subscription of `bus`, sends two events,
/// and collects what each pull then gets.
fn waiting_pulls(bus: Bus) -> Result<(), String> {
    let shared = bus.subscribe::<Job>().share();
    let (a, b) = (shared.clone(), shared);
    let mut cx = Context::from_waker(noop_waker_ref());
    if a.poll_recv(&mut cx).is_ready() || b.poll_recv(&mut cx).is_ready() {
        return Err("nothing was sent, so both pulls must wait".to_owned());
    }
    bus.send(Job(1)).map_err(|_| "open bus")?;
    bus.send(Job(2)).map_err(|_| "open bus")?;
    let mut got = Vec::new();
    for pull in [&a, &b, &a, &b] {
        if let Poll::Ready(Some(job)) = pull.poll_recv(&mut cx) {
            got.push(job.0);
        }
    }
    match got.as_slice() {
        [1, 2] => Ok(()),
        other => Err(format!(
            "the pulls got {other:?}; expected 1 then 2, once each"
        )),
    }
}

/// Four tokio tasks on two threads drain one shared subscription: every
/// event reaches exactly one of them, each sees its events in send order,
/// and all of them end when the bus closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_1_competing_tasks_drain_each_event_once() {
    let _watchdog = support::watchdog();
    const EVENTS: u32 = 2_000;
    let bus = Bus::new();
    let shared: SharedSubscription<Job> = bus.subscribe::<Job>().share();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut pulls = shared.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = pulls.next().await {
                    mine.push(job.0);
                    tokio::task::yield_now().await;
                }
                mine
            })
        })
        .collect();
    drop(shared);
    for n in 0..EVENTS {
        bus.send(Job(n)).expect("open bus");
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    bus.close();
    let mut all = BTreeSet::new();
    let mut total = 0;
    for worker in workers {
        let mine = tokio::time::timeout(Duration::from_secs(20), worker)
            .await
            .expect("every puller ends once the bus closes")
            .expect("no panic");
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "send order per puller"
        );
        total += mine.len();
        all.extend(mine);
    }
    assert_eq!(total, EVENTS as usize, "no event twice");
    assert_eq!(all.len(), EVENTS as usize, "no event lost");
}

/// Dropping every clone releases what the subscription held (RECLAIM-2),
/// and a pull dropped while it waits disturbs nothing (CANCEL-2).
#[test]
fn share_1_last_clone_releases_and_abandoned_pulls_are_harmless() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let shared = bus.subscribe::<Job>().share();
    let other = shared.clone();
    {
        let abandoned = shared.recv();
        let mut abandoned = Box::pin(abandoned);
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(abandoned.as_mut().poll(&mut cx).is_pending());
    }
    bus.send(Job(7)).expect("open bus");
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(
        other.poll_recv(&mut cx),
        Poll::Ready(Some(Arc::new(Job(7))))
    );
    bus.send(Job(8)).expect("open bus");
    assert_eq!(bus.stats().retained(), 1);
    drop((shared, other));
    assert_eq!(bus.stats().retained(), 0, "the last clone let go");
}

/// No lost wakeup across a pull's two locks: a send landing after the pull
/// found the subscription empty and before it joined the list of waiting
/// pulls wakes the shared waker while nobody is on the list; the pull must
/// see that a wakeup came and wake itself, or it waits forever.
#[cfg(feature = "mutants")]
#[test]
fn share_1_a_send_between_a_pulls_two_locks_still_wakes_it() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let shared = bus.subscribe::<Job>().share();
    let (wakes, waker) = support::Wakes::new();
    let other = bus.clone();
    let (first, fired) = support::at_yield_point(
        scopebus::mutants::YieldPoint::BeforeSharedWait,
        move || assert_eq!(other.send(Job(1)).ok(), Some(1)),
        || shared.poll_recv(&mut Context::from_waker(&waker)),
    );
    assert!(fired, "the pull reached its yield point");
    assert!(first.is_pending());
    assert!(
        wakes.count() >= 1,
        "the pull was not woken for the event sent while it let go of the subscription"
    );
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(matches!(shared.poll_recv(&mut cx), Poll::Ready(Some(job)) if job.0 == 1));
}

/// A pull that finds the subscription busy (another pull is inside its
/// poll: here, at that poll's yield point) waits without blocking and is
/// woken when the other lets go, so that it looks again.
#[cfg(feature = "mutants")]
#[test]
fn share_1_a_pull_that_found_the_subscription_busy_is_woken_when_it_is_free() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let a = bus.subscribe::<Job>().share();
    let b = a.clone();
    let (wakes, b_waker) = support::Wakes::new();
    let (first, fired) = support::at_yield_point(
        scopebus::mutants::YieldPoint::BeforeRegister,
        move || {
            let polled = b.poll_recv(&mut Context::from_waker(&b_waker));
            assert!(polled.is_pending(), "the subscription is busy: b waits");
        },
        || a.poll_recv(&mut Context::from_waker(noop_waker_ref())),
    );
    assert!(fired, "a's poll reached its yield point");
    assert!(first.is_pending());
    assert!(
        wakes.count() >= 1,
        "b found the subscription busy and was not woken when a let go of it"
    );
}
