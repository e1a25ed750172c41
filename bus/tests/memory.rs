//! The bus's memory promises, measured with a counting global allocator
//! (`stats_alloc`); the figures themselves are reported by `cargo bench -p
//! scopebus --bench memory`. One test function: the counters are global, so
//! nothing else in this binary may allocate while it measures.

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "../benches/support/memory.rs"]
mod probe;

#[test]
fn memory_promises() {
    // At most 64 bytes per retained event beyond the payload, however many
    // subscriptions share it (issue 5; RECLAIM-1: one copy per event).
    for subscribers in [1, 8, 64] {
        let r = probe::retained_scopebus(subscribers, 4096);
        assert!(
            r.overhead_per_event <= 64.0,
            "{subscribers} subscriptions: {:.1} bytes of overhead per retained event",
            r.overhead_per_event
        );
    }
    // DROP-1: a send nobody receives allocates nothing at all.
    for u in probe::unreceived_scopebus(10_000) {
        assert_eq!(u.allocations, 0, "{}: {u:?}", u.case);
        assert_eq!(u.bytes_left, 0, "{}: {u:?}", u.case);
    }
    // RECLAIM-1: consumed events are freed while the bus and its
    // subscriptions live on.
    assert_eq!(probe::reclaimed_scopebus(8, 4096), 0);
    // RECLAIM-2: dropping unpolled subscriptions frees what only they held.
    assert_eq!(probe::dropped_unpolled_scopebus(8, 4096), 0);
    // The same for subscriptions dropped while waiting, with or without
    // having received some of their events.
    assert_eq!(probe::dropped_waiting_scopebus(8, 4096), 0);
    // CLOSE-1 then RECLAIM-1: a closed bus's subscriptions drain and end,
    // and nothing is left (the waiter list included).
    assert_eq!(probe::closed_and_drained_scopebus(8, 4096), 0);
}
