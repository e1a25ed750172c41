//! The compatibility matrix (`cargo xtask matrix`): every implementation a
//! matrix file lists ([`file`]), judged by one run each and read under both
//! profiles, its recorded deviations shown by their ground-truth script
//! ([`ground_truth`]), each failure replayed once more as data for a
//! timeline ([`crate::replay::replay_steps`]), all of it in one JSON
//! document and a static HTML page ([`page`]).
//!
//! Invariants:
//! - one run per implementation: verdicts do not depend on the profile,
//!   only levels do ([`Report::under`]), so both profiles judge the same
//!   failures;
//! - a recorded deviation is one its expectations file lists *and* its
//!   ground-truth script shows: a deviation with no script, or one the
//!   script does not show, makes the matrix fail (exit 1), as does a run
//!   that cannot be judged, is not deterministic, or disagrees with its
//!   expectations file (a new failure, an unexpected pass, a stale trace);
//! - an implementation with no expectations file may fail rules: the page
//!   shows them as failures, never as recorded deviations;
//! - nothing here sets anything up: environments are the caller's
//!   (`xtask/src/matrix.rs`), which hands over a ready [`Candidate`].

pub mod file;
pub mod ground_truth;
pub mod page;
pub mod timeline;

use crate::expectations::Expectations;
use crate::report::to_json;
use crate::runner::{Campaign, Report, Seeds, Verdict, run};
use crate::target::Target;
use file::Listed;
use ground_truth::Shown;
use scopebus_sim::emulation::Emulated;
use scopebus_sim::rules::{Level, Profile};
use scopebus_sim::shrink::Budget;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use timeline::Timeline;

/// An implementation ready to judge: its listing, its target (or why it
/// could not be set up), its expectations, its ground-truth command line.
pub struct Candidate {
    /// As the matrix file lists it.
    pub listed: Listed,
    /// The implementation, or why it could not be set up or started.
    pub target: Result<Target, String>,
    /// Its known deviations, read.
    pub expectations: Option<Expectations>,
    /// The ground-truth script's command line, placeholders expanded.
    pub ground_truth: Option<String>,
}

/// How every implementation is run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Seeds per implementation, from 0.
    pub seeds: u64,
    /// Workload ops per seed.
    pub ops: usize,
    /// Worker threads (0: one per core).
    pub jobs: usize,
    /// Where each implementation's failures go (`<out>/<name>/failures/`).
    pub out_dir: PathBuf,
    /// The repository's root (scripts run there).
    pub root: PathBuf,
}

/// One implementation's column of the matrix.
#[derive(Serialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// What it is.
    pub about: String,
    /// Its `--impl` (a name or a command line).
    pub command: String,
    /// Why it was not judged (setup, start, refusal), if it was not.
    pub error: Option<String>,
    /// The run's report (as `--json` writes it), under the strict profile.
    pub report: Option<Value>,
    /// Per profile: whether it conforms, and each rule's level.
    pub profiles: Vec<ProfileView>,
    /// The ground-truth script's run, if it has recorded deviations.
    pub ground_truth: Option<Shown>,
    /// Every explained failure (and every recorded deviation not reached
    /// by these seeds), replayed as a timeline.
    pub timelines: Vec<Timeline>,
    /// Whether the column is as it should be (see the module doc), and if
    /// not, why.
    pub problems: Vec<String>,
}

/// One profile's reading of a run.
#[derive(Serialize)]
pub struct ProfileView {
    /// `docs` or `strict`.
    pub profile: Profile,
    /// Every must rule checked and passed, deterministic; a must rule that
    /// fails as a recorded deviation makes it not conforming.
    pub conforming: bool,
    /// Conforming, or failing only as its expectations file records.
    pub success: bool,
    /// Each rule's level, in SPEC.md order.
    pub levels: Vec<Level>,
}

/// Judges one implementation.
pub fn judge(candidate: &Candidate, settings: &Settings) -> Column {
    let listed = &candidate.listed;
    let mut column = Column {
        name: listed.name.clone(),
        about: listed.about.clone(),
        command: listed.command.clone(),
        error: None,
        report: None,
        profiles: Vec::new(),
        ground_truth: None,
        timelines: Vec::new(),
        problems: Vec::new(),
    };
    let target = match &candidate.target {
        Ok(target) => target.clone(),
        Err(e) => return column.failed(e.clone()),
    };
    let report = match run(&campaign(candidate, &target, settings)) {
        Ok(report) => report,
        Err(e) => return column.failed(e),
    };
    column.problems.extend(problems(&report));
    if let Some(expectations) = &candidate.expectations {
        column.ground_truth = show(candidate, expectations, settings, &mut column.problems);
    }
    column.timelines = timeline::of_report(&target, &report, candidate.expectations.as_ref());
    // "As recorded" needs the record to hold: the expectations met *and*
    // every recorded deviation shown by its ground-truth script.
    let shown = match (&candidate.expectations, &column.ground_truth) {
        (_, Some(g)) => g.all_shown(),
        (Some(e), None) => e.deviations.is_empty(),
        (None, None) => true,
    };
    column.profiles = [Profile::Docs, Profile::Strict]
        .into_iter()
        .map(|p| {
            let mut v = view(&report.under(p));
            v.success &= shown;
            v
        })
        .collect();
    column.report = Some(to_json(&report));
    column
}

impl Column {
    fn failed(mut self, why: String) -> Column {
        self.problems.push(format!("not judged: {why}"));
        self.error = Some(why);
        self
    }
}

fn campaign(candidate: &Candidate, target: &Target, settings: &Settings) -> Campaign {
    Campaign {
        target: target.clone(),
        expectations: candidate.expectations.clone(),
        profile: Profile::Strict,
        seeds: Seeds::Range {
            start: 0,
            count: settings.seeds,
        },
        ops: settings.ops,
        jobs: settings.jobs,
        out_dir: settings.out_dir.join(&candidate.listed.name),
        shrink: Budget::default(),
        progress: false,
        deadline: None,
    }
}

fn view(report: &Report) -> ProfileView {
    // A claim about the implementation: a recorded deviation of a must rule
    // is still a must rule broken (the run is "as expected", not conforming).
    let recorded_must = report
        .rules
        .iter()
        .any(|r| r.level == Level::Must && matches!(r.verdict, Verdict::ExpectedFailure { .. }));
    ProfileView {
        profile: report.profile,
        conforming: report.conforming() && !recorded_must,
        success: report.success(),
        levels: report.rules.iter().map(|r| r.level).collect(),
    }
}

/// What makes a column wrong whatever the implementation does: no
/// verdict, nondeterminism, expectations that no longer hold.
fn problems(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(u) = &report.unjudgeable {
        problems.push(format!("cannot be judged: seed {}: {}", u.seed, u.message));
    }
    if !report.determinism.mismatches.is_empty() {
        let first = report
            .determinism
            .differences
            .first()
            .map(|(seed, first)| format!(" (seed {seed}: {first})"))
            .unwrap_or_default();
        problems.push(format!(
            "not deterministic: seeds {:?} gave different runs when run twice{first}",
            report.determinism.mismatches
        ));
    }
    if let Some(stopped) = &report.stopped {
        problems.push(format!("stopped early: {}", stopped.message));
    }
    if report.expectations.is_some() {
        for r in &report.rules {
            match &r.verdict {
                Verdict::Failed => problems.push(format!(
                    "{} fails, and its expectations file does not record it",
                    r.rule
                )),
                Verdict::UnexpectedPass { .. } => {
                    problems.push(format!("{} is recorded as a deviation but passed", r.rule))
                }
                _ => {}
            }
        }
        for (rule, why) in &report.stale {
            problems.push(format!("the recorded trace of {rule} is stale: {why}"));
        }
    }
    problems
}

/// Runs the ground-truth script for the deviations `expectations` lists.
fn show(
    candidate: &Candidate,
    expectations: &Expectations,
    settings: &Settings,
    problems: &mut Vec<String>,
) -> Option<Shown> {
    let rules: Vec<_> = expectations.deviations.iter().map(|d| d.rule).collect();
    if rules.is_empty() {
        return None;
    }
    let Some(command) = &candidate.ground_truth else {
        problems.push(format!(
            "{} records deviations ({}) but the matrix gives no ground-truth script: no script, no recorded deviation",
            expectations.path.display(),
            rules.iter().map(|r| r.id()).collect::<Vec<_>>().join(", ")
        ));
        return None;
    };
    let shown = ground_truth::run(command, &settings.root, &rules);
    for d in shown.deviations.iter().filter(|d| !d.shown) {
        problems.push(format!("ground truth does not show {}: {}", d.rule, d.what));
    }
    if !shown.success {
        problems.push(format!(
            "the ground-truth script `{command}` failed: {}",
            shown.status
        ));
    }
    Some(shown)
}

/// The matrix document: every column, the rules (rows) with their levels
/// and summaries, and how it was run.
pub fn document(columns: &[Column], settings: &Settings, file: &Path) -> Value {
    let rules: Vec<Value> = scopebus_sim::rules::Rule::ALL
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id(),
                "summary": r.summary(),
                "docs": r.level_in(Profile::Docs),
                "strict": r.level_in(Profile::Strict),
            })
        })
        .collect();
    let emulated: serde_json::Map<String, Value> = Emulated::ALL
        .iter()
        .map(|e| {
            let rules: Vec<&str> = e.rules().iter().map(|r| r.id()).collect();
            (e.name().to_owned(), serde_json::json!(rules))
        })
        .collect();
    serde_json::json!({
        "format": "scopebus-matrix",
        "version": 1,
        "file": file.display().to_string(),
        "seeds": settings.seeds,
        "ops_per_seed": settings.ops,
        "rules": rules,
        "emulated": emulated,
        "implementations": columns,
    })
}
