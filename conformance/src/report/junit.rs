//! The report as JUnit XML, for CI systems: one test suite, one test case
//! per rule.

use crate::runner::{Report, RuleFailure, RuleResult, Verdict};
use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use scopebus_sim::rules::Level;

/// The report as JUnit XML. A failed rule (or a `must` rule not exercised,
/// or an unexpected pass) is a failure, whose description lists every
/// failure mode with its seed, shrunk trace, commands and, if flaky, how
/// often it showed again; a rule not tested is skipped; an expected failure
/// is skipped with the deviation as its message. A run that could not be
/// judged is an error.
///
/// # Errors
/// If the XML cannot be written.
pub fn to_junit(report: &Report) -> Result<String, String> {
    let mut suite = TestSuite::new(format!(
        "scopebus conformance: {} (profile {})",
        report.target, report.profile
    ));
    suite.set_time(report.run_time);
    for r in &report.rules {
        let mut case = TestCase::new(r.rule.id(), status(r));
        case.set_classname(format!("scopebus.{}", r.level));
        if r.partial > 0 {
            case.set_system_out(format!(
                "{} of {} checks compared retained events only: the implementation reported no live-subscription counts",
                r.partial, r.checks
            ));
        }
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
    if let Some(stopped) = &report.stopped {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message("the run stopped before its last seed")
            .set_description(format!(
                "{}; {} of {} seeds ran",
                stopped.message,
                stopped.seeds_run,
                report.seeds.bounds().1
            ));
        suite.add_test_case(TestCase::new("stopped", status));
    }
    let mut junit = Junit::new("scopebus");
    junit.add_test_suite(suite);
    junit
        .to_string()
        .map_err(|e| format!("cannot write JUnit XML: {e}"))
}

fn status(r: &RuleResult) -> TestCaseStatus {
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
    match &r.verdict {
        Verdict::Passed => TestCaseStatus::success(),
        Verdict::Failed => failure(
            r.failure()
                .map_or_else(|| "failed".to_owned(), |f| f.message.clone()),
            r.failures
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Verdict::NotExercised if r.level == Level::Must => failure(
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
        Verdict::NotApplicable { missing } => {
            let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
            skipped(format!(
                "not applicable: needs {}, which its language or runtime lacks",
                names.join(", ")
            ))
        }
        Verdict::ExpectedFailure { reason } => skipped(format!("expected failure: {reason}")),
    }
}

/// One failure mode, as the description of a failed test case says it.
fn describe(f: &RuleFailure) -> String {
    let r = &f.reproduction;
    let mut text = format!(
        "[{}] seed {} ({} failing seeds): {}\n",
        f.mode, f.seed, f.failing_seeds, f.message
    );
    if r.flaky() {
        text.push_str(&format!(
            "FLAKY: the seed failed again in {} of {} runs, the shrunk trace in {} of {}; the commands show it only sometimes\n",
            r.seed_failures, r.seed_runs, r.trace_failures, r.trace_runs
        ));
    }
    text.push_str(&format!("shrunk trace ({} ops):\n", f.trace_ops));
    for (i, entry) in f.entries.iter().enumerate() {
        text.push_str(&format!("  {i:>3}  {entry}\n"));
    }
    text.push_str(&format!("{}\n{}\n", f.replay, f.repro));
    text
}
