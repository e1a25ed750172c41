//! The model: a small, pure state machine that predicts every observation.
//!
//! No async, no cleverness: scopes, buses, one append-only log of event ids
//! per bus and route, and for each subscription a start index into its log
//! and a count of events received. The model is driven by the
//! implementation's own report of what happened, in the order it happened:
//! ops with their replies, and observations. It checks each against its
//! state as it comes (safety) and, after a `settle`, that everything that
//! should have happened did (liveness). Where it disagrees, it hands a
//! [`Disagreement`] with its evidence to [`crate::diagnosis`], which names
//! the rule; only where the rule is certain does the model name it itself.
//!
//! Terms: a subscription's *stream* is the log of its bus and route from its
//! start index on; its *cursor* is `start + received`; it is *live* until it
//! is dropped, cancelled, or observed to end.
//!
//! # Invariants
//!
//! - Every bus has one owner scope, the only one whose exit or cancellation
//!   closes it; which scopes own a bus, and whether buses close at all, is
//!   the model's [`Layout`] (the spec's, unless diagnosis asks for another).
//!   A closed bus never reopens.
//! - A channel's log holds exactly the events of its route sent on its bus
//!   while the bus was open, in send order; events sent after close or
//!   outside every scope are in no log.
//! - For every subscription, `start <= cursor <= log.len()`: it received
//!   exactly `log[start..cursor]`, in order.
//! - A subscription born on a closed bus has an empty stream.
//! - The indexes (`indexes`) hold exactly what their table says, after
//!   every op and observation.
//! - Nothing here is random or reads the clock: the same reports give the
//!   same verdicts.
//!
//! # Transitions
//!
//! Each line: what happens, and the rule its check enforces (certain, or
//! handed to diagnosis as evidence).
//!
//! | op or observation | effect | checked |
//! |---|---|---|
//! | `open_scope` | a scope, with a bus of its own or its parent's | reply (ROBUST-1); an exiting parent may refuse it (TASK-1) |
//! | `close_scope` | close requested | reply (ROBUST-1) |
//! | `cancel_scope` | cancellation requested, for nested scopes too | reply (ROBUST-1) |
//! | `subscribe` | a live subscription, or one born ended on a closed bus | `ContextMissing` outside scopes (MISSING-1), inside (SCOPE-1/2/3); `Closed` allowed on a closed bus (CLOSE-3); through an exited scope, as on its bus (EXIT-1) |
//! | `subscribe_shared` | a subscription, as `subscribe`, pulled by two tasks (`share`) | as `subscribe`; each receipt the subscription's next event (SHARE-1, evidence) |
//! | `send` | appended to its channel's log if the bus is open | outside scopes (MISSING-1); open bus: success (SEND-1, evidence); closed: ok or `Closed` (CLOSE-2, evidence) |
//! | `consume` | credit | reply (ROBUST-1) |
//! | `drop_subscription`, `cancel_subscriber` | no longer live; a drop is recorded on its channel | reply (ROBUST-1) |
//! | `spawn`, `release` | a worker task; released | reply (ROBUST-1); refusal by an exiting scope (TASK-1) |
//! | `observe` | nothing | live subscriptions and retained events per route (RECLAIM-1/2, DROP-1, evidence) |
//! | `settle` | nothing | liveness: stuck and unended subscriptions (evidence), scopes and tasks (TASK-1, TASK-2) |
//! | `received` | the cursor moves | receiver live with credit (CLOSE-1, CLOSE-3, ROBUST-1); the next event of its stream (evidence) |
//! | `ended` | no longer live | bus closed and stream drained (CLOSE-1, SCOPE-2, evidence) |
//! | `failed` | (never allowed) | a pull that raised: ROBUST-1 as it reads, CANCEL-1 if a sibling's drop caused it (evidence) |
//! | `scope_closing` | the owned bus closes | asked to close, not cancelled (TASK-2, ROBUST-1) |
//! | `scope_exited` | gone | body returned; a task group's owner: its group's tasks and scopes done (TASK-1, TASK-2) |
//! | `scope_cancelled` | gone; the owned bus closes | cancellation requested (TASK-1, ROBUST-1) |
//! | `reenter` | a probe armed on the sub's task | reply (ROBUST-1) |
//! | `reentered` | the probe consumed | it returned (REENTER-1); it was armed (ROBUST-1) |
//! | `task_started` | started (optional) | once, not after its group was cancelled (TASK-2, ROBUST-1) |
//! | `task_done` | done; its send, as a send | released, once; not after its group reported cancelled (TASK-2); not woken after the cancellation was requested, if it had started (TASK-3); ROBUST-1 |

mod coverage;
mod disagreement;
mod indexes;
mod layout;
mod liveness;
mod mode;
mod observations;
mod ops;
mod queries;
mod reentry;
mod send;
mod share;
mod state;
mod stats;

pub use disagreement::{
    BusFacts, Disagreement, EarlyEnd, EventFacts, HeldFacts, Misdelivery, ScopeKind, SendRefused,
    StatsField, StatsMismatch, StreamPosition, Stuck, SubLabel, Unended, Violation,
};
pub use layout::{Closing, Layout, Owners};
pub use mode::Mode;
pub(crate) use ops::PROCESSOR_CREDIT;
pub use queries::MAX_NESTING;

use crate::catalogue::{EventId, EventType};
use crate::op::{Observation, Op, Reply, ScopeId, SubId, TaskId};
use crate::rules::{Coverage, Rule};
use state::{Bus, BusIx, Event, Scope, SubState, Subscription, Task};
use std::collections::{BTreeMap, BTreeSet};

/// The model. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Model {
    layout: Layout,
    scopes: BTreeMap<ScopeId, Scope>,
    buses: Vec<Bus>,
    subs: BTreeMap<SubId, Subscription>,
    /// Subscriptions whose `subscribe` failed (as it should, e.g. outside
    /// every scope): no later op may name them.
    failed_subs: BTreeSet<SubId>,
    /// Subscribers made to fail (`fail_subscriber`) whose unwinding has not
    /// been reported yet: the scope their cleanup sends from, and what it
    /// sends (FAIL-2).
    failing_subs: BTreeMap<SubId, (ScopeId, Option<crate::op::SendSpec>)>,
    /// The second pullers of shared subscriptions, and the subscription
    /// each pulls (SHARE-1).
    pullers: BTreeMap<SubId, SubId>,
    /// Probes armed by `reenter` that have not reported (REENTER-1).
    reentries: BTreeMap<SubId, crate::op::ReentryAction>,
    tasks: BTreeMap<TaskId, Task>,
    events: BTreeMap<EventId, Event>,
    /// Logical clock: one tick per op, observation and settle check.
    now: u64,
    coverage: Coverage,
    route_sends: coverage::RouteSends,
    index: indexes::Indexes,
}

impl Model {
    /// An empty world with the spec's layout: no scope, no bus.
    pub fn new() -> Model {
        Model::default()
    }

    /// An empty world whose buses are laid out as `layout` says (for
    /// diagnosis: what a bus laid out that way would do).
    pub fn with_layout(layout: Layout) -> Model {
        Model {
            layout,
            ..Model::default()
        }
    }

    /// The layout the model assumes.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// How many times each rule has been checked on a situation that could
    /// break it.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// Applies `op`, which [`validate`](Model::validate) accepted, and checks
    /// the implementation's `reply` to it.
    ///
    /// # Errors
    /// The first disagreement the reply shows.
    pub fn apply(&mut self, op: &Op, reply: &Reply) -> Result<(), Disagreement> {
        self.now += 1;
        self.apply_op(op, reply)?;
        // ROBUST-1: the op was answered, as expected, without a fault.
        self.coverage.hit(Rule::Robust1);
        Ok(())
    }

    /// Checks one observation against the model and applies it.
    ///
    /// # Errors
    /// The first disagreement the observation shows.
    pub fn observe(&mut self, observation: &Observation) -> Result<(), Disagreement> {
        self.now += 1;
        match observation {
            Observation::Received { sub, event } => self.received_by(*sub, *event),
            Observation::Ended { sub } => self.ended_by(*sub),
            Observation::Failed { sub, error } => {
                // A shared subscription's puller: its pull is the
                // subscription's.
                self.failed(self.pullers.get(sub).copied().unwrap_or(*sub), error)
            }
            Observation::ScopeClosing { scope } => self.scope_closing(*scope),
            Observation::ScopeExited { scope } => self.scope_exited(*scope),
            Observation::ScopeCancelled { scope } => self.scope_cancelled(*scope),
            Observation::ScopeFailed { scope, error, own } => {
                self.scope_failed(*scope, error, *own)
            }
            Observation::SubscriberFailed { sub, sent } => {
                self.subscriber_failed(*sub, sent.clone())
            }
            Observation::Reentered {
                sub,
                action,
                during,
                outcome,
                detail,
            } => self.reentered(*sub, *action, *during, *outcome, detail.as_deref()),
            Observation::TaskStarted { task } => self.task_started(*task),
            Observation::TaskDone { task, sent } => self.task_done(*task, sent.clone()),
        }
    }

    /// The live subscriptions of `route` on `bus`.
    fn live(&self, bus: BusIx, route: EventType) -> impl Iterator<Item = &Subscription> {
        self.buses[bus]
            .channels
            .get(&route)
            .into_iter()
            .flat_map(|c| c.held.iter())
            .map(|id| &self.subs[id])
            .filter(|s| s.state == SubState::Live)
    }

    fn live_count(&self, bus: BusIx, route: EventType) -> usize {
        self.live(bus, route).count()
    }

    /// What the bus should retain of `route`: the events from the slowest
    /// live cursor to the end of the log (RECLAIM-1).
    fn retained(&self, bus: BusIx, route: EventType) -> usize {
        let len = self.log_len(bus, route);
        self.live(bus, route)
            .map(|s| len - s.cursor().min(len))
            .max()
            .unwrap_or(0)
    }

    fn log_len(&self, bus: BusIx, route: EventType) -> usize {
        self.buses[bus]
            .channels
            .get(&route)
            .map_or(0, |c| c.log.len())
    }
}
