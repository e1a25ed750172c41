//! The synchronization primitives the bus's data structures are built on,
//! swapped for [loom](https://docs.rs/loom)'s under `cfg(loom)`, so that the
//! loom tests (`loom/tests/bus.rs`) explore every interleaving of the
//! atomics and locks below instead of the few a real run happens to take.
//!
//! Only what the chain, the channels and the bus's map synchronize through
//! goes here. The `Arc` of an event stays `std`'s in both builds: it is the
//! public item type of a subscription, and its counts are `std`'s own,
//! correct in any interleaving (loom simply does not schedule around them).
//! The `Arc` that holds a channel stays `std`'s too: it is only ever
//! cloned and dropped, never used to synchronize.

#![forbid(unsafe_code)]

/// Atomics: loom's under `cfg(loom)`, else `std`'s.
pub(crate) mod atomic {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};
}
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) use std::sync::atomic::Ordering;

/// Locks `mutex`, ignoring poisoning: every critical section of the bus
/// leaves its state consistent before anything that could panic runs (no
/// user code runs under a lock of the bus, REENTER-1).
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes `lock` for reading, ignoring poisoning (see [`lock`]).
#[inline]
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes `lock` for writing, ignoring poisoning (see [`lock`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
