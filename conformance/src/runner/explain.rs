//! Explaining one failure mode: its lowest seed's trace shrunk, rerun to
//! see whether it reproduces, saved under `failures/<impl>/`, with the
//! commands that show it again.

use super::Campaign;
use super::display_path;
use super::reproduce::{self, Reruns, reproduce};
use super::tally::FirstFailure;
use super::verdict::RuleFailure;
use crate::deadline;
use scopebus_sim::diagnosis::{Diagnosis, classify};
use scopebus_sim::harness::{Failure, Run};
use scopebus_sim::model::Violation;
use scopebus_sim::op::Entry;
use scopebus_sim::shrink::{Shrunk, count_ops, shrink};
use scopebus_sim::trace::{FailureRecord, TraceFile};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Shrinks `first`'s failure (keeping its rule and shape, or finding a
/// `must` rule where it was a `should`), checks how reliably it shows
/// again, writes its traces, and builds the commands that reproduce it.
/// A trace that cannot be saved is reported in the result, not as an error.
/// Returns the rule the failure is reported under, and its explanation.
pub fn explain(
    campaign: &Campaign,
    diagnosis: &mut Diagnosis<'_>,
    first: &FirstFailure,
) -> (scopebus_sim::rules::Rule, RuleFailure) {
    let (shrunk, transcript, reruns) = shrink_and_rerun(campaign, diagnosis, first);
    let failure = &match reruns.reproduction.trace_flaky() {
        true => first_reading(&shrunk.failure),
        false => shrunk.failure.clone(),
    };
    let rule = failure.rule;
    let files = Files::new(campaign, failure, first.seed);
    let mut saver = Saver::default();
    saver.trace(campaign, first.seed, &shrunk.entries, failure, &files.trace);
    saver.trace(
        campaign,
        first.seed,
        &first.trace,
        &first.failure,
        &files.full,
    );
    // A flaky failure's transcript is a failing rerun's, or none: the
    // first replay of the shrunk trace may be a passing one.
    let transcript = match reruns.reproduction.flaky() {
        true => reruns.failing_transcript.clone(),
        false => transcript,
    };
    let transcript = saver.transcript(transcript, &files.transcript);
    let mut reproduction = reruns.reproduction.clone();
    if reproduction.flaky() {
        reproduction.passing_transcript =
            saver.transcript(reruns.passing_transcript, &files.passing);
    }
    let target = &campaign.target;
    let failure = RuleFailure {
        mode: failure.mode,
        seed: first.seed,
        failing_seeds: first.failing_seeds,
        message: failure.message.clone(),
        trace_ops: count_ops(&shrunk.entries),
        trace_entries: shrunk.entries.len(),
        original_entries: first.failure.entry + 1,
        fault: failure.fault,
        repro: format!(
            "cargo xtask conformance --impl {} --seed {} --ops {}{}",
            target.quoted(),
            first.seed,
            campaign.ops,
            target.timeout_flag()
        ),
        replay: format!(
            "cargo xtask replay {}{}",
            display_path(&files.trace),
            target.replay_flags()
        ),
        shrink_timed_out: shrunk.timed_out,
        entries: shrunk.entries,
        trace: files.trace,
        full_trace: files.full,
        transcript,
        save_error: saver.error(),
        reproduction,
        reattributed_from: (failure.rule != first.failure.rule).then_some(first.failure.rule),
    };
    (rule, failure)
}

/// Shrinks `first`'s trace within the shrink budget, then replays the
/// shrunk trace and reruns the seed within the rerun budget: the shrunk
/// trace, the first replay's transcript, and the reruns.
fn shrink_and_rerun(
    campaign: &Campaign,
    diagnosis: &mut Diagnosis<'_>,
    first: &FirstFailure,
) -> (Shrunk, Option<Vec<String>>, Reruns) {
    // Shrinking keeps its time budget even when one replay could outlast
    // it (an adapter that hangs): each wait is cut at the budget's end, and
    // a candidate cut short is no reproduction.
    // Within the run's deadline too, if it has one (none left: no replay).
    let mut budget = campaign.shrink;
    budget.time = deadline::left().map_or(budget.time, |left| left.min(budget.time));
    let shrink_until = Instant::now() + budget.time;
    let shrunk = deadline::within(Some(shrink_until), || {
        shrink(&first.trace, &first.failure, budget, |entries| {
            uncut(diagnosis.judge(entries))
        })
    });
    let (transcript, reruns) = deadline::within(Some(Instant::now() + reproduce::TIME), || {
        let first_replay = diagnosis.judge(&shrunk.entries);
        let transcript = first_replay.transcript.clone();
        let reruns = reproduce(
            campaign,
            diagnosis,
            first.seed,
            first.failure.rule,
            shrunk.failure.rule,
            &shrunk.entries,
            first_replay,
        );
        (transcript, reruns)
    });
    (shrunk, transcript, reruns)
}

/// A run as the shrinker may count it: one the deadline in force cut short
/// (or that ended after it) fails nothing.
fn uncut(mut run: Run) -> Run {
    if deadline::cut_short(&run) {
        run.failure = None;
    }
    run
}

/// A flaky failure as its disagreement reads from its evidence alone:
/// diagnosis's replays (without drops, with look-alikes renamed, ...) prove
/// nothing on an implementation that does not do the same thing twice, so
/// their answer is not reported.
fn first_reading(failure: &Failure) -> Failure {
    let Some(reading) = failure.evidence.as_deref().map(classify) else {
        return failure.clone();
    };
    if reading.rule == failure.rule {
        return failure.clone();
    }
    let message = format!(
        "{} (read from the disagreement alone: it does not show every time, so no replay can tell its cause)",
        reading.message
    );
    failure.attributed(Violation::new(reading.rule, reading.mode, message))
}

/// Where one failure's files go: `failures/<impl>/RULE-seed-S[-mode].*`.
struct Files {
    trace: PathBuf,
    full: PathBuf,
    transcript: PathBuf,
    passing: PathBuf,
}

impl Files {
    fn new(campaign: &Campaign, failure: &Failure, seed: u64) -> Files {
        let dir = campaign
            .out_dir
            .join("failures")
            .join(campaign.target.slug());
        let stem = format!("{}-seed-{seed}", failure.rule.id());
        Files {
            trace: dir.join(format!("{stem}.json")),
            full: dir.join(format!("{stem}-full.json")),
            transcript: dir.join(format!("{stem}.transcript.jsonl")),
            passing: dir.join(format!("{stem}.passing.transcript.jsonl")),
        }
    }
}

/// Writes a failure's files, collecting what could not be written.
#[derive(Default)]
struct Saver {
    errors: Vec<String>,
}

impl Saver {
    fn trace(
        &mut self,
        campaign: &Campaign,
        seed: u64,
        entries: &[Entry],
        failure: &Failure,
        path: &Path,
    ) {
        let mut file = TraceFile::new(campaign.target.to_string(), entries.to_vec());
        file.seed = Some(seed);
        file.ops = Some(campaign.ops);
        file.failure = Some(FailureRecord::from(failure));
        if let Err(e) = file.write(path) {
            self.errors.push(e.to_string());
        }
    }

    /// Writes a transcript (for an adapter: every request and reply).
    fn transcript(&mut self, lines: Option<Vec<String>>, path: &Path) -> Option<PathBuf> {
        let mut text = lines?.join("\n");
        text.push('\n');
        match std::fs::write(path, text) {
            Ok(()) => Some(path.to_path_buf()),
            Err(e) => {
                self.errors
                    .push(format!("cannot write {}: {e}", path.display()));
                None
            }
        }
    }

    fn error(self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.join("; "))
    }
}
