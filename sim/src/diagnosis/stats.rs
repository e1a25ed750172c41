//! Statistics that differ from the model's: which rule they break, from the
//! facts alone. [`super::holder`] then asks, by replaying without them,
//! whether subscriptions made after close or dropped ones are what holds
//! the events, and corrects the rule if the facts misled.

use crate::model::{Mode, StatsField, StatsMismatch, Violation};
use crate::rules::Rule;

/// Names the rule a statistics mismatch breaks.
///
/// - Live subscriptions miscounted: RECLAIM-2 if the excess is no more
///   than the dropped subscriptions; else RECLAIM-1 (a look-alike off the
///   other way is said; [`super::lookalike`] decides whether it is ROUTE-1).
/// - An event held that should not be: CLOSE-2 if sent after close,
///   DROP-1 if sent with no subscriber, RECLAIM-2 if only dropped
///   subscriptions had not passed it, else RECLAIM-1. One freed too soon:
///   RECLAIM-1.
/// - Retained events miscounted: RECLAIM-2 if no more than the dropped
///   subscriptions would hold, DROP-1 if events were sent with no
///   subscriber, else RECLAIM-1 (events sent after close are said by
///   [`super::holder`], which asks whether they are what is held).
pub fn stats(s: &StatsMismatch) -> Violation {
    let make = |rule, mode, why: &str| Violation::new(rule, mode, format!("{s}{why}"));
    match &s.field {
        StatsField::Subscriptions { reported, expected } => {
            // Said, not blamed: only replaying with the look-alikes renamed
            // (super::lookalike) makes it ROUTE-1.
            let lookalike = match s.merged_with {
                Some(other) => format!(
                    ", while look-alike {other} is off the other way (as if the bus kept {} and {other} as one type)",
                    s.route
                ),
                None => String::new(),
            };
            let dropped = s.as_if_dropped_held.0;
            let rule = if reported > expected && *reported <= expected + dropped {
                Rule::Reclaim2
            } else {
                Rule::Reclaim1
            };
            make(rule, Mode::Miscounted, &lookalike)
        }
        StatsField::HeldEvent { event, facts } => {
            let at = format!("the bus of {}, {}: event#{event}", s.scope, s.route);
            if facts.after_close {
                Violation::new(
                    Rule::Close2,
                    Mode::HeldTooLong,
                    format!(
                        "{at}, sent after the bus closed, is still held (the bus still accepts sends)"
                    ),
                )
            } else if !facts.stored {
                Violation::new(
                    Rule::Drop1,
                    Mode::HeldTooLong,
                    format!("{at}, sent when nobody subscribed to its type, is held"),
                )
            } else {
                let (rule, mode) = match facts.pinned_by_dropped {
                    true => (Rule::Reclaim2, Mode::HeldByDropped),
                    false => (Rule::Reclaim1, Mode::HeldTooLong),
                };
                Violation::new(
                    rule,
                    mode,
                    format!("{at} is held, but no live subscription still needs it"),
                )
            }
        }
        StatsField::FreedEvent { .. } => make(
            Rule::Reclaim1,
            Mode::FreedTooSoon,
            ", but a live subscription has yet to receive it",
        ),
        StatsField::Retained { reported, expected } => retained_count(s, *reported, *expected),
    }
}

fn retained_count(s: &StatsMismatch, reported: u64, expected: u64) -> Violation {
    let dropped_retained = s.as_if_dropped_held.1;
    let more = reported > expected;
    // By count, events sent after close are suspects, not culprits: which
    // events are held, super::holder asks by replays (CLOSE-2 among them).
    let (rule, mode) = if more && reported <= dropped_retained {
        (Rule::Reclaim2, Mode::HeldByDropped)
    } else if more && s.sent_unstored > 0 {
        (Rule::Drop1, Mode::HeldTooLong)
    } else if more {
        (Rule::Reclaim1, Mode::HeldTooLong)
    } else {
        (Rule::Reclaim1, Mode::FreedTooSoon)
    };
    Violation::new(
        rule,
        mode,
        format!("{s} (the events some live subscription has yet to receive)"),
    )
}
