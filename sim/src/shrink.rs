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
//! Every candidate is replayed on a fresh implementation and its failure
//! attributed as any trace's is; a candidate counts only if it fails with
//! the same rule and mode, or a `must` rule where the original's is a
//! `should`, or the same first disagreement whose cause diagnosis now names
//! where before its replays answered nothing (see `refines`).
//! What is kept is the candidate's effective trace (entries that took
//! effect, up to the failure), so skipped entries vanish too.

use crate::diagnosis::classify;
use crate::harness::{Failure, Run};
use crate::op::{Entry, Interjection, Op, ScopeId, SubId, TaskId, TaskRef};
use crate::rules::{Level, Profile, Rule};
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
    /// Its failure: the original's rule and mode, or a `must` rule that
    /// names its cause better (see [`shrink`]).
    pub failure: Failure,
    /// Replays spent.
    pub replays: u32,
    /// Whether the budget ran out before a fixed point.
    pub exhausted: bool,
    /// Whether it was the time budget that ran out: then the result depends
    /// on the machine's speed, and another run may shrink further.
    pub timed_out: bool,
}

/// Shrinks `original` (a failing run's trace and failure). `judge` reruns
/// a candidate on a fresh implementation and attributes its failure, as
/// [`crate::diagnosis::Diagnosis::judge`] does: the shrunk trace is judged
/// by the same path as any trace.
///
/// A candidate is kept if it fails the same rule in the same way (mode), or,
/// when that rule is a `should`, any `must` rule, or when the original was
/// read from its evidence alone, the same disagreement that diagnosis now
/// attributes to a `must` rule: an entry is never kept only to hold on to a
/// weaker or less informed rule id (the failure then reports the new rule).
pub fn shrink(
    original: &[Entry],
    failure: &Failure,
    budget: Budget,
    judge: impl FnMut(&[Entry]) -> Run,
) -> Shrunk {
    let mut search = Search {
        best: original[..(failure.entry + 1).min(original.len())].to_vec(),
        failure: failure.clone(),
        budget,
        started: Instant::now(),
        replays: 0,
        exhausted: false,
        timed_out: false,
        judge,
    };
    loop {
        let removed = search.remove_chunks();
        let simplified = search.simplify_entries();
        if !(removed || simplified) || search.exhausted {
            break;
        }
    }
    Shrunk {
        entries: search.best,
        failure: search.failure,
        replays: search.replays,
        exhausted: search.exhausted,
        timed_out: search.timed_out,
    }
}

/// A shrink in progress: the smallest failing trace so far.
struct Search<J> {
    best: Vec<Entry>,
    failure: Failure,
    budget: Budget,
    started: Instant,
    replays: u32,
    exhausted: bool,
    timed_out: bool,
    judge: J,
}

impl<J: FnMut(&[Entry]) -> Run> Search<J> {
    /// Tries `candidate`; keeps it if it fails as the best does (or a
    /// `must` rule where the best fails a `should` one) and reads no more
    /// complex.
    fn attempt(&mut self, candidate: Vec<Entry>) -> bool {
        if self.replays >= self.budget.replays {
            self.exhausted = true;
            return false;
        }
        if self.started.elapsed() > self.budget.time {
            self.exhausted = true;
            self.timed_out = true;
            return false;
        }
        self.replays += 1;
        let run = (self.judge)(&candidate);
        let Some(f) = run.failure else {
            return false;
        };
        let stronger =
            promise(self.failure.rule) == Level::Should && promise(f.rule) == Level::Must;
        let same = (f.rule == self.failure.rule && f.mode == self.failure.mode)
            || stronger
            || refines(&self.failure, &f);
        if same && weight(&run.trace) <= weight(&self.best) && run.trace != self.best {
            self.best = run.trace;
            self.failure = f;
            return true;
        }
        false
    }

    /// Pass 1: remove chunks of entries with their dependents, halving the
    /// chunk size down to one.
    fn remove_chunks(&mut self) -> bool {
        let mut changed = false;
        let mut chunk = (self.best.len() / 2).max(1);
        loop {
            let mut start = 0;
            while start < self.best.len() {
                let end = (start + chunk).min(self.best.len());
                let candidate = without(&self.best, start..end);
                if candidate.len() < self.best.len() && self.attempt(candidate) {
                    changed = true;
                    continue;
                }
                start += chunk;
            }
            if chunk == 1 {
                return changed;
            }
            chunk /= 2;
        }
    }

    /// Pass 2: simplify single entries (each candidate replaces one entry
    /// by a short sequence).
    fn simplify_entries(&mut self) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < self.best.len() {
            for simpler in simplifications(&self.best[i]) {
                let mut candidate = self.best.clone();
                candidate.splice(i..=i, simpler);
                if self.attempt(candidate) {
                    changed = true;
                    break;
                }
            }
            i += 1;
        }
        changed
    }
}

/// How complex a trace reads: its entries, a `preempt` (a poll with an op
/// inside it) counting as two.
/// Whether `candidate` is `best`'s disagreement, now named by diagnosis:
/// both read the same from their evidence alone (the same rule and mode of
/// [`classify`]), `best` stayed at that reading (the replays that might name
/// its cause answered nothing, often because another deviation showed
/// first, or the trace left no room to rename a look-alike), and
/// `candidate`'s replays name a rule (every rule is a `must` under the
/// strict profile; the docs profile's levels do not decide which cause a
/// disagreement has). An op kept only
/// because it made those replays inconclusive is not kept.
fn refines(best: &Failure, candidate: &Failure) -> bool {
    let reading = |f: &Failure| f.evidence.as_deref().map(classify);
    let (Some(was), Some(now)) = (reading(best), reading(candidate)) else {
        return false;
    };
    was.rule == now.rule
        && was.mode == now.mode
        && best.rule == was.rule
        && best.mode == was.mode
        && candidate.rule != now.rule
        && candidate.rule.level_in(Profile::Strict) == Level::Must
}

/// A rule's weight for the shrinker: its level under [`Profile::Docs`], the
/// one profile that tells a promise (`must`) from an extension (`should`),
/// whatever profile the run judges by. A shrink may trade a failure of an
/// extension for one of a promise, never the other way round.
fn promise(rule: Rule) -> Level {
    rule.level_in(Profile::Docs)
}

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
        Entry::Op(Op::FailSubscriber { sub, send: Some(_) }) => {
            Some(Entry::Op(Op::FailSubscriber {
                sub: *sub,
                send: None,
            }))
        }
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
/// are the handles it would have created. A preempted poll of a task that
/// is gone keeps what it interjected, as a plain entry: a send interjected
/// into an unrelated task's poll is not that task's.
pub fn close_references<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Entry> {
    let mut known = Known::default();
    let mut out = Vec::new();
    for entry in entries {
        let kept = match entry {
            Entry::Op(op) => known.admit(op).then(|| entry.clone()),
            Entry::Poll(t) | Entry::Wake(t) | Entry::Migrate(t) => {
                known.has(*t).then(|| entry.clone())
            }
            Entry::Preempt(t, with) => {
                let with_ok = match with {
                    Interjection::Op(op) => known.admit(op),
                    Interjection::Poll(other) => known.has(*other),
                };
                match (known.has(*t), with_ok) {
                    (true, true) => Some(entry.clone()),
                    (false, true) => Some(match with {
                        Interjection::Op(op) => Entry::Op(op.clone()),
                        Interjection::Poll(other) => Entry::Poll(*other),
                    }),
                    (true, false) => Some(Entry::Poll(*t)),
                    (false, false) => None,
                }
            }
        };
        out.extend(kept);
    }
    out
}

/// The handles created by the entries kept so far.
#[derive(Default)]
struct Known {
    scopes: BTreeSet<ScopeId>,
    subs: BTreeSet<SubId>,
    tasks: BTreeSet<TaskId>,
}

impl Known {
    fn has(&self, t: TaskRef) -> bool {
        match t {
            TaskRef::Scope(s) => self.scopes.contains(&s),
            TaskRef::Sub(s) => self.subs.contains(&s),
            TaskRef::Any => true,
        }
    }

    fn scope_ok(&self, s: &Option<ScopeId>) -> bool {
        s.as_ref().is_none_or(|s| self.scopes.contains(s))
    }

    /// Whether `op` names only known handles; what it creates is then known.
    fn admit(&mut self, op: &Op) -> bool {
        match op {
            Op::OpenScope { scope, parent, .. } => {
                let ok = self.scope_ok(parent);
                if ok {
                    self.scopes.insert(*scope);
                }
                ok
            }
            Op::CloseScope { scope }
            | Op::CancelScope { scope }
            | Op::FailScope { scope }
            | Op::Observe { scope } => self.scopes.contains(scope),
            Op::SpawnProcessor { sub, scope, .. } => {
                let ok = self.scopes.contains(scope);
                if ok {
                    self.subs.insert(*sub);
                }
                ok
            }
            Op::Subscribe { sub, scope, .. } => {
                let ok = self.scope_ok(scope);
                if ok {
                    self.subs.insert(*sub);
                }
                ok
            }
            Op::SubscribeShared {
                sub, puller, scope, ..
            } => {
                let ok = self.scopes.contains(scope);
                if ok {
                    self.subs.insert(*sub);
                    self.subs.insert(*puller);
                }
                ok
            }
            Op::Send { scope, .. } => self.scope_ok(scope),
            Op::Consume { sub, .. }
            | Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::Abandon { sub }
            | Op::Reenter { sub, .. }
            | Op::FailSubscriber { sub, .. } => self.subs.contains(sub),
            Op::Spawn { task, scope } => {
                let ok = self.scopes.contains(scope);
                if ok {
                    self.tasks.insert(*task);
                }
                ok
            }
            Op::Release { task, .. } => self.tasks.contains(task),
            Op::Settle => true,
        }
    }
}

/// How many of `entries` are ops (not scheduling choices).
pub fn count_ops(entries: &[Entry]) -> usize {
    entries.iter().filter(|e| matches!(e, Entry::Op(_))).count()
}
