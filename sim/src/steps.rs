//! A run's steps as data: each entry that took effect, the implementation's
//! reply, and what it observed during it, for reports that draw a run (the
//! matrix page's timelines) rather than print it (`replay -v`).
//!
//! Invariants: steps are in trace order and `index` is the entry's index in
//! the run's trace (so a failure's `entry` names its step); an observation
//! belongs to the step during which the implementation reported it.

use crate::op::{Entry, Observation};
use serde::Serialize;

/// One entry of a run and what came of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The entry's index in the run's trace.
    pub index: usize,
    /// The entry, as in trace files.
    pub entry: Entry,
    /// The entry as `replay -v` prints it.
    pub text: String,
    /// The reply, as `replay -v` prints it (`ok`, `stats: ...`, an error);
    /// `None` for entries that have none (a poll).
    pub reply: Option<String>,
    /// What the implementation reported during the entry, in order, each
    /// with its text.
    pub observations: Vec<Observed>,
}

/// One observation and its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The observation, as on the wire.
    #[serde(flatten)]
    pub observation: Observation,
    /// As `replay -v` prints it.
    pub text: String,
}

impl Observed {
    /// `observation`, with its text.
    pub fn of(observation: &Observation) -> Observed {
        Observed {
            observation: observation.clone(),
            text: observation.to_string(),
        }
    }
}
