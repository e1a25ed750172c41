//! Planted bugs of shared subscriptions: an event handed to every pull
//! waiting when another pull took it (`shared-pull-duplicates`).

#![forbid(unsafe_code)]

use super::{Mutant, is};
use std::sync::Arc;

/// What a shared subscription's planted bugs keep, under its mutex.
pub(crate) struct Planted<T> {
    /// The bug planted in its bus, if any.
    mutant: Option<Mutant>,
    /// How many pulls have waited since an event was last taken
    /// (`shared-pull-duplicates`).
    waited: usize,
    /// The event handed to the pulls that waited when it arrived, with how
    /// many of them may still take it (`shared-pull-duplicates`).
    handout: Option<(Arc<T>, usize)>,
}

impl<T> Planted<T> {
    /// Nothing handed out yet, for a subscription of a bus with `mutant`.
    pub(crate) fn new(mutant: Option<Mutant>) -> Planted<T> {
        Planted {
            mutant,
            waited: 0,
            handout: None,
        }
    }
}

/// `shared-pull-duplicates`: the event handed out to the pulls that were
/// waiting when another pull took it.
pub(crate) fn take_handout<T>(planted: &mut Planted<T>) -> Option<Arc<T>> {
    let (event, left) = planted.handout.as_mut()?;
    let event = event.clone();
    *left -= 1;
    if *left == 0 {
        planted.handout = None;
    }
    Some(event)
}

/// `shared-pull-duplicates`: the event a pull took goes to every other pull
/// that waited for it too.
pub(crate) fn hand_out<T>(planted: &mut Planted<T>, item: &Option<Arc<T>>) {
    if is(planted.mutant, Mutant::SharedPullDuplicates) {
        let others = std::mem::take(&mut planted.waited).saturating_sub(1);
        planted.handout = item.clone().filter(|_| others > 0).map(|e| (e, others));
    }
}

/// `shared-pull-duplicates`: counts a pull that found nothing and waits.
pub(crate) fn waited<T>(planted: &mut Planted<T>) {
    planted.waited += 1;
}
