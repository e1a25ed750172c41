//! The conformance run: many seeds against one implementation, a verdict per
//! rule, and for every failed rule a shrunk trace and the commands that
//! reproduce it.
//!
//! Seeds run in parallel (one fresh implementation per seed) and their
//! results are merged in seed order, so the report does not depend on the
//! number of threads. A sample of seeds is run twice and must give the same
//! fingerprint: the suite checks its own determinism.

use crate::expectations::Expectations;
use crate::target::Target;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use scopebus_sim::harness::{Counts, Failure, GenConfig, generate, replay};
use scopebus_sim::iut::ImplInfo;
use scopebus_sim::op::Entry;
use scopebus_sim::rules::{Capabilities, Capability, Coverage, Level, Rule};
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
    /// One of `of` contiguous, disjoint slices of `count` seeds from
    /// `start`: the `index`-th (1-based). The slices' union is the whole
    /// range, and merging their reports (`report::merge_json`) gives the
    /// report of the whole range.
    Shard {
        /// The whole range's first seed.
        start: u64,
        /// The whole range's size.
        count: u64,
        /// Which slice, from 1.
        index: u64,
        /// How many slices.
        of: u64,
    },
}

impl Seeds {
    /// The first seed this run executes and how many.
    pub fn bounds(self) -> (u64, u64) {
        match self {
            Seeds::Range { start, count } => (start, count),
            Seeds::One(seed) => (seed, 1),
            Seeds::Shard {
                start,
                count,
                index,
                of,
            } => {
                let cut = |k: u64| (u128::from(count) * u128::from(k) / u128::from(of)) as u64;
                let (lo, hi) = (cut(index - 1), cut(index));
                (start + lo, hi - lo)
            }
        }
    }

    /// The whole range this run is part of: its first seed and size (for a
    /// shard, the range all the shards together cover).
    pub fn whole(self) -> (u64, u64) {
        match self {
            Seeds::Shard { start, count, .. } => (start, count),
            other => other.bounds(),
        }
    }

    /// The `index`-th (1-based) of `of` contiguous slices of `count` seeds
    /// from `start`, as `--shard index/of` gives it.
    ///
    /// # Errors
    /// If `index` is not within `1..=of`, if there are fewer seeds than
    /// shards (a shard would be empty), or if the range runs past the
    /// largest seed.
    pub fn shard(start: u64, count: u64, index: u64, of: u64) -> Result<Seeds, String> {
        Seeds::range(start, count)?;
        if of == 0 || index == 0 || index > of {
            return Err(format!(
                "shard {index}/{of} does not exist: expected K/N with 1 <= K <= N"
            ));
        }
        if count < of {
            return Err(format!(
                "{count} seeds cannot be cut into {of} shards: every shard needs at least one seed"
            ));
        }
        Ok(Seeds::Shard {
            start,
            count,
            index,
            of,
        })
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
    /// Known deviations of the implementation, if any.
    pub expectations: Option<Expectations>,
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
    /// Broken, as the expectations file says it is.
    ExpectedFailure {
        /// The file's reason.
        reason: String,
    },
    /// The expectations file says it is broken, but it passed: the file is
    /// out of date (or the implementation was fixed).
    UnexpectedPass {
        /// The file's reason.
        reason: String,
    },
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
            Verdict::ExpectedFailure { .. } => "expected_failure",
            Verdict::UnexpectedPass { .. } => "unexpected_pass",
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
    /// For an adapter, every request and reply of the shrunk repro.
    pub transcript: Option<PathBuf>,
    /// Why the traces could not be saved, if they could not.
    pub save_error: Option<String>,
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
    /// Whether shrinking stopped at its time budget (the shrunk trace then
    /// depends on the machine's speed).
    pub shrink_timed_out: bool,
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

/// A run that could not be judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unjudged {
    /// The lowest such seed.
    pub seed: u64,
    /// What the adapter did wrong.
    pub message: String,
    /// The entry during which it happened.
    pub entry: String,
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
    /// Set when some run could not be judged: the implementation's adapter
    /// broke the protocol. Then there is no verdict at all.
    pub unjudgeable: Option<Unjudged>,
    /// The expectations file used, if any.
    pub expectations: Option<PathBuf>,
    /// Deviations whose recorded trace no longer fails their rule: the
    /// expectations file is out of date. (rule, what happened)
    pub stale: Vec<(Rule, String)>,
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
            && self.unjudgeable.is_none()
            && self.idle_capabilities().is_empty()
            && self.determinism.mismatches.is_empty()
            && self.stale.is_empty()
            && !self
                .rules
                .iter()
                .any(|r| matches!(r.verdict, Verdict::UnexpectedPass { .. }))
            && self
                .rules
                .iter()
                .filter(|r| r.rule.level() == Level::Must)
                .all(|r| matches!(r.verdict, Verdict::Passed | Verdict::ExpectedFailure { .. }))
    }

    /// Whether this was a rerun of one seed (`--seed`), which reproduces or
    /// clears a failure but exercises too little to judge conformance.
    pub fn is_rerun(&self) -> bool {
        matches!(self.seeds, Seeds::One(_))
    }

    /// Whether the run was too small to judge: nothing required failed, but
    /// some `must` rule was never exercised (more seeds or ops would).
    pub fn under_exercised(&self) -> bool {
        let must = || self.rules.iter().filter(|r| r.rule.level() == Level::Must);
        !self.is_rerun()
            && self.unjudgeable.is_none()
            && must().any(|r| r.verdict == Verdict::NotExercised)
            && !must().any(|r| {
                matches!(
                    r.verdict,
                    Verdict::Failed | Verdict::UnexpectedPass { .. } | Verdict::NotTested { .. }
                )
            })
            && self.stale.is_empty()
    }

    /// Declared capabilities that never took effect in the whole run, where
    /// that means the implementation does not do what it declares: `schedule`
    /// with no task ever listed as runnable and polled. (Empty for a
    /// single-seed rerun.)
    pub fn idle_capabilities(&self) -> Vec<Capability> {
        let mut idle = Vec::new();
        if !self.is_rerun()
            && self.implementation.capabilities.has(Capability::Schedule)
            && self.counts.polls == 0
        {
            idle.push(Capability::Schedule);
        }
        idle
    }

    /// Whether a verdict was reached: the implementation could be driven,
    /// deterministically, doing what it declares, and the workloads
    /// exercised every `must` rule. `cargo xtask conformance` exits 2 if not.
    pub fn judged(&self) -> bool {
        self.unjudgeable.is_none()
            && self.determinism.mismatches.is_empty()
            && self.idle_capabilities().is_empty()
            && !self.under_exercised()
    }

    /// Whether the run should count as a success: conforming for a range of
    /// seeds; for a single-seed rerun, no `must` rule failed and the run was
    /// deterministic.
    pub fn success(&self) -> bool {
        if self.is_rerun() {
            self.unjudgeable.is_none()
                && self.determinism.mismatches.is_empty()
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
        self.seeds.bounds().1
    }
}

/// What one seed left behind.
struct SeedResult {
    seed: u64,
    failure: Option<(Failure, Vec<Entry>)>,
    coverage: Coverage,
    counts: Counts,
    fingerprint: u64,
    unsupported: Capabilities,
}

/// The lowest failing seed of a rule, with its trace, and how many seeds
/// broke the rule.
struct FirstFailure {
    seed: u64,
    failure: Failure,
    trace: Vec<Entry>,
    failing_seeds: u64,
}

/// Results folded together as seeds finish: memory does not grow with the
/// number of seeds, and merging is order-independent (sums, and the lowest
/// seed per rule), so the outcome does not depend on the thread count.
#[derive(Default)]
struct Tally {
    counts: Counts,
    coverage: Coverage,
    failing: BTreeMap<Rule, FirstFailure>,
    /// (seed, fingerprint) of the seeds to rerun for the determinism check,
    /// sorted by seed.
    sample: Vec<(u64, u64)>,
    /// Capabilities the implementation answered `not_supported` for.
    unsupported: Capabilities,
    /// The lowest seed whose run could not be judged, and why.
    unjudgeable: Option<(u64, Failure)>,
}

impl Tally {
    fn add(mut self, result: SeedResult, sampled: bool) -> Tally {
        self.counts.add(&result.counts);
        self.coverage.merge(&result.coverage);
        self.unsupported = self.unsupported.union(result.unsupported);
        if sampled {
            self.sample.push((result.seed, result.fingerprint));
        }
        if let Some((failure, _)) = &result.failure
            && failure.unjudgeable
        {
            self.merge_unjudgeable(result.seed, failure.clone());
            return self;
        }
        if let Some((failure, trace)) = result.failure {
            let entry = FirstFailure {
                seed: result.seed,
                failure,
                trace,
                failing_seeds: 1,
            };
            self.merge_failure(entry);
        }
        self
    }

    fn merge_failure(&mut self, new: FirstFailure) {
        match self.failing.get_mut(&new.failure.rule) {
            None => {
                self.failing.insert(new.failure.rule, new);
            }
            Some(old) => {
                let failing_seeds = old.failing_seeds + new.failing_seeds;
                if new.seed < old.seed {
                    *old = new;
                }
                old.failing_seeds = failing_seeds;
            }
        }
    }

    fn merge_unjudgeable(&mut self, seed: u64, failure: Failure) {
        if self.unjudgeable.as_ref().is_none_or(|(s, _)| seed < *s) {
            self.unjudgeable = Some((seed, failure));
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        self.counts.add(&other.counts);
        self.coverage.merge(&other.coverage);
        self.sample.extend(other.sample);
        self.sample.sort_unstable();
        self.unsupported = self.unsupported.union(other.unsupported);
        if let Some((seed, failure)) = other.unjudgeable {
            self.merge_unjudgeable(seed, failure);
        }
        for (_, failure) in other.failing {
            self.merge_failure(failure);
        }
        self
    }
}

fn run_seed(target: &Target, seed: u64, config: GenConfig) -> SeedResult {
    let mut imp = target.instantiate();
    let run = generate(seed, config, &mut *imp);
    // An attribution that rests on a circumstance is checked here, for every
    // seed, so that the rule a seed counts against is the confirmed one.
    let failure = run.failure.map(|f| {
        confirm(&run.trace, &f, |entries| {
            let mut imp = target.instantiate();
            replay(&mut *imp, entries)
        })
    });
    SeedResult {
        seed,
        unsupported: run.unsupported,
        failure: failure.map(|(trace, f)| (f, trace)),
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
    if let Some(e) = &campaign.expectations
        && e.implementation != campaign.target.to_string()
    {
        return Err(format!(
            "{} lists the deviations of `{}`, but this run is about `{}`",
            e.path.display(),
            e.implementation,
            campaign.target
        ));
    }
    let info = campaign.target.check()?;
    let (start, count) = campaign.seeds.bounds();
    let pool = pool(campaign.jobs)?;
    let bar = progress_bar(campaign.progress, count, "conformance");
    // The determinism self-check reruns a sample: the first seed and then
    // every `stride`-th, at most about a thousand of them. Counted over the
    // whole range, so that shards sample exactly what one run would.
    let (origin, whole) = campaign.seeds.whole();
    let stride = (whole / 1000).max(100);

    let started = Instant::now();
    let tally: Tally = pool.install(|| {
        (0..count)
            .into_par_iter()
            .fold(Tally::default, |tally, i| {
                let seed = start.wrapping_add(i);
                let result = run_seed(&campaign.target, seed, config);
                bar.inc(1);
                tally.add(result, seed.wrapping_sub(origin) % stride == 0)
            })
            .reduce(Tally::default, Tally::merge)
    });
    let sample = tally.sample.clone();
    let mut mismatches: Vec<u64> = pool.install(|| {
        sample
            .par_iter()
            .filter(|(seed, fingerprint)| {
                run_seed(&campaign.target, *seed, config).fingerprint != *fingerprint
            })
            .map(|(seed, _)| *seed)
            .collect()
    });
    mismatches.sort_unstable();
    let run_time = started.elapsed();
    bar.finish_and_clear();
    let Tally {
        counts,
        coverage,
        failing,
        unsupported,
        unjudgeable,
        ..
    } = tally;

    let shrink_started = Instant::now();
    let shrunk: Vec<(Rule, RuleFailure)> = pool.install(|| {
        failing
            .par_iter()
            .map(|(rule, first)| {
                let failure = explain(campaign, first)?;
                Ok((*rule, failure))
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    let shrink_time = shrink_started.elapsed();
    let mut shrunk: BTreeMap<Rule, RuleFailure> = shrunk.into_iter().collect();
    let expectations = campaign.expectations.as_ref();
    let stale = match expectations {
        Some(e) => check_deviations(campaign, e),
        None => Vec::new(),
    };

    let rules = Rule::ALL
        .iter()
        .map(|&rule| {
            let missing: Vec<Capability> = rule
                .needs()
                .iter()
                .filter(|c| !info.capabilities.has(*c) || unsupported.has(*c))
                .collect();
            let failure = shrunk.remove(&rule);
            let checks = coverage.get(rule);
            let deviation = expectations.and_then(|e| e.get(rule));
            let verdict = if let Some(d) = deviation.filter(|_| failure.is_some()) {
                Verdict::ExpectedFailure {
                    reason: d.reason.clone(),
                }
            } else if failure.is_some() {
                Verdict::Failed
            } else if let Some(d) = deviation.filter(|_| missing.is_empty() && checks > 0) {
                // Not seen in these seeds. If its recorded trace still fails,
                // the deviation is still there (a short run may just not
                // reach it); only if that trace passes too is the file out of
                // date.
                if stale.iter().any(|(r, _)| *r == rule) {
                    Verdict::UnexpectedPass {
                        reason: d.reason.clone(),
                    }
                } else {
                    Verdict::ExpectedFailure {
                        reason: format!(
                            "{} (not reached by these seeds; its recorded trace still fails)",
                            d.reason
                        ),
                    }
                }
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
        expectations: expectations.map(|e| e.path.clone()),
        stale,
        unjudgeable: unjudgeable.map(|(seed, failure)| Unjudged {
            seed,
            message: failure.message,
            entry: failure.entry_text,
        }),
        run_time,
        shrink_time,
    })
}

/// Replays the recorded trace of every deviation: each must still fail its
/// rule, or the expectations file is out of date.
fn check_deviations(campaign: &Campaign, expectations: &Expectations) -> Vec<(Rule, String)> {
    let mut stale = Vec::new();
    for d in &expectations.deviations {
        let path = expectations.trace_path(d);
        let file = match TraceFile::read(&path) {
            Ok(file) => file,
            Err(e) => {
                stale.push((d.rule, format!("its trace cannot be used: {e}")));
                continue;
            }
        };
        let mut imp = campaign.target.instantiate();
        let run = replay(&mut *imp, &file.entries);
        match run.failure {
            Some(f) if f.rule == d.rule => {}
            Some(f) => stale.push((
                d.rule,
                format!(
                    "its trace {} now fails {} instead: {}",
                    display_path(&path),
                    f.rule,
                    f.message
                ),
            )),
            None => stale.push((
                d.rule,
                format!("its trace {} no longer fails", display_path(&path)),
            )),
        }
    }
    stale
}

/// Shrinks one seed's failure, writes its traces, and builds the commands
/// that reproduce it.
fn explain(campaign: &Campaign, first: &FirstFailure) -> Result<RuleFailure, String> {
    let (failure, trace, failing_seeds) = (&first.failure, &first.trace, first.failing_seeds);
    let target = &campaign.target;
    let shrunk = shrink(trace, failure, campaign.shrink, |entries| {
        let mut imp = target.instantiate();
        replay(&mut *imp, entries)
    });
    let dir = campaign.out_dir.join("failures").join(target.slug());
    let stem = format!("{}-seed-{}", failure.rule.id(), first.seed);
    let save = |entries: &[Entry], failure: &Failure, path: &Path| -> Result<(), String> {
        let mut file = TraceFile::new(target.to_string(), entries.to_vec());
        file.seed = Some(first.seed);
        file.ops = Some(campaign.ops);
        file.failure = Some(FailureRecord::from(failure));
        file.write(path).map_err(|e: TraceError| e.to_string())
    };
    let trace_path = dir.join(format!("{stem}.json"));
    let full_path = dir.join(format!("{stem}-full.json"));
    // A trace that cannot be saved is reported, but costs no verdict.
    let mut save_errors = Vec::new();
    save_errors.extend(save(&shrunk.entries, &shrunk.failure, &trace_path).err());
    save_errors.extend(save(trace, failure, &full_path).err());
    // For an adapter, the whole conversation of the shrunk repro.
    let transcript = {
        let mut imp = target.instantiate();
        replay(&mut *imp, &shrunk.entries).transcript
    };
    let transcript_path = match transcript {
        Some(lines) => {
            let path = dir.join(format!("{stem}.transcript.jsonl"));
            let mut text = lines.join("\n");
            text.push('\n');
            match std::fs::write(&path, text) {
                Ok(()) => Some(path),
                Err(e) => {
                    save_errors.push(format!("cannot write {}: {e}", path.display()));
                    None
                }
            }
        }
        None => None,
    };
    let shown = display_path(&trace_path);
    Ok(RuleFailure {
        seed: first.seed,
        failing_seeds,
        message: shrunk.failure.message.clone(),
        trace_ops: count_ops(&shrunk.entries),
        trace_entries: shrunk.entries.len(),
        original_entries: failure.entry + 1,
        entries: shrunk.entries,
        fault: shrunk.failure.fault,
        repro: format!(
            "cargo xtask conformance --impl {} --seed {} --ops {}{}",
            target.quoted(),
            first.seed,
            campaign.ops,
            target.timeout_flag()
        ),
        replay: format!("cargo xtask replay {shown}{}", target.replay_flags()),
        shrink_timed_out: shrunk.timed_out,
        trace: trace_path,
        full_trace: full_path,
        transcript: transcript_path,
        save_error: (!save_errors.is_empty()).then(|| save_errors.join("; ")),
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
