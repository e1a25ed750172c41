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
//! decides ([`Diagnosis::attribute`]):
//!
//! 1. **Faults** ([`fault`]): a panic, crash or protocol error is ROBUST-1
//!    (a protocol error makes the run unjudgeable); a busy loop WAKE-1; a
//!    hang counts against the rule of the op that hung. Nothing below
//!    applies to them.
//! 2. **The evidence's own rule** ([`classify`]), as the session finds it:
//!    certain checks name their rule; a wrong receipt ([`misdelivery`]), a
//!    refused send ([`send`]), wrong statistics ([`stats`]), a stream that
//!    ended early, stuck or never ended ([`liveness`], after the
//!    [`wake_probe`] on the live implementation) are named from their
//!    facts. This is a first reading; the steps below may overrule it.
//! 3. **Layout, root cause first** ([`layout`]): if the implementation's
//!    layout probe shows its buses laid out otherwise, and a model of that
//!    layout accepts the run up to the failing entry, the failure is the
//!    layout's (SCOPE-2, SCOPE-3, CLOSE-1 if buses never close, PROC-1 if
//!    they close only after their scope's tasks), reported once. Either way, the
//!    replays below are judged by a model of the implementation's layout,
//!    and so is what they are compared with: if that model fails the
//!    failing prefix at the same entry with a check the spec's model makes
//!    later (twice), that failure is what is left once the layout is
//!    accounted for, and it is the one attributed.
//! 4. **Look-alike types** ([`lookalike`]): a symptom on a channel that
//!    disappears when its look-alike types on that bus are renamed to
//!    unrelated types is ROUTE-1 (a bus that merges types explains every
//!    holder below, so it is asked first).
//! 5. **Failures** ([`failure`]): a symptom that disappears when each
//!    `fail_scope` is a `cancel_scope` instead is FAIL-1 (cancellation
//!    works, the failure path does not), and one that disappears when each
//!    `fail_subscriber` is the drop and the send it stands for is FAIL-2
//!    (asked before the holders: a subscription that a failure leaves
//!    holding events would be blamed on the drop it stands for).
//! 6. **Holders** ([`holder`]): events held that nothing should need are
//!    blamed on what holds them, asked by replaying without subscriptions
//!    made after close (CLOSE-3), without subscriptions made after the
//!    event (VIS-1), without the sends stored with no subscriber (DROP-1),
//!    or without dropped subscriptions (RECLAIM-2). Then **scope
//!    cancellations**: a symptom that disappears without the
//!    cancellations of nested, non-isolated scopes that processors were
//!    spawned in is TASK-1 (the processors went down with the nested scope,
//!    not with their group's owner: [`processor`]); a scope that does not
//!    finish exiting (TASK-1) because of the cancellations of scopes nested
//!    in it is TASK-2 ([`cancellation`]); a started task that ran though
//!    released after its group's cancellation was requested (TASK-3), and
//!    still runs when the cancellation is given a settle to take effect
//!    first, is TASK-2 ([`promptness`]).
//! 7. **Abandoned receives** ([`abandon`]): a symptom on a subscription or
//!    a sender that disappears without the `abandon`s of its channel's
//!    subscribers (or showed during one, and not with a `settle` there
//!    instead) is CANCEL-2; one that disappears when the channel's
//!    processors that a scope's cancellation or failure took down are
//!    plain subscribers instead ([`processor_abandon`]) is CANCEL-2 if
//!    abandoning their pending receives brings it back (their cancellation
//!    abandoned them), CANCEL-1 if not.
//! 8. **Drops** ([`cancel`]): a symptom on a subscription or a sender that
//!    disappears without the drops and cancellations of its channel's
//!    subscribers is CANCEL-1, unless it shows as well when each of those
//!    subscribers only abandons its pending receive instead (the drop
//!    abandoned it): then the receive is not cancel-safe, CANCEL-2, and the
//!    root cause is reported once. Nothing but steps 7 and 8 names CANCEL-1 or CANCEL-2:
//!    a drop or an abandon before a symptom is circumstance, said in the
//!    message, not blamed.
//!
//! # Invariants
//!
//! - Diagnosis never changes what a trace reproduces: probes run after the
//!   failure is certain, counterfactuals on fresh instances.
//! - Classification is a pure function of the evidence; every later step
//!   is a replay of the failing prefix (with some entries taken out, or a
//!   model of another layout) on a fresh instance, so its cost is a few
//!   replays, whatever the trace.
//! - Only what is causally tied to the failure can change its rule: the
//!   layout is the implementation's (one probe, not this trace), the
//!   holders and drops asked about are those of the failing channel.
//! - A counterfactual keeps the failing entry and compares the same
//!   disagreement at the same point ([`Rerun::cleared`], through
//!   `rerun::ask`); it counts only if the failing prefix itself fails the
//!   same way twice (a nondeterministic implementation answers nothing).
//!   A replay that fails earlier, another way, answers nothing: the first
//!   reading stands, and the shrinker, which judges every candidate by this
//!   same path, does not keep an op only because it made the replays
//!   inconclusive ([`crate::shrink`]).

pub mod abandon;
mod attribute;
pub mod cancel;
pub mod cancellation;
pub mod causal;
pub mod failure;
pub mod fault;
pub mod holder;
pub mod layout;
pub mod liveness;
pub mod lookalike;
pub mod misdelivery;
pub mod processor;
pub mod processor_abandon;
pub mod promptness;
mod rerun;
pub mod send;
pub mod stats;
pub mod wake_probe;

pub use attribute::{Diagnosis, Rerunner};
pub use rerun::{Cleared, Rerun};

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
