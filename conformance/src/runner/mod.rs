//! The conformance run: many seeds against one implementation, a verdict per
//! rule, and for every way a rule failed a shrunk trace and the commands
//! that reproduce it.
//!
//! Data flow: the implementation's bus layout is probed once; seeds run in
//! parallel (one fresh implementation per seed), each failure attributed by
//! the one verdict path ([`scopebus_sim::diagnosis::Diagnosis`]); results fold into a [`Tally`] in
//! seed order, so the report does not depend on the number of threads; a
//! sample of seeds is run twice and must give the same fingerprint (the
//! suite checks its own determinism); per rule, up to [`MODES_SHOWN`]
//! failure modes are explained (shrunk, rerun for reproducibility, saved).
//!
//! # Invariants
//!
//! - Memory does not grow with the number of seeds: the tally keeps sums
//!   and the lowest seed per rule and failure mode.
//! - Every failure reported was attributed by the same code `replay` uses.
//! - A failure that did not reproduce every time is reported as flaky,
//!   never with a command presented as reproducing it.

mod deviations;
mod difference;
mod explain;
mod progress;
mod reproduce;
mod seeds;
mod stop;
mod tally;
mod verdict;

pub use seeds::Seeds;
pub use stop::{BREAKER, StopKind, Stopped};
pub use verdict::{
    Determinism, MODES_SHOWN, ModeSeen, Report, Reproduction, RuleFailure, RuleResult, Unjudged,
    Verdict,
};

use crate::deadline;
use crate::expectations::Expectations;
use crate::target::Target;
use progress::Progress;
use rayon::prelude::*;
use scopebus_sim::harness::{GenConfig, generate};
use scopebus_sim::iut::ImplInfo;
use scopebus_sim::model::{Layout, Mode};
use scopebus_sim::rules::{Capability, Profile, Rule};
use scopebus_sim::shrink::Budget;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use stop::Stop;
use tally::{FirstFailure, SeedResult, Tally};

/// Seeds in the default run (`cargo xtask conformance` without `--seeds`):
/// seeds `0..DEFAULT_SEEDS`.
pub const DEFAULT_SEEDS: u64 = 1000;

/// Workload ops per seed in the default run (`--ops`).
pub const DEFAULT_OPS: u64 = 200;

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
    /// Whether stderr is a terminal: then a progress bar is drawn on it;
    /// otherwise a line every 30 s says how many seeds ran and about how
    /// long the rest will take.
    pub progress: bool,
    /// Known deviations of the implementation, if any.
    pub expectations: Option<Expectations>,
    /// Which promises the verdict holds it to: each rule's level.
    pub profile: Profile,
    /// How long the whole run may take (`--deadline`): then no new seed
    /// starts, waits for replies are cut at it, and the report says the run
    /// stopped. `None`: no limit (the breaker still stops a run against an
    /// adapter that keeps breaking).
    pub deadline: Option<std::time::Duration>,
}

impl Campaign {
    fn config(&self) -> GenConfig {
        GenConfig { ops: self.ops }
    }
}

/// Runs the campaign.
///
/// # Errors
/// Only for what prevents a verdict: an adapter that does not start, the
/// thread pool. (An expectations file is applied to whatever the campaign
/// names: its `implementation` field says whom it was recorded for, and
/// the caller decides whether that matters; `cargo xtask conformance`
/// refuses a default file about another name, never an explicit one.)
pub fn run(campaign: &Campaign) -> Result<Report, String> {
    let info = campaign.target.check()?;
    let stop = Stop::new(campaign.deadline);
    let (layout, probe_broke) = deadline::within(stop.deadline(), || {
        let probed = campaign.target.diagnosis_probed();
        (probed.layout(), probed.probe_broke())
    });
    if probe_broke {
        // The probe is a run like any seed's: a hang there is one strike.
        stop.broke_once();
    }
    let pool = pool(campaign.jobs)?;
    let started = Instant::now();
    let tally = pool.install(|| run_seeds(campaign, layout, &stop));
    // An adapter the breaker gave up on would only hang again.
    let sample: &[(u64, u64)] = if stop.broke() { &[] } else { &tally.sample };
    let mismatches = pool.install(|| check_determinism(campaign, layout, sample, &stop));
    let differences = mismatches
        .iter()
        .take(difference::DESCRIBED)
        .map(|seed| {
            (
                *seed,
                difference::first_difference(campaign, *seed, stop.deadline()),
            )
        })
        .collect();
    let run_time = started.elapsed();
    let shrink_started = Instant::now();
    let explained = pool.install(|| explain_failures(campaign, layout, &tally.failing, &stop));
    let shrink_time = shrink_started.elapsed();
    let stale = match &campaign.expectations {
        Some(e) => deviations::stale(campaign, layout, e),
        None => Vec::new(),
    };
    let rules = rule_results(campaign, &info, &tally, explained, &stale);
    Ok(Report {
        implementation: info,
        target: campaign.target.to_string(),
        seeds: campaign.seeds,
        ops_per_seed: campaign.ops,
        counts: tally.counts,
        layout,
        profile: campaign.profile,
        rules,
        determinism: Determinism {
            checked: sample.len() as u64,
            mismatches,
            differences,
        },
        expectations: campaign.expectations.as_ref().map(|e| e.path.clone()),
        stale,
        unjudgeable: tally.unjudgeable.map(|(seed, failure)| Unjudged {
            seed,
            message: failure.message,
            entry: failure.entry_text,
        }),
        stopped: stop.stopped(tally.run, campaign.seeds.bounds().1),
        run_time,
        shrink_time,
    })
}

/// Runs every seed of the campaign, folding results as they finish, until
/// the last or until `stop` says to stop (see [`stop`]).
fn run_seeds(campaign: &Campaign, layout: Layout, stop: &Stop) -> Tally {
    let (start, count) = campaign.seeds.bounds();
    let bar = Progress::new(campaign.progress, count, "conformance");
    // The determinism self-check reruns a sample: the first seed and then
    // every `stride`-th, at most about a thousand of them. Counted over the
    // whole range, so that shards sample exactly what one run would.
    let (origin, whole) = campaign.seeds.whole();
    let stride = (whole / 1000).max(100);
    let tally = (0..count)
        .into_par_iter()
        // Once the run stops, every worker stops taking seeds (without
        // walking what is left of a range that may be 2^64 long).
        .take_any_while(|_| stop.may_start())
        .fold(Tally::default, |tally, i| {
            let seed = start.wrapping_add(i);
            let result = deadline::within_stoppable(stop.deadline(), stop.flag(), || {
                run_seed(&campaign.target, layout, seed, campaign.config())
            });
            stop.finished(&result);
            bar.inc();
            tally.add(result, seed.wrapping_sub(origin) % stride == 0)
        })
        .reduce(Tally::default, Tally::merge);
    bar.finish();
    tally
}

/// Runs one seed on a fresh instance and attributes its failure. A run the
/// deadline in force cut short (a wait for a reply, or anything after it)
/// is marked `cut`.
fn run_seed(target: &Target, layout: Layout, seed: u64, config: GenConfig) -> SeedResult {
    let mut imp = target.instantiate();
    let run = generate(seed, config, &mut *imp);
    // Every seed's failure is attributed by the one verdict path (probes
    // and counterfactuals included), so the rule a seed counts against is
    // the one `replay` would name.
    let run = target.diagnosis(layout).attribute(run);
    let cut = deadline::cut_short(&run);
    SeedResult {
        seed,
        unsupported: run.unsupported,
        failure: run.failure.map(|f| (f, run.trace)),
        coverage: run.coverage,
        counts: run.counts,
        fingerprint: run.fingerprint,
        cut,
    }
}

/// The sampled seeds whose second run differed from their first (a rerun
/// the deadline cut short proves nothing, and is left out).
fn check_determinism(
    campaign: &Campaign,
    layout: Layout,
    sample: &[(u64, u64)],
    stop: &Stop,
) -> Vec<u64> {
    let mut mismatches: Vec<u64> = sample
        .par_iter()
        .filter(|(seed, fingerprint)| {
            let rerun = deadline::within(stop.deadline(), || {
                run_seed(&campaign.target, layout, *seed, campaign.config())
            });
            !rerun.cut && rerun.fingerprint != *fingerprint
        })
        .map(|(seed, _)| *seed)
        .collect();
    mismatches.sort_unstable();
    mismatches
}

/// A failure mode explained: the rule and mode its seeds were counted
/// under, the rule it is reported under, and the explanation.
struct Explained {
    counted: (Rule, Mode),
    rule: Rule,
    failure: RuleFailure,
}

/// Explains, per rule, the [`MODES_SHOWN`] failure modes with the lowest
/// seeds.
fn explain_failures(
    campaign: &Campaign,
    layout: Layout,
    failing: &BTreeMap<(Rule, Mode), FirstFailure>,
    stop: &Stop,
) -> Vec<Explained> {
    let mut chosen: Vec<(&(Rule, Mode), &FirstFailure)> = Vec::new();
    for rule in Rule::ALL {
        let mut modes: Vec<_> = failing.iter().filter(|((r, _), _)| *r == rule).collect();
        modes.sort_by_key(|(_, f)| f.seed);
        chosen.extend(modes.into_iter().take(MODES_SHOWN));
    }
    chosen
        .par_iter()
        .map(|(key, first)| {
            let mut diagnosis = campaign.target.diagnosis(layout);
            let (rule, failure) = deadline::within(stop.deadline(), || {
                explain::explain(campaign, &mut diagnosis, first)
            });
            Explained {
                counted: **key,
                rule,
                failure,
            }
        })
        .collect()
}

/// Each rule's result, in SPEC.md order: its failure modes (moved to the
/// `must` rule where shrinking found one under a `should`), checks and
/// verdict.
fn rule_results(
    campaign: &Campaign,
    info: &ImplInfo,
    tally: &Tally,
    explained: Vec<Explained>,
    stale: &[(Rule, String)],
) -> Vec<RuleResult> {
    let mut modes: BTreeMap<Rule, Vec<ModeSeen>> = BTreeMap::new();
    for ((rule, mode), first) in &tally.failing {
        modes.entry(*rule).or_default().push(ModeSeen {
            mode: *mode,
            seed: first.seed,
            seeds: first.failing_seeds,
        });
    }
    let mut failures: BTreeMap<Rule, Vec<RuleFailure>> = BTreeMap::new();
    for e in explained {
        if e.rule != e.counted.0 {
            move_mode(&mut modes, e.counted, e.rule, e.failure.mode);
        }
        failures.entry(e.rule).or_default().push(e.failure);
    }
    Rule::ALL
        .iter()
        .map(|&rule| {
            let mut modes = modes.remove(&rule).unwrap_or_default();
            modes.sort_by_key(|m| m.seed);
            let mut failures = failures.remove(&rule).unwrap_or_default();
            failures.sort_by_key(|f| f.seed);
            // A mode moved here from a `should` rule may already be here.
            let mut shown = std::collections::BTreeSet::new();
            failures.retain(|f| shown.insert(f.mode));
            failures.truncate(MODES_SHOWN);
            let missing: Vec<Capability> = rule
                .needs()
                .iter()
                .filter(|c| !info.capabilities.has(*c) || tally.unsupported.has(*c))
                .collect();
            let deviation = campaign
                .expectations
                .as_ref()
                .and_then(|e| e.get(rule))
                .map(|d| d.reason.clone());
            let checks = tally.coverage.get(rule);
            let is_stale = stale.iter().any(|(r, _)| *r == rule);
            let verdict = Verdict::decide(
                !modes.is_empty(),
                checks,
                &missing,
                deviation.as_deref(),
                is_stale,
            );
            RuleResult {
                rule,
                level: rule.level_in(campaign.profile),
                verdict,
                checks,
                partial: tally.coverage.partial(rule),
                modes,
                failures,
                missing,
                deviation,
            }
        })
        .collect()
}

/// The seeds counted under `from` (a rule and a mode) move to the `must`
/// rule shrinking found their failure breaks (under a `should` rule, or
/// where diagnosis could name the cause only on the shrunk trace), with its
/// mode.
fn move_mode(modes: &mut BTreeMap<Rule, Vec<ModeSeen>>, from: (Rule, Mode), to: Rule, mode: Mode) {
    let Some(list) = modes.get_mut(&from.0) else {
        return;
    };
    let Some(at) = list.iter().position(|m| m.mode == from.1) else {
        return;
    };
    let moved = list.remove(at);
    if list.is_empty() {
        modes.remove(&from.0);
    }
    let list = modes.entry(to).or_default();
    match list.iter_mut().find(|m| m.mode == mode) {
        Some(m) => {
            m.seed = m.seed.min(moved.seed);
            m.seeds += moved.seeds;
        }
        None => list.push(ModeSeen { mode, ..moved }),
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

/// `path` relative to the current directory when it is under it.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
