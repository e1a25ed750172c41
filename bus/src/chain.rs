//! The chain a channel's events live in, and the cursors that read it: the
//! only module of the bus with `unsafe` code.
//!
//! # Shape
//!
//! A chain is a singly linked list of blocks of [`BLOCK`] slots. A send fills
//! the next slot of the tail block (a new block is linked when the tail is
//! full); a subscription's [`Cursor`] is a (block, index) position that only
//! moves forward. Slots are never reused while their block lives, so unlike
//! a ring (`tokio::sync::broadcast`) no slot needs a lock: a slot is written
//! once, by the send that fills it, before it is published, and a reader
//! that sees it published sees it whole.
//!
//! Each slot holds the event's `Arc<T>`, as a raw pointer, and `remaining`:
//! how many subscriptions still have to pass it. A subscription passes a
//! slot by receiving its event, or, when it ends or is dropped, by skipping
//! every slot from its cursor to the chain's end ([`Cursor::skip_to`]). The
//! last one to pass a slot takes the slot's reference to the event: if it
//! was a receiver, it hands that reference out (no count is touched); if it
//! skipped, the event is freed there and then. So an event is freed the
//! moment its last live subscription receives it or is dropped
//! (RECLAIM-1, RECLAIM-2), and the bus never holds an event nobody will
//! read.
//!
//! Blocks are reference counted. Freed blocks go back to a one-block
//! [`Pool`] that the next new block is taken from, so a channel whose
//! readers keep up allocates no blocks at all in its steady state.
//!
//! # Invariants
//!
//! 1. **Ownership of an event.** `events[i]` is non-null exactly while slot
//!    `i` owns one strong reference to its event's `Arc` (from
//!    [`Arc::into_raw`]). It turns non-null once, when a send publishes
//!    the slot (with `Release`), and null once, when the slot's last passer
//!    takes the reference.
//! 2. **Who still has to pass.** Once slot `i` is published, `remaining[i]`
//!    counts the subscriptions that were live at its send and have not
//!    passed it. It was written before the publication. Subscriptions
//!    created later start after the slot, and sends do not count
//!    subscriptions that have ended (both under the channel's lock, which
//!    every send holds). So a subscription that is about to pass slot `i`
//!    is counted in `remaining[i]`.
//! 3. **A lone passer needs no read-modify-write.** If a passer that has
//!    not passed slot `i` reads `remaining[i] == 1`, the one it counts is
//!    the passer itself (2): nobody else will ever touch the slot, and the
//!    passer may take the reference with plain stores. Otherwise it takes
//!    its own reference first (a strong-count increment) and only then
//!    decrements `remaining[i]`; the one whose decrement reaches zero
//!    releases the slot's reference, never the event's last (it holds one).
//! 4. **Block lifetime.** A block's `refs` counts its holders: the chain, if
//!    it is the tail block; the block before it, through `next`, while that
//!    one lives; and every cursor in it. The holder whose release takes it
//!    to zero frees it, then releases the next block's link. Blocks are
//!    freed in chain order, none before every cursor has left it, and by
//!    then every slot has been passed by every subscription that counted
//!    (1, 2), so a freed block holds no event. The one exception is a
//!    cursor dropped without passing (a planted leak parks one until its
//!    channel goes away): the blocks its drop frees are swept for events.
//! 5. **Retained count.** `sent` (the chain's slots written: its blocks
//!    before the tail times `BLOCK`, plus the tail's index; under the
//!    channel's lock)
//!    less `freed` (the pool's, bumped by last passers) is the number of
//!    events some live subscription still has to pass. Both only grow;
//!    read under the lock, `freed` never exceeds `sent`.
//!
//! # Memory
//!
//! A slot is 12 bytes (an 8-byte pointer and a 4-byte count, in two
//! arrays so that nothing pads them) and a block adds 16 bytes for its 64
//! slots: with the 16 bytes of the event's own `Arc` header, about 28
//! bytes of overhead per retained event of an 8-byte, 8-aligned payload
//! (a payload of another size or alignment changes the `Arc`'s padding:
//! about 35 bytes for a `u8`, more for an over-aligned type). A block is 784 bytes: a channel costs one
//! when empty, and its pool keeps at most one more. (64 slots rather than
//! 32: half the block allocations and steps for the same memory per
//! event.) `remaining` being 32 bits caps a channel at
//! `u32::MAX` live subscriptions ([`MAX_SUBSCRIPTIONS`]).
//!
//! Under `cfg(loom)` a block has two slots, so that the loom tests cross
//! block boundaries in a handful of sends.

#![allow(unsafe_code)]

use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// Slots per block.
#[cfg(not(loom))]
pub(crate) const BLOCK: usize = 64;
/// Slots per block: two under loom, to cross blocks in few sends.
#[cfg(loom)]
pub(crate) const BLOCK: usize = 2;

/// The most live subscriptions one channel can count (`remaining` is 32
/// bits); subscribing beyond it panics.
pub(crate) const MAX_SUBSCRIPTIONS: usize = u32::MAX as usize;

/// A panic an event's destructor raised while a subscription skipped it.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

struct Block<T> {
    /// Invariant 1: the slot's reference to its event, or null.
    events: [AtomicPtr<T>; BLOCK],
    /// Invariant 2: subscriptions still to pass the slot.
    remaining: [AtomicU32; BLOCK],
    /// The block after this one; null until a send needs it.
    next: AtomicPtr<Block<T>>,
    /// Invariant 4: the block's holders.
    refs: AtomicUsize,
    /// Under loom only: one tracked cell per slot standing for the event's
    /// `Arc`, whose counts loom cannot see (they are `std`'s). The send
    /// and the pass that releases the slot's reference write it; every
    /// other passer reads it before it touches the `Arc`. So loom reports
    /// a pass that touches the `Arc` unordered with its release (a
    /// use-after-free) or with its publication (a data race on the
    /// payload), and each access is a point where loom may switch threads.
    #[cfg(loom)]
    access: [loom::cell::UnsafeCell<()>; BLOCK],
}

impl<T> Block<T> {
    /// Under loom: the `Arc` in slot `index` is read (a reference taken).
    #[inline(always)]
    fn reads_event(&self, index: usize) {
        #[cfg(loom)]
        self.access[index].with(|_| ());
        let _ = index;
    }

    /// Under loom: the `Arc` in slot `index` is written (published, or its
    /// slot reference taken or released).
    #[inline(always)]
    fn writes_event(&self, index: usize) {
        #[cfg(loom)]
        self.access[index].with_mut(|_| ());
        let _ = index;
    }
}

impl<T> Block<T> {
    /// A new block: every slot empty, no successor, no holder. (One
    /// function for both builds, so that cargo-mutants mutates the code
    /// that runs, never a variant compiled out.)
    fn allocate() -> NonNull<Block<T>> {
        #[cfg(not(loom))]
        {
            let layout = std::alloc::Layout::new::<Block<T>>();
            // SAFETY: `Block` is not zero-sized. All zeroes is an empty
            // block: null pointers and zero counts (std's atomics have the
            // layout and bit validity of the integers and pointers they wrap).
            let raw = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Block<T>>();
            NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
        }
        // Loom's atomics must be made by their constructors.
        #[cfg(loom)]
        {
            let block = Box::new(Block {
                events: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
                remaining: std::array::from_fn(|_| AtomicU32::new(0)),
                next: AtomicPtr::new(ptr::null_mut()),
                refs: AtomicUsize::new(0),
                access: std::array::from_fn(|_| loom::cell::UnsafeCell::new(())),
            });
            NonNull::from(Box::leak(block))
        }
    }
}

/// The parts of a channel's chain that cursors reach without the channel's
/// lock: the spare block and the count of freed events.
pub(crate) struct Pool<T> {
    /// A freed block, ready for reuse, or null.
    spare: AtomicPtr<Block<T>>,
    /// Events whose last passer has taken them (invariant 5).
    freed: AtomicUsize,
}

// SAFETY: a pool owns at most one block, which holds no event (invariant
// 4); blocks are shared between threads only through atomics.
unsafe impl<T: Send + Sync> Send for Pool<T> {}
// SAFETY: as above; every field is an atomic.
unsafe impl<T: Send + Sync> Sync for Pool<T> {}

impl<T> Pool<T> {
    pub(crate) fn new() -> Pool<T> {
        Pool {
            spare: AtomicPtr::new(ptr::null_mut()),
            freed: AtomicUsize::new(0),
        }
    }

    /// The spare block, or a new one, with `refs` holders.
    fn block(&self, refs: usize) -> NonNull<Block<T>> {
        let block =
            NonNull::new(self.spare.swap(ptr::null_mut(), Acquire)).unwrap_or_else(Block::allocate);
        // SAFETY: the block is ours alone: just allocated, or taken from the
        // pool, which held it as its only holder.
        unsafe { block.as_ref() }.refs.store(refs, Relaxed);
        block
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        if let Some(block) = NonNull::new(self.spare.swap(ptr::null_mut(), Acquire)) {
            // SAFETY: the pool was the spare block's only holder.
            drop(unsafe { Box::from_raw(block.as_ptr()) });
        }
    }
}

/// Gives up one holder's reference to `block`, freeing it, and then every
/// following block this leaves without a holder (invariant 4).
///
/// `pool` is `Some` on the paths of a running channel (a cursor stepping
/// or skipping, a send linking a block): freed blocks go to the pool if it
/// has room, and hold no event (invariant 4). It is `None` when a chain or
/// a cursor is dropped as it is (a channel going away, a cursor a planted
/// bug parked without passing): then the blocks are swept for events left
/// in them, and go back to the allocator.
///
/// # Safety
/// The caller holds a reference to `block` and gives it up.
unsafe fn release<T>(mut block: NonNull<Block<T>>, pool: Option<&Pool<T>>) {
    loop {
        // SAFETY: the caller's reference keeps the block alive until here.
        if unsafe { block.as_ref() }.refs.fetch_sub(1, AcqRel) != 1 {
            return;
        }
        // SAFETY: that was the last reference: the block is ours alone.
        let next = unsafe { free(block, pool) };
        match next {
            Some(next) => block = next,
            None => return,
        }
    }
}

/// Frees a block nobody holds, returning the block after it, whose link
/// reference the caller now holds.
///
/// # Safety
/// `block` has no holder left and is not reachable by anyone else.
unsafe fn free<T>(block: NonNull<Block<T>>, pool: Option<&Pool<T>>) -> Option<NonNull<Block<T>>> {
    // SAFETY: the caller's guarantee.
    let owned = unsafe { block.as_ref() };
    match pool {
        None => sweep(owned),
        Some(_) => debug_assert!(
            owned.events.iter().all(|e| e.load(Relaxed).is_null()),
            "a block freed on a running channel holds an event (invariant 4)"
        ),
    }
    let next = NonNull::new(owned.next.swap(ptr::null_mut(), Acquire));
    let kept = pool.is_some_and(|pool| {
        pool.spare
            .compare_exchange(ptr::null_mut(), block.as_ptr(), Release, Relaxed)
            .is_ok()
    });
    if !kept {
        // SAFETY: allocated by `Block::allocate` (a `Box`), held by nobody.
        drop(unsafe { Box::from_raw(block.as_ptr()) });
    }
    next
}

/// Frees the events a block still owns: those of slots a cursor dropped
/// without passing never reached their last passer (invariant 4).
fn sweep<T>(block: &Block<T>) {
    for event in &block.events {
        let raw = event.swap(ptr::null_mut(), Relaxed);
        if !raw.is_null() {
            // SAFETY: a non-null slot owns one reference (invariant 1),
            // and nobody else reaches the block any more.
            drop(unsafe { Arc::from_raw(raw) });
        }
    }
}

/// A place in the chain: the slot the next send fills, or the next one a
/// cursor passes. Only compared, never dereferenced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Position {
    block: *const (),
    index: usize,
}

/// The sender's end of a chain: the tail block and the slot the next send
/// fills. Lives under the channel's lock; every method needs it held.
pub(crate) struct Chain<T> {
    /// The chain holds one reference to its tail block (invariant 4).
    tail: NonNull<Block<T>>,
    index: usize,
    /// Events sent before the tail block (invariant 5: `sent` is this plus
    /// `index`).
    before_tail: usize,
}

// SAFETY: the chain owns one block reference, and events of a `T` that is
// `Send + Sync` (they are shared with every receiver).
unsafe impl<T: Send + Sync> Send for Chain<T> {}
// SAFETY: `&Chain` only reads the position.
unsafe impl<T: Send + Sync> Sync for Chain<T> {}

impl<T> Chain<T> {
    /// An empty chain, its first block taken from `pool`.
    pub(crate) fn new(pool: &Pool<T>) -> Chain<T> {
        Chain {
            tail: pool.block(1),
            index: 0,
            before_tail: 0,
        }
    }

    /// A cursor at the end of the chain: it will read exactly the events
    /// sent from now on (VIS-1).
    pub(crate) fn cursor(&self) -> Cursor<T> {
        // SAFETY: the chain holds its tail block.
        unsafe { self.tail.as_ref() }.refs.fetch_add(1, Relaxed);
        Cursor {
            block: self.tail,
            index: self.index,
        }
    }

    /// Where the next send goes.
    pub(crate) fn end(&self) -> Position {
        Position {
            block: self.tail.as_ptr().cast(),
            index: self.index,
        }
    }

    /// Events sent and not yet passed by every subscription that counted
    /// (invariant 5).
    pub(crate) fn retained(&self, pool: &Pool<T>) -> usize {
        (self.before_tail + self.index).saturating_sub(pool.freed.load(Acquire))
    }

    /// Appends `event` for `receivers` live subscriptions (at least one).
    #[inline(always)]
    pub(crate) fn push(&mut self, pool: &Pool<T>, event: Arc<T>, receivers: u32) {
        debug_assert!(receivers > 0, "DROP-1: nothing is stored for nobody");
        // Written so that the compiler sees `index < BLOCK` (no bounds checks).
        let index = if self.index < BLOCK {
            self.index
        } else {
            self.grow(pool);
            0
        };
        // SAFETY: the chain holds its tail block.
        let block = unsafe { self.tail.as_ref() };
        block.remaining[index].store(receivers, Relaxed);
        let raw = Arc::into_raw(event).cast_mut();
        block.writes_event(index);
        // Publishes the slot (invariant 1), `remaining` with it.
        block.events[index].store(raw, Release);
        self.index = index + 1;
    }

    /// Links a new tail block (from the pool if it has one) after a full one.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, pool: &Pool<T>) {
        // Held by the old tail's link and by the chain.
        let block = pool.block(2);
        // SAFETY: the chain holds its tail block.
        unsafe { self.tail.as_ref() }
            .next
            .store(block.as_ptr(), Release);
        let old = std::mem::replace(&mut self.tail, block);
        self.before_tail += BLOCK;
        self.index = 0;
        // SAFETY: the chain held `old` as its tail, and gives that up.
        unsafe { release(old, Some(pool)) };
    }
}

impl<T> Drop for Chain<T> {
    fn drop(&mut self) {
        // SAFETY: the chain holds its tail block, and gives it up.
        unsafe { release(self.tail, None) };
    }
}

/// One subscription's place in a chain: the next slot it passes.
///
/// Dropping a cursor lets go of its block without passing the slots ahead
/// of it: their events stay until the block is freed. A subscription that
/// ends calls [`skip_to`](Cursor::skip_to) instead.
pub(crate) struct Cursor<T> {
    /// The cursor holds one reference to its block (invariant 4).
    block: NonNull<Block<T>>,
    index: usize,
}

// SAFETY: as for `Chain`: a block reference, and events of a shareable `T`.
unsafe impl<T: Send + Sync> Send for Cursor<T> {}
// SAFETY: `&Cursor` has no methods that touch the chain.
unsafe impl<T: Send + Sync> Sync for Cursor<T> {}

impl<T> Cursor<T> {
    /// The next event, if it was sent; the cursor moves past it.
    #[inline(always)]
    pub(crate) fn next(&mut self, pool: &Pool<T>) -> Option<Arc<T>> {
        // Written so that the compiler sees `index < BLOCK`: no bounds
        // checks on the slot arrays.
        let index = if self.index < BLOCK {
            self.index
        } else if self.step(pool) {
            0
        } else {
            return None;
        };
        // SAFETY: the cursor holds its block.
        let block = unsafe { self.block.as_ref() };
        let raw = block.events[index].load(Acquire);
        if raw.is_null() {
            // Not sent yet: a slot a cursor has not passed is taken only by
            // that cursor's own last pass (invariants 1 to 3).
            return None;
        }
        self.index = index + 1;
        // SAFETY: `raw` was published in this slot, which we have not passed.
        Some(unsafe { take(block, index, raw, pool) })
    }

    /// Whether the cursor is at `end`.
    pub(crate) fn at(&self, end: Position) -> bool {
        self.block.as_ptr().cast_const().cast() == end.block && self.index == end.index
    }

    /// Passes every slot from here to `end` without receiving, as a
    /// subscription that ends or is dropped does (RECLAIM-2), freeing the
    /// events it was the last to need, then lets go of its block.
    ///
    /// An event's destructor may panic: the walk goes on (every count stays
    /// right) and the first panic is returned, for the caller to resume once
    /// it holds no lock.
    ///
    /// `end` is the chain's [`end`](Chain::end), read under the channel's
    /// lock when the subscription stopped counting as live; it is at or
    /// after the cursor.
    pub(crate) fn skip_to(mut self, end: Position, pool: &Pool<T>) -> Result<(), Panic> {
        let mut panicked = None;
        while !self.at(end) {
            if self.index == BLOCK && !self.step(pool) {
                debug_assert!(false, "the chain's end lies beyond its last block");
                break;
            }
            // SAFETY: the cursor holds its block, and the slot was
            // published before `end` was read (both under the lock).
            let freed = unsafe { skip(self.block.as_ref(), self.index, pool) };
            self.index += 1;
            if let Some(event) = freed
                && let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(event)))
            {
                panicked.get_or_insert(panic);
            }
        }
        self.release(pool);
        panicked.map_or(Ok(()), Err)
    }

    /// Lets go of the cursor's block, recycling what that frees.
    pub(crate) fn release(self, pool: &Pool<T>) {
        let block = self.block;
        std::mem::forget(self);
        // SAFETY: the cursor held `block`, and gives it up.
        unsafe { release(block, Some(pool)) };
    }

    /// Moves from a full block to the next, if it was linked.
    #[cold]
    #[inline(never)]
    fn step(&mut self, pool: &Pool<T>) -> bool {
        // SAFETY: the cursor holds its block.
        let next = unsafe { self.block.as_ref() }.next.load(Acquire);
        let Some(next) = NonNull::new(next) else {
            return false;
        };
        // SAFETY: `next` is held by our block's link, which lives while we
        // hold our block; we take a reference of our own before leaving.
        unsafe { next.as_ref() }.refs.fetch_add(1, Relaxed);
        let old = std::mem::replace(&mut self.block, next);
        self.index = 0;
        // SAFETY: the cursor held `old`, and gives it up.
        unsafe { release(old, Some(pool)) };
        true
    }
}

impl<T> Drop for Cursor<T> {
    fn drop(&mut self) {
        // SAFETY: the cursor holds its block, and gives it up.
        unsafe { release(self.block, None) };
    }
}

/// A receiver's pass over a published slot: its event (invariant 3).
///
/// # Safety
/// `raw` was loaded (non-null) from `block.events[index]`, which the caller
/// has not passed, and the caller passes it now.
#[inline(always)]
unsafe fn take<T>(block: &Block<T>, index: usize, raw: *mut T, pool: &Pool<T>) -> Arc<T> {
    let remaining = &block.remaining[index];
    if remaining.load(Acquire) == 1 {
        // Alone (invariant 3): the slot's reference is ours, as it is.
        block.writes_event(index);
        block.events[index].store(ptr::null_mut(), Relaxed);
        pool.freed.fetch_add(1, Release);
        // SAFETY: the slot owned this reference (invariant 1); it is moved.
        return unsafe { Arc::from_raw(raw) };
    }
    block.reads_event(index);
    // SAFETY: the slot's reference keeps the event alive: it is released
    // only by the last passer, after our decrement below.
    unsafe { Arc::increment_strong_count(raw) };
    // SAFETY: the reference just made.
    let ours = unsafe { Arc::from_raw(raw) };
    if remaining.fetch_sub(1, AcqRel) == 1 {
        block.writes_event(index);
        block.events[index].store(ptr::null_mut(), Relaxed);
        pool.freed.fetch_add(1, Release);
        // SAFETY: the slot's own reference; not the event's last (`ours`).
        drop(unsafe { Arc::from_raw(raw) });
    }
    ours
}

/// An ending subscription's pass over a published slot: the event, if this
/// pass was its last, for the caller to drop.
///
/// # Safety
/// `block.events[index]` was published, the caller has not passed it, and
/// passes it now.
unsafe fn skip<T>(block: &Block<T>, index: usize, pool: &Pool<T>) -> Option<Arc<T>> {
    // Read before the decrement: after it, the last passer may take it.
    let raw = block.events[index].load(Acquire);
    let remaining = &block.remaining[index];
    if remaining.load(Acquire) == 1 || remaining.fetch_sub(1, AcqRel) == 1 {
        block.writes_event(index);
        block.events[index].store(ptr::null_mut(), Relaxed);
        pool.freed.fetch_add(1, Release);
        // SAFETY: the slot owned this reference (invariant 1); we were its
        // last passer (invariant 3), so it is ours to drop.
        return Some(unsafe { Arc::from_raw(raw) });
    }
    None
}
