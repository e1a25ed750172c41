//! The one verdict path: a run's failure, attributed in the precedence
//! order of [`super`], counterfactual replays included. `conformance`,
//! `replay`, `mutants`, the shrinker and the expectations check all go
//! through [`Diagnosis`], so a trace is judged the same wherever it runs.

use super::{Rerun, cancel, cancellation, holder, layout, lookalike};
use crate::harness::{Failure, Run, replay_laid_out};
use crate::iut::Implementation;
use crate::model::Layout;
use crate::op::Entry;

/// How many times a failure handed over by a counterfactual is attributed
/// in turn (each time on a trace with fewer drops, so it ends anyway).
const ROOT_CAUSE_DEPTH: u32 = 4;

/// Reruns entries on a fresh instance of the implementation under test,
/// judged by a model with the given layout.
pub type Rerunner<'a> = Box<dyn FnMut(&[Entry], Layout) -> Run + 'a>;

/// Attributes failures for one implementation: knows its bus layout (from
/// the layout probe) and how to rerun traces on fresh instances of it.
pub struct Diagnosis<'a> {
    layout: Layout,
    rerun: Rerunner<'a>,
}

impl<'a> Diagnosis<'a> {
    /// Diagnosis for the implementation `fresh` builds (one instance per
    /// rerun), probing its layout first ([`layout::probe`]: one short run).
    pub fn new<I: Implementation + 'a>(fresh: impl Fn() -> I + 'a) -> Diagnosis<'a> {
        let mut diagnosis = Diagnosis::with_layout(Layout::SPEC, fresh);
        diagnosis.layout = layout::probe(&mut diagnosis.rerun);
        diagnosis
    }

    /// Diagnosis for an implementation whose layout is already known (a
    /// campaign probes once, then attributes many seeds).
    pub fn with_layout<I: Implementation + 'a>(
        layout: Layout,
        fresh: impl Fn() -> I + 'a,
    ) -> Diagnosis<'a> {
        Diagnosis {
            layout,
            rerun: Box::new(move |entries, layout| {
                let mut imp = fresh();
                replay_laid_out(&mut imp, entries, layout)
            }),
        }
    }

    /// How the implementation lays out its buses, as its probe showed.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Replays `entries` on a fresh instance and attributes the failure, if
    /// any: what `cargo xtask replay` shows for a trace file.
    pub fn judge(&mut self, entries: &[Entry]) -> Run {
        let run = (self.rerun)(entries, Layout::SPEC);
        self.attribute(run)
    }

    /// Attributes `run`'s failure (from a generated run or a replay, judged
    /// by the spec's model), in the order of the module documentation of
    /// [`super`]: faults and protocol errors pass through; then the
    /// implementation's layout, the holders of retained events and the
    /// drops of subscribers are asked about, each by a replay. The result
    /// may carry another trace (the one that shows the failure reported).
    pub fn attribute(&mut self, mut run: Run) -> Run {
        let Some(failure) = run.failure.take() else {
            return run;
        };
        if failure.evidence.is_none() {
            run.failure = Some(failure);
            return run;
        }
        let prefix = run.trace[..(failure.entry + 1).min(run.trace.len())].to_vec();
        let (trace, failure) = self.root_cause(prefix, failure, ROOT_CAUSE_DEPTH);
        run.trace = trace;
        run.failure = Some(failure);
        run
    }

    /// The steps 3 to 5 of the precedence. Where the drops counterfactual
    /// hands over another failure, on the trace without the drops, that
    /// failure is attributed in turn (`depth` more times at most), so that
    /// the trace saved for it replays to the same rule.
    fn root_cause(
        &mut self,
        prefix: Vec<Entry>,
        failure: Failure,
        depth: u32,
    ) -> (Vec<Entry>, Failure) {
        let (layout, rerun) = (self.layout, &mut self.rerun);
        let steps = [
            layout::explains,
            holder::holder,
            lookalike::lookalikes,
            cancellation::cancellation,
        ];
        let other = match steps
            .iter()
            .find_map(|step| step(&prefix, &failure, layout, rerun))
        {
            Some(v) => Some((prefix.clone(), failure.attributed(v))),
            None => cancel::drops(&prefix, &failure, layout, rerun),
        };
        match other {
            Some((trace, other)) if self.reproduces(&prefix, &failure) => {
                if trace == prefix || depth == 0 || other.evidence.is_none() {
                    return (trace, other);
                }
                let at = (other.entry + 1).min(trace.len());
                self.root_cause(trace[..at].to_vec(), other, depth - 1)
            }
            _ => (prefix, failure),
        }
    }

    /// Whether replaying `prefix` fails as `failure` did, at its last
    /// entry, twice. A counterfactual (the same trace without something)
    /// says anything only if the trace itself does what it did: on an
    /// implementation that is not deterministic, the first reading stands.
    fn reproduces(&mut self, prefix: &[Entry], failure: &Failure) -> bool {
        (0..2).all(|_| {
            let run = (self.rerun)(prefix, Layout::SPEC);
            matches!(Rerun::of(prefix, run), Rerun::AtEnd(f) if f.rule == failure.rule)
        })
    }
}
