//! Root cause first: buses laid out otherwise than the spec says.
//!
//! An implementation whose isolated scopes share their parent's bus (or
//! whose nested scopes each get one) fails in many ways downstream: events
//! cross where they should not (SCOPE-3), events "sent with no subscriber"
//! are held because a subscription on the same real bus holds them
//! (DROP-1), a drop in one scope disturbs a send in another (CANCEL-1 seen
//! as SEND-1). Reported rule by rule, one behaviour would be three
//! failures. Instead:
//!
//! 1. [`probe`]: one small trace, run once per implementation, tells which
//!    layout it uses: the spec's, one of [`Layout::VARIANTS`], or none the
//!    model knows (then the spec's is assumed).
//! 2. [`explains`]: if the implementation's layout is not the spec's, a
//!    failing trace is rerun with a model of *its* layout. If that model
//!    accepts everything up to the failing entry, the layout is the root
//!    cause: the failure is reported under the layout's rule. If it fails
//!    at the same entry, that (other) failure is the real one, judged
//!    under the implementation's own layout. If it fails earlier, the
//!    layout explains nothing here, and the spec's attribution stands.
//!
//! The probe is a property of the implementation, not of a trace, so it
//! cannot make one trace's attribution move with another's ops.

use super::Rerun;
use crate::catalogue::EventType;
use crate::harness::{Failure, Run};
use crate::model::{Layout, Mode, Violation};
use crate::op::{Entry, Op, ScopeId, SubId};

/// The layout probe: a root with an isolated and a nested scope, a
/// subscription and a send in each, then a settle. Each layout predicts a
/// different set of receipts.
pub fn probe_trace() -> Vec<Entry> {
    let (root, isolated, nested) = (ScopeId(1), ScopeId(2), ScopeId(3));
    let open = |scope, parent, isolated| {
        Entry::Op(Op::OpenScope {
            scope,
            parent,
            isolated,
        })
    };
    let mut entries = vec![
        open(root, None, false),
        open(isolated, Some(root), true),
        open(nested, Some(root), false),
    ];
    for (n, scope) in [root, isolated, nested].into_iter().enumerate() {
        let sub = SubId(n as u32 + 1);
        entries.push(Entry::Op(Op::Subscribe {
            sub,
            scope: Some(scope),
            ty: EventType::Login,
        }));
        entries.push(Entry::Op(Op::Consume { sub, k: 3 }));
    }
    for (n, scope) in [root, isolated, nested].into_iter().enumerate() {
        entries.push(Entry::Op(Op::Send {
            scope: Some(scope),
            ty: EventType::Login,
            event: n as u64 + 1,
        }));
    }
    entries.push(Entry::Op(Op::Settle));
    entries
}

/// Which layout the implementation uses: the first of the spec's and
/// [`Layout::VARIANTS`] whose model accepts the [`probe_trace`] run on it.
/// The spec's if none does (the layout is then not what fails).
pub fn probe(rerun: &mut dyn FnMut(&[Entry], Layout) -> Run) -> Layout {
    let trace = probe_trace();
    std::iter::once(Layout::Spec)
        .chain(Layout::VARIANTS)
        .find(|layout| rerun(&trace, *layout).failure.is_none())
        .unwrap_or(Layout::Spec)
}

/// If the implementation's `layout` is not the spec's and a model of it
/// accepts the failing `prefix` (the trace up to and including the failing
/// entry), the failure follows from the layout: the violation of the
/// layout's rule that reports it. `None` otherwise.
pub fn explains(
    prefix: &[Entry],
    failure: &Failure,
    layout: Layout,
    rerun: &mut dyn FnMut(&[Entry], Layout) -> Run,
) -> Option<Violation> {
    let rule = layout.rule()?;
    if Rerun::of(prefix, rerun(prefix, layout)) != Rerun::Passed {
        return None;
    }
    Some(Violation::new(
        rule,
        Mode::Layout,
        format!(
            "the implementation lays out its buses otherwise ({layout}, as its layout probe shows), \
             and that explains this: {}",
            failure.message
        ),
    ))
}
