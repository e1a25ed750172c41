//! Planted bugs of a channel's sends: events kept for nobody
//! (`deliver-without-subscribers`) and the last event shown to a new
//! subscription (`visible-last-event`).

#![forbid(unsafe_code)]

use super::{Mutant, is};
use crate::chain::Cursor;
use crate::channel::{Channel, ChannelState, Payload};
use std::sync::{Arc, Weak};

/// What a channel's planted bugs keep, under its lock.
pub(crate) struct Planted<T> {
    /// The last event sent (`visible-last-event`).
    pub(crate) last_sent: Weak<T>,
    /// Events sent with no live subscription, oldest first
    /// (`deliver-without-subscribers`).
    pub(crate) backlog: Vec<Arc<T>>,
    /// Cursors of dropped subscriptions, never passed (`leak-on-drop`,
    /// `drop-while-panicking-leaks`): they pin every event after them.
    pub(crate) graveyard: Vec<Cursor<T>>,
}

impl<T> Default for Planted<T> {
    fn default() -> Self {
        Planted {
            last_sent: Weak::new(),
            backlog: Vec::new(),
            graveyard: Vec::new(),
        }
    }
}

/// An event sent while nobody is subscribed: kept for the next
/// subscription by `deliver-without-subscribers`; else given back, for the
/// caller to drop once it has let go of the lock (DROP-1).
pub(crate) fn keep_unreceived<T, P: Payload<T>>(
    channel: &Channel<T>,
    state: &mut ChannelState<T>,
    event: P,
) -> Option<P> {
    if is(channel.mutant, Mutant::DeliverWithoutSubscribers) {
        state.planted.backlog.push(event.into_arc());
        return None;
    }
    Some(event)
}

/// Remembers the event just sent, for `visible-last-event`.
pub(crate) fn sent<T>(channel: &Channel<T>, state: &mut ChannelState<T>, event: &Arc<T>) {
    if is(channel.mutant, Mutant::VisibleLastEvent) {
        state.planted.last_sent = Arc::downgrade(event);
    }
}
