//! Memory figures of the reference bus and its peers, with a counting
//! global allocator (`stats_alloc`): bytes held per pending event, what a
//! send nobody receives allocates, and what is left once events are
//! consumed or their subscriptions dropped.
//!
//! Prints a table; writes the figures as JSON to `$SCOPEBUS_BENCH_JSON`
//! when set (as `cargo xtask bench` does). Not timed: allocation counts do
//! not depend on the machine. `tests/memory.rs` holds the bus to the same
//! figures (at most 32 bytes of overhead per retained event, at most one
//! allocation per send, nothing allocated by a send nobody receives, at
//! most the channel's one pooled block left once every event is gone).

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "support/memory.rs"]
mod probe;

/// Pending events per retained-memory probe: a power of two, so that the
/// ring buffers of the peers are exactly full.
const EVENTS: usize = 1 << 14;
const SENDS: usize = 100_000;

fn main() {
    // `cargo bench` passes `--bench`; a filter that matches nothing here
    // (criterion's, for the other bench) skips this one.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| "memory".contains(f.as_str())) {
        return;
    }
    let mut retained = Vec::new();
    for subscribers in [1, 64] {
        retained.push(probe::retained_scopebus(subscribers, EVENTS));
        retained.push(probe::retained_tokio(subscribers, EVENTS));
        retained.push(probe::retained_async_broadcast(subscribers, EVENTS));
    }
    println!(
        "{:<18} {:>11} {:>8} {:>15} {:>19}",
        "retained: peer", "subscribers", "events", "bytes/event", "overhead/event (B)"
    );
    for r in &retained {
        println!(
            "{:<18} {:>11} {:>8} {:>15.1} {:>19.1}",
            r.peer, r.subscribers, r.events, r.bytes_per_event, r.overhead_per_event
        );
    }
    let mut unreceived = probe::unreceived_scopebus(SENDS).to_vec();
    unreceived.push(probe::unreceived_tokio(SENDS));
    println!(
        "\n{:<32} {:>8} {:>12} {:>11}",
        "sends nobody receives", "sends", "allocations", "bytes left"
    );
    for u in &unreceived {
        println!(
            "{:<32} {:>8} {:>12} {:>11}",
            u.case, u.sends, u.allocations, u.bytes_left
        );
    }
    let mut per_send = Vec::new();
    for subscribers in [1, 8, 64] {
        per_send.push(probe::per_send_scopebus(subscribers, SENDS));
        per_send.push(probe::per_send_tokio(subscribers, SENDS));
        per_send.push(probe::per_send_waiting_scopebus(subscribers, SENDS));
    }
    println!(
        "\n{:<32} {:>11} {:>8} {:>16}",
        "allocations per send (keeping up)", "subscribers", "sends", "allocations/send"
    );
    for p in &per_send {
        println!(
            "{:<32} {:>11} {:>8} {:>16.3}",
            p.peer, p.subscribers, p.sends, p.allocations
        );
    }
    let reclaimed = probe::reclaimed_scopebus(64, EVENTS);
    let dropped = probe::dropped_unpolled_scopebus(64, EVENTS);
    let waiting = probe::dropped_waiting_scopebus(64, EVENTS);
    let closed = probe::closed_and_drained_scopebus(64, EVENTS);
    println!(
        "\nscopebus, bytes left after 64 subscriptions consumed {EVENTS} events: {reclaimed}\n\
         scopebus, bytes left after 64 subscriptions with {EVENTS} pending were dropped unpolled: {dropped}\n\
         scopebus, bytes left after 64 waiting subscriptions (half part-way through {EVENTS} events) were dropped: {waiting}\n\
         scopebus, bytes left after a closed bus's 64 subscriptions drained {EVENTS} events and ended: {closed}"
    );

    if let Some(path) = std::env::var_os("SCOPEBUS_BENCH_JSON") {
        let json = serde_json::json!({
            "retained": retained.iter().map(|r| serde_json::json!({
                "peer": r.peer,
                "subscribers": r.subscribers,
                "events": r.events,
                "bytes_per_event": r.bytes_per_event,
                "overhead_per_event": r.overhead_per_event,
            })).collect::<Vec<_>>(),
            "unreceived": unreceived.iter().map(|u| serde_json::json!({
                "case": u.case,
                "sends": u.sends,
                "allocations": u.allocations,
                "bytes_left": u.bytes_left,
            })).collect::<Vec<_>>(),
            "per_send": per_send.iter().map(|p| serde_json::json!({
                "peer": p.peer,
                "subscribers": p.subscribers,
                "sends": p.sends,
                "allocations": p.allocations,
            })).collect::<Vec<_>>(),
            "reclaimed_bytes_left": reclaimed,
            "dropped_unpolled_bytes_left": dropped,
            "dropped_waiting_bytes_left": waiting,
            "closed_drained_bytes_left": closed,
        });
        let text = serde_json::to_string_pretty(&json).expect("JSON");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!(
                "cannot write {}: {e}",
                std::path::Path::new(&path).display()
            );
            std::process::exit(2);
        }
    }
}
