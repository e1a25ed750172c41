//! REENTER-1: the probes `reenter` arms, and the check of what each one
//! reports.
//!
//! # Invariants
//!
//! - A probe is armed on one subscriber task at a time per subscription;
//!   arming again replaces one that has not run (`armed` holds the latest).
//! - A `reentered` observation consumes its subscription's armed probe: a
//!   report with none armed, or of another action, is impossible
//!   (ROBUST-1), since an adapter reports only the probes it was asked for.
//! - A probe changes nothing else the model can see: it reads statistics
//!   or subscribes to a type outside the catalogue and lets go at once.
//! - Whether a probe runs at all is the implementation's timing (the bus
//!   may never call back into the task again): an armed probe that never
//!   reports is no failure. Each one that reports is one check.

use super::Model;
use super::disagreement::{Disagreement, Mode};
use crate::op::{ReentryAction, ReentryOutcome, ReentryPoint, SubId};
use crate::rules::Rule;

impl Model {
    /// `reenter`: arms a probe on the task of `sub` (validated: held).
    pub(super) fn arm_reentry(&mut self, sub: SubId, action: ReentryAction) {
        self.reentries.insert(sub, action);
    }

    /// `reentered`: the armed probe of `sub` ran during the bus's `during`
    /// callback, with `outcome` (`detail`: what happened instead of a
    /// return).
    ///
    /// # Errors
    /// REENTER-1 if the callback's use of the bus did not return (mode
    /// "bus blocked its own callback") or failed ("bus failed its own
    /// callback"); ROBUST-1 for a report of a probe that was not armed.
    pub(super) fn reentered(
        &mut self,
        sub: SubId,
        action: ReentryAction,
        during: ReentryPoint,
        outcome: ReentryOutcome,
        detail: Option<&str>,
    ) -> Result<(), Disagreement> {
        match self.reentries.remove(&sub) {
            Some(armed) if armed == action => {}
            armed => {
                let armed = armed.map_or("none".to_owned(), |a| format!("one that {a}"));
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!(
                        "the adapter reported a probe on {sub} that {action}; the probe armed there: {armed}"
                    ),
                );
            }
        }
        self.coverage.hit(Rule::Reenter1);
        let (mode, what) = match outcome {
            ReentryOutcome::Returned => return Ok(()),
            ReentryOutcome::Blocked => (
                Mode::CallbackBlocked,
                "did not return: the bus ran that callback while holding a lock the callback needed",
            ),
            ReentryOutcome::Failed => (Mode::CallbackFailed, "failed"),
        };
        let detail = detail.map_or(String::new(), |d| format!(" ({d})"));
        Disagreement::certain(
            Rule::Reenter1,
            mode,
            format!(
                "the bus {during} {sub}'s waker, and that callback, which {action} on the same bus, {what}{detail}"
            ),
        )
    }

    /// The probe armed on `sub` that has not run yet, if any.
    pub fn armed_reentry(&self, sub: SubId) -> Option<ReentryAction> {
        self.reentries.get(&sub).copied()
    }
}
