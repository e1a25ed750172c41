//! The bus across runtimes, under turmoil's deterministic simulation.
//!
//! Haiway's bus is tied to one asyncio event loop; ours is `Send + Sync` and
//! runtime-agnostic. Here two simulated hosts, each with its own tokio
//! runtime, share one bus: one runs a scope with processor tasks, the other
//! sends with simulated delays. Turmoil interleaves the hosts in a random
//! order fixed by its seed, so every seed is a different, replayable
//! interleaving of wakeups that cross runtimes. Every event must arrive, in
//! order, exactly once, and nothing may be left retained (FIFO-1, FANOUT-1,
//! WAKE-1, CLOSE-1, RECLAIM-1).

use futures::StreamExt;
use scopebus::{Bus, ScopeBuilder};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

#[derive(Debug)]
struct Tick(u32);

const EVENTS: u32 = 200;

#[test]
fn one_bus_shared_by_two_simulated_hosts() {
    let _watchdog = support::watchdog();
    for seed in 0..24u64 {
        let bus = Bus::new();
        let received: Arc<Mutex<Vec<Vec<u32>>>> = Arc::new(Mutex::new(Vec::new()));
        let mut sim = turmoil::Builder::new()
            .enable_random_order()
            .rng_seed(seed)
            .simulation_duration(Duration::from_secs(600))
            .build();

        let (reader_bus, out) = (bus.clone(), received.clone());
        sim.client("reader", async move {
            // The scope runs on the reader's runtime, on the shared bus.
            ScopeBuilder::new("reader")
                .bus(reader_bus)
                .run(async move {
                    for _ in 0..3 {
                        let mut sub = scopebus::subscribe::<Tick>().expect("in a scope");
                        let out = out.clone();
                        scopebus::spawn(async move {
                            let mut got = Vec::new();
                            while let Some(tick) = sub.next().await {
                                got.push(tick.0);
                                if tick.0 % 5 == 0 {
                                    tokio::time::sleep(Duration::from_millis(3)).await;
                                }
                            }
                            out.lock().unwrap().push(got);
                        })
                        .expect("in a scope");
                    }
                })
                .await;
            Ok(())
        });

        let writer_bus = bus.clone();
        sim.client("writer", async move {
            // Subscribe-before-send: wait until the processors are listening.
            while writer_bus.stats_of::<Tick>().subscriptions < 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for i in 0..EVENTS {
                assert_eq!(writer_bus.send(Tick(i)).unwrap(), 3);
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(u64::from(i % 4))).await;
                }
            }
            writer_bus.close();
            Ok(())
        });

        sim.run().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 3, "seed {seed}");
        for got in received.iter() {
            assert_eq!(*got, (0..EVENTS).collect::<Vec<_>>(), "seed {seed}");
        }
        assert_eq!(bus.stats_of::<Tick>().retained, 0, "seed {seed}");
        assert_eq!(bus.stats_of::<Tick>().subscriptions, 0, "seed {seed}");
    }
}
