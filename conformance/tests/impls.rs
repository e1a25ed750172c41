//! The in-process buses of `scopebus_conformance::impls`, judged: each run
//! is judged (nothing broke the interface), deterministic, and fails only
//! the rules it is known to fail, so that any change in a verdict shows.

use scopebus_conformance::rules::Rule;
use scopebus_conformance::runner::{Campaign, Report, Seeds, Verdict, run};
use scopebus_conformance::target::Target;
use scopebus_sim::shrink::Budget;
use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopebus-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn judge(name: &str, seeds: u64) -> Report {
    let target: Target = name.parse().expect("a known implementation");
    let campaign = Campaign {
        target,
        seeds: Seeds::Range {
            start: 0,
            count: seeds,
        },
        ops: 200,
        jobs: 0,
        out_dir: out_dir(name),
        shrink: Budget::default(),
        progress: false,
        expectations: None,
        profile: Default::default(),
        deadline: None,
    };
    run(&campaign).expect("the run starts")
}

/// What `typeid-broadcast` (a `TypeId` map of bounded tokio broadcast
/// channels behind a `Mutex`) is known to break, and why:
/// - REENTER-1: `send` and `close` run tokio's waker calls while the map's
///   lock is held, so a waker that uses the bus deadlocks;
/// - RECLAIM-1: a subscriber more than 16 events behind has lost the
///   oldest (overwritten in the ring) before it pulls;
/// - ROBUST-1: its next pull raises `RecvError::Lagged`.
const TYPEID_BROADCAST_FAILS: [Rule; 3] = [Rule::Reenter1, Rule::Reclaim1, Rule::Robust1];

#[test]
fn typeid_broadcast_is_judged_deterministic_and_fails_only_what_it_is_known_to() {
    let report = judge("typeid-broadcast", 50);
    assert!(report.unjudgeable.is_none(), "{:?}", report.unjudgeable);
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    assert!(report.determinism.checked > 0, "no seed was run twice");
    assert!(
        report.determinism.mismatches.is_empty(),
        "seeds whose two runs differed: {:?}",
        report.determinism.mismatches
    );
    for r in &report.rules {
        match &r.verdict {
            Verdict::Failed => assert!(
                TYPEID_BROADCAST_FAILS.contains(&r.rule),
                "{} failed, which typeid-broadcast is not known to fail: {:?}",
                r.rule,
                r.failures.first().map(|f| &f.message)
            ),
            Verdict::Passed => {}
            // A Rust bus's subscription (a tokio `Receiver`) cannot be
            // pulled by two tasks: `share` is not declared.
            Verdict::NotApplicable { .. } => assert_eq!(r.rule, Rule::Share1),
            other => panic!("{}: {other:?}", r.rule),
        }
    }
    // The locks are held on every send: the first seeds show it.
    let reenter = report.rules.iter().find(|r| r.rule == Rule::Reenter1);
    assert_eq!(
        reenter.map(|r| &r.verdict),
        Some(&Verdict::Failed),
        "REENTER-1 no longer fails: was the bus's locking changed?"
    );
}

#[test]
fn typeid_broadcast_is_known_by_name() {
    let target: Target = "typeid-broadcast".parse().expect("parses");
    assert_eq!(target.to_string(), "typeid-broadcast");
    assert!(Target::known_names().contains(&"typeid-broadcast".to_owned()));
    let info = target.info();
    assert_eq!(info.name, "typeid-broadcast");
    assert!(
        info.emulates.iter().all(|e| e.name() != "types"),
        "routing is by real TypeId: `types` is not emulated"
    );
}
