//! Planted bugs of the bus's map of channels: routing by name
//! (`colliding-type-names`, `erased-generics`), sends after close
//! (`send-after-close`, `late-subscribers-reopen`), subscriptions after
//! close (`subscribe-after-close-hangs`, `late-subscribers-reopen`) and a
//! send that wakes under the bus's lock (`wake-under-bus-lock`).

#![forbid(unsafe_code)]

use super::{Mutant, is};
use crate::bus::{Bus, BusState, Event, TypeStats};
use crate::channel::{Channel, ErasedChannel};
use crate::subscription::Subscription;
use crate::sync::RwLockReadGuard;
use std::any::{TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;
use std::task::Waker;

/// What the bus's planted bugs keep, in its locked state.
pub(crate) struct Planted {
    /// The bug planted in this bus, if any.
    pub(crate) mutant: Option<Mutant>,
    /// Channels by a mangled name, for the name-routing mutants.
    by_name: HashMap<&'static str, Arc<dyn ErasedChannel>>,
}

impl Planted {
    pub(crate) fn new(mutant: Option<Mutant>) -> Planted {
        Planted {
            mutant,
            by_name: HashMap::new(),
        }
    }
}

/// The name a mutant routes `T` by: `colliding-type-names` drops the module
/// path (`Ping` for `alpha::Ping` and `beta::Ping`, `Generic<u8>` kept
/// whole), and `erased-generics` drops the generic parameters
/// (`a::Generic` for both `a::Generic<u8>` and `a::Generic<u16>`). `None`:
/// route by `TypeId`.
fn mutant_key<T>(mutant: Option<Mutant>) -> Option<&'static str> {
    let by_short_name = is(mutant, Mutant::CollidingTypeNames);
    if !by_short_name && !is(mutant, Mutant::ErasedGenerics) {
        return None;
    }
    let full = type_name::<T>();
    let params = full.find('<').unwrap_or(full.len());
    if by_short_name {
        let start = full[..params].rfind("::").map_or(0, |i| i + 2);
        Some(&full[start..])
    } else {
        Some(&full[..params])
    }
}

/// Where `T`'s channel is looked up.
pub(crate) fn route<T: Event>(state: &BusState) -> Option<&Arc<dyn ErasedChannel>> {
    match mutant_key::<T>(state.planted.mutant) {
        Some(key) => state.planted.by_name.get(key),
        None => state.channels.get(&TypeId::of::<T>()),
    }
}

/// Where `T`'s new channel goes: a look-alike's under the same name is
/// evicted.
pub(crate) fn insert<T: Event>(state: &mut BusState, channel: Arc<dyn ErasedChannel>) {
    match mutant_key::<T>(state.planted.mutant) {
        Some(key) => drop(state.planted.by_name.insert(key, channel)),
        None => drop(state.channels.insert(TypeId::of::<T>(), channel)),
    }
}

/// The name-routed channels close with the others.
pub(crate) fn close_renamed(state: &BusState, wakers: &mut Vec<Waker>) {
    for channel in state.planted.by_name.values() {
        channel.close(wakers);
    }
}

/// The name-routed channels' statistics.
pub(crate) fn renamed_stats(state: &BusState) -> Vec<TypeStats> {
    state.planted.by_name.values().map(|c| c.stats()).collect()
}

/// Whether a send goes on past the bus's close (CLOSE-2).
pub(crate) fn sends_after_close(state: &BusState) -> bool {
    let mutant = state.planted.mutant;
    is(mutant, Mutant::SendAfterClose) || is(mutant, Mutant::LateSubscribersReopen)
}

/// The bus's read lock, taken again over the wakes.
pub(crate) fn hold_read_lock(
    bus: &Bus,
    mutant: Option<Mutant>,
) -> Option<RwLockReadGuard<'_, BusState>> {
    is(mutant, Mutant::WakeUnderBusLock).then(|| bus.read())
}

/// A subscription made on a closed bus by a planted bug: a reopened
/// channel's (`late-subscribers-reopen`), or one that hangs
/// (`subscribe-after-close-hangs`). `None`: subscribe as the reference.
pub(crate) fn subscribe<T: Event>(bus: &Bus) -> Option<Subscription<T>> {
    let (mutant, closed) = {
        let state = bus.read();
        (state.planted.mutant, state.closed)
    };
    if !closed {
        return None;
    }
    if is(mutant, Mutant::LateSubscribersReopen) {
        let mut state = bus.write();
        let open = state.find_arc::<T>().filter(|c| !c.lock().closed);
        let channel = open.unwrap_or_else(|| {
            let channel = Arc::new(Channel::<T>::new(mutant));
            state.channels.insert(TypeId::of::<T>(), channel.clone());
            channel
        });
        return Some(Subscription::start(channel));
    }
    if is(mutant, Mutant::SubscribeAfterCloseHangs) {
        let channel = bus.write().find_or_create::<T>();
        return Some(Subscription::start(channel));
    }
    None
}
