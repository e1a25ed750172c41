//! Every public entry point of the bus, each with the values its docs
//! promise: the ones the simulated workload does not drive (`send_arc`,
//! `recv`, `try_recv`, `is_terminated`, `is_ended`, the accessors, the
//! statistics, the errors' values and messages, task handles).
//!
//! The rule each test rests on is named in its name (SPEC.md); where none
//! applies, the docstring of the entry point is the promise.

use futures::StreamExt;
use futures::executor::block_on;
use futures::stream::FusedStream;
use futures::task::noop_waker_ref;
use scopebus::{
    Bus, Closed, ContextMissing, Scope, ScopeBuilder, ScopeExited, SendError, SpawnError,
    TaskError, TryRecv, current_bus, scope, send, spawn, subscribe,
};
use std::any::TypeId;
use std::sync::Arc;
use std::task::{Context, Poll};

mod support;

#[derive(Debug, PartialEq)]
struct Ping(u32);

#[derive(Debug)]
struct Pong;

#[test]
fn send_arc_delivers_that_very_arc_and_counts_receivers() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    assert_eq!(bus.send_arc(Arc::new(Ping(0))).map_err(|_| ()), Ok(0));
    let mut a = bus.subscribe::<Ping>();
    let mut b = bus.subscribe::<Ping>();
    let event = Arc::new(Ping(1));
    assert_eq!(bus.send_arc(Arc::clone(&event)).map_err(|_| ()), Ok(2));
    for sub in [&mut a, &mut b] {
        match sub.try_recv() {
            TryRecv::Event(got) => assert!(Arc::ptr_eq(&got, &event)),
            other => panic!("expected the sent Arc, got {other:?}"),
        }
    }
    bus.close();
    let back = bus.send_arc(Arc::clone(&event)).expect_err("CLOSE-2");
    assert!(Arc::ptr_eq(&back.into_inner(), &event));
    assert_eq!(Arc::strong_count(&event), 1, "nothing kept a reference");
}

#[test]
fn try_recv_gives_event_empty_then_ended_after_close_1() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut sub = bus.subscribe::<Ping>();
    assert!(matches!(sub.try_recv(), TryRecv::Empty));
    bus.send(Ping(1)).unwrap();
    bus.send(Ping(2)).unwrap();
    assert!(matches!(sub.try_recv(), TryRecv::Event(e) if *e == Ping(1)));
    bus.close();
    assert!(!sub.is_ended(), "one event is still to come");
    assert!(matches!(sub.try_recv(), TryRecv::Event(e) if *e == Ping(2)));
    assert!(matches!(sub.try_recv(), TryRecv::Ended));
    assert!(sub.is_ended());
    assert!(sub.is_terminated());
    let shown = format!("{sub:?}");
    assert!(
        shown.contains("Ping") && shown.contains("ended: true"),
        "{shown}"
    );
    assert!(
        matches!(sub.try_recv(), TryRecv::Ended),
        "ended stays ended"
    );
    assert_eq!(
        bus.stats_of::<Ping>().subscriptions,
        0,
        "an ended subscription is not live"
    );
}

#[test]
fn recv_waits_yields_in_order_and_ends_with_none() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut sub = bus.subscribe::<Ping>();
    {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut pending = std::pin::pin!(sub.recv());
        assert!(
            pending.as_mut().poll(&mut cx).is_pending(),
            "nothing sent yet"
        );
        bus.send(Ping(1)).unwrap();
        match pending.as_mut().poll(&mut cx) {
            Poll::Ready(Some(e)) => assert_eq!(*e, Ping(1)),
            other => panic!("expected Ping(1), got {other:?}"),
        }
    }
    bus.send(Ping(2)).unwrap();
    bus.close();
    assert_eq!(block_on(sub.recv()).as_deref(), Some(&Ping(2)));
    assert_eq!(block_on(sub.recv()), None);
    assert_eq!(block_on(sub.recv()), None, "ended stays ended");
}

#[test]
fn is_terminated_is_true_exactly_once_the_stream_has_ended() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let mut sub = bus.subscribe::<Ping>();
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(!sub.is_terminated());
    assert!(sub.poll_next_unpin(&mut cx).is_pending());
    assert!(!sub.is_terminated(), "waiting is not ended");
    bus.send(Ping(1)).unwrap();
    bus.close();
    assert!(!sub.is_terminated(), "an event is still to come");
    assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(Some(_))));
    assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(None)));
    assert!(sub.is_terminated());
    // Ended, not yet dropped: no longer live, holding nothing.
    let stats = bus.stats_of::<Ping>();
    assert_eq!((stats.subscriptions, stats.retained), (0, 0));
    // CLOSE-3: subscribed after the close, ended before its first poll.
    let late = bus.subscribe::<Ping>();
    assert!(late.is_ended() && late.is_terminated());
}

#[test]
fn shared_subscription_recv_poll_recv_and_is_terminated() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let shared = bus.subscribe::<Ping>().share();
    let other = shared.clone();
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(shared.poll_recv(&mut cx).is_pending());
    bus.send(Ping(1)).unwrap();
    bus.send(Ping(2)).unwrap();
    assert!(matches!(other.poll_recv(&mut cx), Poll::Ready(Some(e)) if *e == Ping(1)));
    assert_eq!(block_on(shared.recv()).as_deref(), Some(&Ping(2)));
    assert!(!shared.is_terminated());
    bus.close();
    assert_eq!(block_on(other.recv()), None);
    assert!(shared.is_terminated() && other.is_terminated());
    assert!(matches!(shared.poll_recv(&mut cx), Poll::Ready(None)));
}

#[test]
fn bus_identity_and_closed_flag() {
    let _watchdog = support::watchdog();
    let a = Bus::new();
    let b = Bus::new();
    let a2 = a.clone();
    assert_ne!(a.id(), b.id());
    assert_eq!(a.id(), a2.id());
    assert!(a.same_bus(&a2) && !a.same_bus(&b) && !b.same_bus(&a));
    assert!(!a.is_closed());
    a.close();
    assert!(a.is_closed() && a2.is_closed() && !b.is_closed());
    a.close();
    assert!(a.is_closed(), "close is idempotent");
    assert!(format!("{a:?}").contains(&a.id().to_string()));
}

#[test]
fn stats_count_live_subscriptions_and_retained_events_per_type() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    assert_eq!(bus.stats().types, vec![], "nothing subscribed yet");
    let never = bus.stats_of::<Pong>();
    assert_eq!((never.subscriptions, never.retained), (0, 0));
    assert_eq!(never.type_id, TypeId::of::<Pong>());
    assert!(never.type_name.ends_with("Pong"));
    let mut a = bus.subscribe::<Ping>();
    let _b = bus.subscribe::<Ping>();
    let _c = bus.subscribe::<Pong>();
    bus.send(Ping(1)).unwrap();
    bus.send(Ping(2)).unwrap();
    bus.send(Pong).unwrap();
    let _ = a.try_recv();
    let stats = bus.stats();
    assert!(!stats.closed);
    assert_eq!(stats.types.len(), 2);
    assert!(
        stats
            .types
            .windows(2)
            .all(|w| w[0].type_name <= w[1].type_name),
        "sorted by name"
    );
    let ping = stats.get::<Ping>().expect("Ping was subscribed to");
    assert_eq!((ping.subscriptions, ping.retained), (2, 2));
    assert_eq!(*ping, bus.stats_of::<Ping>());
    assert_eq!(stats.get::<Pong>().map(|t| t.retained), Some(1));
    assert_eq!(stats.get::<u8>(), None);
    assert_eq!(stats.subscriptions(), 3);
    assert_eq!(stats.retained(), 3);
    bus.close();
    assert!(bus.stats().closed);
}

#[test]
fn errors_give_their_event_back_and_say_what_happened() {
    let _watchdog = support::watchdog();
    let closed = Closed(Ping(7));
    assert_eq!(closed.into_inner(), Ping(7));
    assert_eq!(format!("{:?}", Closed(Ping(7))), "Closed(..)");
    assert!(Closed(()).to_string().contains("closed"));
    assert_eq!(SendError::Closed(Ping(1)).into_inner(), Ping(1));
    assert_eq!(SendError::ContextMissing(Ping(2)).into_inner(), Ping(2));
    assert_eq!(format!("{:?}", SendError::Closed(())), "Closed(..)");
    assert_eq!(
        format!("{:?}", SendError::ContextMissing(())),
        "ContextMissing(..)"
    );
    assert!(SendError::Closed(()).to_string().contains("closed"));
    assert_eq!(
        SendError::ContextMissing(()).to_string(),
        ContextMissing.to_string()
    );
    assert!(ContextMissing.to_string().contains("scope"));
    assert!(ScopeExited.to_string().contains("exited"));
    assert_eq!(SpawnError::ScopeExited.to_string(), ScopeExited.to_string());
    assert_eq!(
        SpawnError::ContextMissing.to_string(),
        ContextMissing.to_string()
    );
    assert!(TaskError::Cancelled.to_string().contains("cancelled"));
    assert!(
        TaskError::Panicked("boom".into())
            .to_string()
            .contains("boom")
    );
}

#[test]
fn missing_1_ambient_calls_outside_every_scope() {
    let _watchdog = support::watchdog();
    assert!(matches!(
        send(Ping(1)),
        Err(SendError::ContextMissing(Ping(1)))
    ));
    assert!(matches!(subscribe::<Ping>(), Err(ContextMissing)));
    assert!(matches!(current_bus(), Err(ContextMissing)));
    assert!(matches!(spawn(async {}), Err(SpawnError::ContextMissing)));
    assert!(Scope::current().is_none());
}

#[test]
fn scope_accessors_describe_the_scope_tree() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let root = ScopeBuilder::new("root").bus(bus.clone()).run(async {
        let root = Scope::current().expect("in the root");
        assert!(root.bus().same_bus(&current_bus().unwrap()));
        let nested = scope(async { Scope::current().unwrap() }).await;
        let isolated = ScopeBuilder::new("iso")
            .isolated(true)
            .run(async { Scope::current().unwrap() })
            .await;
        (root, nested, isolated)
    });
    let (root, nested, isolated) = block_on(root);
    assert!(root.bus().same_bus(&bus));
    assert_eq!(root.name(), "root");
    assert_eq!(nested.name(), "scope", "the default name");
    assert_eq!(isolated.name(), "iso");
    assert!(root.parent().is_none());
    assert_eq!(nested.parent().map(Scope::id), Some(root.id()));
    assert_eq!(isolated.parent().map(Scope::id), Some(root.id()));
    assert_ne!(nested.id(), root.id());
    // A scope run on a bus given to it does not own it (`ScopeBuilder::bus`).
    assert!(!root.owns_bus() && !nested.owns_bus() && isolated.owns_bus());
    assert!(!bus.is_closed(), "not owned, not closed at exit");
    assert!(
        isolated.bus().is_closed(),
        "owned, closed at exit (CLOSE-1)"
    );
    let owner = block_on(scope(async { Scope::current().unwrap() }));
    assert!(owner.owns_bus() && owner.bus().is_closed());
    assert!(!root.is_isolated() && !nested.is_isolated() && isolated.is_isolated());
    assert!(root.owns_task_group() && !nested.owns_task_group() && isolated.owns_task_group());
    assert!(nested.bus().same_bus(&bus) && !isolated.bus().same_bus(&bus));
    assert!(format!("{root:?}").contains("root"));
}

#[test]
fn enter_and_in_scope_set_the_ambient_scope_and_restore_it() {
    let _watchdog = support::watchdog();
    let bus = Bus::new();
    let handle = block_on(
        ScopeBuilder::new("h")
            .bus(bus.clone())
            .run(async { Scope::current().unwrap() }),
    );
    assert!(Scope::current().is_none());
    let id = handle.enter(|| Scope::current().map(|s| s.id()));
    assert_eq!(id, Some(handle.id()));
    assert!(Scope::current().is_none(), "enter restores");
    let inside = block_on(handle.in_scope(async { current_bus().map(|b| b.id()) }));
    assert_eq!(inside, Ok(bus.id()));
    assert!(Scope::current().is_none(), "in_scope restores");
    let future = ScopeBuilder::new("f").run(async {});
    assert_eq!(future.scope().name(), "f");
}

#[test]
fn task_handles_report_values_panics_and_cancellation() {
    let _watchdog = support::watchdog();
    block_on(scope(async {
        let value = spawn(async { 7 }).unwrap();
        let cancelled = spawn(futures::future::pending::<()>()).unwrap();
        assert!(!cancelled.is_cancelled());
        cancelled.cancel();
        assert!(cancelled.is_cancelled());
        assert!(format!("{cancelled:?}").contains("true"));
        assert_eq!(value.await, Ok(7));
        assert_eq!(cancelled.await, Err(TaskError::Cancelled));
    }));
}

#[test]
fn in_scope_and_scope_futures_describe_themselves_and_drop_in_their_scope() {
    let _watchdog = support::watchdog();
    let handle = block_on(ScopeBuilder::new("ctx").run(async { Scope::current().unwrap() }));
    let wrapped = handle.in_scope(async {});
    assert!(format!("{wrapped:?}").contains("ctx"));
    let future = ScopeBuilder::new("fut").run(async {});
    assert!(format!("{future:?}").contains("fut"));
    // A future's destructor runs in the scope it was wrapped for, as its
    // code does (a cancelled task's guards, say).
    struct SeesScope(Arc<std::sync::Mutex<Option<String>>>);
    impl Drop for SeesScope {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Scope::current().map(|s| s.name().to_owned());
        }
    }
    let seen = Arc::new(std::sync::Mutex::new(None));
    let guard = SeesScope(seen.clone());
    drop(handle.in_scope(async move {
        let _guard = guard;
    }));
    assert_eq!(seen.lock().unwrap().as_deref(), Some("ctx"));
    assert!(Scope::current().is_none());
}
