//! Seed results folded together as seeds finish: memory does not grow with
//! the number of seeds, and folding is order-independent (sums, and the
//! lowest seed per rule and failure mode), so the outcome does not depend
//! on the thread count.

use scopebus_sim::harness::{Counts, Failure};
use scopebus_sim::model::Mode;
use scopebus_sim::op::Entry;
use scopebus_sim::rules::{Capabilities, Coverage, Rule};
use std::collections::BTreeMap;

/// What one seed left behind.
pub struct SeedResult {
    pub seed: u64,
    /// Its attributed failure, with the trace that shows it.
    pub failure: Option<(Failure, Vec<Entry>)>,
    pub coverage: Coverage,
    pub counts: Counts,
    pub fingerprint: u64,
    pub unsupported: Capabilities,
    /// Whether the run was cut short by the runner's deadline (or never
    /// started): it is not counted at all.
    pub cut: bool,
}

/// The lowest failing seed of one rule and mode, with its trace, and how
/// many seeds failed so.
pub struct FirstFailure {
    pub seed: u64,
    pub failure: Failure,
    pub trace: Vec<Entry>,
    pub failing_seeds: u64,
}

/// See the module documentation.
#[derive(Default)]
pub struct Tally {
    pub counts: Counts,
    pub coverage: Coverage,
    /// Per rule and failure mode, the lowest failing seed.
    pub failing: BTreeMap<(Rule, Mode), FirstFailure>,
    /// (seed, fingerprint) of the seeds to rerun for the determinism check,
    /// sorted by seed.
    pub sample: Vec<(u64, u64)>,
    /// Capabilities the implementation answered `not_supported` for.
    pub unsupported: Capabilities,
    /// The lowest seed whose run could not be judged, and why.
    pub unjudgeable: Option<(u64, Failure)>,
    /// Seeds that ran to their end (not cut short, not skipped).
    pub run: u64,
}

impl Tally {
    /// Folds in one seed's result (`sampled`: for the determinism check).
    pub fn add(mut self, result: SeedResult, sampled: bool) -> Tally {
        if result.cut {
            return self;
        }
        self.run += 1;
        self.counts.add(&result.counts);
        self.coverage.merge(&result.coverage);
        self.unsupported = self.unsupported.union(result.unsupported);
        if sampled {
            self.sample.push((result.seed, result.fingerprint));
        }
        match result.failure {
            Some((failure, _)) if failure.unjudgeable => {
                self.merge_unjudgeable(result.seed, failure);
            }
            Some((failure, trace)) => self.merge_failure(FirstFailure {
                seed: result.seed,
                failure,
                trace,
                failing_seeds: 1,
            }),
            None => {}
        }
        self
    }

    fn merge_failure(&mut self, new: FirstFailure) {
        let key = (new.failure.rule, new.failure.mode);
        match self.failing.get_mut(&key) {
            None => {
                self.failing.insert(key, new);
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

    /// Folds two tallies into one.
    pub fn merge(mut self, other: Tally) -> Tally {
        self.run += other.run;
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
