//! Scopes, hand-written: the ambient context, nesting and isolation, exit,
//! cancellation and failure. Rule IDs refer to SPEC.md.

use futures::StreamExt;
use futures::executor::block_on;
use scopebus::{
    ContextMissing, Scope, ScopeBuilder, SendError, SpawnError, TaskError, TryRecv, current_bus,
    isolated_scope, scope, send, spawn, subscribe,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, PartialEq)]
struct Tick(u32);

#[test]
fn missing_1_no_scope_no_bus() {
    assert!(matches!(
        send(Tick(1)),
        Err(SendError::ContextMissing(Tick(1)))
    ));
    assert_eq!(subscribe::<Tick>().unwrap_err(), ContextMissing);
    assert_eq!(spawn(async {}).unwrap_err(), SpawnError::ContextMissing);
    assert!(current_bus().is_err());
    assert!(Scope::current().is_none());
}

#[test]
fn scope_1_root_has_a_bus_and_roots_are_separate() {
    block_on(async {
        let (a, b) = (
            scope(async { current_bus().unwrap() }).await,
            scope(async { current_bus().unwrap() }).await,
        );
        assert!(!a.same_bus(&b));
        assert!(a.is_closed(), "CLOSE-1: a root closes its bus at exit");
    });
}

#[test]
fn scope_2_nested_shares_and_scope_3_isolated_does_not() {
    block_on(scope(async {
        let outer = current_bus().unwrap();
        let mut outer_sub = subscribe::<Tick>().unwrap();
        scope(async {
            assert!(current_bus().unwrap().same_bus(&outer), "SCOPE-2");
            send(Tick(1)).unwrap();
        })
        .await;
        assert!(
            !outer.is_closed(),
            "a nested scope does not close the bus it shares"
        );
        isolated_scope(async {
            assert!(!current_bus().unwrap().same_bus(&outer), "SCOPE-3");
            let mut inner = subscribe::<Tick>().unwrap();
            send(Tick(2)).unwrap();
            assert_eq!(inner.try_recv(), TryRecv::Event(Arc::new(Tick(2))));
        })
        .await;
        send(Tick(3)).unwrap();
        let got: Vec<u32> = [
            outer_sub.try_recv(),
            outer_sub.try_recv(),
            outer_sub.try_recv(),
        ]
        .into_iter()
        .filter_map(|r| match r {
            TryRecv::Event(t) => Some(t.0),
            _ => None,
        })
        .collect();
        assert_eq!(
            got,
            vec![1, 3],
            "the isolated scope's event never reached the parent"
        );
    }));
}

#[test]
fn close_1_and_task_1_exit_closes_the_bus_then_waits_for_tasks() {
    let received = Arc::new(AtomicUsize::new(0));
    let seen = received.clone();
    block_on(scope(async move {
        let mut sub = subscribe::<Tick>().unwrap();
        spawn(async move {
            // An open-ended processor: it ends because exit closes the bus.
            while sub.next().await.is_some() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        for i in 0..5 {
            send(Tick(i)).unwrap();
        }
    }));
    assert_eq!(
        received.load(Ordering::SeqCst),
        5,
        "drained before the scope returned"
    );
}

#[test]
fn close_2_a_task_sending_during_exit_gets_closed() {
    block_on(scope(async {
        spawn(async {
            futures::future::ready(()).await;
            assert!(matches!(send(Tick(1)), Err(SendError::Closed(_))));
            let mut late = subscribe::<Tick>().unwrap();
            assert_eq!(late.next().await, None, "CLOSE-3");
        })
        .unwrap();
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_2_cancelled_scope_cancels_its_tasks_and_closes_its_bus() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let (bus_tx, bus_rx) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(scope(async move {
        let bus = current_bus().unwrap();
        spawn(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap();
        let _ = bus_tx.send(bus);
        futures::future::pending::<()>().await;
    }));
    let bus = bus_rx.await.unwrap();
    let mut outside = bus.subscribe::<Tick>();
    running.abort();
    let _ = running.await;
    assert!(bus.is_closed(), "a cancelled scope closes the bus it owns");
    assert_eq!(
        outside.next().await,
        None,
        "subscribers elsewhere end instead of hanging"
    );
    assert!(!finished.load(Ordering::SeqCst));
}

#[test]
fn task_handles_cancel_and_report() {
    block_on(scope(async {
        let never = spawn(futures::future::pending::<u32>()).unwrap();
        never.cancel();
        assert_eq!(never.await, Err(TaskError::Cancelled));
        let value = spawn(async { 7 }).unwrap();
        assert_eq!(value.await, Ok(7));
        let boom = spawn(async { panic!("processor failed") }).unwrap();
        assert_eq!(
            boom.await,
            Err(TaskError::Panicked("processor failed".into()))
        );
        // The panic stayed in its task: the scope and its bus go on.
        assert_eq!(send(Tick(1)).unwrap(), 0);
    }));
}

#[test]
fn a_panicking_body_cancels_the_scope() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let bus = Arc::new(std::sync::Mutex::new(None));
    let slot = bus.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(scope(async move {
            *slot.lock().unwrap() = Some(current_bus().unwrap());
            spawn(async move {
                futures::future::pending::<()>().await;
                flag.store(true, Ordering::SeqCst);
            })
            .unwrap();
            futures::future::ready(()).await;
            panic!("the body failed");
        }))
    }));
    assert!(result.is_err());
    assert!(bus.lock().unwrap().as_ref().unwrap().is_closed());
    assert!(!finished.load(Ordering::SeqCst));
    assert!(
        Scope::current().is_none(),
        "the ambient context was restored"
    );
}

#[test]
fn spawn_on_an_exited_scope_is_refused() {
    let handle = block_on(scope(async { Scope::current().unwrap() }));
    assert!(handle.spawn(async {}).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_scope_carries_the_context_onto_tokio_tasks() {
    scope(async {
        let here = Scope::current().unwrap();
        let mut sub = subscribe::<Tick>().unwrap();
        tokio::spawn(here.in_scope(async { send(Tick(9)).unwrap() }))
            .await
            .unwrap();
        assert_eq!(sub.next().await.unwrap().0, 9);
    })
    .await;
}

#[test]
fn builder_names_and_explicit_buses() {
    let shared = scopebus::Bus::new();
    let mut sub = shared.subscribe::<Tick>();
    block_on(ScopeBuilder::new("worker").bus(shared.clone()).run(async {
        assert_eq!(Scope::current().unwrap().name(), "worker");
        send(Tick(4)).unwrap();
    }));
    assert!(
        !shared.is_closed(),
        "a scope does not close a bus it was given"
    );
    assert_eq!(sub.try_recv(), TryRecv::Event(Arc::new(Tick(4))));
}
