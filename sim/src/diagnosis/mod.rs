//! Diagnosis: which rule a disagreement breaks.
//!
//! The model ([`crate::model`]) says *what* went wrong and hands over the
//! facts; diagnosis says *which promise* that breaks. Every attribution
//! step lives here, as a named predicate, the probes and counterfactual
//! replays included; the harness, `replay`, the shrinker and the runner all
//! call the same functions, so one trace gets one verdict wherever it runs.
//!
//! # Precedence
//!
//! A failure is attributed in this order; the first step that decides,
//! decides:
//!
//! 1. **Faults** ([`fault`]): a panic, crash or protocol error is ROBUST-1
//!    (a protocol error makes the run unjudgeable); a busy loop WAKE-1; a
//!    hang counts against the rule of the op that hung.
//! 2. **Certain checks**: where the model names the rule itself
//!    ([`crate::model::Disagreement::Certain`]).
//! 3. **The evidence's own rule** ([`classify`]): a wrong receipt
//!    ([`misdelivery`]), a refused send ([`send`]), wrong statistics
//!    ([`stats`]), a stream that ended early, stuck or never ended
//!    ([`liveness`], after the [`wake_probe`] on the live implementation).
//!
//! # Invariants
//!
//! - Diagnosis never changes what a trace reproduces: probes run after the
//!   failure is certain, counterfactuals on fresh instances.
//! - Classification is a pure function of the evidence.

pub mod fault;
pub mod liveness;
pub mod misdelivery;
pub mod send;
pub mod stats;
pub mod wake_probe;

use crate::model::{Disagreement, Violation};

/// Names the rule a disagreement breaks, from its evidence alone (step 3 of
/// the precedence; certain checks pass through).
pub fn classify(disagreement: &Disagreement) -> Violation {
    match disagreement {
        Disagreement::Certain(v) => v.clone(),
        Disagreement::Misdelivery(m) => misdelivery::misdelivery(m),
        Disagreement::SendRefused(s) => send::send_refused(s),
        Disagreement::Stats(s) => stats::stats(s),
        Disagreement::EarlyEnd(e) => liveness::early_end(e),
        Disagreement::Stuck(s) => liveness::stuck(s),
        Disagreement::Unended(u) => liveness::unended(u),
    }
}
