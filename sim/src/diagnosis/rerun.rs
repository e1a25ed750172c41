//! What a counterfactual rerun says about a failure: the failing prefix
//! (the trace up to and including its failing entry), with something taken
//! out, replayed on a fresh instance. Did the same disagreement show again?
//!
//! "The same" is the same subject at the same point: the same
//! subscription stuck or unended at that settle, the same route's
//! statistics at that `observe`, the same receipt, send or end. A rerun
//! that fails there about something else has cleared this one, where the
//! model's order of checks lets that be told (a later route's statistics, a
//! check that comes after); anything else, and a failure before that
//! point, answers nothing.

use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Mode, Violation};
use crate::op::{Entry, Op};

/// How a counterfactual rerun of a failing prefix ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rerun {
    /// No failure at all.
    Passed,
    /// A failure at the prefix's last entry: the same point.
    AtEnd(Failure),
    /// A failure before it.
    Before(Failure),
    /// No failure up to the last entry, but one after it, once the rerun
    /// was given a settle: a trace with processors (which run inside their
    /// scope's task, so that what one poll of that task does depends on
    /// how many of them are woken) can move a symptom past the failing
    /// point without clearing it.
    Postponed(Failure),
}

/// Whether a rerun shows a failure again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleared {
    /// It does not: what was taken out caused it.
    Yes,
    /// It does: what was taken out did not cause it.
    No,
    /// The rerun cannot tell.
    Unknown,
}

/// Replays `candidate`, the failing `prefix` with something taken out
/// (judged by a model of `layout`): how it ended. `None` if nothing was
/// taken out, or if the failing entry itself went with it (a failure cannot
/// be asked about without the point it showed at).
pub fn ask(
    prefix: &[Entry],
    candidate: &[Entry],
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Rerun> {
    asked(prefix, candidate, false, layout, rerun)
}

/// [`ask`], and `None` too if the replay skipped an entry of `candidate`
/// (one that was not valid when its turn came): for candidates whose
/// swapped-in ops may be invalid where the ops they stand for were not (a
/// send in a scope that exited during the drop before it).
pub fn ask_all_valid(
    prefix: &[Entry],
    candidate: &[Entry],
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Rerun> {
    asked(prefix, candidate, true, layout, rerun)
}

/// [`ask`] and [`ask_all_valid`]: `all_valid` makes a replay that skipped
/// an entry answer nothing.
fn asked(
    prefix: &[Entry],
    candidate: &[Entry],
    all_valid: bool,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Rerun> {
    if !asks(prefix, candidate) {
        return None;
    }
    let run = rerun(candidate, layout);
    if all_valid && run.counts.skipped > 0 {
        return None;
    }
    let outcome = Rerun::of(candidate, run);
    Some(postponed(candidate, outcome, layout, rerun))
}

/// `outcome`, or, if it passed and `candidate` has processors, what the
/// same rerun followed by a settle shows ([`Rerun::Postponed`]).
fn postponed(
    candidate: &[Entry],
    outcome: Rerun,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Rerun {
    let processors = candidate
        .iter()
        .any(|e| matches!(e, Entry::Op(Op::SpawnProcessor { .. })));
    if outcome != Rerun::Passed || !processors {
        return outcome;
    }
    let mut longer = candidate.to_vec();
    longer.push(Entry::Op(Op::Settle));
    match rerun(&longer, layout).failure {
        Some(f) => Rerun::Postponed(f),
        None => Rerun::Passed,
    }
}

/// Whether `candidate` asks something of `prefix`: something was taken out,
/// and the failing entry was not.
fn asks(prefix: &[Entry], candidate: &[Entry]) -> bool {
    candidate != prefix && candidate.last() == prefix.last()
}

/// [`ask`], and `None` too if the replay had to skip a preempted poll: its
/// task had nothing to do without what was taken out, so what was
/// interjected into it (another task's poll, an op) ran at another time or
/// not at all, and the schedule changed, not only what was asked about.
/// (A plain poll skipped changes nothing else.) For questions whose
/// removals change whether a task runs at all: a dropped subscriber's.
pub fn ask_same_schedule(
    prefix: &[Entry],
    candidate: &[Entry],
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Rerun> {
    if !asks(prefix, candidate) {
        return None;
    }
    let outcome = same_schedule(candidate, rerun(candidate, layout))?;
    Some(postponed(candidate, outcome, layout, rerun))
}

/// Replays `prefix` with its last entry replaced by the entries `instead`
/// (the failing entry's point kept, what ran there changed): how it ended;
/// `None` as for [`ask_same_schedule`]. The entries `instead` all stand
/// at that one point: a failure during any of them is at it
/// ([`Rerun::AtEnd`]), not before it (a drop of a shared subscription,
/// which ends both its tasks at once, stands in as an abandon of each task
/// in turn, and what the drop did may show at the first).
pub fn ask_instead(
    prefix: &[Entry],
    instead: &[Entry],
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Rerun> {
    let (_, head) = prefix.split_last()?;
    let mut candidate = head.to_vec();
    candidate.extend_from_slice(instead);
    if candidate == prefix {
        return None;
    }
    let run = rerun(&candidate, layout);
    let at_the_point = run.failure.is_some() && run.stepped > head.len();
    let outcome = match same_schedule(&candidate, run)? {
        Rerun::Before(f) if at_the_point => Rerun::AtEnd(f),
        outcome => outcome,
    };
    Some(postponed(&candidate, outcome, layout, rerun))
}

/// How `run`, a replay of `candidate`, ended; `None` if it skipped a
/// preempted poll (see [`ask_same_schedule`]).
fn same_schedule(candidate: &[Entry], run: Run) -> Option<Rerun> {
    let preempts = |entries: &[Entry]| {
        entries
            .iter()
            .filter(|e| matches!(e, Entry::Preempt(..)))
            .count()
    };
    if run.counts.skipped > 0 && preempts(&run.trace) < preempts(candidate) {
        return None;
    }
    Some(Rerun::of(candidate, run))
}

impl Rerun {
    /// How `run`, a replay of `entries`, ended: at the last entry if it
    /// stepped them all.
    pub fn of(entries: &[Entry], run: Run) -> Rerun {
        match run.failure {
            None => Rerun::Passed,
            Some(f) if run.stepped == entries.len() => Rerun::AtEnd(f),
            Some(f) => Rerun::Before(f),
        }
    }

    /// Whether this rerun shows `original` again.
    pub fn cleared(&self, original: &Failure) -> Cleared {
        match self {
            Rerun::Passed => Cleared::Yes,
            Rerun::Before(_) => Cleared::Unknown,
            Rerun::Postponed(f) => postponed_again(original, f),
            Rerun::AtEnd(f) => match (original.evidence.as_deref(), f.evidence.as_deref()) {
                (Some(a), Some(b)) => same_point(a, b),
                _ => match f.rule == original.rule && f.message == original.message {
                    true => Cleared::No,
                    false => Cleared::Unknown,
                },
            },
        }
    }
}

/// Whether a failure found only after the failing point (`later`) is
/// `original` again. Only a receipt or an end can be moved past the point
/// (a settle's checks and an `observe`'s are made where they are asked
/// for): the same subscription's, with the same event, is not cleared; any
/// other failure later leaves it unknown. For the other failures, a
/// rerun that passed the failing point cleared them.
fn postponed_again(original: &Failure, later: &Failure) -> Cleared {
    use Disagreement as D;
    let same = match (original.evidence.as_deref(), later.evidence.as_deref()) {
        (Some(D::Misdelivery(x)), Some(D::Misdelivery(y))) => x.sub == y.sub && x.got == y.got,
        (Some(D::EarlyEnd(x)), Some(D::EarlyEnd(y))) => x.sub == y.sub,
        (Some(D::Misdelivery(_) | D::EarlyEnd(_)), _) => return Cleared::Unknown,
        _ => return Cleared::Yes,
    };
    match same {
        true => Cleared::No,
        false => Cleared::Unknown,
    }
}

/// Whether `b`, found at the same entry as `a`, is `a` again.
fn same_point(a: &Disagreement, b: &Disagreement) -> Cleared {
    use Disagreement as D;
    let is = |same: bool| if same { Cleared::No } else { Cleared::Unknown };
    match (a, b) {
        // Stuck subscriptions are checked first, all at once.
        (D::Stuck(x), D::Stuck(y)) => match y.subs.contains(&x.sub.sub) {
            true => Cleared::No,
            false => Cleared::Yes,
        },
        (D::Stuck(_), D::Unended(_)) => Cleared::Yes,
        (D::Stuck(_), D::Certain(v)) if settle_check(v) => Cleared::Yes,
        // Unended ones next, all at once; then scopes and tasks.
        (D::Unended(x), D::Unended(y)) => match y.subs.contains(&x.sub.sub) {
            true => Cleared::No,
            false => Cleared::Yes,
        },
        (D::Unended(_), D::Stuck(_)) => Cleared::Unknown,
        (D::Unended(_), D::Certain(v)) if settle_check(v) => Cleared::Yes,
        // Routes are checked in catalogue order.
        (D::Stats(x), D::Stats(y)) => {
            let order = |r| {
                crate::catalogue::EventType::ALL
                    .iter()
                    .position(|t| *t == r)
            };
            match order(y.route).cmp(&order(x.route)) {
                std::cmp::Ordering::Equal => Cleared::No,
                std::cmp::Ordering::Greater => Cleared::Yes,
                std::cmp::Ordering::Less => Cleared::Unknown,
            }
        }
        (D::Misdelivery(x), D::Misdelivery(y)) => is(x.sub == y.sub && x.got == y.got),
        // A receipt or an end is checked as it is reported, before the
        // liveness of a settle: a rerun that reaches the liveness check
        // took every report of that step; the subscription is still wrong
        // only if it is now stuck or unended.
        (D::Misdelivery(_) | D::EarlyEnd(_), D::Stuck(_) | D::Unended(_)) => {
            let sub = match a {
                D::Misdelivery(m) => m.sub.sub,
                D::EarlyEnd(e) => e.sub.sub,
                _ => return Cleared::Unknown,
            };
            let subs = match b {
                D::Stuck(s) => &s.subs,
                D::Unended(u) => &u.subs,
                _ => return Cleared::Unknown,
            };
            match subs.contains(&sub) {
                true => Cleared::No,
                false => Cleared::Yes,
            }
        }
        (D::SendRefused(x), D::SendRefused(y)) => is(x.event == y.event),
        (D::EarlyEnd(x), D::EarlyEnd(y)) => is(x.sub == y.sub),
        (D::Certain(x), D::Certain(y)) if x == y => Cleared::No,
        (D::Certain(x), D::Certain(y)) => settled_scopes_order(x, y),
        _ => Cleared::Unknown,
    }
}

/// Whether `v` is one of a settle's own checks of scopes and tasks, which
/// come after its checks of subscriptions (a receipt or an end reported
/// during the settle is checked before them all).
fn settle_check(v: &Violation) -> bool {
    matches!(
        v.mode,
        Mode::NeverExited | Mode::SurvivedCancel | Mode::TaskNeverRan
    )
}

/// After a settle, scopes are checked in id order, then released tasks: a
/// rerun that fails a check that comes after `x`'s has passed `x`'s.
fn settled_scopes_order(x: &Violation, y: &Violation) -> Cleared {
    let scope_check = |v: &Violation| matches!(v.mode, Mode::NeverExited | Mode::SurvivedCancel);
    let (Some(a), Some(b)) = (x.scope, y.scope) else {
        return Cleared::Unknown;
    };
    match (scope_check(x), scope_check(y), y.mode == Mode::TaskNeverRan) {
        (true, true, _) if b > a => Cleared::Yes,
        (true, _, true) => Cleared::Yes,
        _ => Cleared::Unknown,
    }
}
