//! A channel's waiter list: the wakers of subscriptions that found nothing
//! to receive, woken by the next send or by close (WAKE-1).
//!
//! # Invariants
//!
//! - A subscription has at most one entry, and remembers it as a
//!   [`Ticket`] (generation, index). A ticket of an older generation is
//!   stale: its entry was taken by a send, a close or a compaction, which
//!   start a new generation, so a stale ticket never names someone else's
//!   entry.
//! - `vacant` counts the entries of this generation that were emptied by
//!   their subscription (dropped or ended while registered). When more than
//!   [`COMPACT_AFTER`] are vacant and they are more than half the list, the
//!   list is rebuilt: its wakers are woken once, spuriously, and register
//!   afresh (so the list stays within twice the waiting subscriptions plus
//!   a constant).
//! - Every method runs under the channel's lock, and no waker is woken,
//!   cloned or dropped here: what leaves the list is returned to the caller,
//!   who wakes or drops it after letting go of the lock (REENTER-1).

#![forbid(unsafe_code)]

#[cfg(feature = "mutants")]
use crate::mutants::Mutant;
use crate::mutants::planted;
use std::task::Waker;

/// Where a subscription's waker sits: (generation, index).
pub(crate) type Ticket = (u64, usize);

/// Lists with more than this many vacated entries, and more vacated than
/// used, are rebuilt.
pub(crate) const COMPACT_AFTER: usize = 16;

/// The wakers to wake once the lock is released.
pub(crate) type Woken = Vec<Option<Waker>>;

#[derive(Default)]
pub(crate) struct Waiters {
    list: Vec<Option<Waker>>,
    vacant: usize,
    generation: u64,
    /// The planted bug, if any (the `mutants` feature only).
    #[cfg(feature = "mutants")]
    pub(crate) mutant: Option<Mutant>,
}

impl Waiters {
    /// An empty list carrying the bus's planted bug.
    #[cfg(feature = "mutants")]
    pub(crate) fn planted(mutant: Option<Mutant>) -> Waiters {
        Waiters {
            mutant,
            ..Waiters::default()
        }
    }

    /// Registers `waker` for the next send or close, or refreshes this
    /// subscription's entry if it has one in this generation (so repeated
    /// polls do not grow the list).
    ///
    /// `waker` was cloned by the caller before it took the lock (cloning
    /// runs user code). Returns the wakers left over (the one replaced, or
    /// `waker` itself if it was not needed), to drop after the lock.
    #[must_use = "the left-over waker must be dropped after the lock is released"]
    pub(crate) fn register(
        &mut self,
        ticket: &mut Option<Ticket>,
        waker: Waker,
    ) -> [Option<Waker>; 2] {
        if let Some((generation, index)) = *ticket
            && generation == self.generation
            && self.list.get(index).is_some_and(Option::is_some)
        {
            planted!(let waker = match crate::mutants::waiters::refresh(self, ticket, index, waker) { Ok(left) => return left, Err(waker) => waker };);
            if let Some(registered) = &mut self.list[index]
                && !registered.will_wake(&waker)
            {
                return [Some(std::mem::replace(registered, waker)), None];
            }
            return [Some(waker), None];
        }
        self.list.push(Some(waker));
        *ticket = Some((self.generation, self.list.len() - 1));
        [None, None]
    }

    /// Removes this subscription's entry, if it has a live one, returning
    /// its waker to drop after the lock.
    #[must_use = "the waker must be dropped after the lock is released"]
    pub(crate) fn vacate(&mut self, ticket: &mut Option<Ticket>) -> Option<Waker> {
        let (generation, index) = ticket.take()?;
        if generation != self.generation {
            return None;
        }
        let waker = self.list.get_mut(index)?.take()?;
        self.vacant += 1;
        Some(waker)
    }

    /// Every waker, for a send or a close to wake; starts a new generation.
    pub(crate) fn take_all(&mut self) -> Woken {
        if self.list.is_empty() {
            return Vec::new();
        }
        self.generation = self.generation.wrapping_add(1);
        self.vacant = 0;
        std::mem::take(&mut self.list)
    }

    /// Rebuilds a list that is mostly holes: its wakers, to wake (they
    /// register again in the new generation). Empty if the list is fine.
    pub(crate) fn compact_if_sparse(&mut self) -> Woken {
        if self.vacant <= COMPACT_AFTER || self.vacant * 2 <= self.list.len() {
            return Vec::new();
        }
        planted!(
            if let Some(woken) = crate::mutants::waiters::compact_keeping_generation(self) {
                return woken;
            }
        );
        self.take_all()
    }

    /// The planted-bug paths reach into the list.
    #[cfg(feature = "mutants")]
    pub(crate) fn parts(&mut self) -> (&mut Vec<Option<Waker>>, &mut usize) {
        (&mut self.list, &mut self.vacant)
    }
}
