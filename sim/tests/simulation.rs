//! The simulator checks itself: determinism, exact replay, shrinking, and
//! trace files (good and bad).

use scopebus::mutants::Mutant;
use scopebus_sim::harness::{Failure, GenConfig, generate, replay};
use scopebus_sim::model::{Disagreement, Mode, Violation};
use scopebus_sim::op::{Entry, Op};
use scopebus_sim::reference::ReferenceImpl;
use scopebus_sim::rules::Rule;
use scopebus_sim::shrink::{Budget, count_ops, shrink};
use scopebus_sim::trace::{TraceError, TraceFile};
use std::path::Path;

fn run(seed: u64, mutant: Option<Mutant>) -> scopebus_sim::harness::Run {
    generate(seed, GenConfig::default(), &mut ReferenceImpl::new(mutant))
}

#[test]
fn reference_passes_many_seeds() {
    for seed in 0..300 {
        let r = run(seed, None);
        assert!(r.failure.is_none(), "seed {seed}: {}", r.failure.unwrap());
        assert!(r.counts.ops > 200, "seed {seed}: {} ops", r.counts.ops);
    }
}

#[test]
fn same_seed_same_trace_and_fingerprint() {
    for seed in [0, 1, 7, 12345, u64::MAX] {
        let (a, b) = (run(seed, None), run(seed, None));
        assert_eq!(a.trace, b.trace, "seed {seed}");
        assert_eq!(a.fingerprint, b.fingerprint, "seed {seed}");
        assert_ne!(a.trace, run(seed ^ 1, None).trace, "different seeds differ");
    }
}

#[test]
fn replay_reruns_a_trace_exactly() {
    for seed in 0..20 {
        let generated = run(seed, None);
        let replayed = replay(&mut ReferenceImpl::new(None), &generated.trace);
        assert_eq!(replayed.trace, generated.trace, "seed {seed}");
        assert_eq!(replayed.fingerprint, generated.fingerprint, "seed {seed}");
        assert_eq!(replayed.counts.skipped, 0);
    }
}

/// A run of `entries` on the reference bus, made to fail at its last entry
/// with the disagreement "never ended" (read as CLOSE-1 from its evidence),
/// attributed to `rule` (an empty trace passes).
fn failing_as(entries: &[Entry], rule: Rule) -> scopebus_sim::harness::Run {
    let mut run = replay(&mut ReferenceImpl::new(None), entries);
    if run.trace.is_empty() {
        return run;
    }
    let reading = Violation::new(Rule::Close1, Mode::NeverEnded, "sub#1 never ended");
    run.failure = Some(Failure {
        rule,
        mode: Mode::NeverEnded,
        message: "sub#1 never ended".into(),
        entry: run.trace.len() - 1,
        entry_text: String::new(),
        fault: false,
        unjudgeable: false,
        cut: false,
        evidence: Some(Box::new(Disagreement::Certain(reading))),
    });
    run
}

#[test]
fn shrinking_never_keeps_an_op_only_because_it_blocked_the_diagnosis() {
    let trace = run(0, None).trace;
    let blocker = trace
        .iter()
        .find(|e| matches!(e, Entry::Op(Op::Send { .. })))
        .cloned()
        .expect("seed 0 sends");
    // With the blocker, diagnosis cannot name a cause: the plain reading,
    // CLOSE-1. Without it, its replays name CANCEL-1 for the same
    // disagreement: the shrunk trace reports CANCEL-1, without the blocker.
    let plain = failing_as(&trace, Rule::Close1).failure.unwrap();
    let shrunk = shrink(&trace, &plain, Budget::default(), |entries| {
        let named = if entries.contains(&blocker) {
            Rule::Close1
        } else {
            Rule::Cancel1
        };
        failing_as(entries, named)
    });
    assert_eq!(shrunk.failure.rule, Rule::Cancel1);
    assert!(!shrunk.entries.contains(&blocker));
    // The other way round, a diagnosed rule is never given up for the plain
    // reading: the op its replays need is kept.
    let named = failing_as(&trace, Rule::Cancel1).failure.unwrap();
    let shrunk = shrink(&trace, &named, Budget::default(), |entries| {
        let named = if entries.contains(&blocker) {
            Rule::Cancel1
        } else {
            Rule::Close1
        };
        failing_as(entries, named)
    });
    assert_eq!(shrunk.failure.rule, Rule::Cancel1);
    assert!(shrunk.entries.contains(&blocker));
}

#[test]
fn a_failure_replays_and_shrinks_to_a_few_ops() {
    let mutant = Some(Mutant::Lifo);
    let (seed, failing) = (0..200)
        .map(|seed| (seed, run(seed, mutant)))
        .find(|(_, r)| r.failure.is_some())
        .expect("the lifo mutant is caught within 200 seeds");
    let failure = failing.failure.clone().unwrap();
    assert_eq!(failure.rule, Rule::Fifo1, "seed {seed}: {failure}");
    // The trace alone reproduces it.
    let again = replay(&mut ReferenceImpl::new(mutant), &failing.trace);
    assert_eq!(again.failure.as_ref(), Some(&failure));
    // And so does its shrunk version, which is much smaller.
    let shrunk = shrink(&failing.trace, &failure, Budget::default(), |entries| {
        replay(&mut ReferenceImpl::new(mutant), entries)
    });
    assert_eq!(shrunk.failure.rule, Rule::Fifo1);
    assert!(
        count_ops(&shrunk.entries) <= 8,
        "shrunk to {} ops: {:#?}",
        count_ops(&shrunk.entries),
        shrunk.entries
    );
    let replayed = replay(&mut ReferenceImpl::new(mutant), &shrunk.entries);
    assert_eq!(replayed.failure.map(|f| f.rule), Some(Rule::Fifo1));
    // The reference passes the shrunk trace: it is the bug, not the trace.
    assert!(
        replay(&mut ReferenceImpl::new(None), &shrunk.entries)
            .failure
            .is_none()
    );
}

#[test]
fn trace_files_round_trip() {
    let r = run(3, None);
    let mut file = TraceFile::new("reference", r.trace.clone());
    file.seed = Some(3);
    file.ops = Some(200);
    let text = file.to_json();
    let back = TraceFile::parse(&text, Path::new("t.json")).unwrap();
    assert_eq!(back, file);
    assert_eq!(back.hash(), file.hash());
}

fn bad(text: &str) -> String {
    match TraceFile::parse(text, Path::new("bad.json")) {
        Ok(_) => panic!("accepted a bad trace: {text}"),
        Err(e) => {
            assert!(matches!(
                e,
                TraceError::Json { .. } | TraceError::Invalid { .. }
            ));
            e.to_string()
        }
    }
}

#[test]
fn bad_trace_files_get_clear_errors() {
    let head = r#""format":"scopebus-trace","version":1,"implementation":"reference""#;
    let e = bad("{ not json");
    assert!(e.contains("bad.json:1:"), "{e}");
    let e = bad(r#"{"format":"other","version":1}"#);
    assert!(e.contains("expected `scopebus-trace`"), "{e}");
    let e = bad(r#"{"version":1}"#);
    assert!(e.contains("no `format` field"), "{e}");
    let e = bad(r#"{"format":"scopebus-trace","version":7}"#);
    assert!(
        e.contains("version 7") && e.contains("reads version 1"),
        "{e}"
    );
    let e = bad(&format!(r#"{{{head},"entries":[{{"op":"sendd"}}]}}"#));
    assert!(e.contains("unknown variant `sendd`"), "{e}");
    let e = bad(&format!(
        r#"{{{head},"entries":[{{"op":"send","scope":1,"ty":"Pong","event":1}}]}}"#
    ));
    assert!(e.contains("unknown event type `Pong`"), "{e}");
    let e = bad(&format!(r#"{{{head},"entries":[{{"poll":"thread#1"}}]}}"#));
    assert!(e.contains("expected `scope#N`, `sub#N` or `any`"), "{e}");
    let e = bad(&format!(
        r#"{{{head},"entries":[{{"op":"consume","sub":4,"k":1}}]}}"#
    ));
    assert!(e.contains("entry 0") && e.contains("sub#4"), "{e}");
    let e = bad(&format!(
        r#"{{{head},"entries":[{{"op":"open_scope","scope":1}},{{"op":"send","scope":1,"ty":"Login","event":1}},{{"op":"send","scope":1,"ty":"Login","event":1}}]}}"#
    ));
    assert!(
        e.contains("entry 2") && e.contains("event#1 is sent twice"),
        "{e}"
    );
    let e = bad(&format!(r#"{{{head},"entries":[],"extra":1}}"#));
    assert!(e.contains("unknown field `extra`"), "{e}");
    let e = bad(&format!(r#"{{{head},"entries":[42]}}"#));
    assert!(e.contains("must be an object"), "{e}");
    let e = bad(&format!(
        r#"{{{head},"entries":[{{"op":"settle","bogus":[1]}}]}}"#
    ));
    assert!(e.contains("`settle` takes no fields"), "{e}");
    let e = bad(&format!(
        r#"{{{head},"entries":[{{"op":"open_scope","scope":1,"scope":7}}]}}"#
    ));
    assert!(e.contains("duplicate key `scope`"), "{e}");
    let e = bad(&format!(r#"{{{head},"entries":[{{"poll":"scope#+1"}}]}}"#));
    assert!(e.contains("is not a task"), "{e}");
    let e = bad(&format!(
        r#"{{{head},"entries":[{{"preempt":"sub#1","with":{{"op":"settle"}}}}]}}"#
    ));
    assert!(e.contains("runs a `send`"), "{e}");
    let deep: String = (1..=70)
        .map(|i| {
            if i == 1 {
                r#"{"op":"open_scope","scope":1}"#.to_owned()
            } else {
                format!(r#"{{"op":"open_scope","scope":{i},"parent":{}}}"#, i - 1)
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let e = bad(&format!(r#"{{{head},"entries":[{deep}]}}"#));
    assert!(e.contains("traces allow at most 64"), "{e}");
}

#[test]
fn entries_serialize_as_documented() {
    let entries: Vec<Entry> = serde_json::from_str(
        r#"[{"op":"open_scope","scope":1},
            {"op":"open_scope","scope":2,"parent":1,"isolated":true},
            {"op":"subscribe","sub":1,"scope":2,"ty":"Generic<u8>"},
            {"op":"send","scope":null,"ty":"alpha.PingAlias","event":3},
            {"poll":"sub#1"},{"wake":"scope#1"},{"op":"settle"}]"#,
    )
    .unwrap();
    assert_eq!(entries.len(), 7);
    let text = serde_json::to_string(&entries).unwrap();
    assert!(text.contains(r#"{"poll":"sub#1"}"#), "{text}");
    let again: Vec<Entry> = serde_json::from_str(&text).unwrap();
    assert_eq!(again, entries);
}

/// A spurious wakeup or a move of a processor the reference has not polled
/// yet (it runs inside its root scope's task, so that task is woken or
/// moved) is carried out, not a protocol error.
#[test]
fn a_processor_can_be_woken_and_moved_before_its_first_poll() {
    for scheduling in [r#"{"wake":"sub#1"}"#, r#"{"migrate":"sub#1"}"#] {
        let text = format!(
            r#"{{"format":"scopebus-trace","version":1,"implementation":"reference","entries":[
            {{"op":"open_scope","scope":1}},
            {{"op":"spawn_processor","sub":1,"scope":1,"ty":"alpha.Ping"}},
            {scheduling},
            {{"op":"send","scope":1,"ty":"alpha.Ping","event":1}},
            {{"op":"settle"}},
            {{"op":"close_scope","scope":1}},
            {{"op":"settle"}}]}}"#
        );
        let file = TraceFile::parse(&text, Path::new("t.json")).unwrap();
        let run = replay(&mut ReferenceImpl::new(None), &file.entries);
        assert!(run.failure.is_none(), "{scheduling}: {:?}", run.failure);
        assert_eq!(
            run.trace.len(),
            file.entries.len(),
            "{scheduling} was skipped"
        );
    }
}
