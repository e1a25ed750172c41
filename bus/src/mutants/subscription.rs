//! Planted bugs of a subscription: events stashed ahead of the cursor
//! (`lifo`, `visible-last-event`, `deliver-without-subscribers`), close seen
//! too early or not at all (`close-drops-pending`, `close-checked-early`,
//! `subscribe-after-close-hangs`), a receive that is not cancel-safe
//! (`recv-holds-cursor`) and cursors parked instead of passed
//! (`leak-on-drop`, `drop-while-panicking-leaks`).

#![forbid(unsafe_code)]

use super::{Mutant, is};
use crate::bus::Event;
use crate::chain::Cursor;
use crate::channel::{Channel, ChannelState};
use crate::subscription::Subscription;
use futures_core::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

/// What a subscription's planted bugs keep.
pub(crate) struct Planted<T> {
    /// Events taken ahead of the cursor, the next at the back.
    stash: Vec<Arc<T>>,
    /// Ignores close (`subscribe-after-close-hangs`).
    pub(crate) deaf: bool,
    /// A receive was abandoned: the subscription lost its place and
    /// receives nothing more (`recv-holds-cursor`).
    lost: bool,
}

impl<T> Default for Planted<T> {
    fn default() -> Self {
        Planted {
            stash: Vec::new(),
            deaf: false,
            lost: false,
        }
    }
}

/// A new subscription's planted state: the last event sent, or everything
/// sent to nobody, stashed to be received first; deaf if made on a closed
/// channel by `subscribe-after-close-hangs`.
pub(crate) fn start<T>(channel: &Channel<T>, state: &mut ChannelState<T>) -> Planted<T> {
    let mutant = channel.mutant;
    let mut stash = Vec::new();
    if is(mutant, Mutant::VisibleLastEvent) {
        stash.extend(state.planted.last_sent.upgrade());
    }
    if is(mutant, Mutant::DeliverWithoutSubscribers) {
        stash = std::mem::take(&mut state.planted.backlog);
        stash.reverse();
    }
    Planted {
        stash,
        deaf: state.closed && is(mutant, Mutant::SubscribeAfterCloseHangs),
        lost: false,
    }
}

/// Runs first in `poll_next`: `Some` is what the poll returns.
pub(crate) fn poll_first<T: Event>(sub: &mut Subscription<T>) -> Option<Poll<Option<Arc<T>>>> {
    if let Some(event) = take_first(sub) {
        return Some(Poll::Ready(Some(event)));
    }
    let live = sub.live.as_mut()?;
    let mutant = live.channel.mutant;
    if is(mutant, Mutant::Lifo) {
        while let Some(event) = live.cursor.next(&live.channel.pool) {
            sub.planted.stash.push(event);
        }
        return sub
            .planted
            .stash
            .pop()
            .map(|event| Poll::Ready(Some(event)));
    }
    if is(mutant, Mutant::CloseDropsPending) && live.channel.lock().closed {
        sub.finish();
        return Some(Poll::Ready(None));
    }
    None
}

/// Runs first in `try_recv` (and `poll_next`): a stashed event; a lost
/// subscription throws away what reached it.
pub(crate) fn take_first<T: Event>(sub: &mut Subscription<T>) -> Option<Arc<T>> {
    let live = sub.live.as_mut()?;
    if sub.planted.lost {
        while let Some(event) = live.cursor.next(&live.channel.pool) {
            drop(event);
        }
    }
    sub.planted.stash.pop()
}

/// `close-checked-early`: after the fast path found nothing, close is
/// checked before the lock (and not under it); ends the subscription if
/// it saw the close.
pub(crate) fn closed_early<T: Event>(sub: &mut Subscription<T>) -> bool {
    let Some(live) = sub.live.as_ref() else {
        return false;
    };
    let early = is(live.channel.mutant, Mutant::CloseCheckedEarly);
    if early && live.channel.lock().closed && !sub.planted.deaf {
        sub.finish();
        return true;
    }
    false
}

/// Whether the look under the lock ignores close.
pub(crate) fn ignores_close<T>(planted: &Planted<T>, mutant: Option<Mutant>) -> bool {
    planted.deaf || is(mutant, Mutant::CloseCheckedEarly)
}

/// `recv-holds-cursor`: a receive whose future, dropped while pending,
/// loses the subscription's place.
pub(crate) async fn recv_losing_place<T: Event>(sub: &mut Subscription<T>) -> Option<Arc<T>> {
    struct Guard<'a, T: Event>(&'a mut Subscription<T>, bool);
    impl<T: Event> Drop for Guard<'_, T> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.planted.lost = true;
            }
        }
    }
    let mut guard = Guard(sub, false);
    let event = std::future::poll_fn(|cx| Pin::new(&mut *guard.0).poll_next(cx)).await;
    guard.1 = true;
    event
}

/// `drop-while-panicking-leaks`: a subscription dropped during an unwind
/// parks its cursor and stays counted. `None`: parked, nothing more to do.
pub(crate) fn park_while_panicking<T>(
    channel: &Channel<T>,
    state: &mut ChannelState<T>,
    cursor: Cursor<T>,
) -> Option<Cursor<T>> {
    if std::thread::panicking() && is(channel.mutant, Mutant::DropWhilePanickingLeaks) {
        state.planted.graveyard.push(cursor);
        return None;
    }
    Some(cursor)
}

/// `leak-on-drop`: a dropped subscription parks its cursor instead of
/// passing what it did not receive; the caller skips an empty stretch.
pub(crate) fn park_on_drop<T>(
    channel: &Channel<T>,
    state: &mut ChannelState<T>,
    cursor: Cursor<T>,
) -> Cursor<T> {
    if is(channel.mutant, Mutant::LeakOnDrop) {
        state.planted.graveyard.push(cursor);
        return state.chain.cursor();
    }
    cursor
}
