//! The wake probe: some subscriptions did not do what they should have by
//! the end of a settle. If the implementation can be woken from outside,
//! each is woken once and the implementation settled again: one that then
//! makes progress had its event (or its end) all along, and only the wakeup
//! was lost; one that does not was never given it.
//!
//! The probe runs on the live implementation right after the failure,
//! which is already certain, so it does not change what the trace
//! reproduces; `replay` runs it the same way.

use crate::iut::Implementation;
use crate::model::{Disagreement, Model};
use crate::op::{Op, TaskRef};
use crate::rules::Capabilities;

/// Fills in what a spurious wakeup shows about a stuck or unended
/// subscription (`woken`, `ended_when_woken`). Leaves them `None` when the
/// implementation cannot be woken (no `wake` capability) or fails to settle
/// again. If the model disagrees with something the implementation reports
/// during the probe, that disagreement is returned instead: it is a failure
/// in its own right, at the same entry.
pub fn probe(
    disagreement: Disagreement,
    imp: &mut dyn Implementation,
    model: &mut Model,
    capabilities: Capabilities,
) -> Disagreement {
    let (subs, first) = match &disagreement {
        Disagreement::Stuck(s) => (s.subs.clone(), s.sub.sub),
        Disagreement::Unended(u) => (u.subs.clone(), u.sub.sub),
        _ => return disagreement,
    };
    if !capabilities.has(crate::rules::Capability::Wake) {
        return disagreement;
    }
    for sub in &subs {
        let _ = imp.wake(TaskRef::Sub(*sub));
        // A shared subscription's second puller is a task of its own
        // (SHARE-1): woken too.
        if let Some(puller) = model.puller_of(*sub) {
            let _ = imp.wake(TaskRef::Sub(puller));
        }
    }
    let received_before = model.received_count(first);
    if imp.apply(&Op::Settle).is_err() {
        return disagreement;
    }
    for observation in imp.take_observations() {
        if let Err(found) = model.observe(&observation) {
            return found;
        }
    }
    match disagreement {
        Disagreement::Stuck(mut s) => {
            s.woken = Some(model.received_count(first) > received_before);
            Disagreement::Stuck(s)
        }
        Disagreement::Unended(mut u) => {
            u.ended_when_woken = Some(model.has_ended(first));
            Disagreement::Unended(u)
        }
        other => other,
    }
}
