//! What a conformance run concludes: a verdict per rule, every way each
//! rule failed, and the run's outcome (conforming, judged, success). The
//! runner and `merge` build a [`Report`] and ask it the same questions, so
//! a merged report is judged by the same code as one run.

use super::Seeds;
use scopebus_sim::harness::Counts;
use scopebus_sim::iut::ImplInfo;
use scopebus_sim::model::{Layout, Mode};
use scopebus_sim::op::Entry;
use scopebus_sim::rules::{Capability, Level, Profile, Rule};
use std::path::PathBuf;
use std::time::Duration;

/// How many failure modes of one rule are explained (shrunk, saved, given
/// commands); the others are counted.
pub const MODES_SHOWN: usize = 5;

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
    /// The rule needs a feature of the language or runtime the
    /// implementation does not have ([`Capability::language_feature`]):
    /// it cannot apply, so it neither passes nor counts against
    /// conformance.
    NotApplicable {
        /// The features it lacks.
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
    /// `not_applicable`, `not_exercised`, `expected_failure`,
    /// `unexpected_pass`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotTested { .. } => "not_tested",
            Verdict::NotApplicable { .. } => "not_applicable",
            Verdict::NotExercised => "not_exercised",
            Verdict::ExpectedFailure { .. } => "expected_failure",
            Verdict::UnexpectedPass { .. } => "unexpected_pass",
        }
    }

    /// Decides a rule's verdict, in this order: a failure (expected, if the
    /// deviations file lists the rule); a listed deviation not seen in these
    /// seeds (still expected if its recorded trace fails, even if no seed
    /// reached the rule at all: the trace does; an unexpected pass if it is
    /// `stale` and seeds checked the rule); a missing capability (the rule is not applicable
    /// if every one missing is a language feature, else not tested); no
    /// checks; else passed.
    /// The runner and `merge` both decide through here.
    pub fn decide(
        failed: bool,
        checks: u64,
        missing: &[Capability],
        deviation: Option<&str>,
        stale: bool,
    ) -> Verdict {
        let reason = || deviation.unwrap_or_default().to_owned();
        match deviation {
            Some(_) if failed => Verdict::ExpectedFailure { reason: reason() },
            _ if failed => Verdict::Failed,
            Some(_) if missing.is_empty() && checks > 0 && stale => {
                Verdict::UnexpectedPass { reason: reason() }
            }
            // Its recorded trace checks it, reached by these seeds or not.
            Some(d) if missing.is_empty() && !stale => Verdict::ExpectedFailure {
                reason: format!("{d} (not reached by these seeds; its recorded trace still fails)"),
            },
            _ if !missing.is_empty() && missing.iter().all(|c| c.language_feature()) => {
                Verdict::NotApplicable {
                    missing: missing.to_vec(),
                }
            }
            _ if !missing.is_empty() => Verdict::NotTested {
                missing: missing.to_vec(),
            },
            _ if checks == 0 => Verdict::NotExercised,
            _ => Verdict::Passed,
        }
    }
}

/// How often a failure showed again when its seed and its shrunk trace
/// were rerun on fresh instances.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reproduction {
    /// Runs of the seed (the first one included).
    pub seed_runs: u32,
    /// Of those, runs that failed the rule again.
    pub seed_failures: u32,
    /// Replays of the shrunk trace.
    pub trace_runs: u32,
    /// Of those, replays that failed the rule.
    pub trace_failures: u32,
    /// For an adapter whose failure is flaky: the transcript of a rerun of
    /// the shrunk trace that passed.
    pub passing_transcript: Option<PathBuf>,
}

impl Reproduction {
    /// Whether the failure did not show every time: the implementation is
    /// not deterministic, and the commands reproduce it only sometimes.
    pub fn flaky(&self) -> bool {
        self.seed_failures < self.seed_runs || self.trace_flaky()
    }

    /// Whether the shrunk trace itself did not fail every time it was
    /// replayed. When only the seed is flaky (its workload runs into the
    /// implementation's nondeterminism), the shrunk trace still shows the
    /// failure every time, and what diagnosis's replays of it name stands.
    pub fn trace_flaky(&self) -> bool {
        self.trace_failures < self.trace_runs
    }
}

/// One way a rule failed: the lowest seed that failed it so, the shrunk
/// trace, and how to see it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// The failure's shape.
    pub mode: Mode,
    /// The lowest seed that failed the rule this way.
    pub seed: u64,
    /// How many seeds failed the rule this way.
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
    /// How reliably it shows again.
    pub reproduction: Reproduction,
    /// The rule the seed was first counted against, when shrinking showed
    /// it fails a `must` rule where that was a `should`.
    pub reattributed_from: Option<Rule>,
}

/// A failure mode seen in a run: every mode is counted, the first
/// [`MODES_SHOWN`] (by lowest seed) are explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSeen {
    /// The shape.
    pub mode: Mode,
    /// Its lowest seed.
    pub seed: u64,
    /// How many seeds failed so.
    pub seeds: u64,
}

/// One rule's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleResult {
    /// The rule.
    pub rule: Rule,
    /// Its level under the run's profile.
    pub level: Level,
    /// Its verdict.
    pub verdict: Verdict,
    /// How many times it was checked.
    pub checks: u64,
    /// Of those, how many could be made only in part (RECLAIM-1/2 without
    /// live-subscription counts). A rule passed with every check partial
    /// was partially tested, and says so.
    pub partial: u64,
    /// Every failure mode seen, lowest seed first.
    pub modes: Vec<ModeSeen>,
    /// The explained ones (up to [`MODES_SHOWN`]), lowest seed first.
    pub failures: Vec<RuleFailure>,
    /// The capabilities it needs that the implementation lacks.
    pub missing: Vec<Capability>,
    /// The known deviation's reason, if the expectations file lists it.
    pub deviation: Option<String>,
}

impl RuleResult {
    /// The failure with the lowest seed, if the rule failed.
    pub fn failure(&self) -> Option<&RuleFailure> {
        self.failures.first()
    }

    /// How many seeds failed the rule, all modes together.
    pub fn failing_seeds(&self) -> u64 {
        self.modes.iter().map(|m| m.seeds).sum()
    }
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
    /// For the first few of them: the seed, and where two more runs of it
    /// first differed (one line of text).
    pub differences: Vec<(u64, String)>,
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
    /// How the implementation lays out its buses, as its probe showed.
    pub layout: Layout,
    /// The profile its rules' levels come from.
    pub profile: Profile,
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
    /// Set when the run stopped before its last seed (the breaker, the
    /// deadline): what it reports covers only the seeds that ran.
    pub stopped: Option<super::Stopped>,
    /// Wall time of the seeds (not of shrinking).
    pub run_time: Duration,
    /// Wall time of shrinking and of the reproduction checks.
    pub shrink_time: Duration,
}

impl Report {
    /// The same run judged under `profile`: each rule's level is the
    /// profile's (SPEC.md, "Profiles"); verdicts do not depend on the
    /// profile, so nothing else changes.
    pub fn under(&self, profile: Profile) -> Report {
        let mut report = self.clone();
        report.profile = profile;
        for r in &mut report.rules {
            r.level = r.rule.level_in(profile);
        }
        report
    }

    /// Conforming: every `must` rule passed (checked, never broken), and
    /// the run was deterministic. Only a range of seeds can show this; see
    /// [`Report::is_rerun`].
    pub fn conforming(&self) -> bool {
        !self.is_rerun()
            && self.unjudgeable.is_none()
            && self.stopped.is_none()
            && self.idle_capabilities().is_empty()
            && self.determinism.mismatches.is_empty()
            && self.stale.is_empty()
            && !self
                .rules
                .iter()
                .any(|r| matches!(r.verdict, Verdict::UnexpectedPass { .. }))
            && self.must().all(|r| {
                matches!(
                    r.verdict,
                    Verdict::Passed
                        | Verdict::ExpectedFailure { .. }
                        | Verdict::NotApplicable { .. }
                )
            })
    }

    fn must(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.level == Level::Must)
    }

    /// Whether this was a rerun of one seed (`--seed`), which reproduces or
    /// clears a failure but exercises too little to judge conformance.
    pub fn is_rerun(&self) -> bool {
        matches!(self.seeds, Seeds::One(_))
    }

    /// Whether the run was too small to judge: nothing required failed, but
    /// some `must` rule was never exercised (more seeds or ops would).
    pub fn under_exercised(&self) -> bool {
        !self.is_rerun()
            && self.unjudgeable.is_none()
            && self.must().any(|r| r.verdict == Verdict::NotExercised)
            && !self.must().any(|r| {
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
    /// doing what it declares, deterministically or failing a `must` rule
    /// all the same (a rule it broke is broken, deterministic or not), and
    /// the workloads exercised every `must` rule. `cargo xtask conformance`
    /// exits 2 if not.
    ///
    /// A `must` rule that failed is a verdict whatever else is missing: a
    /// nondeterministic run, a run stopped early, or a declared capability
    /// never used (an adapter that hangs before its first poll has failed,
    /// and more seeds cannot change that).
    pub fn judged(&self) -> bool {
        self.unjudgeable.is_none()
            && (self.must_failed()
                || (self.determinism.mismatches.is_empty()
                    && self.stopped.is_none()
                    && self.idle_capabilities().is_empty()
                    && !self.under_exercised()))
    }

    /// Whether some `must` rule failed, unexpectedly.
    pub fn must_failed(&self) -> bool {
        self.must().any(|r| r.verdict == Verdict::Failed)
    }

    /// Whether the run should count as a success: conforming for a range of
    /// seeds; for a single-seed rerun, no `must` rule failed and the run was
    /// deterministic.
    pub fn success(&self) -> bool {
        if self.is_rerun() {
            self.unjudgeable.is_none()
                && self.determinism.mismatches.is_empty()
                && !self.must_failed()
        } else {
            self.conforming()
        }
    }

    /// The exit code `cargo xtask conformance` (and `merge`) give this
    /// report: 0 success, 1 a verdict against the implementation, 2 no
    /// verdict.
    pub fn exit_code(&self) -> u8 {
        match (self.judged(), self.success()) {
            (false, _) => 2,
            (true, true) => 0,
            (true, false) => 1,
        }
    }

    /// Failures that did not show every time they were rerun.
    pub fn flaky(&self) -> impl Iterator<Item = (Rule, &RuleFailure)> {
        self.rules.iter().flat_map(|r| {
            r.failures
                .iter()
                .filter(|f| f.reproduction.flaky())
                .map(move |f| (r.rule, f))
        })
    }

    /// Number of seeds run (to their end: fewer than asked for if the run
    /// stopped early).
    pub fn seed_count(&self) -> u64 {
        match &self.stopped {
            Some(s) => s.seeds_run,
            None => self.seeds.bounds().1,
        }
    }
}
