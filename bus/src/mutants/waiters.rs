//! Planted bugs of the waiter list: a poll that deregisters
//! (`spurious-wake-deregisters`) or keeps a stale waker
//! (`waker-not-refreshed`), a drop that clears everyone's entry
//! (`drop-clears-waiters`), and compactions that keep the generation
//! (`compaction-keeps-generation`) or forget the wakers
//! (`compaction-loses-wakers`).

#![forbid(unsafe_code)]

use super::{Mutant, is};
use crate::waiters::{Ticket, Waiters, Woken};
use std::task::Waker;

/// A poll that finds its entry already there: `Ok` is what `register`
/// returns; `Err` gives the waker back for the reference's refresh.
pub(crate) fn refresh(
    waiters: &mut Waiters,
    ticket: &mut Option<Ticket>,
    index: usize,
    waker: Waker,
) -> Result<[Option<Waker>; 2], Waker> {
    let mutant = waiters.mutant;
    if is(mutant, Mutant::SpuriousWakeDeregisters) {
        let (list, vacant) = waiters.parts();
        *vacant += 1;
        *ticket = None;
        return Ok([list.get_mut(index).and_then(Option::take), Some(waker)]);
    }
    if is(mutant, Mutant::WakerNotRefreshed) {
        return Ok([Some(waker), None]);
    }
    Err(waker)
}

/// A dropped subscription's entry: `drop-clears-waiters` takes everyone's
/// (returned second, to drop unwoken after the lock).
pub(crate) fn vacate_on_drop(
    waiters: &mut Waiters,
    ticket: &mut Option<Ticket>,
) -> (Option<Waker>, Woken) {
    if is(waiters.mutant, Mutant::DropClearsWaiters) {
        *ticket = None;
        let (list, vacant) = waiters.parts();
        *vacant = 0;
        return (None, list.take());
    }
    (waiters.vacate(ticket), Woken::default())
}

/// `compaction-keeps-generation`: the rebuilt list keeps the old
/// generation, so old tickets name new entries.
pub(crate) fn compact_keeping_generation(waiters: &mut Waiters) -> Option<Woken> {
    if !is(waiters.mutant, Mutant::CompactionKeepsGeneration) {
        return None;
    }
    let (list, vacant) = waiters.parts();
    *vacant = 0;
    Some(list.take())
}

/// `compaction-loses-wakers`: the compacted list's wakers are dropped, not
/// woken.
pub(crate) fn lose_woken(mutant: Option<Mutant>, woken: Woken) -> Woken {
    if is(mutant, Mutant::CompactionLosesWakers) {
        drop(woken);
        return Woken::default();
    }
    woken
}
