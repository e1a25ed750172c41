//! Hand-written scenarios for the bus handle, one or more per SPEC.md rule.
//! The simulator and the conformance suite check the same rules over
//! generated workloads; these pin the obvious cases in plain code.

use futures::StreamExt;
use futures::executor::block_on;
use futures::task::noop_waker_ref;
use scopebus::{Bus, TryRecv};
use std::sync::Arc;
use std::task::{Context, Poll};

mod support;

#[derive(Debug, PartialEq)]
struct Ping(u32);

mod other {
    #[derive(Debug, PartialEq)]
    pub struct Ping(pub u32);
}

#[derive(Debug, PartialEq)]
struct Wrapped(Ping);

#[derive(Debug, PartialEq)]
struct Generic<T>(u32, std::marker::PhantomData<T>);

type PingAlias = Ping;

fn drain<T: scopebus::Event>(sub: &mut scopebus::Subscription<T>) -> Vec<Arc<T>> {
    let mut out = Vec::new();
    while let TryRecv::Event(e) = sub.try_recv() {
        out.push(e);
    }
    out
}

#[test]
fn route_1_exact_type_only() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut ping = bus.subscribe::<Ping>();
    let mut other = bus.subscribe::<other::Ping>();
    let mut wrapped = bus.subscribe::<Wrapped>();
    let mut g8 = bus.subscribe::<Generic<u8>>();
    let mut alias = bus.subscribe::<PingAlias>();
    bus.send(other::Ping(1)).unwrap();
    bus.send(Wrapped(Ping(2))).unwrap();
    bus.send(Generic::<u16>(3, Default::default())).unwrap();
    bus.send(Ping(4)).unwrap();
    assert_eq!(drain(&mut ping), vec![Arc::new(Ping(4))]);
    assert_eq!(
        drain(&mut alias),
        vec![Arc::new(Ping(4))],
        "ROUTE-1: an alias is the same type"
    );
    assert_eq!(drain(&mut other), vec![Arc::new(other::Ping(1))]);
    assert_eq!(drain(&mut wrapped).len(), 1);
    assert!(
        drain(&mut g8).is_empty(),
        "ROUTE-1: Generic<u16> is not Generic<u8>"
    );
}

#[test]
fn vis_1_and_fifo_1_and_fanout_1() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut early = bus.subscribe::<Ping>();
    bus.send(Ping(1)).unwrap();
    let mut late = bus.subscribe::<Ping>();
    bus.send(Ping(2)).unwrap();
    bus.send(Ping(3)).unwrap();
    let early: Vec<u32> = drain(&mut early).iter().map(|p| p.0).collect();
    let late: Vec<u32> = drain(&mut late).iter().map(|p| p.0).collect();
    assert_eq!(early, vec![1, 2, 3]);
    assert_eq!(
        late,
        vec![2, 3],
        "VIS-1: no event sent before the subscription"
    );
}

#[test]
fn fanout_1_shares_one_arc() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut a = bus.subscribe::<Ping>();
    let mut b = bus.subscribe::<Ping>();
    assert_eq!(bus.send(Ping(7)).unwrap(), 2);
    let (x, y) = (drain(&mut a), drain(&mut b));
    assert!(Arc::ptr_eq(&x[0], &y[0]), "no clone per subscriber");
}

#[test]
fn drop_1_nothing_stored_without_subscribers() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    assert_eq!(bus.send(Ping(1)).unwrap(), 0);
    let mut sub = bus.subscribe::<Ping>();
    assert_eq!(bus.stats_of::<Ping>().retained, 0);
    assert!(drain(&mut sub).is_empty(), "DROP-1: never delivered later");
}

#[test]
fn reclaim_1_freed_when_all_consumed() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut a = bus.subscribe::<Ping>();
    let mut b = bus.subscribe::<Ping>();
    for i in 0..10 {
        bus.send(Ping(i)).unwrap();
    }
    assert_eq!(bus.stats_of::<Ping>().retained, 10);
    drain(&mut a);
    assert_eq!(bus.stats_of::<Ping>().retained, 10, "b still needs them");
    for _ in 0..4 {
        assert!(matches!(b.try_recv(), TryRecv::Event(_)));
    }
    assert_eq!(bus.stats_of::<Ping>().retained, 6);
    drain(&mut b);
    assert_eq!(bus.stats_of::<Ping>().retained, 0);
}

#[test]
fn reclaim_2_dropping_a_never_polled_subscription_frees() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut a = bus.subscribe::<Ping>();
    let never_polled = bus.subscribe::<Ping>();
    for i in 0..100 {
        bus.send(Ping(i)).unwrap();
    }
    drain(&mut a);
    assert_eq!(bus.stats_of::<Ping>().retained, 100);
    drop(never_polled);
    let stats = bus.stats_of::<Ping>();
    assert_eq!((stats.retained, stats.subscriptions), (0, 1));
}

#[test]
fn reclaim_2_long_chain_drops_without_stack_overflow() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let sub = bus.subscribe::<Ping>();
    for i in 0..1_000_000 {
        bus.send(Ping(i)).unwrap();
    }
    assert_eq!(bus.stats_of::<Ping>().retained, 1_000_000);
    drop(sub);
    assert_eq!(bus.stats_of::<Ping>().retained, 0);
}

#[test]
fn close_1_drain_then_end() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut sub = bus.subscribe::<Ping>();
    bus.send(Ping(1)).unwrap();
    bus.send(Ping(2)).unwrap();
    bus.close();
    let got: Vec<u32> = block_on(sub.by_ref().map(|p| p.0).collect());
    assert_eq!(got, vec![1, 2]);
    assert!(sub.is_ended());
    assert_eq!(bus.stats_of::<Ping>().subscriptions, 0);
}

#[test]
fn close_2_send_after_close_fails_and_delivers_nothing() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut sub = bus.subscribe::<Ping>();
    bus.close();
    let back = bus.send(Ping(9)).unwrap_err().into_inner();
    assert_eq!(back, Ping(9));
    assert_eq!(sub.try_recv(), TryRecv::Ended);
}

#[test]
fn close_3_subscribe_after_close_ends_at_once() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    bus.close();
    let mut sub = bus.subscribe::<Ping>();
    assert_eq!(block_on(sub.next()), None);
}

#[test]
fn cancel_1_dropping_a_waiting_subscriber_disturbs_nobody() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut a = bus.subscribe::<Ping>();
    let mut b = bus.subscribe::<Ping>();
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(a.poll_next_unpin(&mut cx).is_pending());
    assert!(b.poll_next_unpin(&mut cx).is_pending());
    drop(a);
    assert_eq!(bus.send(Ping(1)).unwrap(), 1);
    assert!(matches!(b.poll_next_unpin(&mut cx), Poll::Ready(Some(_))));
}

/// CANCEL-2: receives abandoned by a timeout and by a `select`, on a real
/// runtime: nothing is lost or duplicated, the subscription keeps working,
/// and a sibling and the sender notice nothing.
#[test]
fn cancel_2_abandoned_receives_lose_and_disturb_nothing() {
    let _watchdog = support::watchdog();
    abandoned_receives(Bus::new()).unwrap();
}

#[cfg(feature = "mutants")]
#[test]
fn cancel_2_test_catches_a_receive_that_is_not_cancel_safe() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    let bus = with_mutant(Some(Mutant::RecvHoldsCursor), Bus::new);
    assert!(abandoned_receives(bus).is_err());
}

/// Abandons receives on `bus` in every way a user does, then checks that
/// the subscription and a sibling still get every event, once, in order.
fn abandoned_receives(bus: Bus) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut sub = bus.subscribe::<Ping>();
        let mut sibling = bus.subscribe::<Ping>();
        let tick = std::time::Duration::from_millis(5);
        let patience = std::time::Duration::from_secs(1);
        // A timeout around a receive that finds nothing.
        assert!(tokio::time::timeout(tick, sub.recv()).await.is_err());
        // A select that another branch wins, with the receive pending.
        tokio::select! {
            biased;
            () = tokio::time::sleep(tick) => {}
            _ = sub.recv() => return Err("nothing was sent, yet a receive completed".to_owned()),
        }
        assert_eq!(bus.send(Ping(1)).unwrap(), 2, "the sender notices nothing");
        assert_eq!(bus.send(Ping(2)).unwrap(), 2);
        // Abandoned with an event there: a future never polled takes nothing.
        drop(sub.recv());
        let mut got = Vec::new();
        for which in [0, 0, 1, 1] {
            let s = if which == 0 { &mut sub } else { &mut sibling };
            match tokio::time::timeout(patience, s.recv()).await {
                Ok(Some(p)) => got.push(p.0),
                other => return Err(format!("expected an event, got {other:?}")),
            }
        }
        if got != [1, 2, 1, 2] {
            return Err(format!("lost, duplicated or reordered: {got:?}"));
        }
        // Still usable: a pending receive after the abandoned ones is woken.
        let waiting = tokio::spawn(async move { sub.recv().await.map(|p| p.0) });
        tokio::task::yield_now().await;
        bus.send(Ping(3)).unwrap();
        match tokio::time::timeout(patience, waiting).await {
            Ok(Ok(Some(3))) => Ok(()),
            other => Err(format!("the last receive got {other:?}")),
        }
    })
}

/// FAIL-2: a subscriber task that panics while it waits lets go of its
/// subscription as its panic unwinds (it is no longer counted and holds
/// nothing), a send from its cleanup (a `Drop` guard) goes through, and a
/// sibling notices nothing.
#[test]
fn fail_2_a_panicking_subscriber_lets_go_and_its_cleanup_sends() {
    let _watchdog = support::watchdog();
    failed_subscriber(Bus::new()).unwrap();
}

#[cfg(feature = "mutants")]
#[test]
fn fail_2_test_catches_a_subscription_kept_during_an_unwind() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    let bus = with_mutant(Some(Mutant::DropWhilePanickingLeaks), Bus::new);
    assert!(failed_subscriber(bus).is_err());
}

/// A subscriber of `bus` that panics mid-wait, with a cleanup that sends;
/// then checks the counts, what is retained and what the sibling gets.
fn failed_subscriber(bus: Bus) -> Result<(), String> {
    /// Sends from its `Drop`, during the unwind, and keeps what the send
    /// said (a destructor must not panic while one unwinds).
    /// Whether the send ran during an unwind, and what it said.
    type Outcome = Arc<std::sync::Mutex<Option<(bool, Result<usize, u32>)>>>;
    struct Cleanup(Bus, Outcome);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let sent = self.0.send(Ping(2)).map_err(|c| c.into_inner().0);
            *self.1.lock().unwrap() = Some((std::thread::panicking(), sent));
        }
    }
    let mut sibling = bus.subscribe::<Ping>();
    let failing = bus.subscribe::<Ping>();
    let outcome = Arc::new(std::sync::Mutex::new(None));
    let cleanup = Cleanup(bus.clone(), outcome.clone());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _cleanup = cleanup;
        let mut failing = failing;
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(failing.poll_next_unpin(&mut cx).is_pending(), "waits");
        // Unwinds without the panic hook: nothing is printed.
        std::panic::resume_unwind(Box::new("the subscriber failed"));
    }));
    if unwound.is_ok() {
        return Err("the subscriber did not fail".to_owned());
    }
    let cleanup_sent = outcome.lock().unwrap().take();
    if cleanup_sent != Some((true, Ok(1))) {
        return Err(format!(
            "the cleanup's send, during the unwind, reached {cleanup_sent:?}; expected the sibling alone"
        ));
    }
    let stats = bus.stats_of::<Ping>();
    if stats.subscriptions != 1 || stats.retained != 1 {
        return Err(format!(
            "after the failure: {} live subscriptions and {} retained, expected 1 and 1",
            stats.subscriptions, stats.retained
        ));
    }
    bus.send(Ping(3)).map_err(|_| "the bus closed".to_owned())?;
    let got: Vec<u32> = drain(&mut sibling).iter().map(|p| p.0).collect();
    if got != [2, 3] {
        return Err(format!("the sibling got {got:?}, expected [2, 3]"));
    }
    match bus.stats_of::<Ping>().retained {
        0 => Ok(()),
        n => Err(format!(
            "{n} events retained once the sibling read them all"
        )),
    }
}

#[test]
fn wake_1_a_waiting_subscriber_is_woken_by_send() {
    let _watchdog = support::watchdog();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let bus = Bus::new();
        let mut subs: Vec<_> = (0..8).map(|_| bus.subscribe::<Ping>()).collect();
        let readers: Vec<_> = subs
            .drain(..)
            .map(|mut s| {
                tokio::spawn(async move {
                    let mut n = 0u32;
                    while let Some(p) = s.next().await {
                        assert_eq!(p.0, n, "FIFO-1 across threads");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for i in 0..10_000 {
            bus.send(Ping(i)).unwrap();
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        bus.close();
        for r in readers {
            assert_eq!(r.await.unwrap(), 10_000);
        }
        assert_eq!(bus.stats_of::<Ping>().retained, 0);
    });
}

/// A waiting subscription whose waker, when woken, polls it at once until
/// it waits again, as an executor that runs woken tasks inline would: it
/// registers again while the send that woke it is still waking others.
struct Inline {
    sub: std::sync::Mutex<Option<scopebus::Subscription<Ping>>>,
    received: std::sync::atomic::AtomicUsize,
}

impl Inline {
    fn poll(self: &Arc<Self>) {
        let waker = std::task::Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut sub = self.sub.lock().unwrap();
        let Some(sub) = sub.as_mut() else { return };
        while let Poll::Ready(Some(_)) = sub.poll_next_unpin(&mut cx) {
            self.received
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl std::task::Wake for Inline {
    fn wake(self: Arc<Self>) {
        self.poll();
    }
}

/// WAKE-1: subscriptions that wait again while the send that woke them is
/// still waking the others are woken by the next send. The send gives the
/// channel its emptied vector of wakers back afterwards, for reuse; it must
/// not replace the registrations made meanwhile.
#[test]
fn wake_1_subscriptions_waiting_again_during_a_send_are_woken_by_the_next() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let inline: Vec<Arc<Inline>> = (0..3)
        .map(|_| {
            Arc::new(Inline {
                sub: std::sync::Mutex::new(Some(bus.subscribe())),
                received: Default::default(),
            })
        })
        .collect();
    inline.iter().for_each(Inline::poll);
    for n in 1..=3 {
        bus.send(Ping(n)).unwrap();
        for (k, i) in inline.iter().enumerate() {
            assert_eq!(
                i.received.load(std::sync::atomic::Ordering::SeqCst),
                n as usize,
                "subscription {k} after send {n}: it waited again during the last send and was not woken"
            );
        }
    }
    // Each subscription's registered waker holds its `Inline`: let go.
    for i in &inline {
        i.sub.lock().unwrap().take();
    }
}

#[test]
fn send_1_send_does_not_wait_for_slow_subscribers() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let _never_read: Vec<_> = (0..1024).map(|_| bus.subscribe::<Ping>()).collect();
    for i in 0..10_000 {
        assert_eq!(bus.send(Ping(i)).unwrap(), 1024);
    }
    assert_eq!(bus.stats_of::<Ping>().retained, 10_000);
}

#[test]
fn repeated_polls_do_not_grow_the_waiter_list() {
    let _watchdog = support::watchdog();
    // A subscription polled many times without an event (spurious wakeups)
    // must keep a single registration: memory stays flat.
    let bus = Bus::new();
    let mut sub = bus.subscribe::<Ping>();
    let mut cx = Context::from_waker(noop_waker_ref());
    for _ in 0..100_000 {
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
    }
    bus.send(Ping(1)).unwrap();
    assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(Some(_))));
}

#[test]
fn many_waiting_subscribers_dropped_without_send_stay_bounded() {
    let _watchdog = support::watchdog();
    many_waiting_subscribers_dropped(Bus::new()).unwrap();
}

/// A subscriber waits; a crowd of others waits too, then leaves, which makes
/// the bus rebuild its waiter list. The waiting subscriber must still be
/// woken: by the rebuild (spuriously) or by the next send.
fn many_waiting_subscribers_dropped(bus: Bus) -> Result<(), String> {
    let (wakes, waker) = support::Wakes::new();
    let mut keep = bus.subscribe::<Ping>();
    assert!(
        keep.poll_next_unpin(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let noop = Context::from_waker(noop_waker_ref());
    let mut cx = noop;
    for _ in 0..10_000 {
        let mut s = bus.subscribe::<Ping>();
        assert!(s.poll_next_unpin(&mut cx).is_pending());
        // Woken spuriously by a rebuild: register again, as an executor
        // would poll it again.
        if wakes.take() {
            assert!(
                keep.poll_next_unpin(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
    }
    bus.send(Ping(5)).unwrap();
    if wakes.count() == 0 {
        return Err("the waiting subscriber was not woken by the send: its waker was lost".into());
    }
    match keep.poll_next_unpin(&mut Context::from_waker(&waker)) {
        Poll::Ready(Some(_)) => Ok(()),
        other => Err(format!("woken, but polled {other:?}")),
    }
}

#[cfg(feature = "mutants")]
#[test]
fn waiter_rebuild_test_catches_lost_wakers() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    let bus = with_mutant(Some(Mutant::CompactionLosesWakers), Bus::new);
    assert!(many_waiting_subscribers_dropped(bus).is_err());
}

#[test]
fn stats_report_per_type() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let _a = bus.subscribe::<Ping>();
    let _b = bus.subscribe::<other::Ping>();
    bus.send(Ping(1)).unwrap();
    let stats = bus.stats();
    assert_eq!(stats.types.len(), 2);
    assert_eq!(stats.get::<Ping>().unwrap().retained, 1);
    assert_eq!(stats.get::<other::Ping>().unwrap().retained, 0);
    assert_eq!(stats.subscriptions(), 2);
    assert!(!stats.closed);
}

/// A waker whose last reference panics when dropped, as a buggy executor's
/// might.
struct PanicsOnDrop;

impl std::task::Wake for PanicsOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the waker panics on drop");
    }
}

#[test]
fn a_panic_in_foreign_code_does_not_poison_the_bus() {
    let _watchdog = support::watchdog();
    // A subscription that registered a waker, then is polled with another
    // one, drops the old waker under the channel's lock: here that panics.
    let bus = Bus::new();
    let mut victim = bus.subscribe::<Ping>();
    let mut other = bus.subscribe::<Ping>();
    let first = std::task::Waker::from(Arc::new(PanicsOnDrop));
    assert!(
        victim
            .poll_next_unpin(&mut Context::from_waker(&first))
            .is_pending()
    );
    drop(first);
    let second = futures::task::noop_waker();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        victim.poll_next_unpin(&mut Context::from_waker(&second))
    }));
    assert!(result.is_err(), "the waker's panic reaches its caller");
    // Everyone, the victim included, carries on: no poisoned lock.
    assert_eq!(bus.send(Ping(1)).unwrap(), 2);
    assert_eq!(other.try_recv(), TryRecv::Event(Arc::new(Ping(1))));
    assert_eq!(victim.try_recv(), TryRecv::Event(Arc::new(Ping(1))));
    assert_eq!(bus.stats_of::<Ping>().retained, 0);
    drop(victim);
    bus.close();
    assert_eq!(other.try_recv(), TryRecv::Ended);
}

/// An event whose destructor panics, as a careless user type might.
#[derive(Debug)]
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 % 2 == 1 && !std::thread::panicking() {
            panic!("bomb {} went off", self.0);
        }
    }
}

#[test]
fn panicking_event_destructors_keep_the_accounting_exact() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let sub = bus.subscribe::<Bomb>();
    for i in 0..10 {
        bus.send(Bomb(2 * i + 2)).unwrap(); // even: harmless
        bus.send(Bomb(2 * i + 1)).unwrap(); // odd: panics when freed
    }
    assert_eq!(bus.stats_of::<Bomb>().retained, 20);
    // Freeing the chain meets ten panicking destructors: the first panic
    // reaches the caller, the process does not abort, and every event is
    // freed and counted.
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(sub)));
    assert!(dropped.is_err());
    let stats = bus.stats_of::<Bomb>();
    assert_eq!((stats.retained, stats.subscriptions), (0, 0));
    // The bus carries on.
    let mut again = bus.subscribe::<Bomb>();
    bus.send(Bomb(4)).unwrap();
    assert!(matches!(again.try_recv(), TryRecv::Event(_)));
}

#[test]
fn cancel_1_reclaim_2_dropping_a_waiting_subscription_lets_go_of_its_waker() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    // `Arc::strong_count(&handle)`: the handle and every live waker.
    let (handle, waker) = support::Wakes::new();
    let mut cx = Context::from_waker(&waker);
    let mut waiting = bus.subscribe::<u32>();
    let mut other = bus.subscribe::<u32>();
    assert!(waiting.poll_next_unpin(&mut cx).is_pending());
    assert!(other.poll_next_unpin(&mut cx).is_pending());
    // The handle, `waker`, and one registered clone per waiting subscription.
    assert_eq!(Arc::strong_count(&handle), 4);
    drop(waiting);
    // Its clone is gone at once, not at the next send: a quiet bus must not
    // keep a dropped subscriber's task alive.
    assert_eq!(Arc::strong_count(&handle), 3);
    // Polled again, the other one keeps one registration, not two.
    assert!(other.poll_next_unpin(&mut cx).is_pending());
    assert_eq!(Arc::strong_count(&handle), 3);
    drop(other);
    assert_eq!(Arc::strong_count(&handle), 2);
}

/// An event that counts its drops in a shared counter.
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counting {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn reclaim_1_reclaim_2_exact_across_blocks() {
    let _watchdog = support::watchdog();
    // Events live in blocks of slots; subscriptions at different places,
    // one dropped half-way, must free each event exactly when its last
    // live subscription has passed it, whatever block it is in.
    let freed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let freed_now = || freed.load(std::sync::atomic::Ordering::SeqCst);
    let bus = Bus::new();
    let mut ahead = bus.subscribe::<Counting>();
    let mut behind = bus.subscribe::<Counting>();
    let idle = bus.subscribe::<Counting>();
    for _ in 0..100 {
        bus.send(Counting(freed.clone())).unwrap();
    }
    let take = |sub: &mut scopebus::Subscription<Counting>, n: usize| {
        for _ in 0..n {
            assert!(matches!(sub.try_recv(), TryRecv::Event(_)));
        }
    };
    take(&mut ahead, 70);
    take(&mut behind, 10);
    assert_eq!((freed_now(), bus.stats_of::<Counting>().retained), (0, 100));
    // The idle one goes: the 10 both readers passed are freed, no more.
    drop(idle);
    assert_eq!((freed_now(), bus.stats_of::<Counting>().retained), (10, 90));
    take(&mut behind, 50);
    assert_eq!((freed_now(), bus.stats_of::<Counting>().retained), (60, 40));
    // `ahead` dropped at 70: what `behind` passed up to 60 is gone; events
    // 60..100 are now only `behind`'s.
    drop(ahead);
    assert_eq!((freed_now(), bus.stats_of::<Counting>().retained), (60, 40));
    take(&mut behind, 40);
    assert_eq!((freed_now(), bus.stats_of::<Counting>().retained), (100, 0));
    // A send with one live subscription, then its drop: freed at once.
    bus.send(Counting(freed.clone())).unwrap();
    drop(behind);
    assert_eq!((freed_now(), bus.stats_of::<Counting>().retained), (101, 0));
}

/// CLOSE-1 across `try_recv`'s lock-free look and its locked one: a send
/// then a close landing in between are both seen, in order; the event is
/// not lost to the close.
#[cfg(feature = "mutants")]
#[test]
fn close_1_a_send_and_close_between_try_recvs_two_looks_lose_nothing() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut sub = bus.subscribe::<u32>();
    let other = bus.clone();
    let (got, fired) = support::at_yield_point(
        scopebus::mutants::YieldPoint::BeforeTryRecvLock,
        move || {
            assert_eq!(other.send(7u32).ok(), Some(1));
            other.close();
        },
        || sub.try_recv(),
    );
    assert!(fired, "try_recv reached its yield point");
    assert_eq!(got, TryRecv::Event(Arc::new(7)));
    assert_eq!(sub.try_recv(), TryRecv::Ended);
}

/// CLOSE-3 across `subscribe`'s two locks: a close between the read lock
/// (no channel yet) and the write lock gives an ended subscription, and no
/// channel appears on the closed bus.
#[cfg(feature = "mutants")]
#[test]
fn close_3_a_close_between_subscribes_two_locks_gives_an_ended_subscription() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let other = bus.clone();
    let (mut sub, fired) = support::at_yield_point(
        scopebus::mutants::YieldPoint::BetweenSubscribeLocks,
        move || other.close(),
        || bus.subscribe::<u32>(),
    );
    assert!(fired, "subscribe reached its yield point");
    assert!(
        sub.is_ended(),
        "subscribed on a bus closed before it was done"
    );
    assert_eq!(sub.try_recv(), TryRecv::Ended);
    assert_eq!(bus.stats().types, vec![], "no channel on a closed bus");
}
