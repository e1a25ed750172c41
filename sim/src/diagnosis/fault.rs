//! The implementation broke instead of answering (panic, crash, hang, busy
//! loop): which rule that breaks.

use crate::iut::Fault;
use crate::model::{Mode, Model, Violation};
use crate::op::{Entry, Interjection, Op, ScopeId};
use crate::rules::Rule;

/// Names the rule a fault during `entry` breaks: a busy loop is WAKE-1 (the
/// bus never settles); a hang counts against the rule of what hung (see
/// [`hang_rule`]); anything else, and anything that broke while the runner
/// was doing something other than this entry, is ROBUST-1.
pub fn fault(fault: &Fault, entry: &Entry, model: &Model) -> Violation {
    let rule = match fault {
        Fault::DidNotSettle { .. } => Rule::Wake1,
        Fault::Hung { .. } => match entry {
            Entry::Op(op) | Entry::Preempt(_, Interjection::Op(op)) => hang_rule(op, model),
            _ => Rule::Robust1,
        },
        _ => Rule::Robust1,
    };
    Violation::new(rule, mode(fault), fault.to_string())
}

/// The rule an implementation breaks by hanging on `op`: a send on a closed
/// bus CLOSE-2, a subscribe there CLOSE-3, either with no bus MISSING-1, a
/// send on an open bus SEND-1, a settle WAKE-1, anything else ROBUST-1.
pub fn hang_rule(op: &Op, model: &Model) -> Rule {
    let closed = |scope: &Option<ScopeId>| scope.is_some_and(|s| model.bus_closed(s));
    match op {
        Op::Send { scope, .. } if closed(scope) => Rule::Close2,
        Op::Send { scope: None, .. } | Op::Subscribe { scope: None, .. } => Rule::Missing1,
        Op::Send { .. } => Rule::Send1,
        Op::Subscribe { scope, .. } if closed(scope) => Rule::Close3,
        Op::SpawnProcessor { scope, .. } | Op::SubscribeShared { scope, .. }
            if closed(&Some(*scope)) =>
        {
            Rule::Close3
        }
        Op::Settle => Rule::Wake1,
        _ => Rule::Robust1,
    }
}

/// The shape of a fault.
fn mode(fault: &Fault) -> Mode {
    match fault {
        Fault::Panicked(_) => Mode::Panic,
        Fault::DidNotSettle { .. } => Mode::Busy,
        Fault::Hung { .. } | Fault::OutOfTime { .. } => Mode::Hang,
        Fault::Crashed { .. } => Mode::Crash,
        Fault::Protocol(_) => Mode::Protocol,
        Fault::Earlier { fault, .. } => mode(fault),
    }
}
