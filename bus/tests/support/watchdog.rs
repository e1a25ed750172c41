//! A per-test watchdog.
//!
//! A bug in the bus often shows as a hang (a lost wakeup, a subscription
//! that never ends, a deadlock), and a hung test would hold `cargo test`,
//! and every mutant run of cargo-mutants, until an outer timeout. The guard
//! turns a hang into a failure that names the test: if the test is still
//! running after [`LIMIT`] (`SCOPEBUS_TEST_WATCHDOG_SECS` overrides it), it
//! says so on stderr and aborts the test binary (a hung thread cannot be
//! stopped any other way). Dropping the guard, when the test returns or
//! panics, stops the watchdog's thread.

#![allow(dead_code)]

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// How long one test may run: far beyond any test's own run time (under a
/// second), well under cargo-mutants' timeout for the whole killer.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Stops its watchdog when dropped.
#[must_use = "the watchdog stops when the guard drops: bind it for the whole test"]
pub struct Watchdog {
    _done: Sender<()>,
}

/// Starts a watchdog for the calling test (named after the test's thread).
pub fn watchdog() -> Watchdog {
    let limit = std::env::var("SCOPEBUS_TEST_WATCHDOG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(LIMIT, Duration::from_secs);
    let name = std::thread::current().name().unwrap_or("a test").to_owned();
    let (done, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
            // Straight to the file descriptor: the test harness captures
            // `eprintln!` (also on threads a test spawns) and an abort
            // would lose it.
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: `{name}` is still running after {limit:?}: a hang (a lost \
                 wakeup, a subscription that never ends, a deadlock); aborting the test binary"
            );
            std::process::abort();
        }
    });
    Watchdog { _done: done }
}
