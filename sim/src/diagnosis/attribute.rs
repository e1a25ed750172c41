//! The one verdict path: a run's failure, attributed in the precedence
//! order of [`super`], counterfactual replays included. `conformance`,
//! `replay`, `mutants`, the shrinker and the expectations check all go
//! through [`Diagnosis`], so a trace is judged the same wherever it runs.

use super::{
    Cleared, Rerun, abandon, cancel, cancellation, failure, holder, layout, lookalike, processor,
    processor_abandon, promptness,
};
use crate::harness::{Failure, Run, replay_laid_out};
use crate::iut::Implementation;
use crate::model::Layout;
use crate::op::Entry;
use crate::op::Op;
use crate::rules::Capability;

/// Reruns entries on a fresh instance of the implementation under test,
/// judged by a model with the given layout.
pub type Rerunner<'a> = Box<dyn FnMut(&[Entry], Layout) -> Run + 'a>;

/// Attributes failures for one implementation: knows its bus layout (from
/// the layout probe) and how to rerun traces on fresh instances of it.
pub struct Diagnosis<'a> {
    layout: Layout,
    rerun: Rerunner<'a>,
    /// Whether a probe run ended in a fault ([`Diagnosis::probe_broke`]).
    probe_broke: bool,
}

impl<'a> Diagnosis<'a> {
    /// Diagnosis for the implementation `fresh` builds (one instance per
    /// rerun), probing its layout first ([`layout::probe`]: one short run).
    pub fn new<I: Implementation + 'a>(fresh: impl Fn() -> I + 'a) -> Diagnosis<'a> {
        let mut diagnosis = Diagnosis::with_layout(Layout::SPEC, fresh);
        let (rerun, broke) = (&mut diagnosis.rerun, &mut diagnosis.probe_broke);
        diagnosis.layout = layout::probe(&mut |entries, layout| {
            let run = rerun(entries, layout);
            *broke |= run.failure.as_ref().is_some_and(|f| f.fault && !f.cut);
            run
        });
        diagnosis
    }

    /// Whether the implementation broke (hung, crashed, panicked, broke the
    /// protocol) on the layout probe: a runner counts that as a run in which
    /// it broke.
    pub fn probe_broke(&self) -> bool {
        self.probe_broke
    }

    /// Diagnosis for an implementation whose layout is already known (a
    /// campaign probes once, then attributes many seeds).
    pub fn with_layout<I: Implementation + 'a>(
        layout: Layout,
        fresh: impl Fn() -> I + 'a,
    ) -> Diagnosis<'a> {
        Diagnosis {
            layout,
            probe_broke: false,
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
    /// implementation's layout, look-alike types, the holders of retained
    /// events, scope cancellations and the drops of subscribers are asked
    /// about, each by a replay. The run's trace is kept as it is.
    pub fn attribute(&mut self, mut run: Run) -> Run {
        let Some(failure) = run.failure.take() else {
            return run;
        };
        if failure.evidence.is_none() {
            run.failure = Some(failure);
            return run;
        }
        let prefix = &run.trace[..(failure.entry + 1).min(run.trace.len())];
        // Failures the implementation answered `not_supported` did nothing:
        // the counterfactuals replay without them (swapping them for the
        // cancellation, drop or send they stand for would add what was not).
        let failure = if run.unsupported.has(Capability::Failures) {
            self.root_cause(&without_failures(prefix), failure)
        } else {
            self.root_cause(prefix, failure)
        };
        run.failure = Some(failure);
        run
    }

    /// Steps 3 to 8 of the precedence: the first step whose replays name
    /// another rule decides, if the failing prefix itself reproduces.
    fn root_cause(&mut self, prefix: &[Entry], failure: Failure) -> Failure {
        let (layout, rerun) = (self.layout, &mut self.rerun);
        if let Some(v) = layout::explains(prefix, &failure, layout, rerun) {
            return match self.reproduces(prefix, &failure) {
                true => failure.attributed(v),
                false => failure,
            };
        }
        // The replays below are judged by a model of the implementation's
        // layout; what they are compared with must be too.
        let (failure, layout_reading) = match self.as_laid_out(prefix, &failure) {
            Some(f) => (f, true),
            None => (failure, false),
        };
        let (layout, rerun) = (self.layout, &mut self.rerun);
        let steps = [
            lookalike::lookalikes,
            failure::failures,
            failure::subscriber_failures,
            holder::holder,
            processor::taken_down,
            cancellation::cancellation,
            promptness::promptness,
            abandon::abandons,
            processor_abandon::cancelled_processors,
            cancel::drops,
        ];
        let named = steps
            .iter()
            .find_map(|step| step(prefix, &failure, layout, rerun));
        match named {
            Some(v) if layout_reading || self.reproduces(prefix, &failure) => failure.attributed(v),
            _ => failure,
        }
    }

    /// For an implementation whose layout is not the spec's (and does not
    /// explain `failure`): the failing prefix judged by a model of its own
    /// layout, if that fails at the same entry with another disagreement, a
    /// check the spec's model makes later (so the spec's reading was the
    /// layout's doing, and this is what is left once the layout is
    /// accounted for). Only if it does so twice (a nondeterministic
    /// implementation answers nothing). `None` otherwise: the spec's
    /// reading stands.
    fn as_laid_out(&mut self, prefix: &[Entry], failure: &Failure) -> Option<Failure> {
        if self.layout == Layout::SPEC {
            return None;
        }
        let mut again = || match Rerun::of(prefix, (self.rerun)(prefix, self.layout)) {
            Rerun::AtEnd(f) if Rerun::AtEnd(f.clone()).cleared(failure) == Cleared::Yes => Some(f),
            _ => None,
        };
        let first = again()?;
        let second = again()?;
        (first.rule == second.rule && first.message == second.message).then_some(first)
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

/// `prefix` without its `fail_scope`s and `fail_subscriber`s before the
/// last entry: for an implementation that answered them `not_supported`.
fn without_failures(prefix: &[Entry]) -> Vec<Entry> {
    let Some((last, earlier)) = prefix.split_last() else {
        return Vec::new();
    };
    earlier
        .iter()
        .filter(|e| {
            !matches!(
                e,
                Entry::Op(Op::FailScope { .. } | Op::FailSubscriber { .. })
            )
        })
        .chain(std::iter::once(last))
        .cloned()
        .collect()
}
