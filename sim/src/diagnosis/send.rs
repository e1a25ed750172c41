//! A send answered with an error the model did not allow: which rule that
//! breaks.

use crate::model::{Mode, SendRefused, Violation};
use crate::op::OpError;
use crate::rules::Rule;

/// Names the rule a refused send breaks. On a closed bus (where only
/// success or `Closed` are allowed): CANCEL-1 if a subscriber of its type
/// was dropped or cancelled before (the refusal is its disturbance), else
/// CLOSE-2. On an open bus: `Closed` from a scope that could be confusing
/// its bus with a closed one breaks the scope's layout rule; then CANCEL-1
/// after a drop; else SEND-1. (CANCEL-1 here is confirmed
/// counterfactually by [`super::cancel`].)
pub fn send_refused(s: &SendRefused) -> Violation {
    let what = format!("{} of {} event#{} in {}", s.who, s.ty, s.event, s.scope);
    let error = &s.error;
    if s.bus_closed {
        return match s.sibling_dropped {
            true => Violation::new(
                Rule::Cancel1,
                Mode::SendAfterCloseFailed,
                format!(
                    "{what} after its bus closed failed with {error}, after a subscriber of its type was dropped or cancelled; expected success or Closed"
                ),
            ),
            false => Violation::new(
                Rule::Close2,
                Mode::SendAfterCloseFailed,
                format!(
                    "{what} after its bus closed failed with {error}; expected success or Closed"
                ),
            ),
        };
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
    match s.sibling_dropped {
        true => Violation::new(
            Rule::Cancel1,
            Mode::SendFailed,
            format!(
                "{what} failed with {error} while its bus is open, after a subscriber of its type was dropped or cancelled"
            ),
        ),
        false => Violation::new(
            Rule::Send1,
            Mode::SendFailed,
            format!("{what} failed with {error} while its bus is open"),
        ),
    }
}
