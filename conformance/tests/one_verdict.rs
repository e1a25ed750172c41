//! One verdict path: every trace the suite saves (a conformance run's shrunk
//! and full traces, the mutant hunt's, the fuzzer's regressions) replays,
//! through the code `cargo xtask replay` runs, to the rule it was reported
//! under. (The known deviations' traces are checked the same way by every
//! run that reads an expectations file: a trace that now fails otherwise is
//! reported stale.)

mod support;

use scopebus::mutants::Mutant;
use scopebus_conformance::mutants::{Hunt, hunt};
use scopebus_conformance::replay::replay;
use scopebus_conformance::runner::{Campaign, Seeds, run};
use scopebus_conformance::target::Target;
use scopebus_sim::rules::Rule;
use scopebus_sim::shrink::Budget;
use scopebus_sim::trace::TraceFile;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn out(dir: &str) -> PathBuf {
    std::env::temp_dir().join(format!("scopebus-one-verdict-{dir}-{}", std::process::id()))
}

/// A broken adapter (`scopebus-broken-adapter MODE`) as an implementation.
pub fn broken(mode: &str) -> Target {
    support::broken_adapter(mode, Duration::from_secs(10))
}

fn replayed_rule(target: &Target, path: &Path) -> Option<Rule> {
    let file = TraceFile::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    replay(target, &file.entries, |_| {})
        .run
        .failure
        .map(|f| f.rule)
}

#[test]
fn a_conformance_runs_saved_traces_replay_to_their_rules() {
    let mut targets: Vec<Target> = Mutant::ALL.iter().map(|m| Target::Mutant(*m)).collect();
    targets.extend(["shared-isolated", "lose-after-drop"].map(broken));
    let mut checked = 0;
    for target in targets {
        let campaign = Campaign {
            seeds: Seeds::range(0, 40).expect("a range"),
            ops: 120,
            jobs: 2,
            out_dir: out(&target.slug()),
            shrink: Budget::default(),
            progress: false,
            expectations: None,
            profile: Default::default(),
            deadline: None,
            target: target.clone(),
        };
        let report = run(&campaign).expect("runs");
        for r in &report.rules {
            for f in &r.failures {
                assert_eq!(
                    replayed_rule(&target, &f.trace),
                    Some(r.rule),
                    "{target}: the shrunk trace of {} ({}) replays to another rule",
                    r.rule,
                    f.mode
                );
                let counted = f.reattributed_from.unwrap_or(r.rule);
                assert_eq!(
                    replayed_rule(&target, &f.full_trace),
                    Some(counted),
                    "{target}: seed {}'s full trace replays to another rule than {counted}",
                    f.seed
                );
                checked += 2;
            }
        }
    }
    assert!(checked >= 40, "only {checked} traces were saved");
}

#[test]
fn the_mutant_hunts_and_the_fuzzers_traces_replay_to_their_rules() {
    let results = hunt(&Hunt {
        mutants: Mutant::ALL.to_vec(),
        max_seeds: 500,
        ops: 200,
        jobs: 2,
        out_dir: out("hunt"),
        shrink: Budget::default(),
    })
    .expect("hunts");
    for r in &results {
        let (Some(trace), Some(rule)) = (&r.trace, r.rule) else {
            continue;
        };
        let target = Target::Mutant(r.mutant);
        assert_eq!(
            replayed_rule(&target, trace),
            Some(rule),
            "{}",
            r.mutant.name()
        );
    }
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut checked = 0;
    for dir in ["ops", "trace"] {
        for entry in std::fs::read_dir(regressions.join(dir)).expect("regressions") {
            let path = entry.expect("an entry").path();
            let file = TraceFile::read(&path).expect("a trace");
            let target: Target = file.implementation.parse().expect("a known target");
            let recorded = file.failure.as_ref().map(|f| f.rule);
            assert_eq!(
                replayed_rule(&target, &path),
                recorded,
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no fuzz regression traces found");
}
