//! A waker that counts its wakes, for tests that check whom the bus wakes
//! and how many of a task's wakers it keeps.
//!
//! # Invariants
//!
//! - Every wake, by value or by reference, of any waker made from one
//!   [`Wakes`] adds one to its count; nothing else changes it but
//!   [`Wakes::take`].
//! - `Arc::strong_count` of the handle is one for the handle, one for each
//!   live waker made from it: less the test's own, what the bus holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};

/// Counts the wakes of the wakers made from it.
#[derive(Default)]
pub struct Wakes(AtomicUsize);

impl Wakes {
    /// A new count (0) and a waker that counts into it.
    pub fn new() -> (Arc<Self>, Waker) {
        let wakes = Arc::new(Self::default());
        let waker = Waker::from(wakes.clone());
        (wakes, waker)
    }

    /// How many wakes since it was made or last taken.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Whether it was woken since it was made or last taken; resets the
    /// count to 0.
    pub fn take(&self) -> bool {
        self.0.swap(0, Ordering::SeqCst) > 0
    }
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
