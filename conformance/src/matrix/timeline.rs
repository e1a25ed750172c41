//! Failures as data for the matrix page's timelines: each explained
//! failure's shrunk trace (or, for a recorded deviation these seeds did not
//! reach, its recorded trace) replayed once more on a fresh instance, every
//! step kept with its reply and observations, and the step where
//! implementation and model first disagreed.
//!
//! Invariants: a timeline is a fresh replay, not the run's memory, so it is
//! exactly what `cargo xtask replay -v TRACE` prints; a replay that no
//! longer fails says so (`first` is `None`) rather than pointing anywhere.

use crate::expectations::Expectations;
use crate::replay::replay_steps;
use crate::runner::{Report, Verdict};
use crate::target::Target;
use scopebus_sim::op::Entry;
use scopebus_sim::rules::Rule;
use scopebus_sim::steps::Step;
use scopebus_sim::trace::TraceFile;
use serde::Serialize;

/// One failure, drawn.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// The rule the run reported it under.
    pub rule: Rule,
    /// Its failure mode (`recorded` for a recorded trace not reached).
    pub mode: String,
    /// The lowest seed that failed so, if these seeds reached it.
    pub seed: Option<u64>,
    /// Whether its rule is a recorded deviation of the implementation.
    pub recorded: bool,
    /// What the run said.
    pub message: String,
    /// The trace file replayed.
    pub trace: String,
    /// The step where implementation and model first disagreed in this
    /// replay, and what the model expected there.
    pub first: Option<usize>,
    /// The first disagreement of this replay, as the session read it.
    pub first_message: Option<String>,
    /// The rule this replay is attributed to (the same as `rule`, unless
    /// the implementation is not deterministic).
    pub attributed: Option<Rule>,
    /// Every step.
    pub steps: Vec<Step>,
}

/// Every explained failure of `report`, and every recorded deviation of
/// `expectations` the run did not reach, replayed on `target`.
pub fn of_report(
    target: &Target,
    report: &Report,
    expectations: Option<&Expectations>,
) -> Vec<Timeline> {
    let mut timelines = Vec::new();
    for r in &report.rules {
        let recorded = matches!(r.verdict, Verdict::ExpectedFailure { .. });
        for f in &r.failures {
            timelines.push(draw(
                target,
                r.rule,
                &f.entries,
                Drawn {
                    mode: f.mode.to_string(),
                    seed: Some(f.seed),
                    recorded,
                    message: f.message.clone(),
                    trace: crate::runner::display_path(&f.trace),
                },
            ));
        }
        if r.failures.is_empty()
            && recorded
            && let Some(t) = recorded_trace(r.rule, expectations, target)
        {
            timelines.push(t);
        }
    }
    timelines
}

struct Drawn {
    mode: String,
    seed: Option<u64>,
    recorded: bool,
    message: String,
    trace: String,
}

fn draw(target: &Target, rule: Rule, entries: &[Entry], drawn: Drawn) -> Timeline {
    let (replayed, steps) = replay_steps(target, entries);
    let first = replayed.first_reading.as_ref();
    Timeline {
        rule,
        mode: drawn.mode,
        seed: drawn.seed,
        recorded: drawn.recorded,
        message: drawn.message,
        trace: drawn.trace,
        first: first.map(|f| f.entry),
        first_message: first.map(|f| f.message.clone()),
        attributed: replayed.run.failure.as_ref().map(|f| f.rule),
        steps,
    }
}

fn recorded_trace(
    rule: Rule,
    expectations: Option<&Expectations>,
    target: &Target,
) -> Option<Timeline> {
    let expectations = expectations?;
    let deviation = expectations.get(rule)?;
    let path = expectations.trace_path(deviation);
    let file = TraceFile::read(&path).ok()?;
    Some(draw(
        target,
        rule,
        &file.entries,
        Drawn {
            mode: "recorded".to_owned(),
            seed: None,
            recorded: true,
            message: deviation.reason.clone(),
            trace: crate::runner::display_path(&path),
        },
    ))
}
