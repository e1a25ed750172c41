//! Attribution that does not move: on the failing traces of every mutant
//! and of deliberately broken adapters, full and shrunk, removing an op
//! outside the failure's causal set (`diagnosis::causal`) never changes the
//! rule the failure is reported under, wherever it still fails at the same
//! point. On shrunk traces this also says that the shrinker kept no op only
//! to hold on to a rule id.

mod support;

use scopebus::mutants::Mutant;
use scopebus_conformance::target::Target;
use scopebus_sim::diagnosis::causal::causal_ops;
use scopebus_sim::diagnosis::{Diagnosis, Rerun};
use scopebus_sim::harness::{Failure, GenConfig, Run, generate};
use scopebus_sim::model::Mode;
use scopebus_sim::op::{Entry, Op};
use scopebus_sim::rules::Rule;
use scopebus_sim::shrink::{Budget, shrink, without};
use std::time::Duration;

/// Attribution gaps known today, each as (target, seed, why): the full
/// trace of that seed's failure is allowed to move, and must still move (so
/// that the list stays true; a fix makes this test fail until the entry is
/// taken out). README.md lists the same gaps.
const KNOWN_GAPS: &[(&str, u64, &str)] = &[(
    "mutant:drop-clears-waiters",
    270,
    "the drop counterfactual keeps a processor's cancellation when polls on its channel were \
     preempted (taking it out changes what the processor does inside its scope's task), so the \
     lost wakeup that cancellation caused reads as WAKE-1 on the full trace, and taking out an \
     unrelated op changes the schedule enough for it to read as CANCEL-1; the shrunk trace, which \
     users are shown, reads as CANCEL-1",
)];

fn broken(mode: &str) -> Target {
    support::broken_adapter(mode, Duration::from_secs(10))
}

/// Removal candidates: ops before the failing entry (not `settle`).
fn candidates(prefix: &[Entry]) -> impl Iterator<Item = usize> + '_ {
    prefix[..prefix.len().saturating_sub(1)]
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Entry::Op(op) if *op != Op::Settle))
        .map(|(i, _)| i)
}

/// Every removal of a non-causal op (at most `limit`, spread over the
/// trace) that still fails at the failing entry must fail the same rule.
/// Returns what moved.
fn moved(
    trace: &[Entry],
    failure: &Failure,
    limit: usize,
    judge: &mut dyn FnMut(&[Entry]) -> Run,
) -> Vec<String> {
    let prefix = &trace[..(failure.entry + 1).min(trace.len())];
    let causal = causal_ops(prefix, failure);
    let free: Vec<usize> = candidates(prefix).filter(|i| !causal.contains(i)).collect();
    let step = (free.len() / limit).max(1);
    let mut moved = Vec::new();
    for &i in free.iter().step_by(step) {
        let candidate = without(prefix, i..i + 1);
        let kept_causal = causal
            .iter()
            .all(|c| *c == i || candidate.contains(&prefix[*c]));
        if !kept_causal {
            continue;
        }
        if let Rerun::AtEnd(f) = Rerun::of(&candidate, judge(&candidate))
            && f.rule != failure.rule
        {
            moved.push(format!(
                "removing entry {i} (`{}`) turns {} into {}: {}",
                prefix[i], failure.rule, f.rule, f.message
            ));
        }
    }
    moved
}

/// The lowest failing seeds of `target` (from `seeds`), one per rule and
/// failure mode, at most `modes` of them, attributed.
fn failures(
    target: &Target,
    diagnosis: &mut Diagnosis<'_>,
    seeds: u64,
    modes: usize,
) -> Vec<(u64, Run)> {
    let mut found: Vec<(u64, Run)> = Vec::new();
    for seed in 0..seeds {
        let mut imp = target.instantiate();
        let run = diagnosis.attribute(generate(seed, GenConfig { ops: 120 }, &mut *imp));
        let Some(f) = &run.failure else {
            continue;
        };
        let shape = |r: &Run| r.failure.as_ref().map(|f| (f.rule, f.mode));
        if !found
            .iter()
            .any(|(_, r)| shape(r) == Some((f.rule, f.mode)))
        {
            found.push((seed, run));
        }
        if found.len() == modes {
            break;
        }
    }
    found
}

/// Checks the lowest failing seed of up to three failure modes of `target`
/// (among `seeds`): what moved, and how many traces were checked.
fn check_target(target: &Target, seeds: u64) -> (Vec<String>, usize, Vec<u64>) {
    let mut diagnosis = target.diagnosis_probed();
    let mut problems = Vec::new();
    let mut known = Vec::new();
    let mut traces = 0;
    for (number, run) in failures(target, &mut diagnosis, seeds, 3) {
        let failure = run.failure.clone().expect("a failure");
        let mut judge = |entries: &[Entry]| diagnosis.judge(entries);
        let seed = format!(
            "{target}, the {} ({}) failure at seed {number} (120 ops)",
            failure.rule, failure.mode
        );
        let gap = KNOWN_GAPS
            .iter()
            .any(|(t, s, _)| *t == target.to_string() && *s == number);
        let full = moved(&run.trace, &failure, 25, &mut judge);
        if gap && !full.is_empty() {
            known.push(number);
        }
        for m in full.into_iter().filter(|_| !gap) {
            problems.push(format!("{seed}, full trace: {m}"));
        }
        let shrunk = shrink(&run.trace, &failure, Budget::default(), &mut judge);
        for m in moved(&shrunk.entries, &shrunk.failure, usize::MAX, &mut judge) {
            problems.push(format!("{seed}, shrunk trace: {m}"));
        }
        traces += 2;
    }
    (problems, traces, known)
}

#[test]
fn removing_ops_outside_the_causal_set_never_changes_the_rule() {
    use rayon::prelude::*;
    let mut targets: Vec<(Target, u64)> = Mutant::ALL
        .iter()
        .map(|m| (Target::Mutant(*m), 400))
        .collect();
    targets.extend(["shared-isolated", "lose-after-drop"].map(|m| (broken(m), 60)));
    let (problems, traces, known) = targets
        .par_iter()
        .map(|(target, seeds)| check_target(target, *seeds))
        .reduce(
            || (Vec::new(), 0, Vec::new()),
            |(mut a, n, mut k), (b, m, l)| {
                a.extend(b);
                k.extend(l);
                (a, n + m, k)
            },
        );
    for (target, seed, why) in KNOWN_GAPS {
        assert!(
            known.contains(seed),
            "the known gap of {target} at seed {seed} no longer shows ({why}): take it out of KNOWN_GAPS"
        );
    }
    assert!(traces >= 40, "only {traces} failing traces were checked");
    assert!(
        problems.is_empty(),
        "attribution moved:\n{}",
        problems.join("\n")
    );
}

/// The check above can fail: an attribution that depends on an op outside
/// the causal set (here, a judge that names another rule whenever one op
/// was taken out, whichever) is caught.
#[test]
fn the_check_catches_an_attribution_that_moves() {
    let target = Target::Mutant(Mutant::Lifo);
    let mut diagnosis = target.diagnosis_probed();
    let (_, run) = failures(&target, &mut diagnosis, 50, 1).remove(0);
    let failure = run.failure.clone().expect("a failure");
    let whole = failure.entry + 1;
    let mut moving = |entries: &[Entry]| {
        let mut run = diagnosis.judge(entries);
        if entries.len() < whole
            && let Some(f) = run.failure.as_mut()
        {
            f.rule = Rule::Robust1;
            f.mode = Mode::Impossible;
        }
        run
    };
    let moved = moved(&run.trace, &failure, usize::MAX, &mut moving);
    assert!(
        !moved.is_empty(),
        "an attribution that moves was not caught"
    );
}

/// Root cause once: each planted bug fails the rule it breaks and no other
/// (none of its downstream effects is counted as another rule's failure).
/// Every mutant but `context-leak`, whose leaked ambient scope the
/// reference's own adapter reads when it opens a root (so that roots nest,
/// a layout the model cannot know), and the deterministic broken adapters.
#[test]
fn each_planted_bug_fails_its_own_rule_and_no_other() {
    use rayon::prelude::*;
    use scopebus_conformance::runner::{Campaign, Seeds, Verdict, run};
    let mut targets: Vec<(Target, Rule)> = Mutant::ALL
        .iter()
        .filter(|m| **m != Mutant::ContextLeak)
        .map(|m| {
            let rule = Rule::from_id(m.target_rule()).expect("a rule");
            (Target::Mutant(*m), rule)
        })
        .collect();
    targets.push((broken("shared-isolated"), Rule::Scope3));
    targets.push((broken("lose-after-drop"), Rule::Cancel1));
    // `shared-isolated` ignores `isolated` altogether, so it breaks both
    // promises of an isolated scope ("uses its own TaskGroup and event bus",
    // Haiway's docstring): its bus (SCOPE-3, found by the layout probe) and
    // its task group (TASK-1; where a cancellation shows it, TASK-2). Task
    // groups are not probed the way bus layouts are (an open gap, see
    // SPEC.md), so the second promise is reported as it shows.
    let also_broken = |target: &Target, rule: Rule| {
        target.slug().contains("shared-isolated") && matches!(rule, Rule::Task1 | Rule::Task2)
    };
    let problems: Vec<String> = targets
        .par_iter()
        .filter_map(|(target, rule)| {
            let campaign = Campaign {
                target: target.clone(),
                seeds: Seeds::range(0, 300).expect("a range"),
                ops: 200,
                jobs: 1,
                out_dir: std::env::temp_dir().join(format!(
                    "scopebus-once-{}-{}",
                    target.slug(),
                    std::process::id()
                )),
                // As a user's run shrinks: a failure whose first reading on
                // the full seed is another rule's is named by diagnosis on
                // the shrunk trace, and reported under that rule.
                shrink: Budget::default(),
                progress: false,
                expectations: None,
                profile: Default::default(),
                deadline: None,
            };
            let report = run(&campaign).expect("runs");
            let others: Vec<String> = report
                .rules
                .iter()
                .filter(|r| r.verdict == Verdict::Failed && r.rule != *rule)
                .filter(|r| !also_broken(target, r.rule))
                .map(|r| {
                    let f = r.failure().expect("a failure");
                    format!("{} (seed {}: {})", r.rule, f.seed, f.message)
                })
                .collect();
            (!others.is_empty()).then(|| {
                format!(
                    "{target}, which breaks {rule}, also failed {}",
                    others.join("; ")
                )
            })
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
