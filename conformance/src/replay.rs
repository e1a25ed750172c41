//! Replaying a trace as `cargo xtask replay` does: every entry stepped on a
//! fresh instance (each logged, if asked), then the failure attributed by
//! the one verdict path ([`scopebus_sim::diagnosis::Diagnosis`]), probes
//! and counterfactual replays included. `conformance` attributes the same
//! way, so a saved trace replays to the rule it was reported under (tested
//! on every saved trace in `tests/one_verdict.rs`).

use crate::target::Target;
use scopebus_sim::harness::{Failure, Run, Session};
use scopebus_sim::op::Entry;
use scopebus_sim::steps::Step;

/// A replayed trace.
pub struct Replayed {
    /// The run, its failure attributed.
    pub run: Run,
    /// The failure as the session first read it, before diagnosis's
    /// replays; `None` if the run passed.
    pub first_reading: Option<Failure>,
    /// Whether diagnosis found the failure on another trace than the one
    /// replayed (the same without its drops and cancellations of
    /// subscribers), which `run.trace` then is.
    pub on_other_trace: bool,
}

/// Replays `entries` on a fresh instance of `target`, giving each line of
/// the step-by-step log (entry, reply, observations) to `log` as it comes,
/// then attributes the failure.
pub fn replay(target: &Target, entries: &[Entry], log: impl FnMut(&str)) -> Replayed {
    replay_with(target, entries, log, &mut Vec::new())
}

/// Replays `entries` as [`replay`] does, and also gives every entry that
/// took effect as data, with its reply and observations (the matrix page's
/// timelines): the first disagreement is at `first_reading`'s `entry`.
pub fn replay_steps(target: &Target, entries: &[Entry]) -> (Replayed, Vec<Step>) {
    let mut steps = Vec::new();
    let replayed = replay_with(target, entries, |_| {}, &mut steps);
    (replayed, steps)
}

fn replay_with(
    target: &Target,
    entries: &[Entry],
    mut log: impl FnMut(&str),
    steps: &mut Vec<Step>,
) -> Replayed {
    let mut session = Session::new(target.instantiate()).with_log().with_steps();
    let mut failure = None;
    for entry in entries {
        let result = session.step(entry);
        for line in session.take_log() {
            log(&line);
        }
        if let Err(f) = result {
            failure = Some(f);
            break;
        }
    }
    steps.extend(session.take_steps());
    let run = session.finish(failure);
    let first_reading = run.failure.clone();
    let replayed = run.trace.clone();
    let run = target.diagnosis_probed().attribute(run);
    Replayed {
        on_other_trace: run.trace != replayed,
        run,
        first_reading,
    }
}
