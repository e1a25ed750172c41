//! A send answered with an error the model did not allow: which rule that
//! breaks.

use crate::model::{Mode, SendRefused, Violation};
use crate::op::OpError;
use crate::rules::Rule;

/// Names the rule a refused send breaks, from its facts alone. On a closed
/// bus (where only success or `Closed` are allowed): CLOSE-2. On an open
/// bus: any error through the handle of a scope that has exited is EXIT-1
/// (the handle lost the bus it had; the layout step overrules this when the
/// implementation's buses are laid out otherwise); `Closed` from a scope
/// that could be confusing its bus with a closed one breaks the scope's
/// layout rule; else SEND-1. A subscriber of its type
/// dropped or cancelled before is said, not blamed: only the replay without
/// the drops ([`super::cancel`]) makes it CANCEL-1.
pub fn send_refused(s: &SendRefused) -> Violation {
    let what = format!("{} of {} event#{} in {}", s.who, s.ty, s.event, s.scope);
    let error = &s.error;
    let dropped = match s.sibling_dropped {
        true => ", after a subscriber of its type was dropped or cancelled",
        false => "",
    };
    if s.bus_closed {
        return Violation::new(
            Rule::Close2,
            Mode::SendAfterCloseFailed,
            format!(
                "{what} after its bus closed failed with {error}{dropped}; expected success or Closed"
            ),
        );
    }
    if s.through_exited {
        return Violation::new(
            Rule::Exit1,
            Mode::ExitedHandle,
            format!(
                "{what}, which has exited, failed with {error}, but the bus it had is open{dropped}: its handle seems to have lost that bus"
            ),
        );
    }
    if *error == OpError::Closed && s.sees_closed_bus {
        return Violation::new(
            s.scope_kind.rule(),
            Mode::UsedClosedBus,
            format!(
                "{what} failed with Closed, but the bus of {} is open: \
                 the scope seems to use a bus that has closed (its own, or an enclosing scope's)",
                s.scope
            ),
        );
    }
    Violation::new(
        Rule::Send1,
        Mode::SendFailed,
        format!("{what} failed with {error} while its bus is open{dropped}"),
    )
}
