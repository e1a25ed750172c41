//! Workload generation by swarm testing.
//!
//! Each seed first draws its own configuration: which op kinds are switched
//! on, their weights, which catalogue types are in play, how many scopes, how
//! much scheduling between ops, how often faults are injected, and which
//! scheduling policy runs (Groce et al., "Swarm Testing", ISSTA 2012; as
//! FoundationDB's and TigerBeetle's simulators do). Ops are then drawn one by
//! one from the model's current state, so every op is valid when generated.

use crate::catalogue::{EventId, EventType};
use crate::model::Model;
use crate::op::{Interjection, Op, ReentryAction, ScopeId, SendSpec, SubId, TaskId, TaskRef};
use crate::rules::{Capabilities, Capability};
use crate::schedule::Scheduler;
use rand::{Rng, RngExt};
use std::fmt;

/// The kinds of op, for weighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    /// `open_scope`
    OpenScope,
    /// `close_scope`
    CloseScope,
    /// `cancel_scope`
    CancelScope,
    /// `subscribe`
    Subscribe,
    /// `send`
    Send,
    /// `consume`
    Consume,
    /// `drop_subscription`
    DropSubscription,
    /// `cancel_subscriber`
    CancelSubscriber,
    /// `spawn`
    Spawn,
    /// `release`
    Release,
    /// `settle`
    Settle,
    /// `observe`
    Observe,
    /// `abandon`
    Abandon,
    /// `spawn_processor`.
    SpawnProcessor,
    /// `fail_scope`.
    FailScope,
    /// `fail_subscriber`.
    FailSubscriber,
    /// `subscribe_shared`.
    SubscribeShared,
    /// `reenter`.
    Reenter,
}

impl OpKind {
    /// Every kind.
    pub const ALL: [OpKind; 18] = [
        OpKind::OpenScope,
        OpKind::CloseScope,
        OpKind::CancelScope,
        OpKind::Subscribe,
        OpKind::Send,
        OpKind::Consume,
        OpKind::DropSubscription,
        OpKind::CancelSubscriber,
        OpKind::Spawn,
        OpKind::Release,
        OpKind::Settle,
        OpKind::Observe,
        OpKind::Abandon,
        OpKind::SpawnProcessor,
        OpKind::FailScope,
        OpKind::FailSubscriber,
        OpKind::SubscribeShared,
        OpKind::Reenter,
    ];

    /// Kinds added after earlier kinds' seeds were recorded: for an
    /// implementation without their capability they draw nothing at all,
    /// so that its workloads (and recorded seeds) stay what they were.
    fn late(self) -> bool {
        matches!(self, OpKind::Reenter)
    }

    /// Kinds every workload keeps: without them nothing is exercised.
    fn core(self) -> bool {
        matches!(
            self,
            OpKind::OpenScope | OpKind::Subscribe | OpKind::Send | OpKind::Consume
        )
    }

    /// The capability the kind needs, if any.
    fn needs(self) -> Option<Capability> {
        match self {
            OpKind::CancelScope | OpKind::CancelSubscriber => Some(Capability::Cancel),
            OpKind::Spawn | OpKind::Release => Some(Capability::Tasks),
            OpKind::Observe => Some(Capability::Stats),
            OpKind::Abandon => Some(Capability::Abandon),
            OpKind::SpawnProcessor => Some(Capability::Processors),
            OpKind::FailScope | OpKind::FailSubscriber => Some(Capability::Failures),
            OpKind::SubscribeShared => Some(Capability::Share),
            OpKind::Reenter => Some(Capability::Reenter),
            _ => None,
        }
    }
}

/// One seed's workload configuration.
#[derive(Clone, Debug)]
pub struct Swarm {
    /// Whether this is a crowd: one type, many subscribers, few sends.
    pub crowd: bool,
    /// Weight of each [`OpKind`] (0: switched off), indexed as `OpKind::ALL`.
    pub weights: [u32; OpKind::ALL.len()],
    /// The catalogue types in play.
    pub types: Vec<EventType>,
    /// At most this many usable scopes at once.
    pub max_scopes: usize,
    /// Probability that a new scope is a root.
    pub root_p: f64,
    /// Probability that a nested scope is isolated.
    pub isolated_p: f64,
    /// Probability that a subscribe or send happens outside every scope.
    pub outside_p: f64,
    /// Probability that a subscribe or send goes through the handle of a
    /// scope that has exited or been cancelled, if there is one (EXIT-1).
    pub exited_p: f64,
    /// Largest credit a `consume` gives.
    pub max_k: u32,
    /// Largest number of scheduling steps after an op.
    pub max_steps: u32,
    /// Probability of a spurious wakeup before a step.
    pub wake_p: f64,
    /// Probability that a poll is preempted at its first yield point by a
    /// send, a spawn or a poll of another task (see [`Swarm::interjection`]).
    pub preempt_p: f64,
    /// Probability, before a step, that a subscriber task is moved to a new
    /// waker (`migrate`).
    pub migrate_p: f64,
    /// The scheduling policy.
    pub scheduler: Scheduler,
    /// The capabilities it was drawn for.
    pub capabilities: Capabilities,
}

/// In a crowd, subscriptions with ids up to this one are never dropped or
/// cancelled by the workload (only by its closing sequence's end).
const CROWD_STEADY: u32 = 4;

fn pick<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// The op weights of an ordinary swarm: each kind the implementation can do
/// is on with probability 0.7 (the core kinds always), at a random multiple
/// of its base weight.
fn draw_weights(rng: &mut impl Rng, capabilities: Capabilities) -> [u32; OpKind::ALL.len()] {
    let mut weights = [0; OpKind::ALL.len()];
    for (i, kind) in OpKind::ALL.into_iter().enumerate() {
        let allowed = kind.needs().is_none_or(|c| capabilities.has(c));
        if kind.late() && !allowed {
            continue;
        }
        let on = kind.core() || rng.random_bool(0.7);
        if allowed && on {
            let base = match kind {
                OpKind::Send | OpKind::Consume => 6,
                OpKind::Subscribe => 4,
                OpKind::Settle
                | OpKind::Observe
                | OpKind::FailScope
                | OpKind::FailSubscriber
                | OpKind::SubscribeShared => 1,
                _ => 2,
            };
            weights[i] = base * rng.random_range(1..=4);
        }
    }
    weights
}

/// The op weights of a crowd: subscribing, consuming and dropping, and
/// sending in half of them only (half the crowds send nothing until the
/// closing sequence, so that the waiter list grows with no send to reset
/// it; the closing sequence's close is then the wakeup that must reach
/// every waiter).
fn crowd_weights(rng: &mut impl Rng, capabilities: Capabilities) -> [u32; OpKind::ALL.len()] {
    let send = pick(rng, &[0, 1]);
    let mut weights = [0; OpKind::ALL.len()];
    for (i, kind) in OpKind::ALL.into_iter().enumerate() {
        let allowed = kind.needs().is_none_or(|c| capabilities.has(c));
        weights[i] = match kind {
            _ if !allowed => 0,
            OpKind::Subscribe | OpKind::Consume => 12,
            OpKind::DropSubscription => 8,
            OpKind::CancelSubscriber | OpKind::Abandon => 4,
            // A probe armed in a crowd may ride on the wakeup that the
            // rebuilding of a waiter list full of dropped subscriptions
            // makes (REENTER-1).
            OpKind::Reenter => 2,
            OpKind::Send => send,
            OpKind::OpenScope | OpKind::Settle | OpKind::Observe => 1,
            _ => 0,
        };
    }
    weights
}

impl Swarm {
    /// Draws a configuration for a run of about `ops` ops against an
    /// implementation with `capabilities`.
    pub fn draw(rng: &mut impl Rng, capabilities: Capabilities, ops: usize) -> Swarm {
        let mut weights = draw_weights(rng, capabilities);
        let mut types = EventType::ALL.to_vec();
        for i in (1..types.len()).rev() {
            types.swap(i, rng.random_range(0..=i));
        }
        types.truncate(rng.random_range(1..=EventType::ALL.len()));
        let mut max_steps = pick(rng, &[0, 1, 2, 4, 8]);
        // A crowd: one type, many subscribers that wait and are dropped, few
        // sends. It reaches what needs many waiters on one channel at once
        // (the rebuilding of a waiter list full of dropped subscriptions).
        let crowd = rng.random_bool(0.25);
        if crowd {
            types.truncate(1);
            max_steps = 8;
            weights = crowd_weights(rng, capabilities);
        }
        let scheduler = if capabilities.has(Capability::Schedule) && rng.random_bool(0.5) {
            let horizon = (ops as u64) * u64::from(max_steps / 2 + 1);
            let depth = rng.random_range(1..=3);
            Scheduler::pct(rng, depth, horizon)
        } else {
            Scheduler::Random
        };
        let max_scopes = if crowd { 1 } else { rng.random_range(1..=6) };
        let root_p = pick(rng, &[0.1, 0.3, 0.6]);
        let mut with = |c: Capability, choices: &[f64]| match capabilities.has(c) {
            true => pick(rng, choices),
            false => 0.0,
        };
        let isolated_p = with(Capability::Isolated, &[0.0, 0.3, 0.7]);
        let outside_p = pick(rng, &[0.0, 0.02, 0.1]);
        let max_k = pick(rng, &[1, 2, 4, 16]);
        let mut with = |c: Capability, choices: &[f64]| match capabilities.has(c) {
            true => pick(rng, choices),
            false => 0.0,
        };
        Swarm {
            crowd,
            weights,
            types,
            max_scopes,
            root_p,
            isolated_p,
            outside_p,
            max_k,
            max_steps,
            wake_p: with(Capability::Wake, &[0.0, 0.1, 0.3]),
            preempt_p: with(Capability::Preempt, &[0.0, 0.2, 0.5]),
            migrate_p: with(Capability::Migrate, &[0.0, 0.05, 0.2]),
            exited_p: with(Capability::ExitedScopes, &[0.0, 0.05, 0.2]),
            scheduler,
            capabilities,
        }
    }

    /// Draws the next op, valid in `model`'s current state.
    pub fn next_op(&self, rng: &mut impl Rng, model: &Model, ids: &mut Ids) -> Op {
        let kind = self.next_kind(rng, model);
        let usable = model.usable_scopes();
        let held = model.held_subs();
        let maybe_outside = |rng: &mut _| self.reach(rng, model, &usable);
        match kind {
            OpKind::OpenScope => self.open_scope(rng, model, ids),
            OpKind::CloseScope => Op::CloseScope {
                scope: pick(rng, &model.closable_scopes()),
            },
            OpKind::CancelScope => Op::CancelScope {
                scope: pick(rng, &usable),
            },
            OpKind::FailScope => Op::FailScope {
                scope: pick(rng, &model.failable_scopes()),
            },
            OpKind::FailSubscriber => self.fail_subscriber(rng, model, ids),
            OpKind::Subscribe => Op::Subscribe {
                sub: ids.sub(),
                scope: maybe_outside(rng),
                ty: pick(rng, &self.types),
            },
            OpKind::Send => Op::Send {
                scope: maybe_outside(rng),
                ty: pick(rng, &self.types),
                event: ids.event(),
            },
            OpKind::Consume => Op::Consume {
                sub: Self::sub_to_credit(rng, model),
                k: rng.random_range(1..=self.max_k),
            },
            OpKind::CancelSubscriber => self.to_cancel(rng, model),
            OpKind::DropSubscription => self.let_go(kind, pick(rng, held)),
            OpKind::SpawnProcessor => Op::SpawnProcessor {
                sub: ids.sub(),
                scope: pick(rng, &usable),
                ty: pick(rng, &self.types),
            },
            OpKind::SubscribeShared => Op::SubscribeShared {
                sub: ids.sub(),
                puller: ids.sub(),
                scope: pick(rng, &usable),
                ty: pick(rng, &self.types),
            },
            OpKind::Abandon => Op::Abandon {
                sub: Self::sub_to_abandon(rng, model),
            },
            OpKind::Reenter => self.reenter(rng, model),
            OpKind::Spawn => Op::Spawn {
                task: ids.task(),
                scope: pick(rng, &usable),
            },
            OpKind::Release => Op::Release {
                task: self.task_to_release(rng, model),
                send: rng.random_bool(0.6).then(|| SendSpec {
                    ty: pick(rng, &self.types),
                    event: ids.event(),
                }),
            },
            OpKind::Settle => Op::Settle,
            OpKind::Observe => Op::Observe {
                scope: pick(rng, &usable),
            },
        }
    }

    /// Where a `subscribe` or `send` happens: through the handle of a scope
    /// that has gone (EXIT-1, with probability `exited_p`), outside every
    /// scope (`outside_p`, or when no scope is usable), or in a usable one.
    fn reach(&self, rng: &mut impl Rng, model: &Model, usable: &[ScopeId]) -> Option<ScopeId> {
        if rng_bool(rng, self.exited_p) {
            let exited = model.exited_scopes();
            if !exited.is_empty() {
                return Some(pick(rng, &exited));
            }
        }
        if usable.is_empty() || rng_bool(rng, self.outside_p) {
            None
        } else {
            Some(pick(rng, usable))
        }
    }

    /// A `fail_subscriber` of a held subscription, its cleanup sending
    /// (probability 0.6) while its scope is usable; a `consume` if the one
    /// drawn is shared.
    fn fail_subscriber(&self, rng: &mut impl Rng, model: &Model, ids: &mut Ids) -> Op {
        let sub = pick(rng, model.held_subs());
        if model.is_shared(sub) {
            return self.credit_instead(rng, sub);
        }
        let send = (model.sub_scope_usable(sub) && rng.random_bool(0.6)).then(|| SendSpec {
            ty: pick(rng, &self.types),
            event: ids.event(),
        });
        Op::FailSubscriber { sub, send }
    }

    /// A `reenter` arming a live subscription's task, one with credit (so
    /// likely waiting, its waker held by the bus) when there is one; a
    /// `consume` if every held subscription has ended.
    fn reenter(&self, rng: &mut impl Rng, model: &Model) -> Op {
        let live = |subs: &[SubId]| -> Vec<SubId> {
            subs.iter()
                .copied()
                .filter(|s| !model.has_ended(*s))
                .collect()
        };
        let mut candidates = live(&model.credited_subs());
        if candidates.is_empty() {
            candidates = live(model.held_subs());
        }
        if candidates.is_empty() {
            let sub = pick(rng, model.held_subs());
            return self.credit_instead(rng, sub);
        }
        let action = pick(rng, &[ReentryAction::Stats, ReentryAction::Subscribe]);
        Op::Reenter {
            sub: pick(rng, &candidates),
            action,
        }
    }

    /// A `consume` of `sub`, for a kind of op that a shared subscription
    /// does not take (`fail_subscriber`: SHARE-1).
    fn credit_instead(&self, rng: &mut impl Rng, sub: SubId) -> Op {
        Op::Consume {
            sub,
            k: rng.random_range(1..=self.max_k),
        }
    }

    /// A waiting task to release: half the time, when there are any, one
    /// whose group's cancellation was requested and has not taken effect
    /// yet (TASK-3's situation, which uniform draws reach rarely).
    fn task_to_release(&self, rng: &mut impl Rng, model: &Model) -> TaskId {
        let cancelling = model.tasks_being_cancelled();
        if !cancelling.is_empty() && rng.random_bool(0.5) {
            return pick(rng, &cancelling);
        }
        pick(rng, model.waiting_tasks())
    }

    /// A held subscription to give credit: half the time, when there is
    /// one, one whose bus is about to close (its subscriber then wakes to
    /// pull while the owner's body is about to return: the race of CLOSE-1
    /// and WAKE-1, which uniform draws reach rarely).
    fn sub_to_credit(rng: &mut impl Rng, model: &Model) -> SubId {
        let held = model.held_subs();
        if model.has_shared() && rng.random_bool(0.3) {
            let pullers = model.held_pullers();
            if !pullers.is_empty() {
                return pick(rng, &pullers);
            }
        }
        if rng.random_bool(0.5) {
            let closing: Vec<SubId> = held
                .iter()
                .copied()
                .filter(|s| model.bus_about_to_close(*s))
                .collect();
            if !closing.is_empty() {
                return pick(rng, &closing);
            }
        }
        pick(rng, held)
    }

    /// A held subscription whose pull to abandon: one with credit (it may
    /// be waiting in a pull: CANCEL-2's situation) when there is one.
    fn sub_to_abandon(rng: &mut impl Rng, model: &Model) -> SubId {
        let mut credited = model.credited_subs();
        credited.extend(model.running_processors());
        match credited.is_empty() {
            true => pick(rng, model.held_subs()),
            false => pick(rng, &credited),
        }
    }

    /// Draws the kind of the next op, by weight, among those that can
    /// apply now (a `settle` if none can); half the time a `release` while
    /// a cancellation has not yet reached the tasks it cancels (the window
    /// of TASK-3, which closes at the next poll of the scope).
    fn next_kind(&self, rng: &mut impl Rng, model: &Model) -> OpKind {
        let release = self.weights[OpKind::ALL
            .iter()
            .position(|k| *k == OpKind::Release)
            .unwrap_or(0)];
        if release > 0 && !model.tasks_being_cancelled().is_empty() && rng.random_bool(0.5) {
            return OpKind::Release;
        }
        let (usable, held) = (model.usable_scopes(), model.held_subs());
        let waiting = model.waiting_tasks();
        let applicable = |kind: OpKind| match kind {
            OpKind::OpenScope => usable.len() < self.max_scopes,
            OpKind::CloseScope => !model.closable_scopes().is_empty(),
            OpKind::CancelScope | OpKind::Spawn | OpKind::Observe => !usable.is_empty(),
            OpKind::Subscribe | OpKind::Send | OpKind::Settle => true,
            OpKind::Consume
            | OpKind::DropSubscription
            | OpKind::Abandon
            | OpKind::Reenter
            | OpKind::FailSubscriber => !held.is_empty(),
            OpKind::CancelSubscriber => !held.is_empty() || model.has_running_processors(),
            OpKind::SpawnProcessor | OpKind::SubscribeShared => !usable.is_empty(),
            OpKind::FailScope => !model.failable_scopes().is_empty(),
            OpKind::Release => !waiting.is_empty(),
        };
        let total: u32 = OpKind::ALL
            .iter()
            .zip(self.weights)
            .filter(|(k, _)| applicable(**k))
            .map(|(_, w)| w)
            .sum();
        if total == 0 {
            return OpKind::Settle;
        }
        let mut roll = rng.random_range(0..total);
        for (k, w) in OpKind::ALL.iter().zip(self.weights) {
            if !applicable(*k) {
                continue;
            }
            if roll < w {
                return *k;
            }
            roll -= w;
        }
        OpKind::Settle
    }

    fn open_scope(&self, rng: &mut impl Rng, model: &Model, ids: &mut Ids) -> Op {
        let nestable = model.nestable_scopes();
        let parent = if nestable.is_empty() || rng.random_bool(self.root_p) {
            None
        } else {
            Some(pick(rng, &nestable))
        };
        Op::OpenScope {
            scope: ids.scope(),
            parent,
            isolated: parent.is_some() && rng_bool(rng, self.isolated_p),
        }
    }

    /// A subscriber or processor to cancel: a processor a third of the time
    /// when there is one (the seed's `order_processor.cancel()`).
    fn to_cancel(&self, rng: &mut impl Rng, model: &Model) -> Op {
        let held = model.held_subs();
        if held.is_empty() || (model.has_running_processors() && rng.random_bool(1.0 / 3.0)) {
            let processors = model.running_processors();
            if !processors.is_empty() {
                return Op::CancelSubscriber {
                    sub: pick(rng, &processors),
                };
            }
        }
        self.let_go(OpKind::CancelSubscriber, pick(rng, held))
    }

    /// A drop or cancel of `sub`; in a crowd, its first subscribers are
    /// steady: they stay (registered early, at the front of the waiter
    /// list) while the others churn around them, and get credit instead.
    fn let_go(&self, kind: OpKind, sub: SubId) -> Op {
        if self.crowd && sub.0 <= CROWD_STEADY {
            Op::Consume { sub, k: 1 }
        } else if kind == OpKind::DropSubscription {
            Op::DropSubscription { sub }
        } else {
            Op::CancelSubscriber { sub }
        }
    }
}

impl Swarm {
    /// What preempts the poll of `task` at its first yield point, if
    /// anything fits: for a subscriber, a send to its scope and type (the
    /// race of WAKE-1), or a poll of a runnable scope task, its own scope's
    /// root preferred (whose body may return and close the bus
    /// mid-registration: CLOSE-1, WAKE-1); for a scope
    /// task, a spawn into or a send to a scope of its tree (the ones on
    /// their way out preferred: a spawn racing with exit, TASK-1), or a
    /// poll of another runnable task. `runnable` are the runnable tasks.
    pub fn interjection(
        &self,
        rng: &mut impl Rng,
        task: TaskRef,
        runnable: &[TaskRef],
        model: &Model,
        ids: &mut Ids,
    ) -> Option<Interjection> {
        let others: Vec<TaskRef> = runnable.iter().copied().filter(|t| *t != task).collect();
        match task {
            TaskRef::Sub(sub) => Self::interject_in_sub(rng, sub, &others, model, ids),
            TaskRef::Scope(root) => self.interject_in_scope(rng, root, &others, model, ids),
            TaskRef::Any => None,
        }
    }

    /// For a subscriber's poll: a send to its scope and type, or a poll of a
    /// runnable scope task (its own root's, mostly; almost always when its
    /// bus is about to close, the race of CLOSE-1 and WAKE-1).
    fn interject_in_sub(
        rng: &mut impl Rng,
        sub: SubId,
        others: &[TaskRef],
        model: &Model,
        ids: &mut Ids,
    ) -> Option<Interjection> {
        let send = model.preempt_target(sub);
        let scopes: Vec<TaskRef> = others
            .iter()
            .copied()
            .filter(|t| matches!(t, TaskRef::Scope(_)))
            .collect();
        let send_op = |(scope, ty), ids: &mut Ids| {
            Some(Interjection::Op(Op::Send {
                scope: Some(scope),
                ty,
                event: ids.event(),
            }))
        };
        let send_p = if model.bus_about_to_close(sub) {
            0.1
        } else {
            0.5
        };
        match (send, scopes.is_empty()) {
            (None, true) => None,
            (Some(target), true) => send_op(target, ids),
            (Some(target), false) if rng.random_bool(send_p) => send_op(target, ids),
            (_, false) => {
                let own = model
                    .root_of_sub(sub)
                    .map(TaskRef::Scope)
                    .filter(|t| scopes.contains(t));
                Some(Interjection::Poll(match own {
                    Some(own) if rng.random_bool(0.75) => own,
                    _ => pick(rng, &scopes),
                }))
            }
        }
    }

    /// For a scope task's poll: a send to, or a spawn into, a scope of its
    /// tree (those on their way out mostly), or a poll of another task.
    fn interject_in_scope(
        &self,
        rng: &mut impl Rng,
        root: ScopeId,
        others: &[TaskRef],
        model: &Model,
        ids: &mut Ids,
    ) -> Option<Interjection> {
        let (scopes, leaving) = model.usable_in_tree(root);
        let mut choices = Vec::with_capacity(3);
        if !scopes.is_empty() {
            choices.push(0);
            if self.capabilities.has(Capability::Tasks) {
                choices.push(1);
            }
        }
        if !others.is_empty() {
            choices.push(2);
        }
        if choices.is_empty() {
            return None;
        }
        let choice = pick(rng, &choices);
        if choice == 2 {
            return Some(Interjection::Poll(pick(rng, others)));
        }
        let target = if leaving > 0 && rng_bool(rng, 0.75) {
            scopes[rng.random_range(0..leaving)]
        } else {
            pick(rng, &scopes)
        };
        Some(Interjection::Op(match choice {
            0 => Op::Send {
                scope: Some(target),
                ty: pick(rng, &self.types),
                event: ids.event(),
            },
            _ => Op::Spawn {
                task: ids.task(),
                scope: target,
            },
        }))
    }
}

fn rng_bool(rng: &mut impl Rng, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p)
}

impl fmt::Display for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = OpKind::ALL
            .iter()
            .zip(self.weights)
            .filter(|(_, w)| *w > 0)
            .map(|(k, w)| format!("{k:?}={w}"))
            .collect();
        let types: Vec<&str> = self.types.iter().map(|t| t.name()).collect();
        write!(
            f,
            "{}ops [{}], types [{}], scopes<={}, k<={}, steps<={}, wake p={}, preempt p={}, migrate p={}, exited p={}, {}",
            if self.crowd { "crowd: " } else { "" },
            kinds.join(" "),
            types.join(", "),
            self.max_scopes,
            self.max_k,
            self.max_steps,
            self.wake_p,
            self.preempt_p,
            self.migrate_p,
            self.exited_p,
            self.scheduler.describe()
        )
    }
}

/// Fresh handles for a workload.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    scopes: u32,
    subs: u32,
    tasks: u32,
    events: EventId,
}

impl Ids {
    /// A new scope handle.
    pub fn scope(&mut self) -> ScopeId {
        self.scopes += 1;
        ScopeId(self.scopes)
    }
    /// A new subscription handle.
    pub fn sub(&mut self) -> SubId {
        self.subs += 1;
        SubId(self.subs)
    }
    /// A new task handle.
    pub fn task(&mut self) -> TaskId {
        self.tasks += 1;
        TaskId(self.tasks)
    }
    /// A new event id.
    pub fn event(&mut self) -> EventId {
        self.events += 1;
        self.events
    }
}
