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

mod support;

#[derive(Debug, PartialEq)]
struct Tick(u32);

#[test]
fn missing_1_no_scope_no_bus() {
    let _watchdog = support::watchdog();
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
    let _watchdog = support::watchdog();
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
    let _watchdog = support::watchdog();
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
    let _watchdog = support::watchdog();
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

/// PROC-1, the seed's pattern whole: two processors spawned into a root
/// read its bus until it closes, nobody cancels them, and the scope exits
/// once they have drained what was sent: its body returning closed the bus
/// before the scope waited for them.
#[test]
fn proc_1_processors_end_when_the_body_returns_and_the_scope_exits() {
    let _watchdog = support::watchdog();
    assert_eq!(processors_at_exit(|run| run()), Ok(6));
}

/// The same pattern on a bus whose scope waits for its tasks before it
/// closes the bus: the scope never exits.
#[cfg(feature = "mutants")]
#[test]
fn proc_1_test_catches_a_scope_that_closes_its_bus_after_its_tasks() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    let planted = |run: Pattern| with_mutant(Some(Mutant::CloseAfterTasks), run);
    assert!(processors_at_exit(planted).is_err());
}

/// The processor pattern, run by [`processors_at_exit`].
type Pattern = Box<dyn FnOnce() -> usize>;

/// Runs the processor pattern on a thread, through `harness` (which may
/// plant a mutant around it): how many events the processors received, or
/// why it did not exit within 2 s.
fn processors_at_exit(harness: fn(Pattern) -> usize) -> Result<usize, String> {
    let (done, outcome) = std::sync::mpsc::channel();
    // Detached if it hangs: the test process ends without it.
    std::thread::spawn(move || {
        let run = move || {
            let received = Arc::new(AtomicUsize::new(0));
            let counted = received.clone();
            block_on(scope(async move {
                for _ in 0..2 {
                    let mut ticks = subscribe::<Tick>().unwrap();
                    let seen = counted.clone();
                    spawn(async move {
                        while ticks.next().await.is_some() {
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .unwrap();
                }
                for i in 0..3 {
                    send(Tick(i)).unwrap();
                }
            }));
            received.load(Ordering::SeqCst)
        };
        let _ = done.send(harness(Box::new(run)));
    });
    outcome
        .recv_timeout(Duration::from_secs(2))
        .map_err(|_| "the scope did not exit within 2 s: its processors never ended".to_owned())
}

#[test]
fn close_2_a_task_sending_during_exit_gets_closed() {
    let _watchdog = support::watchdog();
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

/// EXIT-1: the handle of a scope that has exited keeps the bus the scope
/// had. A root's is closed: a send through it reports the bus closed and
/// delivers nothing, a subscribe gives a stream that ends at once. A nested
/// scope's is its parent's, still open while the parent runs: a send
/// through the nested handle reaches the parent's subscribers.
#[test]
fn exit_1_an_exited_scopes_handle_keeps_its_bus() {
    let _watchdog = support::watchdog();
    exited_handles().unwrap();
}

#[cfg(feature = "mutants")]
#[test]
fn exit_1_test_catches_a_handle_that_forgets_its_bus() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    assert!(with_mutant(Some(Mutant::ExitedScopeForgetsBus), exited_handles).is_err());
}

fn exited_handles() -> Result<(), String> {
    let root = block_on(scope(async { Scope::current().unwrap() }));
    match root.enter(|| send(Tick(1))) {
        Err(SendError::Closed(Tick(1))) => {}
        other => {
            return Err(format!(
                "a send through an exited root's handle gave {other:?}"
            ));
        }
    }
    let late = root.enter(subscribe::<Tick>);
    match late.map(|mut s| s.try_recv()) {
        Ok(TryRecv::Ended) => {}
        other => {
            return Err(format!(
                "a subscribe through it gave {other:?}; expected an ended stream"
            ));
        }
    }
    block_on(scope(async {
        let mut outer = subscribe::<Tick>().unwrap();
        let nested = scope(async { Scope::current().unwrap() }).await;
        let mut late = nested
            .enter(subscribe::<Tick>)
            .map_err(|e| format!("{e:?}"))?;
        match nested.enter(|| send(Tick(2))) {
            Ok(2) => {}
            other => {
                return Err(format!(
                    "a send through an exited nested scope's handle gave {other:?}; expected two deliveries"
                ));
            }
        }
        match (outer.try_recv(), late.try_recv()) {
            (TryRecv::Event(a), TryRecv::Event(b)) if *a == Tick(2) && *b == Tick(2) => Ok(()),
            other => Err(format!(
                "the parent's subscriber and the late one got {other:?}"
            )),
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_2_cancelled_scope_cancels_its_tasks_and_closes_its_bus() {
    let _watchdog = support::watchdog();
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
    let _watchdog = support::watchdog();
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

/// FAIL-1: a root scope whose body panics, while a processor reads its
/// bus and a healthy long-running task waits, cancels both (the processor
/// never sees the end of its stream), closes its bus, and the body's own
/// panic comes out of the scope.
#[test]
fn fail_1_a_panicking_body_cancels_its_tasks_closes_its_bus_and_raises() {
    let _watchdog = support::watchdog();
    let failed = failing_body(|run| run()).expect("the failed scope is gone");
    assert_eq!(failed.panic.as_deref(), Some("the body failed"));
    assert!(failed.bus_closed);
    assert!(
        !failed.processor_ended,
        "the processor was cancelled, not let run to its end"
    );
}

/// The same on a scope that holds its body's panic back until its tasks
/// are done: the scope never fails, it waits on its long-running task for
/// ever.
#[cfg(feature = "mutants")]
#[test]
fn fail_1_test_catches_a_failed_scope_that_waits_for_its_tasks() {
    let _watchdog = support::watchdog();
    use scopebus::mutants::{Mutant, with_mutant};
    let planted = |run: FailingBody| with_mutant(Some(Mutant::FailureWaitsForTasks), run);
    assert!(failing_body(planted).is_err());
}

/// What [`failing_body`] saw.
struct Failed {
    /// The panic message that came out of the scope, if a string.
    panic: Option<String>,
    bus_closed: bool,
    processor_ended: bool,
}

type FailingBody = Box<dyn FnOnce() -> Failed>;

/// Runs, on a thread and through `harness` (which may plant a mutant), a
/// root scope with a processor of its bus and a long-running task, whose
/// body panics; or why the scope did not fail within 2 s.
fn failing_body(harness: fn(FailingBody) -> Failed) -> Result<Failed, String> {
    let (done, outcome) = std::sync::mpsc::channel();
    // Detached if it hangs: the test process ends without it.
    std::thread::spawn(move || {
        let run = move || {
            let ended = Arc::new(AtomicBool::new(false));
            let flag = ended.clone();
            let bus = Arc::new(std::sync::Mutex::new(None));
            let slot = bus.clone();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                block_on(scope(async move {
                    *slot.lock().unwrap() = Some(current_bus().unwrap());
                    let mut ticks = subscribe::<Tick>().unwrap();
                    spawn(async move {
                        while ticks.next().await.is_some() {}
                        flag.store(true, Ordering::SeqCst);
                    })
                    .unwrap();
                    // A healthy long-running task that reads no bus.
                    spawn(futures::future::pending::<()>()).unwrap();
                    futures::future::ready(()).await;
                    // Unwinds without the panic hook: nothing is printed.
                    std::panic::resume_unwind(Box::new("the body failed".to_owned()));
                }))
            }));
            assert!(
                Scope::current().is_none(),
                "the ambient context was restored"
            );
            let bus_closed = bus.lock().unwrap().as_ref().unwrap().is_closed();
            Failed {
                panic: result
                    .err()
                    .and_then(|p| p.downcast::<String>().ok())
                    .map(|s| *s),
                bus_closed,
                processor_ended: ended.load(Ordering::SeqCst),
            }
        };
        let _ = done.send(harness(Box::new(run)));
    });
    outcome
        .recv_timeout(Duration::from_secs(2))
        .map_err(|_| "the scope did not fail within 2 s: it waited for its tasks".to_owned())
}

#[test]
fn spawn_on_an_exited_scope_is_refused() {
    let _watchdog = support::watchdog();
    let handle = block_on(scope(async { Scope::current().unwrap() }));
    assert!(handle.spawn(async {}).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_scope_carries_the_context_onto_tokio_tasks() {
    let _watchdog = support::watchdog();
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
    let _watchdog = support::watchdog();
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

/// Runs `future` to completion on a thread of its own; fails if it has not
/// finished within ten seconds (the failure these tests guard against is a
/// scope that never exits).
fn within_watchdog<T: Send + 'static>(
    what: &str,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let (done, outcome) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = done.send(block_on(future));
    });
    match outcome.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => {
            thread.join().expect("the scope's thread");
            value
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within 10 s: a scope never exited")
        }
    }
}

/// The seed's background-processor pattern, inside a nested scope: the
/// processor `async for`s over the bus the nested scope shares with its
/// root. It belongs to the root's task group (TASK-1, as Haiway's
/// `isolated` docstring says), so the nested scope exits at once, and the
/// processor ends when the root's exit closes the bus (CLOSE-1).
#[test]
fn task_1_processor_spawned_in_a_nested_scope_belongs_to_the_root() {
    let _watchdog = support::watchdog();
    let (received, nested_exited_first) = within_watchdog(
        "the processor pattern in a nested scope",
        scope(async {
            let received = Arc::new(AtomicUsize::new(0));
            let seen = received.clone();
            let processor_done = Arc::new(AtomicBool::new(false));
            let done = processor_done.clone();
            scope(async move {
                let mut ticks = subscribe::<Tick>().unwrap();
                spawn(async move {
                    while ticks.next().await.is_some() {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    done.store(true, Ordering::SeqCst);
                })
                .unwrap();
                assert!(
                    !Scope::current().unwrap().owns_task_group(),
                    "a nested scope shares its root's task group"
                );
            })
            .await;
            let nested_exited_first = !processor_done.load(Ordering::SeqCst);
            for i in 0..3 {
                send(Tick(i)).unwrap();
            }
            (received, nested_exited_first)
        }),
    );
    assert!(
        nested_exited_first,
        "the nested scope exits without waiting for the processor"
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        3,
        "the root waited for the processor, which drained what was sent"
    );
}

/// A task spawned in a nested scope runs in that scope's context, and its
/// root waits for it (TASK-1) even after the nested scope has exited.
#[test]
fn task_1_root_waits_for_tasks_of_its_nested_scopes() {
    let _watchdog = support::watchdog();
    let (release, released) = futures::channel::oneshot::channel::<()>();
    let ran_in = within_watchdog(
        "a root waiting for a nested scope's task",
        scope(async move {
            let (inner_id, ran_in) = scope(async move {
                let ran_in = spawn(async move {
                    let _ = released.await;
                    Scope::current().unwrap().id()
                })
                .unwrap();
                (Scope::current().unwrap().id(), ran_in)
            })
            .await;
            // The nested scope is gone; its task is still the root's to wait for.
            release.send(()).unwrap();
            (inner_id, ran_in.await.unwrap())
        }),
    );
    assert_eq!(
        ran_in.0, ran_in.1,
        "the task ran in the nested scope's context"
    );
}

/// Cancelling a nested, non-isolated scope cancels its body only: the tasks
/// spawned in it belong to the root, which goes on to wait for them; an
/// isolated scope owns its group and cancels its tasks (TASK-2).
#[test]
fn task_2_cancelling_a_nested_scope_leaves_the_roots_tasks() {
    let _watchdog = support::watchdog();
    let outcome = within_watchdog(
        "cancelling nested scopes",
        scope(async {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            // The worker's handle comes out of the nested scope in a tuple,
            // so that the scope's output is not itself a future.
            let nested = spawn(scope(async move {
                let worker = spawn(async move {
                    let _ = rx.await;
                    7
                })
                .unwrap();
                (worker,)
            }))
            .unwrap();
            let (worker,) = nested.await.unwrap();
            let isolated_task = Arc::new(AtomicBool::new(false));
            let flag = isolated_task.clone();
            let isolated = spawn(isolated_scope(async move {
                spawn(async move {
                    futures::future::pending::<()>().await;
                    flag.store(true, Ordering::SeqCst);
                })
                .unwrap();
                futures::future::pending::<()>().await;
            }))
            .unwrap();
            futures::future::ready(()).await;
            isolated.cancel();
            let isolated_cancelled = isolated.await == Err(TaskError::Cancelled);
            tx.send(()).unwrap();
            (
                worker.await,
                isolated_cancelled,
                isolated_task.load(Ordering::SeqCst),
            )
        }),
    );
    assert_eq!(
        outcome.0,
        Ok(7),
        "the nested scope's task outlived its exit"
    );
    assert!(outcome.1, "the isolated scope was cancelled");
    assert!(!outcome.2, "its task was cancelled with it");
}

/// Sends `Tick(0)` from its destructor, as a processor's cleanup might, and
/// records what the send answered.
struct SendsOnDrop(Arc<std::sync::Mutex<Option<SendAnswer>>>);

/// What a `send` answered.
type SendAnswer = Result<usize, SendError<Tick>>;

impl Drop for SendsOnDrop {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(send(Tick(0)));
    }
}

/// A cancelled scope drops its body and its tasks in its own context: a
/// destructor that sends reaches the cancelled scope's (closed) bus, never
/// the bus of whoever dropped it (SCOPE-3 across a cancellation).
#[test]
fn scope_3_a_cancelled_scopes_destructors_run_in_its_context() {
    let _watchdog = support::watchdog();
    let (received, from_task, from_body) = within_watchdog(
        "destructors of a cancelled isolated scope",
        scope(async {
            let mut outside = subscribe::<Tick>().unwrap();
            let from_task = Arc::new(std::sync::Mutex::new(None));
            let from_body = Arc::new(std::sync::Mutex::new(None));
            let (task_slot, body_slot) = (from_task.clone(), from_body.clone());
            let (running, started) = futures::channel::oneshot::channel::<()>();
            let isolated = spawn(isolated_scope(async move {
                let guard = SendsOnDrop(task_slot);
                spawn(async move {
                    let _guard = guard;
                    let _ = running.send(());
                    futures::future::pending::<()>().await;
                })
                .unwrap();
                let _guard = SendsOnDrop(body_slot);
                futures::future::pending::<()>().await;
            }))
            .unwrap();
            started.await.unwrap(); // the body and its task are running
            isolated.cancel();
            let _ = isolated.await;
            let received = matches!(outside.try_recv(), TryRecv::Event(_));
            let from_task = from_task.lock().unwrap().take();
            let from_body = from_body.lock().unwrap().take();
            (received, from_task, from_body)
        }),
    );
    assert!(
        !received,
        "a send from the isolated scope reached its parent's bus"
    );
    for (what, answer) in [("task", from_task), ("body", from_body)] {
        assert!(
            matches!(answer, Some(Err(SendError::Closed(_)))),
            "the {what}'s destructor sent on {answer:?}; expected the isolated scope's closed bus"
        );
    }
}

/// Dropping the last handle of a scope nested 50,000 deep lets go of its
/// chain of parents without recursing once per level: on a thread with a
/// 256 KiB stack, a recursive drop overflows it (and aborts the test).
#[test]
fn a_deeply_nested_scope_drops_without_recursion() {
    let _watchdog = support::watchdog();
    const DEPTH: usize = 50_000;
    let dropped = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut deepest = block_on(scope(async { Scope::current().unwrap() }));
            for _ in 1..DEPTH {
                // Opened in `deepest` (`run` fixes the parent), run to its end.
                let nested = deepest.enter(|| scope(async { Scope::current().unwrap() }));
                deepest = block_on(nested);
            }
            let mut depth = 1;
            let mut at = &deepest;
            while let Some(parent) = at.parent() {
                depth += 1;
                at = parent;
            }
            drop(deepest);
            depth
        })
        .unwrap()
        .join()
        .expect("the drop overflowed the stack or panicked");
    assert_eq!(dropped, DEPTH);
}
