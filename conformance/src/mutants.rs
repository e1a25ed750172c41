//! Mutation testing of the suite itself: each mutant (a reference bus with
//! one planted bug) must be caught, by some rule, within a seed budget. A
//! surviving mutant means some rule is not really checked.

use crate::runner::{display_path, pool};
use crate::target::Target;
use rayon::prelude::*;
use scopebus::mutants::Mutant;
use scopebus_sim::harness::{GenConfig, generate};
use scopebus_sim::rules::Rule;
use scopebus_sim::shrink::{Budget, count_ops, shrink};
use scopebus_sim::trace::{FailureRecord, TraceFile};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to hunt the mutants.
#[derive(Clone, Debug)]
pub struct Hunt {
    /// Which mutants.
    pub mutants: Vec<Mutant>,
    /// Seeds tried per mutant, from 0, before it is declared a survivor.
    pub max_seeds: u64,
    /// Workload ops per seed.
    pub ops: usize,
    /// Worker threads (0: one per core).
    pub jobs: usize,
    /// Where the shrunk traces go (`failures/` under it).
    pub out_dir: PathBuf,
    /// How hard to shrink.
    pub shrink: Budget,
}

/// What happened to one mutant.
#[derive(Clone, Debug)]
pub struct MutantResult {
    /// The mutant.
    pub mutant: Mutant,
    /// The rule it was designed to break.
    pub target_rule: &'static str,
    /// Whether the suite caught it.
    pub killed: bool,
    /// The rule that caught it.
    pub rule: Option<Rule>,
    /// The first seed that caught it.
    pub seed: Option<u64>,
    /// Seeds tried.
    pub seeds_tried: u64,
    /// Time to catch it (or to give up).
    pub time: Duration,
    /// Time spent shrinking.
    pub shrink_time: Duration,
    /// Ops in the shrunk trace.
    pub trace_ops: Option<usize>,
    /// Entries in the shrunk trace.
    pub trace_entries: Option<usize>,
    /// The shrunk trace file.
    pub trace: Option<PathBuf>,
    /// The failure, as seen in the shrunk trace.
    pub message: Option<String>,
    /// A command that replays the shrunk trace (none if it was not saved).
    pub repro: Option<String>,
    /// Why the shrunk trace could not be written, if it could not: as in
    /// `conformance`, the result stands (the mutant was caught) and the
    /// report says the trace is missing.
    pub save_error: Option<String>,
}

/// Hunts every mutant.
///
/// # Errors
/// If the thread pool cannot start. (A trace that cannot be written is
/// reported in its mutant's result.)
pub fn hunt(hunt: &Hunt) -> Result<Vec<MutantResult>, String> {
    let pool = pool(hunt.jobs)?;
    pool.install(|| {
        hunt.mutants
            .par_iter()
            .map(|m| hunt_one(hunt, *m))
            .collect()
    })
}

fn hunt_one(hunt: &Hunt, mutant: Mutant) -> Result<MutantResult, String> {
    let config = GenConfig { ops: hunt.ops };
    let target = Target::Mutant(mutant);
    let started = Instant::now();
    let mut result = MutantResult {
        mutant,
        target_rule: mutant.target_rule(),
        killed: false,
        rule: None,
        seed: None,
        seeds_tried: 0,
        time: Duration::ZERO,
        shrink_time: Duration::ZERO,
        trace_ops: None,
        trace_entries: None,
        trace: None,
        message: None,
        repro: None,
        save_error: None,
    };
    let mut diagnosis = target.diagnosis_probed();
    for seed in 0..hunt.max_seeds {
        result.seeds_tried += 1;
        let mut imp = target.instantiate();
        let run = diagnosis.attribute(generate(seed, config, &mut *imp));
        let Some(failure) = run.failure else {
            continue;
        };
        result.time = started.elapsed();
        let shrink_started = Instant::now();
        let shrunk = shrink(&run.trace, &failure, hunt.shrink, |entries| {
            diagnosis.judge(entries)
        });
        result.shrink_time = shrink_started.elapsed();
        let path = hunt
            .out_dir
            .join("failures")
            .join(target.slug())
            .join(format!("{}-seed-{seed}.json", shrunk.failure.rule.id()));
        let mut file = TraceFile::new(target.to_string(), shrunk.entries.clone());
        file.seed = Some(seed);
        file.ops = Some(hunt.ops);
        file.failure = Some(FailureRecord::from(&shrunk.failure));
        match file.write(&path) {
            Ok(()) => {
                result.repro = Some(format!("cargo xtask replay {}", display_path(&path)));
                result.trace = Some(path);
            }
            Err(e) => result.save_error = Some(format!("cannot write {}: {e}", path.display())),
        }
        result.killed = true;
        result.rule = Some(shrunk.failure.rule);
        result.seed = Some(seed);
        result.trace_ops = Some(count_ops(&shrunk.entries));
        result.trace_entries = Some(shrunk.entries.len());
        result.message = Some(shrunk.failure.message);
        return Ok(result);
    }
    result.time = started.elapsed();
    Ok(result)
}
