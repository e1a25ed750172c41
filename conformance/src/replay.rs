//! Replaying a trace as `cargo xtask replay` does: every entry stepped on a
//! fresh instance (each logged, if asked), then the failure attributed by
//! the one verdict path ([`scopebus_sim::diagnosis::Diagnosis`]), probes
//! and counterfactual replays included. `conformance` attributes the same
//! way, so a saved trace replays to the rule it was reported under (tested
//! on every saved trace in `tests/one_verdict.rs`).

use crate::target::Target;
use scopebus_sim::harness::{Failure, Run, Session};
use scopebus_sim::op::Entry;

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
pub fn replay(target: &Target, entries: &[Entry], mut log: impl FnMut(&str)) -> Replayed {
    let mut session = Session::new(target.instantiate()).with_log();
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
