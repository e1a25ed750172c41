//! Deliberately broken variants of the bus, for proving the conformance suite.
//!
//! A mutant is a small, realistic bug planted at one place of the reference
//! implementation. The suite must catch every one of them (`cargo xtask
//! mutants`); a mutant that survives means a rule of SPEC.md is not really
//! checked. The switch is per thread and read when a [`Bus`](crate::Bus) or a
//! scope is created, so one process can run the reference and any mutant side
//! by side on different threads.
//!
//! Without the `mutants` cargo feature every check below is the constant
//! `false` and the compiler removes the broken branches entirely.

#![forbid(unsafe_code)]

use std::cell::Cell;

#[cfg(feature = "mutants")]
pub(crate) mod bus;
#[cfg(feature = "mutants")]
pub(crate) mod channel;
#[cfg(feature = "mutants")]
pub(crate) mod scope;
#[cfg(feature = "mutants")]
pub(crate) mod shared;
#[cfg(feature = "mutants")]
pub(crate) mod subscription;
#[cfg(feature = "mutants")]
pub(crate) mod waiters;

/// The site of a planted bug, as an expression: `hook!(off, on)` is `on`
/// with the `mutants` feature and `off` without it. Without the feature
/// the `on` tokens are dropped before they are type-checked, so no mutant
/// state or branch exists in the bus.
#[cfg(feature = "mutants")]
macro_rules! hook {
    ($off:expr, $on:expr) => {
        $on
    };
}
#[cfg(not(feature = "mutants"))]
macro_rules! hook {
    // `identity` (inlined away) keeps clippy from simplifying the site's
    // expression as if `off` were all there is.
    ($off:expr, $on:expr) => {
        ::core::convert::identity($off)
    };
}

/// The site of a planted bug, as statements: kept with the `mutants`
/// feature, gone without it. Its body is one call into this module.
#[cfg(feature = "mutants")]
macro_rules! planted {
    ($($on:tt)*) => {
        $($on)*
    };
}
#[cfg(not(feature = "mutants"))]
macro_rules! planted {
    ($($on:tt)*) => {};
}

pub(crate) use {hook, planted};

/// One planted bug. Each names the SPEC.md rule it is designed to break; the
/// suite may catch it through another rule first, which is fine: what matters
/// is that it is caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mutant {
    /// A new subscription starts one event early: it also sees the last event
    /// sent before it was created, if some other subscription still holds it.
    /// Breaks VIS-1.
    VisibleLastEvent,
    /// A subscription takes everything pending at once and yields it newest
    /// first. Breaks FIFO-1.
    Lifo,
    /// Channels are keyed by the type's name without its module path, so
    /// look-alike types of different modules evict each other's channel.
    /// Breaks ROUTE-1.
    CollidingTypeNames,
    /// Channels are keyed by the type's name without its generic parameters,
    /// as a type-erased language would (or `typing.Generic` without
    /// Haiway's per-parameter classes), so two instantiations of one generic
    /// type evict each other's channel. Breaks ROUTE-2.
    ErasedGenerics,
    /// An isolated scope reuses its parent's bus. Breaks SCOPE-3.
    IsolatedSharesParent,
    /// A nested, non-isolated scope gets a bus of its own. Breaks SCOPE-2.
    NestedOwnsBus,
    /// A dropped subscription parks its cursor in the channel instead of
    /// releasing it, pinning every event after it. Breaks RECLAIM-2.
    LeakOnDrop,
    /// Close ends subscriptions at once, losing events already sent but not
    /// yet received. Breaks CLOSE-1.
    CloseDropsPending,
    /// An event sent with no live subscription is kept, and the next
    /// subscription of its type receives it. Breaks DROP-1.
    DeliverWithoutSubscribers,
    /// A send wakes only the first waiting subscription (a lost wakeup for the
    /// others). Breaks WAKE-1.
    WakeOne,
    /// Dropping a subscription clears the whole waiter list instead of its own
    /// entry, so other waiting subscribers are never woken. Breaks CANCEL-1.
    DropClearsWaiters,
    /// A poll that finds nothing while already registered deregisters instead
    /// of refreshing the registration (shows up only under spurious wakeups).
    /// Breaks WAKE-1.
    SpuriousWakeDeregisters,
    /// Send ignores close: events sent after close are still delivered.
    /// Breaks CLOSE-2.
    SendAfterClose,
    /// Scope exit does not wait for the scope's tasks; they are dropped
    /// unfinished. Breaks TASK-1.
    ExitSkipsTasks,
    /// A nested, non-isolated scope keeps the tasks spawned in it to itself
    /// and waits for them at its own exit, instead of sharing the task group
    /// of its nearest root or isolated scope, so a processor spawned there
    /// that `async for`s over the shared, still open bus holds it open for
    /// ever. Breaks TASK-1.
    NestedScopeOwnsTasks,
    /// A cancelled scope first runs, once, the tasks of its group that were
    /// woken (a "graceful" cancel), so a task released after the
    /// cancellation was requested still runs. Breaks TASK-3.
    CancelRunsWokenTasks,
    /// Leaving a scope's poll does not restore the previous ambient context,
    /// so code outside any scope still finds a bus. Breaks MISSING-1.
    ContextLeak,
    /// Subscribing after close hands out a live subscription on the closed
    /// bus, which then waits forever. Breaks CLOSE-3.
    SubscribeAfterCloseHangs,
    /// Cancelling a scope closes its bus but leaves its tasks running.
    /// Breaks TASK-2.
    CancelLeavesTasks,
    /// A subscription that found nothing registers its waker without looking
    /// again under the lock: a send that lands between the look and the
    /// registration is never woken for (the classic lost-wakeup race; needs
    /// a send at the yield point to show). Breaks WAKE-1.
    RecheckSkipped,
    /// Rebuilding the waiter list after many subscriptions were dropped
    /// forgets the waiters instead of waking them. Breaks CANCEL-1.
    CompactionLosesWakers,
    /// A subscription that found nothing checks for close before taking the
    /// lock, and not under it: a close between the check and the
    /// registration leaves it waiting forever. The close's wakeup is lost,
    /// which SPEC.md counts under WAKE-1.
    CloseCheckedEarly,
    /// Scope exit looks only at the tasks it is running, not at those
    /// spawned a moment ago: a task spawned while the scope finishes exiting
    /// is dropped unrun. Breaks TASK-1.
    ExitDropsLateSpawns,
    /// A subscription polled again with another waker (moved to another
    /// task) keeps its old registration: its new task is never woken.
    /// Breaks WAKE-1.
    WakerNotRefreshed,
    /// Rebuilding the waiter list does not start a new generation, so old
    /// registrations can overwrite new ones. Breaks CANCEL-1.
    CompactionKeepsGeneration,
    /// Subscribing after close reopens the type's channel, as Haiway 0.48
    /// does: the subscription is live, waits for ever when pulled, and
    /// receives what is sent after close (earlier subscriptions still drain
    /// and end). Breaks CLOSE-3, in two ways: it hangs, and it delivers.
    LateSubscribersReopen,
    /// A scope's exit (or cancellation) never closes the bus it owns:
    /// subscriptions never end, and sends and subscribes after the exit work
    /// as before it (Haiway 0.30 to 0.40). Breaks CLOSE-1, and only CLOSE-1:
    /// what follows from it is not counted against CLOSE-2 or CLOSE-3.
    ExitLeavesBusOpen,
    /// `recv` keeps the subscription's cursor in its own future while it
    /// waits (a common shape of a receive that is not cancel-safe):
    /// abandoning a pending `recv` (a timeout, a `select`) loses the
    /// subscription's place, and it receives nothing more. Breaks CANCEL-2.
    RecvHoldsCursor,
    /// A scope's exit first waits for its tasks, and closes the bus it owns
    /// only then (a natural order for "clean up the tasks, then the bus"),
    /// so a processor that reads the scope's bus until it closes keeps the
    /// scope open for ever. Breaks PROC-1.
    CloseAfterTasks,
    /// A scope whose body panics treats the panic as a return ("finish
    /// what was started, then report"): it closes its bus, waits for its
    /// tasks, and only then re-raises the body's panic, so a failed scope
    /// hangs on its healthy long-running tasks instead of cancelling them.
    /// Breaks FAIL-1.
    FailureWaitsForTasks,
    /// A subscription dropped while its thread unwinds from a panic skips
    /// its release (a guard against panicking again inside a destructor
    /// during an unwind, a common pattern): a subscriber task that fails
    /// stays counted, and keeps every later event of its type retained.
    /// Breaks FAIL-2.
    DropWhilePanickingLeaks,
    /// Entering a scope that has exited (or was cancelled) installs
    /// nothing: code holding its handle, a captured context, finds no bus
    /// in reach (`ContextMissing`) instead of the bus the scope had.
    /// Breaks EXIT-1.
    ExitedScopeForgetsBus,
    /// A shared subscription hands the event one pull takes to every pull
    /// waiting at that moment too, as Haiway's subscriptions do (every
    /// waiter of one future gets its result). Breaks SHARE-1.
    SharedPullDuplicates,
    /// A send keeps the bus's read lock while it appends and wakes (the
    /// simple way to keep the channel from being closed under it, and how
    /// the bus once was): a waker whose `wake` subscribes to a new type,
    /// or closes the bus, needs the write lock and deadlocks. Breaks
    /// REENTER-1.
    WakeUnderBusLock,
    /// A subscription drops the waker it vacates or replaces while it
    /// still holds its channel's lock (the bus's first version did, in
    /// `register` and in `Drop for Subscription`): a waker whose `drop`
    /// reads the bus's statistics or sends to that channel deadlocks.
    /// Breaks REENTER-1.
    WakerDroppedUnderLock,
}

impl Mutant {
    /// Every mutant, in a stable order.
    pub const ALL: &'static [Mutant] = &[
        Mutant::VisibleLastEvent,
        Mutant::Lifo,
        Mutant::CollidingTypeNames,
        Mutant::IsolatedSharesParent,
        Mutant::NestedOwnsBus,
        Mutant::LeakOnDrop,
        Mutant::CloseDropsPending,
        Mutant::DeliverWithoutSubscribers,
        Mutant::WakeOne,
        Mutant::DropClearsWaiters,
        Mutant::SpuriousWakeDeregisters,
        Mutant::SendAfterClose,
        Mutant::ExitSkipsTasks,
        Mutant::ContextLeak,
        Mutant::SubscribeAfterCloseHangs,
        Mutant::CancelLeavesTasks,
        Mutant::RecheckSkipped,
        Mutant::CompactionLosesWakers,
        Mutant::CloseCheckedEarly,
        Mutant::ExitDropsLateSpawns,
        Mutant::WakerNotRefreshed,
        Mutant::CompactionKeepsGeneration,
        Mutant::LateSubscribersReopen,
        Mutant::ExitLeavesBusOpen,
        Mutant::NestedScopeOwnsTasks,
        Mutant::ErasedGenerics,
        Mutant::CancelRunsWokenTasks,
        Mutant::RecvHoldsCursor,
        Mutant::CloseAfterTasks,
        Mutant::FailureWaitsForTasks,
        Mutant::DropWhilePanickingLeaks,
        Mutant::ExitedScopeForgetsBus,
        Mutant::SharedPullDuplicates,
        Mutant::WakeUnderBusLock,
        Mutant::WakerDroppedUnderLock,
    ];

    /// The mutant's stable kebab-case name, as used on the command line
    /// (`--impl mutant:NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::VisibleLastEvent => "visible-last-event",
            Mutant::Lifo => "lifo",
            Mutant::CollidingTypeNames => "colliding-type-names",
            Mutant::IsolatedSharesParent => "isolated-shares-parent",
            Mutant::NestedOwnsBus => "nested-owns-bus",
            Mutant::LeakOnDrop => "leak-on-drop",
            Mutant::CloseDropsPending => "close-drops-pending",
            Mutant::DeliverWithoutSubscribers => "deliver-without-subscribers",
            Mutant::WakeOne => "wake-one",
            Mutant::DropClearsWaiters => "drop-clears-waiters",
            Mutant::SpuriousWakeDeregisters => "spurious-wake-deregisters",
            Mutant::SendAfterClose => "send-after-close",
            Mutant::ExitSkipsTasks => "exit-skips-tasks",
            Mutant::ContextLeak => "context-leak",
            Mutant::SubscribeAfterCloseHangs => "subscribe-after-close-hangs",
            Mutant::CancelLeavesTasks => "cancel-leaves-tasks",
            Mutant::RecheckSkipped => "recheck-skipped",
            Mutant::CompactionLosesWakers => "compaction-loses-wakers",
            Mutant::CloseCheckedEarly => "close-checked-early",
            Mutant::ExitDropsLateSpawns => "exit-drops-late-spawns",
            Mutant::WakerNotRefreshed => "waker-not-refreshed",
            Mutant::CompactionKeepsGeneration => "compaction-keeps-generation",
            Mutant::LateSubscribersReopen => "late-subscribers-reopen",
            Mutant::ExitLeavesBusOpen => "exit-leaves-bus-open",
            Mutant::NestedScopeOwnsTasks => "nested-scope-owns-tasks",
            Mutant::ErasedGenerics => "erased-generics",
            Mutant::CancelRunsWokenTasks => "cancel-runs-woken-tasks",
            Mutant::RecvHoldsCursor => "recv-holds-cursor",
            Mutant::CloseAfterTasks => "close-after-tasks",
            Mutant::FailureWaitsForTasks => "failure-waits-for-tasks",
            Mutant::DropWhilePanickingLeaks => "drop-while-panicking-leaks",
            Mutant::ExitedScopeForgetsBus => "exited-scope-forgets-bus",
            Mutant::SharedPullDuplicates => "shared-pull-duplicates",
            Mutant::WakeUnderBusLock => "wake-under-bus-lock",
            Mutant::WakerDroppedUnderLock => "waker-dropped-under-lock",
        }
    }

    /// Looks a mutant up by its [`name`](Mutant::name); `None` if no mutant
    /// has that name.
    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// The SPEC.md rule the mutant is designed to break.
    pub fn target_rule(self) -> &'static str {
        match self {
            Mutant::VisibleLastEvent => "VIS-1",
            Mutant::Lifo => "FIFO-1",
            Mutant::CollidingTypeNames => "ROUTE-1",
            Mutant::IsolatedSharesParent => "SCOPE-3",
            Mutant::NestedOwnsBus => "SCOPE-2",
            Mutant::LeakOnDrop => "RECLAIM-2",
            Mutant::CloseDropsPending => "CLOSE-1",
            Mutant::DeliverWithoutSubscribers => "DROP-1",
            Mutant::WakeOne => "WAKE-1",
            Mutant::DropClearsWaiters => "CANCEL-1",
            Mutant::SpuriousWakeDeregisters => "WAKE-1",
            Mutant::SendAfterClose => "CLOSE-2",
            Mutant::ExitSkipsTasks => "TASK-1",
            Mutant::ContextLeak => "MISSING-1",
            Mutant::SubscribeAfterCloseHangs => "CLOSE-3",
            Mutant::CancelLeavesTasks => "TASK-2",
            Mutant::RecheckSkipped => "WAKE-1",
            Mutant::CompactionLosesWakers => "CANCEL-1",
            Mutant::CloseCheckedEarly => "WAKE-1",
            Mutant::ExitDropsLateSpawns => "TASK-1",
            Mutant::WakerNotRefreshed => "WAKE-1",
            Mutant::CompactionKeepsGeneration => "CANCEL-1",
            Mutant::LateSubscribersReopen => "CLOSE-3",
            Mutant::ExitLeavesBusOpen => "CLOSE-1",
            Mutant::NestedScopeOwnsTasks => "TASK-1",
            Mutant::ErasedGenerics => "ROUTE-2",
            Mutant::CancelRunsWokenTasks => "TASK-3",
            Mutant::RecvHoldsCursor => "CANCEL-2",
            Mutant::CloseAfterTasks => "PROC-1",
            Mutant::FailureWaitsForTasks => "FAIL-1",
            Mutant::DropWhilePanickingLeaks => "FAIL-2",
            Mutant::ExitedScopeForgetsBus => "EXIT-1",
            Mutant::SharedPullDuplicates => "SHARE-1",
            Mutant::WakeUnderBusLock | Mutant::WakerDroppedUnderLock => "REENTER-1",
        }
    }
}

thread_local! {
    static ACTIVE: Cell<Option<Mutant>> = const { Cell::new(None) };
}

/// Runs `f` with `mutant` switched on for this thread (or none, for `None`),
/// then restores the previous setting, even if `f` panics. Buses and scopes
/// created inside `f` carry the mutant for their whole life.
pub fn with_mutant<R>(mutant: Option<Mutant>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Mutant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = ACTIVE.try_with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(mutant)));
    f()
}

/// The mutant switched on for this thread, if any.
pub fn active() -> Option<Mutant> {
    if cfg!(feature = "mutants") {
        ACTIVE.try_with(Cell::get).ok().flatten()
    } else {
        None
    }
}

/// A place in the bus where, in a real program, another thread could act:
/// the simulator may run an operation there, on the same thread, to make that
/// interleaving happen deterministically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum YieldPoint {
    /// A subscription found no event on its lock-free fast path and is about
    /// to take the channel's lock to register its waker.
    BeforeRegister,
    /// A scope whose body has returned has run its tasks and is about to
    /// check whether any is left before it finishes exiting.
    BeforeExitCheck,
    /// `try_recv` found no event on its lock-free fast path and is about to
    /// take the channel's lock to look again (and to see a close).
    BeforeTryRecvLock,
    /// `subscribe` found no channel for its type under the bus's read lock
    /// and is about to take the write lock to create one (a close may come
    /// in between).
    BetweenSubscribeLocks,
    /// A pull of a shared subscription found the subscription empty (its
    /// channel's lock released, the shared waker registered) and is about
    /// to take the list of waiting pulls to wait there: a send landing now
    /// wakes the shared waker before this pull is on the list.
    BeforeSharedWait,
}

/// What runs at a yield point.
pub type YieldHook = Box<dyn FnMut(YieldPoint)>;

thread_local! {
    static HOOK: std::cell::RefCell<Option<YieldHook>> = const { std::cell::RefCell::new(None) };
}

/// Installs `hook` to run at every yield point reached on this thread (or
/// removes it, for `None`), returning the previous one. The hook may use
/// the bus freely: no lock of the bus is held at a yield point.
#[cfg(feature = "mutants")]
pub fn set_yield_hook(hook: Option<YieldHook>) -> Option<YieldHook> {
    HOOK.try_with(|h| std::mem::replace(&mut *h.borrow_mut(), hook))
        .ok()
        .flatten()
}

/// Runs this thread's yield hook, if any. Without the `mutants` feature it
/// does nothing and compiles away.
#[inline(always)]
pub(crate) fn yield_point(point: YieldPoint) {
    if cfg!(feature = "mutants") {
        // Taken out while it runs, so that it may reach yield points itself
        // without re-entering.
        let hook = HOOK.try_with(|h| h.borrow_mut().take()).ok().flatten();
        if let Some(mut hook) = hook {
            hook(point);
            let _ = HOOK.try_with(|h| {
                let mut slot = h.borrow_mut();
                if slot.is_none() {
                    *slot = Some(hook);
                }
            });
        }
    }
}

/// Runs `f` as a fresh thread would: with no ambient scope (the one the
/// caller runs in is restored afterwards, even if `f` panics). Test
/// machinery: what the simulator interjects at a yield point stands for
/// another thread, which does not see the scope of the task being polled.
#[cfg(feature = "mutants")]
pub fn as_another_thread<R>(f: impl FnOnce() -> R) -> R {
    scope::without_ambient(f)
}

/// Forgets this thread's ambient scope, if one leaked (as the
/// `context-leak` mutant makes them do), so that the next run on this thread
/// starts outside every scope, as a fresh thread would. Test machinery: the
/// simulator calls it between runs so that no run can see another's state.
#[cfg(feature = "mutants")]
pub fn reset_thread() {
    scope::reset_ambient();
}

/// `value`, or nothing if `slot` holds `mutant`: the value is dropped here,
/// where the caller stands (for mutants that drop something too early).
#[inline(always)]
pub(crate) fn drop_if<T: Default>(slot: Option<Mutant>, mutant: Mutant, value: T) -> T {
    match is(slot, mutant) {
        true => {
            drop(value);
            T::default()
        }
        false => value,
    }
}

/// Whether `slot` holds `mutant`. Constant `false` without the `mutants`
/// feature, so the broken branches compile away.
#[inline(always)]
pub(crate) fn is(slot: Option<Mutant>, mutant: Mutant) -> bool {
    cfg!(feature = "mutants") && slot == Some(mutant)
}
