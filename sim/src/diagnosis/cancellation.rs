//! TASK-2 before TASK-1: a scope that does not finish exiting because a
//! scope nested in it was cancelled badly.
//!
//! "A cancelled scope cancels its tasks ... and ends the scope and its
//! nested scopes." A cancelled scope whose tasks live on (handed to its
//! parent, say) keeps the parent from exiting, which reads as TASK-1 on
//! the parent: closing, every task the model knows of done, yet never
//! exited. So such a failure of scope S is replayed without the
//! cancellations of the scopes nested in S: if it then goes, those
//! cancellations left something behind, and it is TASK-2's. (Other TASK-1
//! failures are not asked: a cancellation that lets a scope exit at all
//! exposes its exit's faults, it does not cause them.)

use super::Cleared;
use super::causal::Shape;
use super::rerun::ask;
use crate::harness::{Failure, Run};
use crate::model::{Disagreement, Layout, Mode, Violation};
use crate::op::{Entry, Op};
use crate::rules::Rule;
use crate::shrink::close_references;

/// TASK-2, when replaying without the cancellations of the scopes nested in
/// the TASK-1 failure's scope clears it; `None` otherwise.
pub fn cancellation(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let Some(Disagreement::Certain(v)) = failure.evidence.as_deref() else {
        return None;
    };
    // Only a scope that does not finish exiting though, as far as the model
    // knows, all its tasks are done: something it waits for is invisible.
    let scope = v
        .scope
        .filter(|_| v.rule == Rule::Task1 && v.mode == Mode::NeverExited)?;
    let shape = Shape::of(prefix, layout);
    let nested_cancel = |e: &&Entry| matches!(e, Entry::Op(Op::CancelScope { scope: s }) if *s != scope && shape.is_within(*s, scope));
    let candidate = close_references(prefix.iter().filter(|e| !nested_cancel(e)));
    let outcome = ask(prefix, &candidate, layout, rerun)?;
    (outcome.cleared(failure) == Cleared::Yes).then(|| {
        Violation::new(
            Rule::Task2,
            v.mode,
            format!(
                "{} (without the cancellations of scopes nested in {scope} this does not happen: a cancelled scope's tasks must end with it, not hold up its parent)",
                failure.message
            ),
        )
        .about(scope)
    })
}
