//! Streams that stopped, did not stop, or stopped too soon: which rule a
//! stuck, unended or early-ended subscription breaks. Stuck and unended
//! ones arrive here with what the wake probe ([`super::wake_probe`]) saw.

use crate::model::{EarlyEnd, Mode, Stuck, Unended, Violation};
use crate::rules::Rule;

/// Names the rule a stream that ended too soon breaks: CLOSE-3 if its pull
/// raised an error on a subscription made after its bus closed (it must
/// end); CLOSE-1 if it raised on a bus that is closed or closing (it must
/// drain, then end: Haiway 0.36 to 0.40 close a bus by cancelling its
/// pending receives); ROBUST-1 if its pull raised otherwise (a `failed`
/// observation); EXIT-1 if it ended while its
/// bus is open, made through the handle of a scope that had exited; SCOPE-2
/// if it ended when its own nested scope closed while the bus it shares stayed open (it
/// seems to have had a bus of its own); CLOSE-1 otherwise (ended on an open
/// bus, or with events sent before the close undelivered).
pub fn early_end(e: &EarlyEnd) -> Violation {
    let sub = &e.sub;
    if let (Some(error), true) = (&e.raised, e.born_after_close) {
        return Violation::new(
            Rule::Close3,
            Mode::PullRaised,
            format!(
                "{sub} was subscribed after its bus closed; pulled, its stream must end, but its pull raised {error}"
            ),
        );
    }
    if let (Some(error), true) = (&e.raised, e.bus_closing) {
        return Violation::new(
            Rule::Close1,
            Mode::PullRaised,
            format!(
                "{sub}'s bus is closed or closing; its stream must yield what was sent before the close, then end, but its pull raised {error}"
            ),
        );
    }
    if let Some(error) = &e.raised {
        return Violation::new(
            Rule::Robust1,
            Mode::PullRaised,
            format!("{sub}'s pull raised {error} instead of yielding an event or ending"),
        );
    }
    if !e.bus_closing && e.through_exited {
        return Violation::new(
            Rule::Exit1,
            Mode::ExitedHandle,
            format!(
                "{sub} ended while its bus is open: it was subscribed through the handle of {}, which had exited, and seems to have been given a closed bus",
                sub.scope
            ),
        );
    }
    if !e.bus_closing && e.own_nested_scope_gone {
        return Violation::new(
            Rule::Scope2,
            Mode::EndedWhileOpen,
            format!(
                "{sub} ended when {} closed, but that nested scope shares its parent's bus, which is still open: it seems to have had a bus of its own",
                sub.scope
            ),
        );
    }
    let Some((count, next, origin)) = e.undelivered.filter(|_| e.bus_closing) else {
        return Violation::new(
            Rule::Close1,
            Mode::EndedWhileOpen,
            format!("{sub} ended while its bus is still open"),
        );
    };
    let hint = match origin {
        Some(origin) if origin != sub.scope => format!(
            " (hint: event#{next} was sent in {origin}, which shares the bus of {}; a scope not really sharing its parent's bus would lose it, SCOPE-2)",
            sub.scope
        ),
        _ => String::new(),
    };
    Violation::new(
        Rule::Close1,
        Mode::EndedEarly,
        format!(
            "{sub} ended with {count} event{} sent before the close still undelivered (next: event#{next}){hint}",
            if count == 1 { "" } else { "s" }
        ),
    )
}

/// Names the rule a stuck subscription breaks, from its facts alone. If the
/// wake probe made it receive, the event was there and only the wakeup was
/// lost: WAKE-1. If not, it was never given the event: FANOUT-1 (with hints
/// when look-alike types share the bus, ROUTE-1, or the event came from
/// another scope, SCOPE-2). A sibling dropped since it last made progress
/// is said, not blamed: only the replay without the drops
/// ([`super::cancel`]) makes it CANCEL-1.
pub fn stuck(s: &Stuck) -> Violation {
    let plural = if s.waiting == 1 { "" } else { "s" };
    // A processor pulls without a limit: its credit is a large number that
    // only counts down.
    let credit = match s.credits > crate::model::PROCESSOR_CREDIT / 2 {
        true => "is a processor (no credit limit) with".to_owned(),
        false => format!("has credit {} and", s.credits),
    };
    let who = format!(
        "{} {credit} {} event{plural} waiting (next: event#{}), but received nothing more after the implementation settled",
        s.sub, s.waiting, s.next
    );
    let make = |rule, mode, why: &str| Violation::new(rule, mode, format!("{who}: {why}"));
    let dropped = match s.sibling_dropped {
        true => ", after another subscriber of the same type was dropped or cancelled",
        false => "",
    };
    if s.woken == Some(true) {
        return make(
            Rule::Wake1,
            Mode::LostWakeup,
            &format!(
                "a spurious wakeup made it receive, so the event was there but the send did not wake it (lost wakeup){dropped}"
            ),
        );
    }
    let hints = stuck_hints(s);
    let why = match s.woken {
        Some(_) => "even a spurious wakeup finds nothing: the events were never delivered to it",
        None => {
            "it was either never woken (WAKE-1) or never given the events; this implementation cannot be woken from outside to tell which"
        }
    };
    make(
        Rule::Fanout1,
        Mode::NeverDelivered,
        &format!("{why}{dropped}{hints}"),
    )
}

fn stuck_hints(s: &Stuck) -> String {
    let mut hints = Vec::new();
    if !s.lookalikes.is_empty() {
        let (how, rule) = match s.sub.ty.routing_rule() {
            Rule::Route2 => ("by generic base", Rule::Route2),
            _ => ("by name or by subclass", Rule::Route1),
        };
        hints.push(format!(
            "look-alike types are subscribed on the same bus ({}): routing {how} would do this ({rule})",
            s.lookalikes.join(", ")
        ));
    }
    if let Some(origin) = s.next_from_other_scope {
        hints.push(format!(
            "event#{} was sent in {origin}, which shares the bus of {}: a scope not really sharing its parent's bus would do this (SCOPE-2)",
            s.next, s.sub.scope
        ));
    }
    match hints.is_empty() {
        true => String::new(),
        false => format!(" (hints: {})", hints.join("; ")),
    }
}

/// Names the rule a subscription breaks whose stream should have ended
/// (credit, nothing left, bus closed) but did not. If the wake probe made
/// it end, the close's wakeup was lost: WAKE-1. If not: CLOSE-3 for a
/// subscription made after close, CLOSE-1 for one made before. A sibling's
/// drop is said, not blamed (see [`stuck`]).
pub fn unended(u: &Unended) -> Violation {
    let sub = &u.sub;
    let (rule, what) = match u.born_ended {
        true => (
            Rule::Close3,
            format!(
                "{} was subscribed after its bus closed; pulled, its stream must end, but it hangs",
                sub
            ),
        ),
        false => (
            Rule::Close1,
            format!(
                "{sub} received everything sent before its bus closed and has credit, yet its stream did not end once the implementation settled"
            ),
        ),
    };
    let dropped = match u.sibling_dropped {
        true => ", after another subscriber of the same type was dropped or cancelled",
        false => "",
    };
    let lost = ": a spurious wakeup then made it end, so the close did not wake it (lost wakeup)";
    match u.ended_when_woken {
        Some(true) => Violation::new(
            Rule::Wake1,
            Mode::LostWakeup,
            format!("{what}{lost}{dropped}"),
        ),
        _ => Violation::new(rule, Mode::NeverEnded, format!("{what}{dropped}")),
    }
}
