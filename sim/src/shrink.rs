//! Shrinking: from a failing trace, the smallest trace that still fails the
//! same rule.
//!
//! Removal works on whole dependency groups: removing the entry that creates
//! a handle (a scope, a subscription, a task) removes every later entry that
//! names it, including scheduling choices (`poll`, `wake`) of its tasks and,
//! for a scope, everything of the scopes nested in it. Passes, repeated until
//! nothing changes or the budget runs out:
//!
//! 1. remove chunks of entries, halving the chunk size down to one
//!    (delta debugging, Zeller and Hildebrandt, TSE 2002);
//! 2. simplify single ops: credit down to 1, a worker's send dropped, an
//!    isolated scope made plain.
//!
//! Every candidate is replayed on a fresh implementation; a candidate counts
//! only if it fails with the same rule. What is kept is the candidate's
//! effective trace (entries that took effect, up to the failure), so skipped
//! entries vanish too.

use crate::harness::{Failure, Run};
use crate::op::{Entry, Interjection, Op, ScopeId, SubId, TaskId, TaskRef};
use crate::rules::Rule;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Limits on how long shrinking may take.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// At most this many replays.
    pub replays: u32,
    /// At most this much time.
    pub time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            replays: 5_000,
            time: Duration::from_secs(10),
        }
    }
}

/// The result of shrinking.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing trace found.
    pub entries: Vec<Entry>,
    /// Its failure (same rule as the original).
    pub failure: Failure,
    /// Replays spent.
    pub replays: u32,
    /// Whether the budget ran out before a fixed point.
    pub exhausted: bool,
    /// Whether it was the time budget that ran out: then the result depends
    /// on the machine's speed, and another run may shrink further.
    pub timed_out: bool,
}

/// Shrinks `original` (a failing run's trace and failure). `replay` reruns
/// a candidate on a fresh implementation.
pub fn shrink(
    original: &[Entry],
    failure: &Failure,
    budget: Budget,
    mut replay: impl FnMut(&[Entry]) -> Run,
) -> Shrunk {
    let rule = failure.rule;
    let started = Instant::now();
    let mut best = original[..(failure.entry + 1).min(original.len())].to_vec();
    let mut best_failure = failure.clone();
    let replays = Cell::new(0u32);
    let exhausted = Cell::new(false);
    let timed_out = Cell::new(false);

    let mut attempt = |candidate: Vec<Entry>,
                       best: &mut Vec<Entry>,
                       best_failure: &mut Failure|
     -> bool {
        if replays.get() >= budget.replays {
            exhausted.set(true);
            return false;
        }
        if started.elapsed() > budget.time {
            exhausted.set(true);
            timed_out.set(true);
            return false;
        }
        replays.set(replays.get() + 1);
        let run = replay(&candidate);
        match run.failure {
            Some(f)
                if f.rule == rule && weight(&run.trace) <= weight(best) && run.trace != *best =>
            {
                *best = run.trace;
                *best_failure = f;
                true
            }
            _ => false,
        }
    };

    loop {
        let size = best.len();
        let mut changed = false;
        // Pass 1: remove chunks, with their dependents.
        let mut chunk = (best.len() / 2).max(1);
        loop {
            let mut start = 0;
            while start < best.len() {
                let end = (start + chunk).min(best.len());
                let candidate = without(&best, start..end);
                if candidate.len() < best.len() && attempt(candidate, &mut best, &mut best_failure)
                {
                    changed = true;
                    continue;
                }
                start += chunk;
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        // Pass 2: simplify single entries (each candidate replaces one
        // entry by a short sequence).
        let mut i = 0;
        while i < best.len() {
            for simpler in simplifications(&best[i]) {
                let mut candidate = best.clone();
                candidate.splice(i..=i, simpler);
                if attempt(candidate, &mut best, &mut best_failure) {
                    changed = true;
                    break;
                }
            }
            i += 1;
        }
        let _ = size;
        if !changed || exhausted.get() {
            break;
        }
    }
    Shrunk {
        entries: best,
        failure: best_failure,
        replays: replays.get(),
        exhausted: exhausted.get(),
        timed_out: timed_out.get(),
    }
}

/// Checks, counterfactually, whether dropping or cancelling subscribers is
/// what a failure is about (CANCEL-1: "dropping or cancelling a subscriber
/// disturbs no other subscriber or sender").
///
/// The trace is replayed without any drop or cancellation of subscribers.
/// - A CANCEL-1 failure that still shows, as a stuck, unended or failed-send
///   symptom, was not caused by the drops: that failure, under its own rule,
///   is the one to report.
/// - A liveness or close failure (the same symptoms) that then *disappears*
///   was caused by them: it is reported as CANCEL-1.
/// - If, without the drops, the run fails otherwise (another of the
///   implementation's faults got in first), the answer is not known yet:
///   the failure is shrunk a little ([`CONFIRM_BUDGET`]) and the question
///   asked again of the shrunk trace, where little else is left to get in
///   the way.
///
/// Returns the trace and failure to report (and to shrink).
pub fn confirm(
    trace: &[Entry],
    failure: &Failure,
    mut replay: impl FnMut(&[Entry]) -> Run,
) -> (Vec<Entry>, Failure) {
    const SYMPTOMS: [Rule; 6] = [
        Rule::Wake1,
        Rule::Fanout1,
        Rule::Send1,
        Rule::Close1,
        Rule::Close2,
        Rule::Close3,
    ];
    let unchanged = || (trace.to_vec(), failure.clone());
    // Statistics are RECLAIM's business: a drop that changes what is
    // retained is not a disturbance of others.
    let from_stats = matches!(
        trace.get(failure.entry),
        Some(Entry::Op(Op::Observe { .. }))
    );
    if failure.fault
        || from_stats
        || (failure.rule != Rule::Cancel1 && !SYMPTOMS.contains(&failure.rule))
    {
        return unchanged();
    }
    let prefix = &trace[..(failure.entry + 1).min(trace.len())];
    let is_drop = |e: &&Entry| {
        matches!(
            e,
            Entry::Op(Op::DropSubscription { .. } | Op::CancelSubscriber { .. })
        )
    };
    let without_drops = close_references(prefix.iter().filter(|e| !is_drop(e)));
    if without_drops.len() == prefix.len() {
        return unchanged();
    }
    let run = replay(&without_drops);
    match (failure.rule, run.failure) {
        (Rule::Cancel1, Some(f)) if SYMPTOMS.contains(&f.rule) => (run.trace, f),
        (Rule::Cancel1, _) => unchanged(),
        (_, None) => (trace.to_vec(), blame_drops(failure)),
        (rule, Some(f)) if f.rule == rule => unchanged(),
        (_, Some(_)) => {
            // Inconclusive: ask again of a shrunk trace.
            let shrunk = shrink(trace, failure, CONFIRM_BUDGET, &mut replay);
            let prefix = &shrunk.entries;
            let without_drops = close_references(prefix.iter().filter(|e| !is_drop(e)));
            if without_drops.len() == prefix.len() {
                return unchanged();
            }
            match replay(&without_drops).failure {
                None => (shrunk.entries, blame_drops(&shrunk.failure)),
                Some(_) => unchanged(),
            }
        }
    }
}

/// Replays a confirmation may spend on shrinking an inconclusive failure.
pub const CONFIRM_BUDGET: Budget = Budget {
    replays: 200,
    time: Duration::from_secs(5),
};

/// `failure`, blamed on the drops and cancellations before it (CANCEL-1).
fn blame_drops(failure: &Failure) -> Failure {
    let mut blamed = failure.clone();
    blamed.rule = Rule::Cancel1;
    blamed.message = format!(
        "{} (without the drops and cancellations of subscribers earlier in the trace this does not happen: they disturbed it)",
        failure.message
    );
    blamed
}

/// How complex a trace reads: its entries, a `preempt` (a poll with an op
/// inside it) counting as two.
fn weight(entries: &[Entry]) -> usize {
    entries.len()
        + entries
            .iter()
            .filter(|e| matches!(e, Entry::Preempt(..)))
            .count()
}

/// Simpler replacements for one entry, most faithful first.
fn simplifications(entry: &Entry) -> Vec<Vec<Entry>> {
    match entry {
        // The op (or the other poll) before the poll, alone, the poll alone.
        Entry::Preempt(task, with) => {
            let first = match with {
                Interjection::Op(op) => Entry::Op(op.clone()),
                Interjection::Poll(other) => Entry::Poll(*other),
            };
            vec![
                vec![first.clone(), Entry::Poll(*task)],
                vec![first],
                vec![Entry::Poll(*task)],
            ]
        }
        other => simplify(other).map(|e| vec![e]).into_iter().collect(),
    }
}

/// A simpler version of one op, if there is one.
fn simplify(entry: &Entry) -> Option<Entry> {
    match entry {
        Entry::Op(Op::Consume { sub, k }) if *k > 1 => Some(Entry::Op(Op::Consume {
            sub: *sub,
            k: if *k > 4 { (*k).min(8) / 2 } else { 1 },
        })),
        Entry::Op(Op::Release {
            task,
            send: Some(_),
        }) => Some(Entry::Op(Op::Release {
            task: *task,
            send: None,
        })),
        Entry::Op(Op::OpenScope {
            scope,
            parent: Some(parent),
            isolated: true,
        }) => Some(Entry::Op(Op::OpenScope {
            scope: *scope,
            parent: Some(*parent),
            isolated: false,
        })),
        _ => None,
    }
}

/// `entries` without `range`, and without every later entry that names a
/// handle only a removed entry created.
pub fn without(entries: &[Entry], range: std::ops::Range<usize>) -> Vec<Entry> {
    let kept = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !range.contains(i))
        .map(|(_, e)| e);
    close_references(kept)
}

/// Keeps, in order, the entries whose handles all exist: an entry that names
/// a scope, subscription or task no kept entry created is dropped, and so
/// are the handles it would have created.
pub fn close_references<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Entry> {
    let mut scopes: BTreeSet<ScopeId> = BTreeSet::new();
    let mut subs: BTreeSet<SubId> = BTreeSet::new();
    let mut tasks: BTreeSet<TaskId> = BTreeSet::new();
    let mut out = Vec::new();
    for entry in entries {
        let scope_ok = |s: &Option<ScopeId>| s.as_ref().is_none_or(|s| scopes.contains(s));
        let (named, op) = match entry {
            Entry::Op(op) => ([None, None], Some(op)),
            Entry::Poll(t) | Entry::Wake(t) | Entry::Migrate(t) => ([Some(*t), None], None),
            Entry::Preempt(t, Interjection::Op(op)) => ([Some(*t), None], Some(op)),
            Entry::Preempt(t, Interjection::Poll(other)) => ([Some(*t), Some(*other)], None),
        };
        let tasks_ok = named.into_iter().flatten().all(|t| match t {
            TaskRef::Scope(s) => scopes.contains(&s),
            TaskRef::Sub(s) => subs.contains(&s),
            TaskRef::Any => true,
        });
        let keep = tasks_ok
            && match op {
                None => true,
                Some(op) => match op {
                    Op::OpenScope { scope, parent, .. } => {
                        let ok = scope_ok(parent);
                        if ok {
                            scopes.insert(*scope);
                        }
                        ok
                    }
                    Op::CloseScope { scope }
                    | Op::CancelScope { scope }
                    | Op::Observe { scope } => scopes.contains(scope),
                    Op::Subscribe { sub, scope, .. } => {
                        let ok = scope_ok(scope);
                        if ok {
                            subs.insert(*sub);
                        }
                        ok
                    }
                    Op::Send { scope, .. } => scope_ok(scope),
                    Op::Consume { sub, .. }
                    | Op::DropSubscription { sub }
                    | Op::CancelSubscriber { sub } => subs.contains(sub),
                    Op::Spawn { task, scope } => {
                        let ok = scopes.contains(scope);
                        if ok {
                            tasks.insert(*task);
                        }
                        ok
                    }
                    Op::Release { task, .. } => tasks.contains(task),
                    Op::Settle => true,
                },
            };
        if keep {
            out.push(entry.clone());
        }
    }
    out
}

/// How many of `entries` are ops (not scheduling choices).
pub fn count_ops(entries: &[Entry]) -> usize {
    entries.iter().filter(|e| matches!(e, Entry::Op(_))).count()
}
