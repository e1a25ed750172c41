//! A wrong receipt: which rule an event received where the model expected
//! another (or none) breaks. The first predicate that holds names it.

use crate::model::{Misdelivery, Mode, ScopeKind, StreamPosition, Violation};
use crate::rules::Rule;

/// Names the rule a wrong receipt breaks, in this order: an event never
/// sent (ROBUST-1); of another type (ROUTE-1; another instantiation of the
/// same generic type, ROUTE-2); sent outside every scope
/// (MISSING-1); sent on another bus (SCOPE-1/2/3); sent after the bus closed
/// (CLOSE-2); sent before the subscription (VIS-1, or DROP-1 if nobody was
/// subscribed then); received already, or ahead of its turn (FIFO-1).
pub fn misdelivery(m: &Misdelivery) -> Violation {
    let make = |rule, mode, why: String| Violation::new(rule, mode, format!("{m}: {why}"));
    let Some(event) = &m.event else {
        return make(
            Rule::Robust1,
            Mode::Impossible,
            "no such event was ever sent".to_owned(),
        );
    };
    if !event.same_route {
        // Another instantiation of the same generic type is ROUTE-2's; any
        // other type, ROUTE-1's.
        let rule = if m.sub.ty.family() == event.sent_as.family() {
            m.sub.ty.routing_rule()
        } else {
            Rule::Route1
        };
        return make(
            rule,
            Mode::OtherType,
            format!("event#{} is a {}, a different type", m.got, event.sent_as),
        );
    }
    let Some(bus) = event.bus else {
        return make(
            Rule::Missing1,
            Mode::FromNoScope,
            "it was sent outside every scope, where no bus is in reach".to_owned(),
        );
    };
    let origin = event.origin.map_or("?".to_owned(), |s| s.to_string());
    if !event.same_bus {
        return make(
            across_buses_rule(bus.kind, m.sub_bus.kind),
            Mode::AcrossBuses,
            format!(
                "it was sent in {origin}, on the bus of {}, not on the bus of {} it subscribed to",
                bus.owner, m.sub_bus.owner
            ),
        );
    }
    if event.after_close {
        return make(
            Rule::Close2,
            Mode::DeliveredAfterClose,
            format!("it was sent in {origin} after the bus closed"),
        );
    }
    match event.position {
        StreamPosition::BeforeStart if event.stored => make(
            Rule::Vis1,
            Mode::FromBeforeSubscribing,
            "it was sent before the subscription was created".to_owned(),
        ),
        StreamPosition::BeforeStart => make(
            Rule::Drop1,
            Mode::DroppedEventDelivered,
            "it was sent before the subscription was created, when nobody subscribed to its type"
                .to_owned(),
        ),
        StreamPosition::AlreadyReceived if m.shared => make(
            Rule::Share1,
            Mode::Duplicated,
            "it was already received, by the other task pulling the same subscription: it went to both".to_owned(),
        ),
        StreamPosition::AlreadyReceived => make(
            Rule::Fifo1,
            Mode::Duplicated,
            "it was already received".to_owned(),
        ),
        StreamPosition::Ahead | StreamPosition::Outside => make(
            Rule::Fifo1,
            Mode::OutOfOrder,
            "it was sent after the event the model expected: order is broken".to_owned(),
        ),
    }
}

/// The layout rule an event crossing from a bus owned by a scope of kind
/// `theirs` to one owned by `ours` breaks: SCOPE-3 if either is isolated,
/// SCOPE-1 between roots, else SCOPE-2.
fn across_buses_rule(theirs: ScopeKind, ours: ScopeKind) -> Rule {
    match (theirs, ours) {
        (ScopeKind::Isolated, _) | (_, ScopeKind::Isolated) => Rule::Scope3,
        (ScopeKind::Root, ScopeKind::Root) => Rule::Scope1,
        _ => Rule::Scope2,
    }
}
