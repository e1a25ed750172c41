//! Reports: the console table and the JSON document, for conformance runs
//! and for mutant hunts.
//!
//! The console text is deterministic: the same arguments print the same
//! bytes (timings are kept apart, in [`timing_line`], for stderr).

use crate::mutants::MutantResult;
use crate::runner::{Report, Seeds, Verdict, display_path};
use scopebus_sim::rules::{Capability, Level};
use serde_json::{Value, json};
use std::fmt::Write;

/// Traces longer than this are not printed inline, only saved.
const INLINE_TRACE: usize = 40;

/// `n thing` or `n things`.
/// `1 thing` or `N things`.
pub fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else if let Some(stem) = thing.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {thing}s")
    }
}

fn seeds_text(seeds: Seeds) -> String {
    let range = |start: u64, count: u64| {
        format!(
            "seeds {start}..={} ({})",
            start.saturating_add(count.saturating_sub(1)),
            plural(count, "seed")
        )
    };
    match seeds {
        Seeds::One(seed) => format!("seed {seed}"),
        Seeds::Range { start, count } => range(start, count),
        Seeds::Shard {
            start,
            count,
            index,
            of,
        } => {
            let (first, n) = seeds.bounds();
            format!(
                "{}, shard {index}/{of} of {}..={}",
                range(first, n),
                start,
                start.saturating_add(count.saturating_sub(1))
            )
        }
    }
}

/// The console table of a conformance run.
pub fn render(report: &Report) -> String {
    let info = &report.implementation;
    let mut out = String::new();
    let caps: Vec<&str> = info.capabilities.iter().map(|c| c.name()).collect();
    let _ = writeln!(
        out,
        "scopebus conformance: {} ({} {})",
        report.target, info.language, info.version
    );
    let _ = writeln!(out, "capabilities: {}", caps.join(" "));
    let _ = match report.seeds {
        Seeds::One(_) => writeln!(
            out,
            "{}, {} (plus the run's closing sequence)\n",
            seeds_text(report.seeds),
            plural(report.ops_per_seed as u64, "workload op")
        ),
        Seeds::Range { .. } | Seeds::Shard { .. } => writeln!(
            out,
            "{}, {} each (plus each run's closing sequence)\n",
            seeds_text(report.seeds),
            plural(report.ops_per_seed as u64, "workload op")
        ),
    };
    let _ = writeln!(
        out,
        "{:<10} {:<6} {:<18} {:>9}  summary (checks: situations that could break the rule, checked and held)",
        "rule", "level", "verdict", "checks"
    );
    for r in &report.rules {
        let verdict = match &r.verdict {
            Verdict::Failed => "FAILED".to_owned(),
            Verdict::NotTested { .. } => "not tested".to_owned(),
            Verdict::NotExercised => "NOT EXERCISED".to_owned(),
            Verdict::Passed => "passed".to_owned(),
            Verdict::ExpectedFailure { .. } => "expected failure".to_owned(),
            Verdict::UnexpectedPass { .. } => "UNEXPECTED PASS".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<10} {:<6} {:<18} {:>9}  {}",
            r.rule.id(),
            r.rule.level().to_string(),
            verdict,
            r.checks,
            r.rule.summary()
        );
        let pad = " ".repeat(48);
        match &r.verdict {
            Verdict::NotTested { missing } => {
                let m: Vec<&str> = missing.iter().map(|c| c.name()).collect();
                let _ = writeln!(
                    out,
                    "{pad}needs the capabilities: {} (the implementation lacks them)",
                    m.join(", ")
                );
            }
            Verdict::ExpectedFailure { reason } => {
                let _ = writeln!(out, "{pad}known deviation: {reason}");
            }
            Verdict::UnexpectedPass { reason } => {
                let _ = writeln!(
                    out,
                    "{pad}the expectations file lists it as broken (\"{reason}\"), but it passed: update the file"
                );
            }
            _ => {}
        }
        if let Some(f) = &r.failure {
            let more = if f.failing_seeds > 1 {
                let n = f.failing_seeds - 1;
                format!(" (and {n} more {})", if n == 1 { "seed" } else { "seeds" })
            } else {
                String::new()
            };
            let kind = if f.fault {
                "the implementation broke: "
            } else {
                ""
            };
            let _ = writeln!(out, "{pad}seed {}{more}: {kind}{}", f.seed, f.message);
            let _ = writeln!(
                out,
                "{pad}shrunk to {}, {} (from {}){}:",
                plural(f.trace_ops as u64, "op"),
                plural(f.trace_entries as u64, "entry"),
                plural(f.original_entries as u64, "entry"),
                if f.shrink_timed_out {
                    ", stopped by its time budget (a faster machine may shrink further)"
                } else {
                    ""
                }
            );
            if f.entries.len() <= INLINE_TRACE {
                for (i, entry) in f.entries.iter().enumerate() {
                    let _ = writeln!(out, "{pad}  {i:>3}  {entry}");
                }
            }
            match &f.save_error {
                None => {
                    let _ = writeln!(out, "{pad}replay: {}", f.replay);
                }
                Some(e) => {
                    let _ = writeln!(out, "{pad}the traces could not be saved: {e}");
                }
            }
            let _ = writeln!(out, "{pad}rerun:  {}", f.repro);
            if let Some(transcript) = &f.transcript {
                let _ = writeln!(
                    out,
                    "{pad}transcript of the adapter session: {}",
                    display_path(transcript)
                );
            }
        }
    }
    let count =
        |pred: &dyn Fn(&Verdict) -> bool| report.rules.iter().filter(|r| pred(&r.verdict)).count();
    let expected = count(&|v| matches!(v, Verdict::ExpectedFailure { .. }));
    let unexpected = count(&|v| matches!(v, Verdict::UnexpectedPass { .. }));
    let known = if report.expectations.is_some() {
        format!(", {expected} expected failures, {unexpected} unexpected passes")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\nrules: {} passed, {} failed, {} not tested, {} not exercised{known} (of {})",
        count(&|v| *v == Verdict::Passed),
        count(&|v| *v == Verdict::Failed),
        count(&|v| matches!(v, Verdict::NotTested { .. })),
        count(&|v| *v == Verdict::NotExercised),
        report.rules.len()
    );
    if let Some(path) = &report.expectations {
        let _ = writeln!(out, "known deviations: {}", display_path(path));
    }
    for (rule, why) in &report.stale {
        let _ = writeln!(out, "STALE deviation of {rule}: {why}");
    }
    let c = &report.counts;
    let _ = writeln!(
        out,
        "ran {}: {}, {}, {}, {}, {} checked",
        plural(report.seed_count(), "seed"),
        plural(c.ops, "op"),
        plural(c.polls, "poll"),
        plural(c.wakes, "injected wakeup"),
        plural(c.migrations, "migration"),
        plural(c.observations, "observation")
    );
    let caps = report.implementation.capabilities;
    if !report.is_rerun() && caps.has(Capability::Preempt) && c.preempted == 0 {
        let _ = writeln!(
            out,
            "note: `preempt` is declared, but no interjection ever ran inside a poll (no yield point was reached): the races it exposes were not exercised"
        );
    }
    if !report.is_rerun() && caps.has(Capability::Migrate) && c.migrations == 0 {
        let _ = writeln!(
            out,
            "note: `migrate` is declared, but no task was ever moved to a new waker"
        );
    }
    let d = &report.determinism;
    if d.mismatches.is_empty() {
        let _ = writeln!(
            out,
            "determinism: {} run twice, identical",
            plural(d.checked, "seed")
        );
    } else {
        let _ = writeln!(
            out,
            "determinism: BROKEN: seeds {:?} gave different runs the second time",
            d.mismatches
        );
    }
    let must_with = |pred: &dyn Fn(&Verdict) -> bool| -> Vec<&str> {
        report
            .rules
            .iter()
            .filter(|r| r.rule.level() == Level::Must && pred(&r.verdict))
            .map(|r| r.rule.id())
            .collect()
    };
    let failed = must_with(&|v| *v == Verdict::Failed);
    let untested = must_with(&|v| matches!(v, Verdict::NotTested { .. }));
    let unexercised = must_with(&|v| *v == Verdict::NotExercised);
    let failed_should: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.rule.level() == Level::Should && r.verdict == Verdict::Failed)
        .map(|r| r.rule.id())
        .collect();
    if let Some(u) = &report.unjudgeable {
        let _ = writeln!(
            out,
            "verdict: NOT JUDGED: the implementation could not be driven (first at seed {}, during `{}`):\n{}",
            u.seed, u.entry, u.message
        );
    } else if !d.mismatches.is_empty() {
        let _ = writeln!(out, "verdict: NOT JUDGED: the run was not deterministic");
    } else if !report.idle_capabilities().is_empty() {
        let idle: Vec<&str> = report
            .idle_capabilities()
            .iter()
            .map(|c| c.name())
            .collect();
        let _ = writeln!(
            out,
            "verdict: NOT JUDGED: the implementation declares {} but never did it in {} (no task was ever listed as runnable and polled), so what it makes testable was never tested{}",
            idle.join(", "),
            plural(report.seed_count(), "seed"),
            if report.seed_count() < 20 {
                "; so few seeds may just never have needed it: run more"
            } else {
                ""
            }
        );
    } else if report.is_rerun() {
        if failed.is_empty() {
            let _ = writeln!(
                out,
                "verdict: no must rule failed on this seed (one seed exercises too little to judge conformance; run a range of seeds for that)"
            );
        } else {
            let _ = writeln!(out, "verdict: FAILED on this seed: {}", failed.join(", "));
        }
    } else if report.under_exercised() {
        let _ = writeln!(
            out,
            "verdict: NOT JUDGED: nothing failed, but the workloads never exercised must rules {}; run more seeds or more ops",
            unexercised.join(", ")
        );
    } else if report.conforming() && expected > 0 {
        let _ = writeln!(
            out,
            "verdict: AS EXPECTED: every must rule passed, except the {expected} known deviations, which still fail as recorded"
        );
    } else if report.conforming() {
        let _ = writeln!(
            out,
            "verdict: CONFORMING: every must rule was checked and passed"
        );
    } else {
        let mut why = Vec::new();
        if !failed.is_empty() {
            why.push(format!("must rules failed: {}", failed.join(", ")));
        }
        if !untested.is_empty() {
            why.push(format!("must rules not tested: {}", untested.join(", ")));
        }
        if !unexercised.is_empty() {
            why.push(format!(
                "must rules not exercised: {}",
                unexercised.join(", ")
            ));
        }
        let passed_unexpectedly: Vec<&str> = report
            .rules
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::UnexpectedPass { .. }))
            .map(|r| r.rule.id())
            .collect();
        if !passed_unexpectedly.is_empty() {
            why.push(format!(
                "known deviations that no longer fail: {}",
                passed_unexpectedly.join(", ")
            ));
        }
        if !report.stale.is_empty() {
            why.push(format!("{} stale deviations", report.stale.len()));
        }
        let _ = writeln!(out, "verdict: NOT CONFORMING: {}", why.join("; "));
    }
    if !failed_should.is_empty() {
        let _ = writeln!(
            out,
            "note: should rules failed: {} (reported; they do not affect the verdict)",
            failed_should.join(", ")
        );
    }
    out
}

/// Timings of a conformance run, one line (for stderr: it varies).
pub fn timing_line(report: &Report) -> String {
    let secs = report.run_time.as_secs_f64().max(1e-9);
    let steps = report.counts.ops + report.counts.polls;
    format!(
        "time: {:.2} s for {} seeds ({:.0} seeds/s, {:.0} simulated ops/s counting ops and polls), shrinking {:.2} s",
        secs,
        report.seed_count(),
        report.seed_count() as f64 / secs,
        steps as f64 / secs,
        report.shrink_time.as_secs_f64()
    )
}

/// The JSON document of a conformance run.
pub fn to_json(report: &Report) -> Value {
    let info = &report.implementation;
    let rules: Vec<Value> = report
        .rules
        .iter()
        .map(|r| {
            let mut v = json!({
                "id": r.rule.id(),
                "level": r.rule.level().to_string(),
                "verdict": r.verdict.word(),
                "checks": r.checks,
                "seed": r.failure.as_ref().map(|f| f.seed),
                "repro": r.failure.as_ref().map(|f| f.repro.clone()),
            });
            if let Verdict::NotTested { missing } = &r.verdict {
                v["missing_capabilities"] =
                    json!(missing.iter().map(|c| c.name()).collect::<Vec<_>>());
            }
            if let Verdict::ExpectedFailure { reason } | Verdict::UnexpectedPass { reason } =
                &r.verdict
            {
                v["deviation"] = json!(reason);
            }
            if let Some(f) = &r.failure {
                v["message"] = json!(f.message);
                v["failing_seeds"] = json!(f.failing_seeds);
                v["trace"] = json!(display_path(&f.trace));
                v["full_trace"] = json!(display_path(&f.full_trace));
                v["replay"] = json!(f.replay);
                v["trace_ops"] = json!(f.trace_ops);
                v["trace_entries"] = json!(f.trace_entries);
                v["fault"] = json!(f.fault);
                v["transcript"] = json!(f.transcript.as_ref().map(|p| display_path(p)));
            }
            v
        })
        .collect();
    let (first, _) = report.seeds.bounds();
    let mut report_json = json!({
        "implementation": report.target,
        "language": info.language,
        "version": info.version,
        "capabilities": info.capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "seeds": report.seed_count(),
        "first_seed": first,
        "ops_per_seed": report.ops_per_seed,
        "ops": report.counts.ops,
        "polls": report.counts.polls,
        "observations": report.counts.observations,
        "seconds": report.run_time.as_secs_f64(),
        "conforming": report.conforming(),
        "success": report.success(),
        "judged": report.judged(),
        "determinism": {
            "checked": report.determinism.checked,
            "mismatches": report.determinism.mismatches,
        },
        "expectations": report.expectations.as_ref().map(|p| display_path(p)),
        "stale_deviations": report
            .stale
            .iter()
            .map(|(rule, why)| json!({"rule": rule.id(), "why": why}))
            .collect::<Vec<_>>(),
        "unjudgeable": report.unjudgeable.as_ref().map(|u| json!({
            "seed": u.seed,
            "entry": u.entry,
            "message": u.message,
        })),
        "rules": rules,
    });
    if let Seeds::Shard {
        start,
        count,
        index,
        of,
    } = report.seeds
    {
        report_json["shard"] = json!({
            "index": index,
            "of": of,
            "first_seed": start,
            "seeds": count,
        });
    }
    report_json
}

/// The console table of a mutant hunt.
pub fn render_mutants(results: &[MutantResult], max_seeds: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<10} {:<10} {:<6} {:>5} {:>8} {:>7} {:>8}",
        "mutant", "targets", "caught by", "level", "seed", "seconds", "ops", "entries"
    );
    for r in results {
        let dash = || "-".to_owned();
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:<10} {:<6} {:>5} {:>8.3} {:>7} {:>8}",
            r.mutant.name(),
            r.target_rule,
            r.rule
                .map_or_else(|| "SURVIVED".to_owned(), |x| x.id().to_owned()),
            r.rule.map_or_else(dash, |x| x.level().to_string()),
            r.seed.map_or_else(dash, |s| s.to_string()),
            r.time.as_secs_f64(),
            r.trace_ops.map_or_else(dash, |s| s.to_string()),
            r.trace_entries.map_or_else(dash, |s| s.to_string()),
        );
    }
    let killed = results.iter().filter(|r| r.killed).count();
    let ops: Vec<usize> = results.iter().filter_map(|r| r.trace_ops).collect();
    let _ = writeln!(
        out,
        "\n{} mutants: {} killed, {} survived (budget {} each)",
        results.len(),
        killed,
        results.len() - killed,
        plural(max_seeds, "seed")
    );
    if let (Some(min), Some(max)) = (ops.iter().min(), ops.iter().max()) {
        let _ = writeln!(out, "shrunk traces: {min} to {max} ops");
    }
    for r in results.iter().filter(|r| !r.killed) {
        let _ = writeln!(
            out,
            "SURVIVED: {} ({}) was not caught in {}",
            r.mutant.name(),
            r.target_rule,
            plural(r.seeds_tried, "seed")
        );
    }
    for r in results.iter().filter(|r| r.killed) {
        if let (Some(repro), Some(message)) = (&r.repro, &r.message) {
            let _ = writeln!(out, "\n{}: {}\n  {}", r.mutant.name(), message, repro);
        }
    }
    out
}

/// The JSON document of a mutant hunt.
pub fn mutants_to_json(results: &[MutantResult]) -> Value {
    json!({
        "mutants": results.iter().map(|r| json!({
            "name": r.mutant.name(),
            "killed": r.killed,
            "rule": r.rule.map(|x| x.id()),
            "rule_level": r.rule.map(|x| x.level().to_string()),
            "target_rule": r.target_rule,
            "seed": r.seed,
            "seeds_tried": r.seeds_tried,
            "seconds": r.time.as_secs_f64(),
            "shrink_seconds": r.shrink_time.as_secs_f64(),
            "trace_ops": r.trace_ops,
            "trace_entries": r.trace_entries,
            "trace": r.trace.as_ref().map(|p| display_path(p)),
            "message": r.message,
        })).collect::<Vec<_>>()
    })
}

/// The report as JUnit XML: one test suite, one test case per rule. A failed
/// rule (or a `must` rule not exercised, or an unexpected pass) is a
/// failure; a rule not tested is skipped; an expected failure is skipped with
/// the deviation as its message. A run that could not be judged is an error.
///
/// # Errors
/// If the XML cannot be written.
pub fn to_junit(report: &Report) -> Result<String, String> {
    use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("scopebus conformance: {}", report.target));
    suite.set_time(report.run_time);
    for r in &report.rules {
        let failure = |message: String, description: String| {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(message).set_description(description);
            status
        };
        let skipped = |message: String| {
            let mut status = TestCaseStatus::skipped();
            status.set_message(message);
            status
        };
        let status = match &r.verdict {
            Verdict::Passed => TestCaseStatus::success(),
            Verdict::Failed => {
                let f = r.failure.as_ref();
                failure(
                    f.map_or_else(|| "failed".to_owned(), |f| f.message.clone()),
                    f.map_or_else(String::new, |f| {
                        let mut text = format!(
                            "seed {} ({} failing seeds)\nshrunk trace ({} ops):\n",
                            f.seed, f.failing_seeds, f.trace_ops
                        );
                        for (i, entry) in f.entries.iter().enumerate() {
                            text.push_str(&format!("  {i:>3}  {entry}\n"));
                        }
                        text.push_str(&format!("{}\n{}\n", f.replay, f.repro));
                        text
                    }),
                )
            }
            Verdict::NotExercised if r.rule.level() == Level::Must => failure(
                "not exercised: no seed checked this rule".to_owned(),
                String::new(),
            ),
            Verdict::UnexpectedPass { reason } => failure(
                format!("unexpected pass: listed as a known deviation ({reason}), but it passed"),
                String::new(),
            ),
            Verdict::NotExercised => skipped("not exercised".to_owned()),
            Verdict::NotTested { missing } => {
                let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
                skipped(format!("not tested: needs {}", names.join(", ")))
            }
            Verdict::ExpectedFailure { reason } => skipped(format!("expected failure: {reason}")),
        };
        let mut case = TestCase::new(r.rule.id(), status);
        case.set_classname(format!("scopebus.{}", r.rule.level()));
        suite.add_test_case(case);
    }
    if let Some(u) = &report.unjudgeable {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message("the implementation could not be driven")
            .set_description(format!(
                "seed {}, during `{}`: {}",
                u.seed, u.entry, u.message
            ));
        suite.add_test_case(TestCase::new("protocol", status));
    }
    let mut junit = Junit::new("scopebus");
    junit.add_test_suite(suite);
    junit
        .to_string()
        .map_err(|e| format!("cannot write JUnit XML: {e}"))
}
