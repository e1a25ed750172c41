//! What the runner does with broken adapters: each failure mode of a foreign
//! process gets a clear verdict, nothing hangs the runner, nothing is lost,
//! nothing passes by default. The adapters are `scopebus-broken-adapter MODE`:
//! the reference bus, broken on purpose at the first op.

mod support;

use scopebus_conformance::rules::Rule;
use scopebus_conformance::runner::{
    BREAKER, Campaign, Report, RuleFailure, RuleResult, Seeds, StopKind, run,
};
use scopebus_conformance::stdio::{AdapterCommand, AdapterPool};
use scopebus_conformance::target::Target;
use scopebus_sim::op::{Entry, TaskRef};
use scopebus_sim::shrink::Budget;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn adapter(mode: &str, timeout: Duration) -> Target {
    support::broken_adapter(mode, timeout)
}

fn campaign(mode: &str, timeout: Duration) -> Campaign {
    Campaign {
        target: adapter(mode, timeout),
        seeds: Seeds::range(0, 4).expect("a range"),
        ops: 30,
        jobs: 1,
        out_dir: std::env::temp_dir()
            .join(format!("scopebus-broken-{mode}-{}", std::process::id())),
        shrink: Budget {
            replays: 40,
            time: Duration::from_secs(3),
        },
        progress: false,
        expectations: None,
        profile: Default::default(),
        deadline: None,
    }
}

fn judged(mode: &str) -> Report {
    run(&campaign(mode, Duration::from_secs(5))).unwrap_or_else(|e| panic!("{mode}: {e}"))
}

/// The ROBUST-1 failure of a judged report, which must be a fault.
fn robust_fault(report: &Report) -> &RuleFailure {
    assert!(report.unjudgeable.is_none());
    let robust = report
        .rules
        .iter()
        .find(|r| r.rule == Rule::Robust1)
        .expect("ROBUST-1");
    let failure = robust.failure().expect("ROBUST-1 failed");
    assert!(failure.fault);
    failure
}

/// The rules that failed, with their failures.
fn failed(report: &Report) -> Vec<&RuleResult> {
    report
        .rules
        .iter()
        .filter(|r| r.failure().is_some())
        .collect()
}

#[test]
fn a_well_behaved_adapter_is_judged_normally() {
    let report = judged("well");
    assert!(report.unjudgeable.is_none());
    assert!(
        report.rules.iter().all(|r| r.failure().is_none()),
        "no failure on the reference"
    );
}

fn assert_unjudgeable(mode: &str, needle: &str) {
    let report = judged(mode);
    let unjudged = report
        .unjudgeable
        .as_ref()
        .unwrap_or_else(|| panic!("{mode}: the run was judged"));
    assert!(
        unjudged.message.contains(needle),
        "{mode}: the message should say `{needle}`: {}",
        unjudged.message
    );
    assert!(
        !report.conforming() && !report.success(),
        "{mode}: never a pass"
    );
    let text = scopebus_conformance::report::render(&report);
    assert!(text.contains("verdict: NOT JUDGED"), "{mode}: {text}");
}

#[test]
fn an_adapter_that_lists_tasks_but_never_runs_them_cannot_be_judged() {
    // Answering every poll with "nothing ran" would hide every race the
    // scheduling and preemption capabilities exist to test.
    assert_unjudgeable("idle-poll", "was listed as runnable just before");
}

#[test]
fn stderr_that_is_not_utf8_does_not_break_a_good_adapter() {
    let report = judged("latin1-stderr");
    assert!(report.unjudgeable.is_none(), "{:?}", report.unjudgeable);
    assert!(
        report.rules.iter().all(|r| r.failure().is_none()),
        "no failure on the reference"
    );
}

#[test]
fn a_hang_while_listing_runnable_tasks_is_robust_1_and_says_so() {
    let report = run(&campaign("hang-runnable", Duration::from_millis(300))).expect("runs");
    assert!(report.unjudgeable.is_none());
    let failed = failed(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].rule, Rule::Robust1);
    let message = &failed[0].failure().expect("a failure").message;
    assert!(
        message.contains("while listing the runnable tasks") && message.contains("runnable"),
        "{message}"
    );
}

#[test]
fn garbage_on_stdout_cannot_be_judged() {
    assert_unjudgeable("garbage", "this is not JSON");
}

#[test]
fn a_reply_to_another_request_cannot_be_judged() {
    assert_unjudgeable("wrong-id", "where id");
}

#[test]
fn a_reply_outside_the_schema_cannot_be_judged() {
    assert_unjudgeable("extra-field", "unknown field `surprise`");
}

#[test]
fn an_overlong_reply_cannot_be_judged() {
    assert_unjudgeable("long-line", "longer than");
}

#[test]
fn logs_on_stdout_cannot_be_judged() {
    assert_unjudgeable("stdout-noise", "INFO: a log line");
}

#[test]
fn a_crash_is_a_robust_1_failure_with_exit_status_and_stderr() {
    let report = judged("crash");
    let failure = robust_fault(&report);
    assert!(
        failure.message.contains("exit status: 3"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("boom: simulated crash"),
        "{}",
        failure.message
    );
    // The repro and the transcript are kept.
    assert!(failure.trace.exists());
    let transcript = failure.transcript.as_ref().expect("a transcript");
    let text = std::fs::read_to_string(transcript).expect("readable");
    assert!(text.contains("\"type\":\"hello\""), "{text}");
    assert!(!report.success());
}

#[test]
fn a_crash_in_a_poll_the_runner_chose_is_in_the_trace_and_reproduces() {
    let report = judged("crash-on-poll");
    let failure = robust_fault(&report);
    assert!(failure.message.contains("\"poll\""), "{}", failure.message);
    // The poll the adapter died in ends the trace, so the trace replays to
    // the same crash: a deterministic adapter is not reported as flaky.
    assert!(
        matches!(failure.entries.last(), Some(Entry::Poll(TaskRef::Sub(_)))),
        "{:?}",
        failure.entries.last()
    );
    assert!(!failure.reproduction.flaky(), "{:?}", failure.reproduction);
}

#[test]
fn a_hang_is_a_failure_with_a_repro_and_does_not_hang_the_runner() {
    let started = Instant::now();
    let report = run(&campaign("hang", Duration::from_millis(300))).expect("runs");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the runner hung"
    );
    assert!(report.unjudgeable.is_none());
    // Each seed hangs on its first op, which differs from seed to seed: each
    // counts against the rule that op was checking, with a repro.
    let failed = failed(&report);
    assert!(!failed.is_empty());
    for r in &failed {
        assert!(
            matches!(
                r.rule,
                Rule::Robust1 | Rule::Send1 | Rule::Missing1 | Rule::Wake1
            ),
            "{}: a hang on an open bus",
            r.rule
        );
        let failure = r.failure().expect("a failure");
        assert!(failure.fault);
        // A settle gets ten times the deadline.
        assert!(
            failure.message.contains("within 300 ms")
                || (failure.message.contains("\"settle\"")
                    && failure.message.contains("within 3000 ms")),
            "{}",
            failure.message
        );
        assert!(failure.repro.contains("--seed"));
        assert!(failure.trace.exists());
    }
    assert!(!report.success());
    // A hang is a verdict (exit 1), though the adapter never got as far as
    // doing what it declares (`schedule`): more seeds cannot help.
    assert!(report.judged());
    assert_eq!(report.exit_code(), 1);
    assert!(
        scopebus_conformance::report::render(&report).contains("verdict: NOT CONFORMING"),
        "{}",
        scopebus_conformance::report::render(&report)
    );
}

/// An adapter that hangs in every seed: after a few runs in a row (the
/// layout probe's counts as one) the runner starts no more, cuts the seeds
/// in flight, and reports what it has (the failures, with
/// repros) and why it stopped, as a verdict (exit 1). A thousand seeds end
/// in seconds, not a thousand timeouts.
#[test]
fn an_adapter_that_always_hangs_stops_the_run_early_with_a_verdict() {
    for mode in ["hang", "crash"] {
        let mut c = campaign(mode, Duration::from_millis(200));
        c.seeds = Seeds::range(0, 1000).expect("a range");
        c.jobs = 2;
        let started = Instant::now();
        let report = run(&c).expect("runs");
        assert!(started.elapsed() < Duration::from_secs(60), "{mode}");
        let stopped = report.stopped.as_ref().expect("stopped early");
        assert_eq!(stopped.kind, StopKind::Broke, "{mode}");
        assert!(
            (u64::from(BREAKER) - 1..20).contains(&stopped.seeds_run),
            "{mode}: {stopped:?}"
        );
        assert_eq!(report.exit_code(), 1, "{mode}");
        let failed = failed(&report);
        assert!(!failed.is_empty(), "{mode}");
        for r in failed {
            let f = r.failure().expect("a failure");
            assert!(f.fault && f.trace.exists(), "{mode}: {f:?}");
        }
        let text = scopebus_conformance::report::render(&report);
        assert!(
            text.contains("STOPPED EARLY") && text.contains("in a row"),
            "{text}"
        );
        let json = scopebus_conformance::report::to_json(&report);
        assert_eq!(json["stopped"]["reason"], "broke");
    }
}

/// An adapter that hangs at `settle`, which gets ten times the timeout:
/// shrinking and the reruns keep their time budgets (1 s here, and 5 s)
/// though one replay would outlast both: each wait is cut at the budget's
/// end, and a replay cut short counts for nothing.
#[test]
fn shrinking_keeps_its_budget_against_an_adapter_that_hangs_at_settle() {
    let mut c = campaign("hang-settle", Duration::from_millis(1000));
    c.seeds = Seeds::range(0, 1).expect("a range");
    c.shrink.time = Duration::from_secs(1);
    let report = run(&c).expect("runs");
    // One replay of the failing trace alone would wait 10 s at its settle.
    assert!(
        report.shrink_time < Duration::from_secs(9),
        "{:?}",
        report.shrink_time
    );
    let wake = &report.rules[Rule::Wake1.index()];
    let failure = wake.failure().expect("WAKE-1 failed: a hang at settle");
    assert!(failure.fault && failure.trace.exists());
    assert_eq!(report.exit_code(), 1);
}

/// `--deadline`: no seed starts after it, a wait in flight is cut at it,
/// and a run that stopped so before any must rule failed is not judged
/// (exit 2), saying how far it got.
#[test]
fn a_deadline_stops_the_run_and_says_how_far_it_got() {
    let mut c = campaign("well", Duration::from_secs(5));
    c.seeds = Seeds::range(0, 1_000_000).expect("a range");
    c.ops = 200;
    c.jobs = 2;
    c.deadline = Some(Duration::from_secs(2));
    let started = Instant::now();
    let report = run(&c).expect("runs");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let stopped = report.stopped.as_ref().expect("stopped");
    assert_eq!(stopped.kind, StopKind::Deadline);
    assert!(stopped.seeds_run > 0 && stopped.seeds_run < 1_000_000);
    assert_eq!(report.seed_count(), stopped.seeds_run);
    assert_eq!(report.exit_code(), 2);
    let text = scopebus_conformance::report::render(&report);
    assert!(text.contains("NOT JUDGED: the run stopped after"), "{text}");
}

#[test]
fn a_wrong_protocol_version_is_refused_before_anything_runs() {
    let error = run(&campaign("wrong-protocol", Duration::from_secs(5))).expect_err("refused");
    assert!(
        error.contains("protocol 2") && error.contains("speaks 1"),
        "{error}"
    );
}

#[test]
fn a_missing_handshake_is_refused_before_anything_runs() {
    let error = run(&campaign("no-hello", Duration::from_secs(5))).expect_err("refused");
    assert!(error.contains("`ok` to `hello`"), "{error}");
}

#[test]
fn an_adapter_that_does_not_start_is_refused_clearly() {
    let target = Target::Stdio {
        name: "missing".into(),
        pool: AdapterPool::new(
            AdapterCommand::parse("/no/such/adapter --flag").expect("parses"),
            Duration::from_secs(1),
        ),
    };
    let mut c = campaign("well", Duration::from_secs(1));
    c.target = target;
    let error = run(&c).expect_err("refused");
    assert!(
        error.contains("cannot start the adapter `/no/such/adapter --flag`"),
        "{error}"
    );
}

/// An adapter whose bus loses an event in a random fraction of runs: every
/// failure it causes is reported as flaky, with how often its seed and its
/// shrunk trace failed again, the transcript of a passing run, and no
/// command printed as if it reproduced the failure.
#[test]
fn a_nondeterministic_adapter_is_reported_as_flaky() {
    let mut c = campaign("flaky", Duration::from_secs(5));
    c.seeds = Seeds::range(0, 80).expect("a range");
    c.ops = 60;
    if let Target::Stdio { name, .. } = &c.target {
        let pool = AdapterPool::new(
            AdapterCommand {
                program: PathBuf::from(env!("CARGO_BIN_EXE_scopebus-broken-adapter")),
                args: vec!["flaky".to_owned()],
                env: vec![("SCOPEBUS_FLAKY_PERCENT".into(), "30".into())],
            },
            Duration::from_secs(5),
        );
        c.target = Target::Stdio {
            name: name.clone(),
            pool,
        };
    }
    let report = run(&c).expect("runs");
    let flaky: Vec<_> = report.flaky().collect();
    assert!(!flaky.is_empty(), "no flaky failure in 80 seeds");
    let text = scopebus_conformance::report::render(&report);
    assert!(text.contains("FLAKY"), "{text}");
    for (rule, f) in &flaky {
        let r = &f.reproduction;
        assert!(r.seed_runs >= 2 && r.trace_runs >= 2, "{rule}: {r:?}");
        assert!(
            r.seed_failures < r.seed_runs || r.trace_failures < r.trace_runs,
            "{rule}"
        );
        assert!(
            !text.contains(&format!("replay: {}", f.replay))
                && !text.contains(&format!("rerun:  {}", f.repro)),
            "{rule}: a command is printed as if it reproduced the failure"
        );
        assert!(
            text.contains(&format!(
                "replay (failed {} of {} times): {}",
                r.trace_failures, r.trace_runs, f.replay
            )),
            "{rule}: {text}"
        );
        let passing = r.passing_transcript.as_ref().expect("a passing transcript");
        assert!(passing.is_file(), "{}", passing.display());
    }
    let json = scopebus_conformance::report::to_json(&report);
    let marked = json["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|r| r["failures"].as_array().expect("failures"))
        .filter(|f| f["flaky"] == true && f["reproduced"]["seed_runs"].as_u64() >= Some(2))
        .count();
    assert_eq!(marked, flaky.len());
    let junit = scopebus_conformance::report::to_junit(&report).expect("junit");
    assert!(junit.contains("FLAKY"));
}

/// The processes alive with `SCOPEBUS_TEST_MARK=token` in their environment.
fn marked(token: &str) -> Vec<u32> {
    let entry = format!("SCOPEBUS_TEST_MARK={token}");
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/environ"))
                        .map(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An adapter whose child left its session and process group (`setsid`)
/// and holds its stdout open: the child dies with each session (a
/// process-group kill alone would miss it), in a run that ends normally and
/// in one whose adapter hangs and is killed.
#[test]
fn a_child_that_left_the_process_group_dies_with_the_session() {
    for (mode, timeout) in [("setsid-child", 5_000), ("hang", 300)] {
        let token = format!("{mode}-{}", std::process::id());
        let mut c = campaign(mode, Duration::from_millis(timeout));
        c.target = support::broken_adapter_with(
            mode,
            Duration::from_millis(timeout),
            &[
                ("SCOPEBUS_TEST_MARK", &token),
                // Every process of this adapter starts a sleeper of its own,
                // out of its group.
                ("SCOPEBUS_ALSO_ORPHAN", "1"),
            ],
        );
        let report = run(&c).expect("runs");
        drop(c);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = marked(&token);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = marked(&token);
        }
        for pid in &left {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        assert!(left.is_empty(), "{mode}: left behind: {left:?}");
        drop(report);
    }
}

/// Replies that come just over the timeout, or a byte at a time (each
/// byte in time, the line not): each is a hang, so a failure with a repro
/// (exit 1), and the run stops early instead of waiting out every seed.
#[test]
fn late_and_trickled_replies_are_hangs_and_a_verdict() {
    for mode in ["slow", "trickle"] {
        let mut c = campaign(mode, Duration::from_millis(200));
        c.target = support::broken_adapter_with(
            mode,
            Duration::from_millis(200),
            &[("SCOPEBUS_SLOW_MS", "300")],
        );
        c.seeds = Seeds::range(0, 1000).expect("a range");
        c.jobs = 2;
        let started = Instant::now();
        let report = run(&c).expect("runs");
        assert!(started.elapsed() < Duration::from_secs(60), "{mode}");
        assert_eq!(report.exit_code(), 1, "{mode}");
        assert!(report.stopped.is_some(), "{mode}");
        for r in failed(&report) {
            let f = r.failure().expect("a failure");
            assert!(f.message.contains("within 200 ms"), "{mode}: {}", f.message);
        }
    }
}

/// 200 MB on stderr (read, and only its tail kept) does not break an
/// adapter that answers well.
#[test]
fn a_flood_on_stderr_does_not_break_a_good_adapter() {
    let report = judged("stderr-flood");
    assert!(report.unjudgeable.is_none(), "{:?}", report.unjudgeable);
    assert!(
        report.rules.iter().all(|r| r.failure().is_none()),
        "no failure on the reference"
    );
}
