//! The conformance run: many seeds against one implementation, a verdict per
//! rule, and for every failed rule a shrunk trace and the commands that
//! reproduce it.
//!
//! Seeds run in parallel (one fresh implementation per seed) and their
//! results are merged in seed order, so the report does not depend on the
//! number of threads. A sample of seeds is run twice and must give the same
//! fingerprint: the suite checks its own determinism.

use crate::target::Target;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use scopebus_sim::harness::{Counts, Failure, GenConfig, generate, replay};
use scopebus_sim::iut::ImplInfo;
use scopebus_sim::op::Entry;
use scopebus_sim::rules::{Capability, Coverage, Level, Rule};
use scopebus_sim::shrink::{Budget, confirm, count_ops, shrink};
use scopebus_sim::trace::{FailureRecord, TraceError, TraceFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which seeds to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// `count` consecutive seeds from `start`.
    Range {
        /// The first seed.
        start: u64,
        /// How many.
        count: u64,
    },
    /// Exactly this seed.
    One(u64),
}

impl Seeds {
    /// The seeds, in order.
    pub fn list(self) -> Vec<u64> {
        match self {
            Seeds::Range { start, count } => (0..count).map(|i| start.wrapping_add(i)).collect(),
            Seeds::One(seed) => vec![seed],
        }
    }

    /// A range of `count` seeds from `start`.
    ///
    /// # Errors
    /// If the range would run past the largest seed.
    pub fn range(start: u64, count: u64) -> Result<Seeds, String> {
        match count.checked_sub(1).map(|n| start.checked_add(n)) {
            Some(Some(_)) => Ok(Seeds::Range { start, count }),
            Some(None) => Err(format!(
                "seeds {start} and the {} after it run past the largest seed, {}",
                count - 1,
                u64::MAX
            )),
            None => Err("at least one seed is needed".to_owned()),
        }
    }
}

/// Everything a conformance run needs.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The implementation under test.
    pub target: Target,
    /// Which seeds.
    pub seeds: Seeds,
    /// Workload ops per seed.
    pub ops: usize,
    /// Worker threads (0: one per core).
    pub jobs: usize,
    /// Where failing traces are written (`failures/` under it).
    pub out_dir: PathBuf,
    /// How hard to shrink each failure.
    pub shrink: Budget,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// A rule's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Checked, and never broken.
    Passed,
    /// Broken by at least one seed.
    Failed,
    /// The implementation lacks a capability the rule needs. Never counted
    /// as passed.
    NotTested {
        /// What it lacks.
        missing: Vec<Capability>,
    },
    /// No seed produced a situation that checks the rule. Never counted as
    /// passed.
    NotExercised,
}

impl Verdict {
    /// The verdict as a word: `passed`, `failed`, `not_tested`,
    /// `not_exercised`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotTested { .. } => "not_tested",
            Verdict::NotExercised => "not_exercised",
        }
    }
}

/// How a failed rule failed, and how to see it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// The lowest failing seed.
    pub seed: u64,
    /// How many seeds broke the rule.
    pub failing_seeds: u64,
    /// The first difference between implementation and model, in the shrunk
    /// trace.
    pub message: String,
    /// The shrunk trace file.
    pub trace: PathBuf,
    /// The original (unshrunk) trace file.
    pub full_trace: PathBuf,
    /// Ops in the shrunk trace.
    pub trace_ops: usize,
    /// Entries (ops and scheduling choices) in the shrunk trace.
    pub trace_entries: usize,
    /// Entries in the original trace.
    pub original_entries: usize,
    /// The shrunk trace, for printing.
    pub entries: Vec<Entry>,
    /// Whether the implementation broke (panic, crash, hang) rather than
    /// answered wrongly.
    pub fault: bool,
    /// A command that reruns the seed.
    pub repro: String,
    /// A command that replays the shrunk trace.
    pub replay: String,
}

/// One rule's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleResult {
    /// The rule.
    pub rule: Rule,
    /// Its verdict.
    pub verdict: Verdict,
    /// How many times it was checked.
    pub checks: u64,
    /// How it failed, if it did.
    pub failure: Option<RuleFailure>,
}

/// The result of the determinism self-check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Determinism {
    /// Seeds run twice.
    pub checked: u64,
    /// Seeds whose two runs differed.
    pub mismatches: Vec<u64>,
}

/// The outcome of a conformance run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Who was tested.
    pub implementation: ImplInfo,
    /// Its `--impl` name.
    pub target: String,
    /// The seeds run.
    pub seeds: Seeds,
    /// Ops per seed.
    pub ops_per_seed: usize,
    /// What the runs did, summed.
    pub counts: Counts,
    /// Per rule, in SPEC.md order.
    pub rules: Vec<RuleResult>,
    /// The self-check.
    pub determinism: Determinism,
    /// Wall time of the seeds (not of shrinking).
    pub run_time: Duration,
    /// Wall time of shrinking.
    pub shrink_time: Duration,
}

impl Report {
    /// Conforming: every `must` rule passed (checked, never broken), and
    /// the run was deterministic. Only a range of seeds can show this; see
    /// [`Report::is_rerun`].
    pub fn conforming(&self) -> bool {
        !self.is_rerun()
            && self.determinism.mismatches.is_empty()
            && self
                .rules
                .iter()
                .filter(|r| r.rule.level() == Level::Must)
                .all(|r| r.verdict == Verdict::Passed)
    }

    /// Whether this was a rerun of one seed (`--seed`), which reproduces or
    /// clears a failure but exercises too little to judge conformance.
    pub fn is_rerun(&self) -> bool {
        matches!(self.seeds, Seeds::One(_))
    }

    /// Whether the run should count as a success: conforming for a range of
    /// seeds; for a single-seed rerun, no `must` rule failed and the run was
    /// deterministic.
    pub fn success(&self) -> bool {
        if self.is_rerun() {
            self.determinism.mismatches.is_empty()
                && !self
                    .rules
                    .iter()
                    .any(|r| r.rule.level() == Level::Must && r.verdict == Verdict::Failed)
        } else {
            self.conforming()
        }
    }

    /// Number of seeds run.
    pub fn seed_count(&self) -> u64 {
        self.seeds.list().len() as u64
    }
}

/// What one seed left behind.
struct SeedResult {
    seed: u64,
    failure: Option<(Failure, Vec<Entry>)>,
    coverage: Coverage,
    counts: Counts,
    fingerprint: u64,
}

fn run_seed(target: &Target, seed: u64, config: GenConfig) -> SeedResult {
    let mut imp = target.instantiate();
    let run = generate(seed, config, &mut *imp);
    SeedResult {
        seed,
        failure: run.failure.map(|f| (f, run.trace)),
        coverage: run.coverage,
        counts: run.counts,
        fingerprint: run.fingerprint,
    }
}

/// Builds the thread pool for `jobs` workers (0: one per core).
///
/// # Errors
/// If the pool cannot be built.
pub fn pool(jobs: usize) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| format!("cannot start {jobs} worker threads: {e}"))
}

fn progress_bar(enabled: bool, len: u64, what: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{pos}}/{{len}} seeds [{{elapsed}}, eta {{eta}}]"
    )) {
        bar.set_style(style);
    }
    bar
}

/// Runs the campaign.
///
/// # Errors
/// Only for what prevents a verdict: the thread pool, or failing traces that
/// cannot be written.
pub fn run(campaign: &Campaign) -> Result<Report, String> {
    let config = GenConfig { ops: campaign.ops };
    let info = campaign.target.info();
    let seeds = campaign.seeds.list();
    let pool = pool(campaign.jobs)?;
    let bar = progress_bar(campaign.progress, seeds.len() as u64, "conformance");

    let started = Instant::now();
    let results: Vec<SeedResult> = pool.install(|| {
        seeds
            .par_iter()
            .map(|&seed| {
                let r = run_seed(&campaign.target, seed, config);
                bar.inc(1);
                r
            })
            .collect()
    });
    // Determinism self-check: rerun a sample (the first seed and every
    // hundredth) and compare fingerprints.
    let sample: Vec<&SeedResult> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 == 0)
        .map(|(_, r)| r)
        .collect();
    let mismatches: Vec<u64> = pool.install(|| {
        sample
            .par_iter()
            .filter(|r| run_seed(&campaign.target, r.seed, config).fingerprint != r.fingerprint)
            .map(|r| r.seed)
            .collect()
    });
    let run_time = started.elapsed();
    bar.finish_and_clear();

    let mut counts = Counts::default();
    let mut coverage = Coverage::default();
    let mut failing: BTreeMap<Rule, Vec<&SeedResult>> = BTreeMap::new();
    for r in &results {
        counts.ops += r.counts.ops;
        counts.polls += r.counts.polls;
        counts.wakes += r.counts.wakes;
        counts.observations += r.counts.observations;
        counts.skipped += r.counts.skipped;
        coverage.merge(&r.coverage);
        if let Some((f, _)) = &r.failure {
            failing.entry(f.rule).or_default().push(r);
        }
    }

    let shrink_started = Instant::now();
    let shrunk: Vec<(Rule, RuleFailure)> = pool.install(|| {
        failing
            .par_iter()
            .map(|(rule, seeds)| {
                let first = seeds[0];
                let failure = explain(campaign, first, seeds.len() as u64)?;
                Ok((*rule, failure))
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    let shrink_time = shrink_started.elapsed();
    let mut shrunk: BTreeMap<Rule, RuleFailure> = shrunk.into_iter().collect();

    let rules = Rule::ALL
        .iter()
        .map(|&rule| {
            let missing: Vec<Capability> = rule
                .needs()
                .iter()
                .filter(|c| !info.capabilities.has(*c))
                .collect();
            let failure = shrunk.remove(&rule);
            let checks = coverage.get(rule);
            let verdict = if failure.is_some() {
                Verdict::Failed
            } else if !missing.is_empty() {
                Verdict::NotTested { missing }
            } else if checks == 0 {
                Verdict::NotExercised
            } else {
                Verdict::Passed
            };
            RuleResult {
                rule,
                verdict,
                checks,
                failure,
            }
        })
        .collect();

    Ok(Report {
        implementation: info,
        target: campaign.target.to_string(),
        seeds: campaign.seeds,
        ops_per_seed: campaign.ops,
        counts,
        rules,
        determinism: Determinism {
            checked: sample.len() as u64,
            mismatches,
        },
        run_time,
        shrink_time,
    })
}

/// Shrinks one seed's failure, writes its traces, and builds the commands
/// that reproduce it.
fn explain(
    campaign: &Campaign,
    result: &SeedResult,
    failing_seeds: u64,
) -> Result<RuleFailure, String> {
    let Some((failure, trace)) = &result.failure else {
        return Err("internal error: explaining a seed that passed".to_owned());
    };
    let target = &campaign.target;
    let fresh = |entries: &[Entry]| {
        let mut imp = target.instantiate();
        replay(&mut *imp, entries)
    };
    let (trace, failure) = &confirm(trace, failure, fresh);
    let shrunk = shrink(trace, failure, campaign.shrink, |entries| {
        let mut imp = target.instantiate();
        replay(&mut *imp, entries)
    });
    let dir = campaign
        .out_dir
        .join("failures")
        .join(target.to_string().replace(':', "-"));
    let stem = format!("{}-seed-{}", failure.rule.id(), result.seed);
    let save = |entries: &[Entry], failure: &Failure, path: &Path| -> Result<(), String> {
        let mut file = TraceFile::new(target.to_string(), entries.to_vec());
        file.seed = Some(result.seed);
        file.ops = Some(campaign.ops);
        file.failure = Some(FailureRecord::from(failure));
        file.write(path).map_err(|e: TraceError| e.to_string())
    };
    let trace_path = dir.join(format!("{stem}.json"));
    let full_path = dir.join(format!("{stem}-full.json"));
    save(&shrunk.entries, &shrunk.failure, &trace_path)?;
    save(trace, failure, &full_path)?;
    let shown = display_path(&trace_path);
    Ok(RuleFailure {
        seed: result.seed,
        failing_seeds,
        message: shrunk.failure.message.clone(),
        trace_ops: count_ops(&shrunk.entries),
        trace_entries: shrunk.entries.len(),
        original_entries: failure.entry + 1,
        entries: shrunk.entries,
        fault: shrunk.failure.fault,
        repro: format!(
            "cargo xtask conformance --impl {target} --seed {} --ops {}",
            result.seed, campaign.ops
        ),
        replay: format!("cargo xtask replay {shown}"),
        trace: trace_path,
        full_trace: full_path,
    })
}

/// `path` relative to the current directory when it is under it.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
