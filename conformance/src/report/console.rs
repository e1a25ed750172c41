//! The console table of a conformance run (or of merged shards): a header,
//! one row per rule with every way it failed, counts, and the verdict.
//!
//! The text is deterministic: the same arguments print the same bytes
//! (timings are kept apart, in [`super::timing_line`], for stderr), unless
//! a failure is flaky, which the text then says.

use super::plural;
use crate::runner::{Report, RuleFailure, RuleResult, Seeds, Verdict, display_path};
use scopebus_sim::emulation::Emulated;
use scopebus_sim::model::Layout;
use scopebus_sim::rules::{Capability, Level, Profile};
use std::fmt::Write;

/// Traces longer than this are not printed inline, only saved.
const INLINE_TRACE: usize = 40;

/// Where the notes under a rule's row start.
const PAD: usize = 48;

/// The console table of a conformance run.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    for r in &report.rules {
        rule_row(&mut out, r, &report.implementation.emulates);
    }
    summary(&mut out, report);
    verdict_line(&mut out, report);
    out
}

/// The profile, and which rules it makes a `should`.
fn profile_line(report: &Report) -> String {
    let should: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.level == Level::Should)
        .map(|r| r.rule.id())
        .collect();
    match report.profile {
        Profile::Strict => {
            "profile: strict (the reference's full guarantees: every rule a must, SHARE-1 excepted)"
                .to_owned()
        }
        Profile::Docs => format!(
            "profile: docs (what the seed and Haiway's docs promise; extensions they are silent on are should: {})",
            should.join(", ")
        ),
    }
}

fn header(out: &mut String, report: &Report) {
    let info = &report.implementation;
    let caps: Vec<&str> = info.capabilities.iter().map(|c| c.name()).collect();
    let _ = writeln!(out, "scopebus conformance: --impl {}", report.target);
    let _ = writeln!(
        out,
        "implementation: {} {} ({})",
        info.name, info.version, info.language
    );
    let _ = writeln!(
        out,
        "runtime: {}",
        info.runtime
            .as_deref()
            .unwrap_or("not stated (the adapter's handshake has no `runtime`)")
    );
    let _ = writeln!(out, "capabilities: {}", caps.join(" "));
    if !info.emulates.is_empty() {
        let names: Vec<&str> = info.emulates.iter().map(|e| e.name()).collect();
        let _ = writeln!(
            out,
            "emulated by the adapter, not the library: {} (the rules they touch say so)",
            names.join(", ")
        );
    }
    let _ = writeln!(out, "{}", profile_line(report));
    if report.layout != Layout::SPEC {
        let rules: Vec<&str> = report
            .layout
            .differences()
            .iter()
            .map(|(_, rule)| rule.id())
            .collect();
        let _ = writeln!(
            out,
            "bus layout: {} (its layout probe shows it; what that explains is reported once, under {})",
            report.layout,
            rules.join(" or ")
        );
    }
    let each = match report.seeds {
        Seeds::One(_) => "(plus the run's closing sequence)",
        _ => "each (plus each run's closing sequence)",
    };
    let _ = writeln!(
        out,
        "{}, {} {each}\n",
        seeds_text(report.seeds),
        plural(report.ops_per_seed as u64, "workload op")
    );
    let _ = writeln!(
        out,
        "{:<10} {:<6} {:<18} {:>9}  summary (checks: situations that could break the rule, checked and held)",
        "rule", "level", "verdict", "checks"
    );
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

fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Failed => "FAILED",
        Verdict::NotTested { .. } => "not tested",
        Verdict::NotApplicable { .. } => "not applicable",
        Verdict::NotExercised => "NOT EXERCISED",
        Verdict::Passed => "passed",
        Verdict::ExpectedFailure { .. } => "expected failure",
        Verdict::UnexpectedPass { .. } => "UNEXPECTED PASS",
    }
}

/// The verdict as the rule's row shows it: a pass every check of which
/// could be made only in part says so.
fn verdict_cell(r: &RuleResult) -> &'static str {
    match r.verdict {
        Verdict::Passed if r.checks > 0 && r.partial == r.checks => "passed (partially)",
        ref v => verdict_word(v),
    }
}

fn rule_row(out: &mut String, r: &RuleResult, emulates: &[Emulated]) {
    let _ = writeln!(
        out,
        "{:<10} {:<6} {:<18} {:>9}  {}",
        r.rule.id(),
        r.level.to_string(),
        verdict_cell(r),
        r.checks,
        r.rule.summary()
    );
    let pad = " ".repeat(PAD);
    let emulated = Emulated::touching(emulates, r.rule);
    if !emulated.is_empty() {
        let names: Vec<&str> = emulated.iter().map(|e| e.name()).collect();
        let _ = writeln!(
            out,
            "{pad}about the adapter as much as the library: the adapter emulates {} (PROTOCOL.md, \"Emulated features\")",
            names.join(", ")
        );
    }
    match &r.verdict {
        Verdict::NotTested { missing } => {
            let m: Vec<&str> = missing.iter().map(|c| c.name()).collect();
            let _ = writeln!(
                out,
                "{pad}needs the capabilities: {} (the implementation lacks them)",
                m.join(", ")
            );
        }
        Verdict::NotApplicable { missing } => {
            let m: Vec<&str> = missing.iter().map(|c| c.name()).collect();
            let _ = writeln!(
                out,
                "{pad}needs {}: a feature of the language or runtime, which the implementation does not declare, so the rule is taken not to apply",
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
    if r.partial > 0 {
        let whole = if r.partial == r.checks {
            "partially tested: every check"
        } else {
            "partly tested:"
        };
        let _ = writeln!(
            out,
            "{pad}{whole} ({} of {}) compared retained events only: the implementation reported no live-subscription counts",
            r.partial, r.checks
        );
    }
    failure_modes(out, r);
}

/// Every explained way the rule failed, then the modes only counted.
fn failure_modes(out: &mut String, r: &RuleResult) {
    let pad = " ".repeat(PAD);
    if r.modes.len() > 1 {
        let _ = writeln!(
            out,
            "{pad}{} failure modes, {} in all; each with its lowest seed:",
            r.modes.len(),
            plural(r.failing_seeds(), "failing seed")
        );
    }
    for f in &r.failures {
        let label = match r.modes.len() > 1 {
            true => format!("[{}] ", f.mode),
            false => String::new(),
        };
        failure(out, f, &label);
    }
    let unexplained: Vec<String> = r
        .modes
        .iter()
        .filter(|m| !r.failures.iter().any(|f| f.mode == m.mode))
        .map(|m| format!("{} (seed {}, {})", m.mode, m.seed, plural(m.seeds, "seed")))
        .collect();
    if !unexplained.is_empty() {
        let _ = writeln!(out, "{pad}and, not shown: {}", unexplained.join("; "));
    }
}

fn failure(out: &mut String, f: &RuleFailure, label: &str) {
    let pad = " ".repeat(PAD);
    let more = match f.failing_seeds {
        0 | 1 => String::new(),
        2 => " (and 1 more seed)".to_owned(),
        n => format!(" (and {} more seeds)", n - 1),
    };
    let kind = if f.fault {
        "the implementation broke: "
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{pad}{label}seed {}{more}: {kind}{}",
        f.seed, f.message
    );
    let r = &f.reproduction;
    match (f.reattributed_from, r.flaky(), r.trace_flaky()) {
        (Some(from), true, false) => {
            let _ = writeln!(
                out,
                "{pad}(read as {from} on the full seed, which does not fail every time; the shrunk trace does, and on it diagnosis names this rule as its cause)"
            );
        }
        (Some(from), false, _) => {
            let _ = writeln!(
                out,
                "{pad}(read as {from} on the full seed; on the shrunk trace diagnosis names this must rule as its cause)"
            );
        }
        (Some(from), true, true) => {
            let _ = writeln!(
                out,
                "{pad}(counted under {from} on the full seed, by replays that a failure this unsteady cannot support: reported as its disagreement reads)"
            );
        }
        (None, ..) => {}
    }
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
    } else {
        let _ = writeln!(
            out,
            "{pad}  (longer than {INLINE_TRACE} entries, not shown here: `replay -v` below prints it)"
        );
    }
    commands(out, f);
}

/// The commands that show a failure again, labelled with how reliably they
/// do when the failure is flaky.
fn commands(out: &mut String, f: &RuleFailure) {
    let pad = " ".repeat(PAD);
    let r = &f.reproduction;
    let (replay, rerun) = match r.flaky() {
        true => {
            let _ = writeln!(
                out,
                "{pad}FLAKY: rerun on fresh instances, the seed failed this rule in {} of {} runs, the shrunk trace in {} of {}: \
                 the implementation is not deterministic, and these commands show the failure only sometimes",
                r.seed_failures, r.seed_runs, r.trace_failures, r.trace_runs
            );
            (
                format!(
                    "replay (failed {} of {} times)",
                    r.trace_failures, r.trace_runs
                ),
                format!(
                    "rerun (failed {} of {} times):",
                    r.seed_failures, r.seed_runs
                ),
            )
        }
        false if r.trace_runs == 0 => (
            "replay (not rerun: the time budget ran out first)".to_owned(),
            "rerun: ".to_owned(),
        ),
        false => ("replay".to_owned(), "rerun: ".to_owned()),
    };
    match &f.save_error {
        None => {
            let _ = writeln!(out, "{pad}{replay}: {}", f.replay);
        }
        Some(e) => {
            let _ = writeln!(out, "{pad}the traces could not be saved: {e}");
        }
    }
    let _ = writeln!(out, "{pad}{rerun} {}", f.repro);
    let failing = if r.flaky() { " of a failing run" } else { "" };
    if f.transcript.is_none() && r.flaky() && r.passing_transcript.is_some() {
        let _ = writeln!(
            out,
            "{pad}no transcript of a failing run: no rerun failed (only the run that found it)"
        );
    }
    if let Some(transcript) = &f.transcript {
        let _ = writeln!(
            out,
            "{pad}transcript{failing} of the adapter session: {}",
            display_path(transcript)
        );
    }
    if let Some(transcript) = &r.passing_transcript {
        let _ = writeln!(
            out,
            "{pad}transcript of a passing run: {}",
            display_path(transcript)
        );
    }
}

fn summary(out: &mut String, report: &Report) {
    let count =
        |pred: &dyn Fn(&Verdict) -> bool| report.rules.iter().filter(|r| pred(&r.verdict)).count();
    let known = match report.expectations.is_some() {
        true => format!(
            ", {}, {}",
            plural(
                count(&|v| matches!(v, Verdict::ExpectedFailure { .. })) as u64,
                "expected failure"
            ),
            match count(&|v| matches!(v, Verdict::UnexpectedPass { .. })) {
                1 => "1 unexpected pass".to_owned(),
                n => format!("{n} unexpected passes"),
            }
        ),
        false => String::new(),
    };
    let inapplicable = match count(&|v| matches!(v, Verdict::NotApplicable { .. })) {
        0 => String::new(),
        n => format!(", {n} not applicable"),
    };
    let _ = writeln!(
        out,
        "\nrules: {} passed, {} failed, {} not tested{inapplicable}, {} not exercised{known} (of {})",
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
    capability_notes(out, report);
    determinism_line(out, report);
}

fn capability_notes(out: &mut String, report: &Report) {
    let (caps, c) = (report.implementation.capabilities, &report.counts);
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
}

fn determinism_line(out: &mut String, report: &Report) {
    let d = &report.determinism;
    let flaky = report.flaky().count();
    let flaky = match flaky {
        0 => String::new(),
        1 => "; but 1 failure did not show every time it was rerun (FLAKY above)".to_owned(),
        n => format!("; but {n} failures did not show every time they were rerun (FLAKY above)"),
    };
    if d.mismatches.is_empty() {
        let _ = writeln!(
            out,
            "determinism: {} run twice, identical{flaky}",
            plural(d.checked, "seed")
        );
    } else {
        let _ = writeln!(
            out,
            "determinism: BROKEN: seeds {:?} gave different runs the second time{flaky}",
            d.mismatches
        );
        for (seed, first) in &d.differences {
            let _ = writeln!(out, "  seed {seed}: {first}");
        }
    }
}

fn must_with(report: &Report, pred: impl Fn(&Verdict) -> bool) -> Vec<&'static str> {
    report
        .rules
        .iter()
        .filter(|r| r.level == Level::Must && pred(&r.verdict))
        .map(|r| r.rule.id())
        .collect()
}

fn verdict_line(out: &mut String, report: &Report) {
    if let Some(s) = &report.stopped {
        let _ = writeln!(
            out,
            "STOPPED EARLY: {}; {} of {} ran, and everything above is about those",
            s.message,
            s.seeds_run,
            plural(report.seeds.bounds().1, "seed")
        );
    }
    let failed = must_with(report, |v| *v == Verdict::Failed);
    let line = if let Some(u) = &report.unjudgeable {
        format!(
            "NOT JUDGED: the implementation could not be driven (first at seed {}, during `{}`):\n{}",
            u.seed, u.entry, u.message
        )
    } else if !report.determinism.mismatches.is_empty() && !report.must_failed() {
        "NOT JUDGED: the run was not deterministic".to_owned()
    } else if let Some(stopped) = report.stopped.as_ref().filter(|_| !report.must_failed()) {
        format!(
            "NOT JUDGED: the run stopped after {} of {} before any must rule failed: {}",
            stopped.seeds_run,
            plural(report.seeds.bounds().1, "seed"),
            stopped.message
        )
    } else if !report.idle_capabilities().is_empty() && !report.must_failed() {
        idle_verdict(report)
    } else if report.is_rerun() {
        match failed.is_empty() {
            true => "no must rule failed on this seed (one seed exercises too little to judge conformance; run a range of seeds for that)".to_owned(),
            false => format!("FAILED on this seed: {}", failed.join(", ")),
        }
    } else if report.under_exercised() {
        format!(
            "NOT JUDGED: nothing failed, but the workloads never exercised must rules {}; run more seeds or more ops",
            must_with(report, |v| *v == Verdict::NotExercised).join(", ")
        )
    } else if report.conforming() {
        conforming_verdict(report)
    } else {
        not_conforming_verdict(report)
    };
    let _ = writeln!(out, "verdict: {line}");
    if report.flaky().next().is_some() {
        let _ = writeln!(
            out,
            "note: the implementation is not deterministic: failures marked FLAKY did not show every time they were rerun, so their commands reproduce them only sometimes"
        );
    }
    let failed_should: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.level == Level::Should && r.verdict == Verdict::Failed)
        .map(|r| r.rule.id())
        .collect();
    if !failed_should.is_empty() {
        let _ = writeln!(
            out,
            "note: should rules failed: {} (reported; they do not affect the verdict)",
            failed_should.join(", ")
        );
    }
}

fn idle_verdict(report: &Report) -> String {
    let idle: Vec<&str> = report
        .idle_capabilities()
        .iter()
        .map(|c| c.name())
        .collect();
    format!(
        "NOT JUDGED: the implementation declares {} but never did it in {} (no task was ever listed as runnable and polled), so what it makes testable was never tested{}",
        idle.join(", "),
        plural(report.seed_count(), "seed"),
        if report.seed_count() < 20 {
            "; so few seeds may just never have needed it: run more"
        } else {
            ""
        }
    )
}

fn conforming_verdict(report: &Report) -> String {
    let expected = report
        .rules
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::ExpectedFailure { .. }))
        .count();
    match expected {
        0 => "CONFORMING: every must rule was checked and passed".to_owned(),
        n => format!(
            "AS EXPECTED: every must rule passed, except the {n} known deviations, which still fail as recorded"
        ),
    }
}

fn not_conforming_verdict(report: &Report) -> String {
    let mut why = Vec::new();
    let lists = [
        (
            "must rules failed",
            must_with(report, |v| *v == Verdict::Failed),
        ),
        (
            "must rules not tested",
            must_with(report, |v| matches!(v, Verdict::NotTested { .. })),
        ),
        (
            "must rules not exercised",
            must_with(report, |v| *v == Verdict::NotExercised),
        ),
    ];
    for (what, rules) in lists {
        if !rules.is_empty() {
            why.push(format!("{what}: {}", rules.join(", ")));
        }
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
    format!("NOT CONFORMING: {}", why.join("; "))
}
