//! The conformance runner: verdicts, determinism across thread counts,
//! failures with working repros, and capabilities that make rules "not
//! tested" rather than passed.

use scopebus::mutants::Mutant;
use scopebus_conformance::iut::{Fault, ImplInfo, Implementation};
use scopebus_conformance::mutants::{Hunt, hunt};
use scopebus_conformance::report;
use scopebus_conformance::rules::{Capability, Rule};
use scopebus_conformance::runner::{Campaign, Seeds, Verdict, run};
use scopebus_conformance::target::Target;
use scopebus_sim::harness::replay;
use scopebus_sim::model::Mode;
use scopebus_sim::op::{Observation, Op, Reply, TaskRef};
use scopebus_sim::reference::ReferenceImpl;
use scopebus_sim::shrink::Budget;
use scopebus_sim::trace::TraceFile;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopebus-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn campaign(target: Target, count: u64, jobs: usize, name: &str) -> Campaign {
    Campaign {
        target,
        seeds: Seeds::Range { start: 0, count },
        ops: 200,
        jobs,
        out_dir: out_dir(name),
        shrink: Budget::default(),
        progress: false,
        expectations: None,
        profile: Default::default(),
        deadline: None,
    }
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let one = run(&campaign(Target::Mutant(Mutant::WakeOne), 150, 1, "j1")).unwrap();
    let two = run(&campaign(Target::Mutant(Mutant::WakeOne), 150, 2, "j2")).unwrap();
    // The rendered reports differ only in the output directory of traces.
    let strip =
        |r: &scopebus_conformance::runner::Report, dir: &str| report::render(r).replace(dir, "OUT");
    assert_eq!(
        strip(&one, &out_dir("j1").display().to_string()),
        strip(&two, &out_dir("j2").display().to_string())
    );
}

#[test]
fn a_failed_rule_comes_with_a_trace_that_reproduces_it() {
    let report = run(&campaign(Target::Mutant(Mutant::Lifo), 100, 0, "lifo")).unwrap();
    assert!(!report.conforming());
    let fifo = report.rules.iter().find(|r| r.rule == Rule::Fifo1).unwrap();
    assert_eq!(fifo.verdict, Verdict::Failed);
    let failure = fifo.failure().unwrap();
    assert!(
        failure
            .repro
            .starts_with("cargo xtask conformance --impl mutant:lifo --seed ")
    );
    assert!(failure.trace_ops <= failure.original_entries);
    let file = TraceFile::read(&failure.trace).unwrap();
    assert_eq!(file.implementation, "mutant:lifo");
    assert_eq!(file.failure.as_ref().unwrap().rule, Rule::Fifo1);
    let again = replay(&mut ReferenceImpl::new(Some(Mutant::Lifo)), &file.entries);
    assert_eq!(again.failure.unwrap().rule, Rule::Fifo1);
    // The unshrunk trace is kept too, and fails the same way.
    let full = TraceFile::read(&failure.full_trace).unwrap();
    assert!(full.entries.len() >= file.entries.len());
    let json = report::to_json(&report);
    let rule = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "FIFO-1")
        .unwrap();
    assert_eq!(rule["verdict"], "failed");
    assert_eq!(rule["seed"], failure.seed);
    assert_eq!(rule["repro"], failure.repro.as_str());
}

/// The reference bus, claiming fewer capabilities than it has.
struct Masked {
    inner: ReferenceImpl,
    without: Vec<Capability>,
}

impl Implementation for Masked {
    fn info(&self) -> ImplInfo {
        let mut info = self.inner.info();
        for c in &self.without {
            info.capabilities = info.capabilities.without(*c);
        }
        info.name = "masked".into();
        info
    }
    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        self.inner.apply(op)
    }
    fn runnable(&self) -> Vec<TaskRef> {
        self.inner.runnable()
    }
    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.inner.poll(task)
    }
    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.inner.wake(task)
    }
    fn take_observations(&mut self) -> Vec<Observation> {
        self.inner.take_observations()
    }
}

/// The reference bus, offering its runnable tasks in reverse order on
/// every other instance: correct, but not the same run twice.
struct Alternating {
    inner: ReferenceImpl,
    reversed: bool,
}

impl Implementation for Alternating {
    fn info(&self) -> ImplInfo {
        let mut info = self.inner.info();
        info.name = "alternating".into();
        // A preempted poll names its task by where it stands among the
        // runnable: reversed, that would be another task, not a choice.
        for c in [Capability::Preempt, Capability::Migrate] {
            info.capabilities = info.capabilities.without(c);
        }
        info
    }
    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        self.inner.apply(op)
    }
    fn runnable(&self) -> Vec<TaskRef> {
        let mut tasks = self.inner.runnable();
        if self.reversed {
            tasks.reverse();
        }
        tasks
    }
    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.inner.poll(task)
    }
    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
        self.inner.wake(task)
    }
    fn take_observations(&mut self) -> Vec<Observation> {
        self.inner.take_observations()
    }
}

#[test]
fn a_run_that_differs_says_where() {
    let made = Arc::new(AtomicUsize::new(0));
    let target = Target::Custom {
        name: "alternating".into(),
        factory: Arc::new(move || {
            Box::new(Alternating {
                inner: ReferenceImpl::new(None),
                reversed: made.fetch_add(1, Ordering::SeqCst) % 2 == 1,
            })
        }),
    };
    let report = run(&campaign(target, 300, 1, "alternating")).unwrap();
    let d = &report.determinism;
    assert!(!d.mismatches.is_empty(), "{}", report::render(&report));
    assert!(
        !report.conforming(),
        "a run that is not the same twice does not conform"
    );
    let (seed, first) = d
        .differences
        .first()
        .expect("the first mismatch is described");
    assert!(d.mismatches.contains(seed));
    assert!(first.contains("first differ at line"), "{first}");
    let text = report::render(&report);
    assert!(
        text.contains(&format!("seed {seed}: two more runs")),
        "{text}"
    );
    let json = report::to_json(&report);
    assert_eq!(json["determinism"]["differences"][0]["seed"], *seed);
    let back = report::from_json(&json).unwrap();
    assert_eq!(
        back.determinism, report.determinism,
        "the differences survive a merge's reading"
    );
}

/// The reference bus as a target that declares none of `without`.
fn masked(without: &'static [Capability]) -> Target {
    Target::Custom {
        name: "masked".into(),
        factory: Arc::new(move || {
            Box::new(Masked {
                inner: ReferenceImpl::new(None),
                without: without.to_vec(),
            })
        }),
    }
}

#[test]
fn missing_capabilities_make_rules_not_tested_never_passed() {
    let target = masked(&[
        Capability::Stats,
        Capability::Isolated,
        Capability::Schedule,
    ]);
    let report = run(&campaign(target, 200, 0, "masked")).unwrap();
    for r in &report.rules {
        match r.rule {
            Rule::Reclaim1 | Rule::Reclaim2 | Rule::Scope3 => {
                assert!(
                    matches!(r.verdict, Verdict::NotTested { .. }),
                    "{}: {:?}",
                    r.rule,
                    r.verdict
                );
            }
            _ => assert_eq!(r.verdict, Verdict::Passed, "{}", r.rule),
        }
    }
    assert!(!report.conforming(), "a must rule not tested is not a pass");
    let text = report::render(&report);
    assert!(text.contains("needs the capabilities: stats"), "{text}");
}

#[test]
fn missing_language_features_make_rules_not_applicable_and_still_conforming() {
    // (`Masked` forwards neither preempted polls nor migrations: those go
    // too.)
    let target = masked(&[
        Capability::Share,
        Capability::Reenter,
        Capability::Preempt,
        Capability::Migrate,
    ]);
    let report = run(&campaign(target, 200, 0, "masked")).unwrap();
    for r in &report.rules {
        match r.rule {
            Rule::Share1 | Rule::Reenter1 => assert!(
                matches!(r.verdict, Verdict::NotApplicable { .. }),
                "{}: {:?}",
                r.rule,
                r.verdict
            ),
            _ => assert_eq!(r.verdict, Verdict::Passed, "{}", r.rule),
        }
    }
    let text = report::render(&report);
    assert!(
        report.conforming(),
        "a rule that cannot apply does not count against conformance: {text}"
    );
    assert!(text.contains("2 not applicable"), "{text}");
    assert!(
        text.contains("needs reenter: a feature of the language"),
        "{text}"
    );
    // The JSON report says so, and reads back the same.
    let json = report::to_json(&report);
    let rule = |id: &str| {
        json["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(rule("REENTER-1")["verdict"], "not_applicable");
    let back = report::from_json(&json).unwrap();
    assert!(back.conforming(), "read back, it is judged the same");
}

#[test]
fn the_hunt_kills_every_mutant() {
    let results = hunt(&Hunt {
        mutants: Mutant::ALL.to_vec(),
        max_seeds: 1000,
        ops: 200,
        jobs: 0,
        out_dir: out_dir("hunt"),
        shrink: Budget::default(),
    })
    .unwrap();
    for r in &results {
        assert!(r.killed, "{} survived", r.mutant.name());
        assert!(r.trace.as_ref().unwrap().exists());
        // The waiter list is only rebuilt once 17 waiting subscriptions were
        // dropped, so those mutants' smallest traces are long by nature.
        let bound = if matches!(
            r.mutant,
            Mutant::CompactionLosesWakers | Mutant::CompactionKeepsGeneration
        ) {
            80
        } else {
            12
        };
        assert!(
            r.trace_ops.unwrap() <= bound,
            "{}: {:?}",
            r.mutant.name(),
            r.trace_ops
        );
    }
    let json = report::mutants_to_json(&results);
    assert_eq!(json["mutants"].as_array().unwrap().len(), Mutant::ALL.len());
    for key in ["name", "killed", "rule", "seed", "seconds", "trace_ops"] {
        assert!(json["mutants"][0].get(key).is_some(), "{key}");
    }
}

/// The union of the shards is the whole run: the merged JSON reports of
/// `--shard K/N` equal the unsharded report, apart from wall time (SPEC.md's
/// rules are judged the same; failures keep the lowest seed of any shard).
#[test]
fn merged_shards_equal_one_unsharded_run() {
    use scopebus_conformance::merge::merge_json;
    for (target, count, of) in [
        (Target::Reference, 120, 3),
        (Target::Mutant(Mutant::Lifo), 200, 4),
        (Target::Mutant(Mutant::WakeOne), 150, 2),
    ] {
        let dir = format!("shard-{target}");
        let mut whole = campaign(target.clone(), count, 2, &dir);
        let mut all = report::to_json(&run(&whole).unwrap());
        let mut shards = Vec::new();
        for index in (1..=of).rev() {
            whole.seeds = Seeds::shard(0, count, index, of).unwrap();
            let shard = report::to_json(&run(&whole).unwrap());
            assert_eq!(shard["shard"]["index"], index);
            shards.push(shard);
        }
        let mut merged = merge_json(&shards).unwrap();
        for key in ["seconds", "shrink_seconds"] {
            all[key] = 0.into();
            merged[key] = 0.into();
        }
        assert_eq!(merged, all, "{target}: {}", shards.len());
        // A missing or repeated shard is refused.
        assert!(merge_json(&shards[1..]).unwrap_err().contains("missing"));
        let mut twice = shards.clone();
        twice[0] = shards[1].clone();
        assert!(merge_json(&twice).is_err());
    }
}

#[test]
fn shards_are_disjoint_and_cover_the_range() {
    for (start, count, of) in [(0u64, 10u64, 3u64), (5, 1000, 7), (u64::MAX - 9, 10, 10)] {
        let mut next = start;
        for index in 1..=of {
            let (first, n) = Seeds::shard(start, count, index, of).unwrap().bounds();
            assert_eq!(first, next);
            assert!(n >= 1);
            next = first.wrapping_add(n);
        }
        assert_eq!(next, start.wrapping_add(count));
    }
    assert!(Seeds::shard(0, 2, 1, 3).is_err());
    assert!(Seeds::shard(0, 10, 0, 3).is_err());
    assert!(Seeds::shard(0, 10, 4, 3).is_err());
}

/// `merge` refuses what is not all the shards of one run, whole and well
/// typed, rather than merging it into a wrong verdict.
#[test]
fn merge_refuses_doctored_shards() {
    use scopebus_conformance::merge::merge_json;
    let mut c = campaign(Target::Mutant(Mutant::Lifo), 60, 2, "doctored");
    let shards: Vec<serde_json::Value> = (1..=3)
        .map(|k| {
            c.seeds = Seeds::shard(0, 60, k, 3).unwrap();
            report::to_json(&run(&c).unwrap())
        })
        .collect();
    assert!(merge_json(&shards).is_ok());
    let doctored = |edit: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let mut s = shards.clone();
        edit(&mut s);
        merge_json(&s)
    };
    type Edit = Box<dyn Fn(&mut Vec<serde_json::Value>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "no rules",
            Box::new(|s| s[0]["rules"] = serde_json::json!([])),
        ),
        (
            "fewer rules",
            Box::new(|s| {
                s[1]["rules"].as_array_mut().unwrap().truncate(3);
            }),
        ),
        (
            "index beyond N",
            Box::new(|s| {
                let mut extra = s[1].clone();
                extra["shard"]["index"] = 4.into();
                s.push(extra);
            }),
        ),
        (
            "N of 0",
            Box::new(|s| s.iter_mut().for_each(|r| r["shard"]["of"] = 0.into())),
        ),
        (
            "a slice that is not its shard's",
            Box::new(|s| s[1]["first_seed"] = 0.into()),
        ),
        (
            "checks as text",
            Box::new(|s| s[0]["rules"][0]["checks"] = "12".into()),
        ),
        (
            "a seed as text",
            Box::new(|s| {
                for r in s[0]["rules"].as_array_mut().unwrap() {
                    if !r["seed"].is_null() {
                        r["seed"] = "0".into();
                    }
                }
            }),
        ),
        (
            "mismatches not a list",
            Box::new(|s| s[2]["determinism"]["mismatches"] = "oops".into()),
        ),
        (
            "an unknown verdict",
            Box::new(|s| s[2]["rules"][1]["verdict"] = "fine".into()),
        ),
        (
            "a must rule made should",
            Box::new(|s| s[0]["rules"][3]["level"] = "should".into()),
        ),
        (
            "shards judged under different profiles",
            Box::new(|s| {
                s[1]["profile"] = "docs".into();
                for r in s[1]["rules"].as_array_mut().unwrap() {
                    let id = r["id"].as_str().unwrap().to_owned();
                    let rule = scopebus_sim::rules::Rule::from_id(&id).unwrap();
                    r["level"] = rule
                        .level_in(scopebus_sim::rules::Profile::Docs)
                        .to_string()
                        .into();
                }
            }),
        ),
        (
            "no profile",
            Box::new(|s| drop(s[2].as_object_mut().unwrap().remove("profile"))),
        ),
        (
            "more partial checks than checks (in the shard listed second)",
            Box::new(|s| {
                let reclaim = &mut s[1]["rules"][6];
                reclaim["partial_checks"] = (reclaim["checks"].as_u64().unwrap() + 5).into();
            }),
        ),
        (
            "partial checks on a rule that is never checked in part",
            Box::new(|s| {
                let task = &mut s[0]["rules"][18];
                task["partial_checks"] = task["checks"].clone();
            }),
        ),
        (
            "partial checks left out",
            Box::new(|s| {
                drop(
                    s[0]["rules"][6]
                        .as_object_mut()
                        .unwrap()
                        .remove("partial_checks"),
                )
            }),
        ),
        (
            "a rule replaced by a copy of another, everywhere",
            Box::new(|s| {
                for r in s.iter_mut() {
                    r["rules"][3] = r["rules"][0].clone();
                }
            }),
        ),
        (
            "a rule renamed, everywhere",
            Box::new(|s| {
                for r in s.iter_mut() {
                    r["rules"][3]["id"] = "BOGUS-9".into();
                }
            }),
        ),
        (
            "a failing seed outside its shard",
            Box::new(|s| {
                for r in s[0]["rules"].as_array_mut().unwrap() {
                    if !r["seed"].is_null() {
                        r["seed"] = 59.into();
                    }
                }
            }),
        ),
        (
            "a capability dropped from every shard's list, the rules that need it still passed",
            Box::new(|s| {
                for r in s.iter_mut() {
                    r["capabilities"]
                        .as_array_mut()
                        .unwrap()
                        .retain(|c| c != "cancel");
                }
            }),
        ),
        (
            "a rule missing a capability it does not need",
            Box::new(|s| s[0]["rules"][0]["missing_capabilities"] = serde_json::json!(["share"])),
        ),
        (
            "a passed rule with a failing seed",
            Box::new(|s| {
                s[1]["rules"][0]["seed"] = 25.into();
                s[1]["rules"][0]["failing_seeds"] = 1.into();
            }),
        ),
    ];
    for (what, edit) in cases {
        assert!(doctored(&*edit).is_err(), "{what}: merged anyway");
    }
}

/// A rule that fails in several ways shows each: grouped by the shape of
/// the first disagreement, each mode with its lowest seed, its own shrunk
/// trace (which replays to that rule and shape) and commands, in the
/// console, JSON and JUnit reports. The `late-subscribers-reopen` mutant
/// (Haiway 0.48's close) breaks CLOSE-3 by delivering to a subscription
/// made after close, and by hanging it.
#[test]
fn a_rule_that_fails_in_several_ways_shows_each_way() {
    let target = Target::Mutant(Mutant::LateSubscribersReopen);
    let report = run(&campaign(target.clone(), 300, 2, "modes")).unwrap();
    let close3 = &report.rules[Rule::Close3.index()];
    assert_eq!(close3.verdict, Verdict::Failed);
    let modes: Vec<_> = close3.failures.iter().map(|f| f.mode).collect();
    assert!(modes.len() >= 2, "one failure mode only: {modes:?}");
    for mode in [Mode::DeliveredAfterClose, Mode::NeverEnded] {
        assert!(modes.contains(&mode), "{mode} missing from {modes:?}");
    }
    let mut distinct = modes.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), modes.len(), "a mode shown twice");
    let counted: u64 = close3.modes.iter().map(|m| m.seeds).sum();
    assert_eq!(counted, close3.failing_seeds());
    for f in &close3.failures {
        let file = TraceFile::read(&f.trace).unwrap();
        let recorded = file.failure.as_ref().unwrap();
        assert_eq!((recorded.rule, recorded.mode), (Rule::Close3, Some(f.mode)));
        let mut imp = target.instantiate();
        let again = target
            .diagnosis_probed()
            .attribute(replay(&mut *imp, &file.entries));
        let again = again.failure.unwrap();
        assert_eq!(
            (again.rule, again.mode),
            (Rule::Close3, f.mode),
            "{}",
            f.mode
        );
    }
    let text = report::render(&report);
    assert!(text.contains("failure modes"), "{text}");
    let json = report::to_json(&report);
    let rule = &json["rules"][Rule::Close3.index()];
    assert!(rule["modes"].as_array().unwrap().len() >= 2);
    assert_eq!(rule["failures"].as_array().unwrap().len(), modes.len());
    let junit = report::to_junit(&report).unwrap();
    for mode in &modes {
        assert!(
            text.contains(&format!("[{mode}]")),
            "{mode} not in the table"
        );
        assert!(junit.contains(&format!("[{mode}]")), "{mode} not in JUnit");
    }
}

/// What a hostile review found `merge` could be fooled with, each refused
/// or judged as an unsharded run would: sizes from the file never drive an
/// allocation (one shard of a billion), counts never wrap, a rule every
/// shard calls passed with 0 checks is NOT EXERCISED, and the seeds a report
/// names (unjudged, nondeterministic) lie in its shard.
#[test]
fn merge_cannot_be_fooled_by_sizes_counts_or_empty_passes() {
    use scopebus_conformance::merge::merge_json;
    let mut c = campaign(Target::Reference, 40, 2, "fooled");
    let shards: Vec<serde_json::Value> = (1..=2)
        .map(|k| {
            c.seeds = Seeds::shard(0, 40, k, 2).unwrap();
            report::to_json(&run(&c).unwrap())
        })
        .collect();
    // 1. One shard of a billion: refused at once, naming a few of the
    //    missing ones, not all 999,999,999.
    let mut one = shards[0].clone();
    one["shard"] = serde_json::json!({"index": 1, "of": 1_000_000_000u64, "first_seed": 0, "seeds": 1_000_000_000_000u64});
    one["seeds"] = 1000.into();
    let started = std::time::Instant::now();
    let error = merge_json(&[one]).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(error.contains("missing") && error.len() < 1000, "{error}");
    // 2. Counts that would wrap.
    let mut wrapped = shards.clone();
    wrapped[0]["rules"][0]["checks"] = u64::MAX.into();
    wrapped[1]["rules"][0]["checks"] = 1.into();
    let error = merge_json(&wrapped).unwrap_err();
    assert!(error.contains("add up past"), "{error}");
    let mut ops = shards.clone();
    ops[0]["ops"] = u64::MAX.into();
    let error = merge_json(&ops).unwrap_err();
    assert!(
        error.contains("overflow") || error.contains("past"),
        "{error}"
    );
    // 3. "Passed" with no checks anywhere.
    let mut empty = shards.clone();
    for s in &mut empty {
        s["rules"][0]["checks"] = 0.into();
    }
    let merged = merge_json(&empty).unwrap();
    assert_eq!(
        merged["rules"][0]["verdict"], "not_exercised",
        "{}",
        merged["rules"][0]
    );
    assert_eq!(merged["judged"], false);
    // 4. Seeds outside the shard that names them.
    let mut unjudged = shards.clone();
    unjudged[0]["unjudgeable"] =
        serde_json::json!({"seed": 35, "entry": "send", "message": "made up"});
    let error = merge_json(&unjudged).unwrap_err();
    assert!(error.contains("unjudgeable.seed"), "{error}");
    let mut mismatched = shards.clone();
    mismatched[1]["determinism"]["mismatches"] = serde_json::json!([3]);
    let error = merge_json(&mismatched).unwrap_err();
    assert!(error.contains("determinism.mismatches"), "{error}");
    // 5. A stop that ran every seed, or for no known reason.
    let mut stopped = shards.clone();
    stopped[0]["stopped"] =
        serde_json::json!({"reason": "deadline", "message": "m", "seeds_run": 20});
    assert!(
        merge_json(&stopped)
            .unwrap_err()
            .contains("stopped.seeds_run")
    );
    stopped[0]["stopped"] = serde_json::json!({"reason": "bored", "message": "m", "seeds_run": 5});
    assert!(merge_json(&stopped).unwrap_err().contains("stopped.reason"));
}

/// A shard that stopped early makes the merged run stopped: the seeds every
/// shard ran add up, the reason names the shard, and with nothing failed
/// the whole is not judged (exit 2).
#[test]
fn a_shard_that_stopped_early_stops_the_merged_run() {
    use scopebus_conformance::merge::merge_json;
    let mut c = campaign(Target::Reference, 40, 2, "stopped");
    let mut shards: Vec<serde_json::Value> = (1..=2)
        .map(|k| {
            c.seeds = Seeds::shard(0, 40, k, 2).unwrap();
            report::to_json(&run(&c).unwrap())
        })
        .collect();
    shards[1]["stopped"] = serde_json::json!({"reason": "deadline", "message": "the deadline (5 s) passed", "seeds_run": 7});
    let merged = merge_json(&shards).unwrap();
    assert_eq!(merged["stopped"]["seeds_run"], 27);
    assert_eq!(
        merged["stopped"]["message"],
        "shard 2/2 stopped early; the first: the deadline (5 s) passed"
    );
    let report = report::from_json(&merged).unwrap();
    assert_eq!(report.exit_code(), 2);
    assert!(report::render(&report).contains("STOPPED EARLY"));
}
