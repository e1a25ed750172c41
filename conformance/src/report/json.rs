//! The JSON document of a conformance run, both ways: [`to_json`] writes a
//! [`Report`], [`from_json`] reads one back (for `merge`), checking every
//! field's type and every claim that can be checked (rule ids and levels
//! in SPEC.md order, failing seeds inside the report's seeds, a failed rule
//! with a failure), so a doctored or truncated report is refused with what
//! was expected where.

use crate::runner::{
    Determinism, ModeSeen, Report, Reproduction, RuleFailure, RuleResult, Seeds, StopKind, Stopped,
    Unjudged, Verdict, display_path,
};
use scopebus_sim::emulation::Emulated;
use scopebus_sim::harness::Counts;
use scopebus_sim::iut::ImplInfo;
use scopebus_sim::model::{Layout, Mode};
use scopebus_sim::op::Entry;
use scopebus_sim::rules::{Capability, Level, Profile, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The whole document.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportDoc {
    implementation: String,
    /// The name the implementation gave itself (its handshake's `name`),
    /// when it differs from `implementation` (the `--impl` value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    language: String,
    version: String,
    /// What it runs on (PROTOCOL.md, `runtime` in the handshake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    runtime: Option<String>,
    capabilities: Vec<Capability>,
    /// The features its adapter provides itself (PROTOCOL.md, "Emulated
    /// features").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    emulates: Vec<Emulated>,
    seeds: u64,
    first_seed: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    rerun: bool,
    ops_per_seed: usize,
    ops: u64,
    polls: u64,
    observations: u64,
    wakes: u64,
    migrations: u64,
    preempted: u64,
    skipped: u64,
    seconds: f64,
    shrink_seconds: f64,
    conforming: bool,
    success: bool,
    judged: bool,
    layout: String,
    /// The profile the rules' levels come from (`docs` or `strict`).
    profile: Profile,
    determinism: DeterminismDoc,
    expectations: Option<String>,
    stale_deviations: Vec<StaleDoc>,
    unjudgeable: Option<UnjudgedDoc>,
    rules: Vec<RuleDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<ShardDoc>,
    /// Set when the run stopped before its last seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stopped: Option<StoppedDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoppedDoc {
    /// `broke` (the breaker) or `deadline`.
    reason: String,
    message: String,
    /// Seeds that ran to their end, fewer than `seeds`.
    seeds_run: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeterminismDoc {
    checked: u64,
    mismatches: Vec<u64>,
    /// Where two more runs of each of the first mismatched seeds differed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    differences: Vec<DifferenceDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DifferenceDoc {
    seed: u64,
    first: String,
}

impl From<&Determinism> for DeterminismDoc {
    fn from(d: &Determinism) -> DeterminismDoc {
        DeterminismDoc {
            checked: d.checked,
            mismatches: d.mismatches.clone(),
            differences: d
                .differences
                .iter()
                .map(|(seed, first)| DifferenceDoc {
                    seed: *seed,
                    first: first.clone(),
                })
                .collect(),
        }
    }
}

impl From<DeterminismDoc> for Determinism {
    fn from(d: DeterminismDoc) -> Determinism {
        Determinism {
            checked: d.checked,
            mismatches: d.mismatches,
            differences: d
                .differences
                .into_iter()
                .map(|d| (d.seed, d.first))
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct StaleDoc {
    rule: Rule,
    why: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnjudgedDoc {
    seed: u64,
    entry: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardDoc {
    index: u64,
    of: u64,
    first_seed: u64,
    seeds: u64,
}

/// One rule. `seed`, `repro`, `message` are the lowest failing seed's, for
/// readers that want one failure per rule; `modes` and `failures` have
/// every mode and the explained ones.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    id: Rule,
    level: Level,
    verdict: String,
    checks: u64,
    /// Of `checks`, those made only in part (RECLAIM-1/2 without
    /// live-subscription counts).
    partial_checks: u64,
    seed: Option<u64>,
    repro: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    failing_seeds: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    missing_capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deviation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    modes: Vec<ModeDoc>,
    failures: Vec<FailureDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeDoc {
    mode: Mode,
    seed: u64,
    seeds: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureDoc {
    mode: Mode,
    seed: u64,
    failing_seeds: u64,
    message: String,
    trace: String,
    full_trace: String,
    replay: String,
    repro: String,
    trace_ops: usize,
    trace_entries: usize,
    original_entries: usize,
    entries: Vec<Entry>,
    fault: bool,
    transcript: Option<String>,
    save_error: Option<String>,
    shrink_timed_out: bool,
    flaky: bool,
    reproduced: ReproducedDoc,
    passing_transcript: Option<String>,
    reattributed_from: Option<Rule>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReproducedDoc {
    seed_runs: u32,
    seed_failures: u32,
    trace_runs: u32,
    trace_failures: u32,
}

/// The JSON document of a conformance run.
pub fn to_json(report: &Report) -> Value {
    serde_json::to_value(doc(report)).unwrap_or(Value::Null)
}

fn doc(report: &Report) -> ReportDoc {
    let info = &report.implementation;
    let (first, count) = report.seeds.bounds();
    let c = &report.counts;
    ReportDoc {
        implementation: report.target.clone(),
        name: (info.name != report.target).then(|| info.name.clone()),
        language: info.language.clone(),
        version: info.version.clone(),
        runtime: info.runtime.clone(),
        capabilities: info.capabilities.iter().collect(),
        emulates: info.emulates.clone(),
        seeds: count,
        first_seed: first,
        rerun: report.is_rerun(),
        ops_per_seed: report.ops_per_seed,
        ops: c.ops,
        polls: c.polls,
        observations: c.observations,
        wakes: c.wakes,
        migrations: c.migrations,
        preempted: c.preempted,
        skipped: c.skipped,
        seconds: report.run_time.as_secs_f64(),
        shrink_seconds: report.shrink_time.as_secs_f64(),
        conforming: report.conforming(),
        success: report.success(),
        judged: report.judged(),
        layout: report.layout.name().to_owned(),
        profile: report.profile,
        determinism: DeterminismDoc::from(&report.determinism),
        expectations: report.expectations.as_ref().map(|p| display_path(p)),
        stale_deviations: report
            .stale
            .iter()
            .map(|(rule, why)| StaleDoc {
                rule: *rule,
                why: why.clone(),
            })
            .collect(),
        unjudgeable: report.unjudgeable.as_ref().map(|u| UnjudgedDoc {
            seed: u.seed,
            entry: u.entry.clone(),
            message: u.message.clone(),
        }),
        rules: report.rules.iter().map(rule_doc).collect(),
        shard: match report.seeds {
            Seeds::Shard {
                start,
                count,
                index,
                of,
            } => Some(ShardDoc {
                index,
                of,
                first_seed: start,
                seeds: count,
            }),
            _ => None,
        },
        stopped: report.stopped.as_ref().map(|s| StoppedDoc {
            reason: s.kind.name().to_owned(),
            message: s.message.clone(),
            seeds_run: s.seeds_run,
        }),
    }
}

fn rule_doc(r: &RuleResult) -> RuleDoc {
    let first = r.failure();
    RuleDoc {
        id: r.rule,
        level: r.level,
        verdict: r.verdict.word().to_owned(),
        checks: r.checks,
        partial_checks: r.partial,
        seed: r.modes.first().map(|m| m.seed),
        repro: first.map(|f| f.repro.clone()),
        message: first.map(|f| f.message.clone()),
        failing_seeds: r.failing_seeds(),
        missing_capabilities: r.missing.clone(),
        deviation: r.deviation.clone(),
        reason: match &r.verdict {
            Verdict::ExpectedFailure { reason } | Verdict::UnexpectedPass { reason } => {
                Some(reason.clone())
            }
            _ => None,
        },
        modes: r
            .modes
            .iter()
            .map(|m| ModeDoc {
                mode: m.mode,
                seed: m.seed,
                seeds: m.seeds,
            })
            .collect(),
        failures: r.failures.iter().map(failure_doc).collect(),
    }
}

fn failure_doc(f: &RuleFailure) -> FailureDoc {
    let r = &f.reproduction;
    FailureDoc {
        mode: f.mode,
        seed: f.seed,
        failing_seeds: f.failing_seeds,
        message: f.message.clone(),
        trace: display_path(&f.trace),
        full_trace: display_path(&f.full_trace),
        replay: f.replay.clone(),
        repro: f.repro.clone(),
        trace_ops: f.trace_ops,
        trace_entries: f.trace_entries,
        original_entries: f.original_entries,
        entries: f.entries.clone(),
        fault: f.fault,
        transcript: f.transcript.as_ref().map(|p| display_path(p)),
        save_error: f.save_error.clone(),
        shrink_timed_out: f.shrink_timed_out,
        flaky: r.flaky(),
        reproduced: ReproducedDoc {
            seed_runs: r.seed_runs,
            seed_failures: r.seed_failures,
            trace_runs: r.trace_runs,
            trace_failures: r.trace_failures,
        },
        passing_transcript: r.passing_transcript.as_ref().map(|p| display_path(p)),
        reattributed_from: f.reattributed_from,
    }
}

/// Reads a report written by [`to_json`] back.
///
/// # Errors
/// What is wrong, where (`rules[3].checks: invalid type: ...`), and what
/// was expected.
pub fn from_json(value: &Value) -> Result<Report, String> {
    let doc: ReportDoc = serde_path_to_error::deserialize(value)
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    let seeds = seeds_of(&doc)?;
    let (first, count) = seeds.bounds();
    if doc.rules.len() != Rule::COUNT {
        return Err(format!(
            "it lists {} rules; this suite has {}",
            doc.rules.len(),
            Rule::COUNT
        ));
    }
    let rules = doc
        .rules
        .iter()
        .zip(Rule::ALL)
        .enumerate()
        .map(|(n, (r, known))| {
            rule_of(r, known, doc.profile, (first, count)).map_err(|e| format!("rules[{n}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let layout = Layout::from_name(&doc.layout)
        .ok_or_else(|| format!("layout: unknown layout `{}`", doc.layout))?;
    seeds_inside(&doc, (first, count))?;
    capabilities_agree(&doc)?;
    let stopped = doc
        .stopped
        .as_ref()
        .map(|s| stopped_of(s, count))
        .transpose()?;
    let counts = counts_of(&doc);
    let duration = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s).map_err(|_| format!("{what}: {s} is not a duration"))
    };
    Ok(Report {
        implementation: ImplInfo {
            name: doc.name.unwrap_or_else(|| doc.implementation.clone()),
            language: doc.language,
            version: doc.version,
            runtime: doc.runtime,
            capabilities: doc.capabilities.into_iter().collect(),
            emulates: Emulated::parse_list(
                &doc.emulates.iter().map(|e| e.name()).collect::<Vec<_>>(),
            )
            .map_err(|e| format!("emulates: {e}"))?,
        },
        target: doc.implementation,
        seeds,
        ops_per_seed: doc.ops_per_seed,
        counts,
        layout,
        profile: doc.profile,
        rules,
        determinism: doc.determinism.into(),
        unjudgeable: doc.unjudgeable.map(|u| Unjudged {
            seed: u.seed,
            message: u.message,
            entry: u.entry,
        }),
        expectations: doc.expectations.map(PathBuf::from),
        stale: doc
            .stale_deviations
            .into_iter()
            .map(|s| (s.rule, s.why))
            .collect(),
        stopped,
        run_time: duration(doc.seconds, "seconds")?,
        shrink_time: duration(doc.shrink_seconds, "shrink_seconds")?,
    })
}

/// The run's counts, as the report states them.
fn counts_of(doc: &ReportDoc) -> Counts {
    Counts {
        ops: doc.ops,
        polls: doc.polls,
        wakes: doc.wakes,
        migrations: doc.migrations,
        preempted: doc.preempted,
        observations: doc.observations,
        skipped: doc.skipped,
    }
}

/// The seeds the report names outside its rules (an unjudged run's,
/// determinism mismatches) must be among the `count` from `first` it ran.
fn seeds_inside(doc: &ReportDoc, (first, count): (u64, u64)) -> Result<(), String> {
    let inside = |seed: u64| seed.wrapping_sub(first) < count;
    let outside = |what: &str, seed: u64| {
        Err(format!(
            "{what}: seed {seed} is not one of the {count} seeds from {first} this report ran"
        ))
    };
    if let Some(u) = doc.unjudgeable.as_ref().filter(|u| !inside(u.seed)) {
        return outside("unjudgeable.seed", u.seed);
    }
    match doc.determinism.mismatches.iter().find(|s| !inside(**s)) {
        Some(seed) => outside("determinism.mismatches", *seed),
        None => Ok(()),
    }
}

/// Each rule's missing capabilities agree with the report's: a capability
/// the rule needs and the implementation does not declare is missing (it
/// could not have been tested), and only capabilities the rule needs are.
fn capabilities_agree(doc: &ReportDoc) -> Result<(), String> {
    for (n, (r, known)) in doc.rules.iter().zip(Rule::ALL).enumerate() {
        let needs: Vec<Capability> = known.needs().iter().collect();
        if let Some(c) = needs
            .iter()
            .find(|c| !doc.capabilities.contains(c) && !r.missing_capabilities.contains(c))
        {
            return Err(format!(
                "rules[{n}]: {} needs `{}`, which the implementation does not declare, \
                 yet it is not among the rule's missing_capabilities: it could not have been tested",
                known.id(),
                c.name()
            ));
        }
        if let Some(c) = r.missing_capabilities.iter().find(|c| !needs.contains(c)) {
            return Err(format!(
                "rules[{n}]: {} lists `{}` as missing, a capability it does not need",
                known.id(),
                c.name()
            ));
        }
    }
    Ok(())
}

/// A stopped run's record: a known reason, and fewer seeds run than the
/// `count` it was to run.
fn stopped_of(s: &StoppedDoc, count: u64) -> Result<Stopped, String> {
    let kind = StopKind::from_name(&s.reason).map_err(|e| format!("stopped.reason: {e}"))?;
    if s.seeds_run >= count {
        return Err(format!(
            "stopped.seeds_run: {} seeds ran of {count}: a run that stopped early ran fewer",
            s.seeds_run
        ));
    }
    Ok(Stopped {
        kind,
        message: s.message.clone(),
        seeds_run: s.seeds_run,
    })
}

fn seeds_of(doc: &ReportDoc) -> Result<Seeds, String> {
    let seeds = match (&doc.shard, doc.rerun) {
        (Some(s), _) => {
            Seeds::shard(s.first_seed, s.seeds, s.index, s.of).map_err(|e| format!("shard: {e}"))?
        }
        (None, true) => Seeds::One(doc.first_seed),
        (None, false) => {
            Seeds::range(doc.first_seed, doc.seeds).map_err(|e| format!("seeds: {e}"))?
        }
    };
    let (first, count) = seeds.bounds();
    if (first, count) != (doc.first_seed, doc.seeds) {
        return Err(format!(
            "it ran {} seeds from {}, but its seeds are {count} from {first}",
            doc.seeds, doc.first_seed
        ));
    }
    Ok(seeds)
}

/// One rule, checked against SPEC.md's rule `known` at its level under
/// `profile`, and the report's seeds (`first`, `count`).
fn rule_of(
    r: &RuleDoc,
    known: Rule,
    profile: Profile,
    (first, count): (u64, u64),
) -> Result<RuleResult, String> {
    let level = known.level_in(profile);
    if r.id != known || r.level != level {
        return Err(format!(
            "{} at level {}, where this suite has {} ({} under the {profile} profile), in SPEC.md order",
            r.id,
            r.level,
            known.id(),
            level
        ));
    }
    if r.partial_checks > r.checks {
        return Err(format!(
            "partial_checks {} is more than its checks {}",
            r.partial_checks, r.checks
        ));
    }
    if r.partial_checks > 0 && !known.can_be_partial() {
        return Err(format!(
            "partial_checks {} on a rule whose checks are never partial (only RECLAIM-1 and RECLAIM-2's are)",
            r.partial_checks
        ));
    }
    let inside = |seed: u64| seed.wrapping_sub(first) < count;
    let outside = r
        .modes
        .iter()
        .map(|m| m.seed)
        .chain(r.failures.iter().map(|f| f.seed))
        .chain(r.seed)
        .find(|s| !inside(*s));
    if let Some(seed) = outside {
        return Err(format!(
            "failing seed {seed} is outside the report's seeds {first}..={}",
            first.wrapping_add(count - 1)
        ));
    }
    let modes: Vec<ModeSeen> = r
        .modes
        .iter()
        .map(|m| ModeSeen {
            mode: m.mode,
            seed: m.seed,
            seeds: m.seeds,
        })
        .collect();
    let failed = matches!(r.verdict.as_str(), "failed" | "expected_failure") && !modes.is_empty();
    if r.verdict == "failed" && modes.is_empty() {
        return Err("a failed rule without a failing seed".to_owned());
    }
    if !modes.is_empty() && !failed {
        return Err(format!("failing seeds on a rule that is `{}`", r.verdict));
    }
    if r.seed != modes.iter().map(|m| m.seed).min() {
        return Err("`seed` is not the lowest seed of its `modes`".to_owned());
    }
    Ok(RuleResult {
        rule: known,
        level,
        verdict: verdict_of(r)?,
        checks: r.checks,
        partial: r.partial_checks,
        modes,
        failures: r.failures.iter().map(failure_of).collect(),
        missing: r.missing_capabilities.clone(),
        deviation: r.deviation.clone(),
    })
}

fn verdict_of(r: &RuleDoc) -> Result<Verdict, String> {
    let reason = || r.reason.clone().or(r.deviation.clone()).unwrap_or_default();
    Ok(match r.verdict.as_str() {
        "passed" => Verdict::Passed,
        "failed" => Verdict::Failed,
        "not_exercised" => Verdict::NotExercised,
        "not_tested" => Verdict::NotTested {
            missing: r.missing_capabilities.clone(),
        },
        "not_applicable" => Verdict::NotApplicable {
            missing: r.missing_capabilities.clone(),
        },
        "expected_failure" => Verdict::ExpectedFailure { reason: reason() },
        "unexpected_pass" => Verdict::UnexpectedPass { reason: reason() },
        other => {
            return Err(format!(
                "verdict: unknown verdict `{other}`; expected passed, failed, not_tested, \
                 not_applicable, not_exercised, expected_failure or unexpected_pass"
            ));
        }
    })
}

fn failure_of(f: &FailureDoc) -> RuleFailure {
    RuleFailure {
        mode: f.mode,
        seed: f.seed,
        failing_seeds: f.failing_seeds,
        message: f.message.clone(),
        trace: PathBuf::from(&f.trace),
        full_trace: PathBuf::from(&f.full_trace),
        transcript: f.transcript.as_ref().map(PathBuf::from),
        save_error: f.save_error.clone(),
        trace_ops: f.trace_ops,
        trace_entries: f.trace_entries,
        original_entries: f.original_entries,
        entries: f.entries.clone(),
        fault: f.fault,
        repro: f.repro.clone(),
        replay: f.replay.clone(),
        shrink_timed_out: f.shrink_timed_out,
        reproduction: Reproduction {
            seed_runs: f.reproduced.seed_runs,
            seed_failures: f.reproduced.seed_failures,
            trace_runs: f.reproduced.trace_runs,
            trace_failures: f.reproduced.trace_failures,
            passing_transcript: f.passing_transcript.as_ref().map(PathBuf::from),
        },
        reattributed_from: f.reattributed_from,
    }
}
