//! The bus's memory promises, measured with a counting global allocator
//! (`stats_alloc`); the figures themselves are reported by `cargo bench -p
//! scopebus --bench memory`.
//!
//! # Invariant: one thread
//!
//! The counters are global: every allocation of the process counts. So this
//! binary has no test harness (`harness = false` in `bus/Cargo.toml`) and
//! measures on its only thread. Under libtest, the harness's own thread
//! allocated now and then while a probe measured (4 allocations, 900 bytes
//! left), once the machine was loaded: about 1 run in 15 with three busy
//! processes beside it. cargo-mutants' run of the bus (two mutants tested
//! at once) counted a mutant as caught by it that no test catches.

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "../benches/support/memory.rs"]
mod probe;

/// The one test, [`memory_promises`]; a panic fails it (exit 101). To tools
/// that list a binary's tests first (`--list`), it names that test.
fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("memory_promises: test");
        return;
    }
    memory_promises();
    println!("memory_promises: ok");
}

fn memory_promises() {
    // At most 32 bytes per retained event beyond the payload, however many
    // subscriptions share it (issue 13; RECLAIM-1: one copy per event).
    for subscribers in [1, 8, 64] {
        let r = probe::retained_scopebus(subscribers, 4096);
        assert!(
            r.overhead_per_event <= 32.0,
            "{subscribers} subscriptions: {:.1} bytes of overhead per retained event",
            r.overhead_per_event
        );
    }
    // DROP-1: a send nobody receives allocates nothing at all.
    for u in probe::unreceived_scopebus(10_000) {
        assert_eq!(u.allocations, 0, "{}: {u:?}", u.case);
        assert_eq!(u.bytes_left, 0, "{}: {u:?}", u.case);
    }
    // At most one allocation per send (the event's `Arc`), subscriptions
    // keeping up: the chain's blocks are recycled (issue 13).
    for subscribers in [1, 8, 64] {
        let per = probe::per_send_scopebus(subscribers, 16_384);
        assert!(
            per.allocations <= 1.0,
            "{subscribers} subscriptions: {:.3} allocations per send",
            per.allocations
        );
    }
    // The same when every subscription waits for each event (its waker
    // registered, then woken): the waiter list keeps its allocation.
    for subscribers in [1, 2, 8] {
        let per = probe::per_send_waiting_scopebus(subscribers, 4096);
        assert!(
            per.allocations <= 1.0,
            "{subscribers} waiting subscriptions: {:.3} allocations per send",
            per.allocations
        );
    }
    // What is left once every event is gone is the channel's pool: one
    // freed block kept for reuse, whatever the number of events (so at
    // most 1 KiB (a block is 784 bytes), and the same for 4,096 events as
    // for 16,384).
    type Probe = fn(usize, usize) -> i64;
    let reclaimed: [(&str, Probe); 4] = [
        // RECLAIM-1: consumed events are freed while the bus and its
        // subscriptions live on.
        ("consumed", probe::reclaimed_scopebus),
        // RECLAIM-2: dropping unpolled subscriptions frees what only they held.
        ("dropped unpolled", probe::dropped_unpolled_scopebus),
        // The same for subscriptions dropped while waiting, with or without
        // having received some of their events.
        ("dropped waiting", probe::dropped_waiting_scopebus),
        // CLOSE-1 then RECLAIM-1: a closed bus's subscriptions drain and
        // end, and nothing is left (the waiter list included).
        ("closed and drained", probe::closed_and_drained_scopebus),
    ];
    // The waiter list stays bounded when subscriptions wait and are
    // dropped with no send to clear it: vacated entries are compacted away
    // (within twice the waiting subscriptions plus a constant: 64 waiting
    // at most here, and entries of 16 bytes).
    for rounds in [10, 1_000] {
        let left = probe::waited_and_dropped_scopebus(rounds);
        assert!(
            left <= 2048,
            "{rounds} rounds of 64 subscriptions waited and were dropped: the waiter list holds {left} bytes"
        );
    }
    // RECLAIM-1 at the end of a bus's life: dropping the bus and its
    // subscriptions frees everything, pooled blocks and pending events
    // included.
    for subscribers in [1, 8] {
        let left = probe::dropped_bus_scopebus(subscribers, 1000);
        assert_eq!(
            left, 0,
            "{subscribers} subscriptions: {left} bytes left after the bus was dropped"
        );
    }
    for (case, probe) in reclaimed {
        let few = probe(8, 4096);
        let many = probe(8, 16_384);
        assert!(
            few <= 1024 && few == many,
            "{case}: {few} bytes left after 4,096 events, {many} after 16,384"
        );
    }
}
