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

/// The entries of a waiter list, by index: the first inline, so that a
/// lone waiting subscription (a processor keeping up) registers and is
/// woken without an allocation; the rest in a vector.
#[derive(Default)]
pub(crate) struct Entries {
    /// `None`: unused; `Some(None)`: vacated.
    first: Option<Option<Waker>>,
    rest: Vec<Option<Waker>>,
}

impl Entries {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// The entry at `index`, if there is one (live or vacated).
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Option<Waker>> {
        match index {
            0 => self.first.as_mut(),
            _ => self.rest.get_mut(index - 1),
        }
    }

    /// Adds an entry; returns its index.
    fn push(&mut self, waker: Waker) -> usize {
        if self.first.is_none() {
            self.first = Some(Some(waker));
            return 0;
        }
        self.rest.push(Some(waker));
        self.rest.len()
    }

    /// Every entry's waker, leaving the list empty.
    pub(crate) fn take(&mut self) -> Woken {
        Woken {
            first: self.first.take().flatten(),
            rest: std::mem::take(&mut self.rest),
        }
    }
}

/// Wakers taken from a waiter list, to wake (or drop) once every lock is
/// released.
#[derive(Default)]
#[must_use = "taken wakers must be woken, after the lock is released"]
pub(crate) struct Woken {
    first: Option<Waker>,
    rest: Vec<Option<Waker>>,
}

impl Woken {
    /// Wakes every waker (only the first, if `one_only`: a planted bug),
    /// and returns the spill vector, emptied, so that its allocation can go
    /// back to the list ([`Waiters::restore`]).
    pub(crate) fn wake(self, one_only: bool) -> Vec<Option<Waker>> {
        let Woken { first, mut rest } = self;
        let mut wakers = first.into_iter().chain(rest.drain(..).flatten());
        if one_only {
            if let Some(waker) = wakers.next() {
                waker.wake();
            }
            return Vec::new();
        }
        wakers.for_each(Waker::wake);
        rest
    }
}

impl IntoIterator for Woken {
    type Item = Waker;
    type IntoIter = std::iter::Chain<
        std::option::IntoIter<Waker>,
        std::iter::Flatten<std::vec::IntoIter<Option<Waker>>>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.first
            .into_iter()
            .chain(self.rest.into_iter().flatten())
    }
}

#[derive(Default)]
pub(crate) struct Waiters {
    list: Entries,
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
            list: Entries::default(),
            vacant: 0,
            generation: 0,
            mutant,
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
            && self
                .list
                .get_mut(index)
                .is_some_and(|entry| entry.is_some())
        {
            planted!(let waker = match crate::mutants::waiters::refresh(self, ticket, index, waker) { Ok(left) => return left, Err(waker) => waker };);
            if let Some(Some(registered)) = self.list.get_mut(index)
                && !registered.will_wake(&waker)
            {
                return [Some(std::mem::replace(registered, waker)), None];
            }
            return [Some(waker), None];
        }
        let index = self.list.push(waker);
        *ticket = Some((self.generation, index));
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
        self.take_any().unwrap_or_default()
    }

    /// Every waker, or `None` if nobody waits (the send path: nothing to
    /// drop when there is nothing to wake); starts a new generation.
    #[inline]
    pub(crate) fn take_any(&mut self) -> Option<Woken> {
        if self.list.len() == 0 {
            return None;
        }
        self.generation = self.generation.wrapping_add(1);
        self.vacant = 0;
        Some(self.list.take())
    }

    /// Rebuilds a list that is mostly holes: its wakers, to wake (they
    /// register again in the new generation). Empty if the list is fine.
    pub(crate) fn compact_if_sparse(&mut self) -> Woken {
        if self.vacant <= COMPACT_AFTER || self.vacant * 2 <= self.list.len() {
            return Woken::default();
        }
        planted!(
            if let Some(woken) = crate::mutants::waiters::compact_keeping_generation(self) {
                return woken;
            }
        );
        self.take_all()
    }

    /// Gives the list back an emptied spill vector (see [`Woken::wake`]),
    /// if it has none: two or more subscriptions waiting after every send
    /// then cost no allocation per send.
    pub(crate) fn restore(&mut self, spill: Vec<Option<Waker>>) {
        if self.list.rest.capacity() == 0 && spill.is_empty() {
            self.list.rest = spill;
        }
    }

    /// The planted-bug paths reach into the list.
    #[cfg(feature = "mutants")]
    pub(crate) fn parts(&mut self) -> (&mut Entries, &mut usize) {
        (&mut self.list, &mut self.vacant)
    }
}
