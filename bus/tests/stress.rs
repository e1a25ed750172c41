//! The bus on real threads. The simulator explores interleavings on one
//! thread (and runs sends at the bus's yield point to force the
//! check-then-register race); these tests add the real thing: tokio's
//! multi-threaded scheduler, wakers crossing threads, senders and
//! subscribers racing. A lost wakeup shows as an iteration that does not
//! complete; a watchdog turns it into a failure naming the iteration.
//!
//! `SCOPEBUS_STRESS=N` multiplies the iteration counts (CI runs these in
//! release mode with a larger N).

use futures::StreamExt;
use scopebus::Bus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug)]
struct Ping(u64);

#[derive(Debug)]
struct Pong(u64);

/// How long one step may take before it counts as hung: far beyond any
/// scheduling delay, so only a lost wakeup can exceed it.
const HUNG: Duration = Duration::from_secs(3);

/// Awaits `future` for at most [`HUNG`]. Reaching the deadline is the
/// failure, whatever happens then: `tokio::time::timeout` polls the future
/// once more when its timer fires, which would quietly rescue a lost wakeup.
async fn within<F: std::future::Future>(future: F) -> Option<F::Output> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(HUNG, future).await {
        Ok(output) if started.elapsed() < HUNG => Some(output),
        _ => None,
    }
}

fn scale(base: u64) -> u64 {
    let factor = std::env::var("SCOPEBUS_STRESS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    base * factor.max(1)
}

/// A two-thread tokio runtime. Where the mutants are compiled in, each
/// worker thread also yields the CPU at the bus's yield point (between a
/// subscription's lock-free look and its registration), which widens that
/// race window from a few instructions to a scheduler quantum: jitter
/// injection, so that the other thread's send lands inside it often.
fn runtime() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_time();
    #[cfg(feature = "mutants")]
    builder.on_thread_start(|| {
        let counter = std::cell::Cell::new(0u32);
        scopebus::mutants::set_yield_hook(Some(Box::new(move |_| {
            counter.set(counter.get().wrapping_add(1));
            if counter.get().is_multiple_of(2) {
                std::thread::yield_now();
            }
        })));
    });
    builder.build().expect("a tokio runtime")
}

/// Two tasks on two threads hand a token back and forth: every step waits
/// for exactly one wakeup that a send on the other thread must deliver. A
/// receive that registers its waker too late after a send it missed (the
/// check-then-register race) hangs here.
fn ping_pong(bus: Bus, rounds: u64) -> Result<(), String> {
    runtime().block_on(async move {
        let mut pings = bus.subscribe::<Ping>();
        let mut pongs = bus.subscribe::<Pong>();
        let echo_bus = bus.clone();
        let echo = tokio::spawn(async move {
            while let Some(ping) = pings.next().await {
                let _ = echo_bus.send(Pong(ping.0));
            }
        });
        for i in 0..rounds {
            bus.send(Ping(i)).map_err(|_| "closed".to_owned())?;
            match within(pongs.next()).await {
                Some(Some(pong)) if pong.0 == i => {}
                Some(other) => return Err(format!("round {i}: got {other:?}")),
                None => {
                    return Err(format!(
                        "round {i} of {rounds}: no pong within {HUNG:?}: a lost wakeup"
                    ));
                }
            }
        }
        bus.close();
        echo.await.map_err(|e| e.to_string())?;
        let stats = bus.stats();
        if stats.retained() != 0 {
            return Err(format!("{} events still retained", stats.retained()));
        }
        Ok(())
    })
}

#[test]
fn ping_pong_across_threads_never_loses_a_wakeup() {
    ping_pong(Bus::new(), scale(20_000)).unwrap();
}

#[test]
fn many_senders_many_subscribers_every_event_in_order() {
    const SENDERS: u64 = 4;
    const SUBSCRIBERS: usize = 6;
    let per_sender = scale(5_000);
    runtime().block_on(async {
        let bus = Bus::new();
        let readers: Vec<_> = (0..SUBSCRIBERS)
            .map(|_| {
                let mut sub = bus.subscribe::<Ping>();
                tokio::spawn(async move {
                    let mut last = vec![None::<u64>; SENDERS as usize];
                    let mut count = 0u64;
                    while let Some(ping) = sub.next().await {
                        let (sender, n) = (ping.0 % SENDERS, ping.0 / SENDERS);
                        let previous = &mut last[sender as usize];
                        assert!(
                            previous.is_none_or(|p| p + 1 == n),
                            "FIFO per sender broken"
                        );
                        *previous = Some(n);
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    for n in 0..per_sender {
                        bus.send(Ping(n * SENDERS + s)).expect("open");
                        if n % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.expect("sender");
        }
        bus.close();
        for r in readers {
            let count = tokio::time::timeout(HUNG, r)
                .await
                .expect("a reader hung after close")
                .expect("reader");
            assert_eq!(count, SENDERS * per_sender);
        }
        assert_eq!(bus.stats_of::<Ping>().retained, 0);
        assert_eq!(bus.stats_of::<Ping>().subscriptions, 0);
    });
}

/// Subscriptions come and go (many of them mid-wait, which also drives the
/// rebuilding of the waiter list) while a steady subscriber must see every
/// event and a sender must never block.
fn churn(bus: Bus, events: u64) -> Result<(), String> {
    runtime().block_on(async move {
        let mut steady = bus.subscribe::<Ping>();
        let received = Arc::new(AtomicU64::new(0));
        let seen = received.clone();
        let reader = tokio::spawn(async move {
            let mut next = 0;
            loop {
                match within(steady.next()).await {
                    Some(Some(ping)) if ping.0 == next => {
                        next += 1;
                        seen.store(next, Ordering::Relaxed);
                    }
                    Some(Some(ping)) => {
                        return Err(format!("FIFO-1: got {} expecting {next}", ping.0));
                    }
                    Some(None) => return Ok(()),
                    None => {
                        return Err(format!(
                            "the steady reader waited {HUNG:?} after {next} events: a lost wakeup"
                        ));
                    }
                }
            }
        });
        // The churn runs on an OS thread of its own: a busy tokio task would
        // starve the reader instead of racing with it.
        let churn_bus = bus.clone();
        let churn = std::thread::spawn(move || {
            let mut cycles = 0u64;
            while !churn_bus.is_closed() {
                // A crowd subscribes; most drain and wait (register a waker);
                // then all leave at once, leaving the waiter list mostly
                // holes, which makes the bus rebuild it.
                {
                    let waker = futures::task::noop_waker();
                    let mut cx = std::task::Context::from_waker(&waker);
                    let mut crowd: Vec<_> =
                        (0..40).map(|_| churn_bus.subscribe::<Ping>()).collect();
                    for sub in crowd.iter_mut().take(30) {
                        while let scopebus::TryRecv::Event(_) = sub.try_recv() {}
                        let _ = sub.poll_next_unpin(&mut cx);
                    }
                }
                cycles += 1;
                std::thread::sleep(Duration::from_micros(30));
            }
            cycles
        });
        for i in 0..events {
            bus.send(Ping(i)).map_err(|_| "closed".to_owned())?;
            // Short bursts, with pauses in which the steady reader drains and
            // waits while the crowd comes and goes.
            if i % 8 == 7 {
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            if reader.is_finished() {
                break;
            }
        }
        bus.close();
        reader.await.map_err(|e| e.to_string())??;
        if received.load(Ordering::Relaxed) != events {
            return Err(format!(
                "{} of {events} events received",
                received.load(Ordering::Relaxed)
            ));
        }
        let cycles = churn
            .join()
            .map_err(|_| "the churn thread panicked".to_owned())?;
        if cycles == 0 {
            return Err("no churn happened".to_owned());
        }
        match bus.stats_of::<Ping>().retained {
            0 => Ok(()),
            n => Err(format!("{n} events still retained")),
        }
    })
}

#[test]
fn churning_subscribers_do_not_disturb_a_steady_one() {
    churn(Bus::new(), scale(1_000)).unwrap();
}

/// Like the next test, for the waiter list's rebuilding: with the
/// `compaction-loses-wakers` mutant, the steady subscriber must hang.
#[cfg(feature = "mutants")]
#[test]
fn churn_catches_lost_wakers_in_compaction() {
    use scopebus::mutants::{Mutant, with_mutant};
    let bus = with_mutant(Some(Mutant::CompactionLosesWakers), Bus::new);
    match churn(bus, scale(20_000)) {
        Err(e) => eprintln!("caught: {e}"),
        Ok(()) => panic!("lost wakers went unnoticed"),
    }
}

/// The stress test is only worth running if it can fail: with the bus's
/// re-check under the lock removed (the `recheck-skipped` mutant), ping-pong
/// must hang within its rounds. Runs only where the mutants are compiled in
/// (`cargo test --workspace` builds them; `cargo test -p scopebus` does not).
#[cfg(feature = "mutants")]
#[test]
fn ping_pong_catches_the_register_race() {
    use scopebus::mutants::{Mutant, with_mutant};
    let bus = with_mutant(Some(Mutant::RecheckSkipped), Bus::new);
    let result = ping_pong(bus, scale(200_000));
    match result {
        Err(e) => eprintln!("caught: {e}"),
        Ok(()) => panic!("the race went unnoticed over {} rounds", scale(200_000)),
    }
}
