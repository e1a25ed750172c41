//! The model: a small, pure state machine that predicts every observation.
//!
//! No async, no cleverness: scopes, buses, one append-only log of event ids
//! per bus and route, and for each subscription a start index into its log and
//! a count of events received. Everything the implementation may report is
//! checked here against that state, and every check names the SPEC.md rule it
//! enforces.
//!
//! The model is driven by the implementation's own report of what happened,
//! in the order it happened: ops (with their replies) and observations
//! (events received, streams ended, scopes exiting, tasks finishing). After a
//! `settle`, it also checks that everything that *should* have happened did:
//! liveness.
//!
//! Terms: a subscription's *stream* is the log of its bus and route from its
//! start index on; its *cursor* is `start + received`; it is *live* until it
//! is dropped, cancelled, or observed to end.

use crate::catalogue::{EventId, EventType};
use crate::op::{Answer, Observation, Op, OpError, Reply, ScopeId, SendSpec, SubId, TaskId};
use crate::rules::{Coverage, Rule};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// A disagreement between the implementation and the model: the rule it
/// breaks and what exactly was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// What the implementation did, and what the model expected instead.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

fn violation(rule: Rule, message: impl Into<String>) -> Result<(), Violation> {
    Err(Violation {
        rule,
        message: message.into(),
    })
}

/// What [`Model::check_settled`] found wrong after a settle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleFailure {
    /// These subscriptions have credit and events waiting for them, yet
    /// received nothing more. The harness may diagnose why (lost wakeup or
    /// never delivered) and then ask [`Model::classify_stuck`] for the rule.
    Stuck(Vec<SubId>),
    /// These subscriptions have credit and nothing left to receive on a
    /// closed bus, yet their streams never ended. The harness may diagnose
    /// why (lost wakeup or no end at all) and then ask
    /// [`Model::classify_unended`] for the rule.
    Unended(Vec<SubId>),
    /// Any other broken expectation.
    Violation(Violation),
}

/// How deeply scopes may nest (a root is at depth 0). Nested scopes are
/// nested futures, polled recursively; the limit keeps every valid workload
/// well within a thread's stack.
pub const MAX_NESTING: usize = 64;

/// Index of a bus in the model.
type BusIx = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScopeState {
    Open,
    /// `close_scope` was applied; the body has not returned yet.
    CloseRequested,
    /// The body returned; the owned bus is closed; waiting for tasks.
    Closing,
    Exited,
    Cancelled,
}

#[derive(Clone, Debug)]
struct MScope {
    parent: Option<ScopeId>,
    isolated: bool,
    bus: BusIx,
    owns_bus: bool,
    state: ScopeState,
    cancel_requested: bool,
    /// Its close was requested before its cancellation: its body, already
    /// woken, may still return, and it may finish exiting.
    closed_before_cancel: bool,
    children: Vec<ScopeId>,
    tasks: Vec<TaskId>,
}

impl MScope {
    /// Whether ops may still name this scope.
    fn usable(&self) -> bool {
        !self.cancel_requested
            && matches!(
                self.state,
                ScopeState::Open | ScopeState::CloseRequested | ScopeState::Closing
            )
    }

    /// The rule that says a bus is in reach in this scope.
    fn bus_rule(&self) -> Rule {
        match (self.parent, self.isolated) {
            (None, _) => Rule::Scope1,
            (Some(_), true) => Rule::Scope3,
            (Some(_), false) => Rule::Scope2,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Channel {
    /// Every event of this route sent on this bus while it was open, stored
    /// or not, in send order.
    log: Vec<EventId>,
    /// How many of them were sent with no live subscription.
    unstored: u64,
    /// Logical times at which a live subscription of this route was dropped
    /// or cancelled.
    drops: Vec<u64>,
    /// Whether some subscription was dropped while events were still waiting
    /// for it (what RECLAIM-2 is about).
    dropped_with_backlog: bool,
    /// Whether a subscription of this route was ever created here.
    subscribed: bool,
    /// Sends of this route made after the bus closed.
    after_close: u64,
    /// Its subscriptions that are still held (not dropped).
    members: BTreeSet<SubId>,
    /// Its live subscriptions with credit: a send owes each of them the
    /// event.
    hungry: BTreeSet<SubId>,
}

#[derive(Clone, Debug)]
struct MBus {
    owner: ScopeId,
    owner_isolated: bool,
    owner_root: bool,
    closed: bool,
    channels: BTreeMap<EventType, Channel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubState {
    Live,
    /// Subscribed on a closed bus: must end without receiving (CLOSE-3).
    BornEnded,
    Ended,
    Dropped,
}

#[derive(Clone, Debug)]
struct MSub {
    scope: ScopeId,
    bus: BusIx,
    ty: EventType,
    route: EventType,
    start: usize,
    received: usize,
    credits: u64,
    state: SubState,
    last_progress: u64,
    /// Events of this route were retained when it subscribed: its first
    /// receipt exercises VIS-1.
    vis_pending: bool,
    /// An event of this route was dropped for want of subscribers before it
    /// subscribed: its first receipt exercises DROP-1.
    drop_pending: bool,
    /// Sends per route on its bus when last checked (ROUTE-1 coverage).
    route_snapshot: [u64; 8],
    /// The run's sends of its route, all and on isolated buses, and its own
    /// bus's, when last checked (SCOPE-1 / SCOPE-3 coverage).
    sends_seen: SendsSeen,
    /// How many siblings of its channel had been dropped when last checked
    /// (CANCEL-1 coverage).
    drops_seen: usize,
}

/// Counts of sends of one route (on open buses) at some moment.
#[derive(Clone, Copy, Debug, Default)]
struct SendsSeen {
    /// On every bus.
    all: u64,
    /// On buses owned by isolated scopes.
    isolated: u64,
    /// On the subscription's own bus.
    own: u64,
}

impl MSub {
    fn cursor(&self) -> usize {
        self.start + self.received
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskState {
    Waiting,
    Released(Option<SendSpec>),
    Done,
    Cancelled,
}

#[derive(Clone, Debug)]
struct MTask {
    scope: ScopeId,
    state: TaskState,
    /// Released after its scope's cancellation was requested: it must never
    /// run.
    released_after_cancel: bool,
}

#[derive(Clone, Debug)]
struct MEvent {
    sent_as: EventType,
    route: EventType,
    /// The bus it was sent on; `None` if sent outside every scope.
    bus: Option<BusIx>,
    origin: Option<ScopeId>,
    /// Some live subscription existed when it was sent.
    stored: bool,
    /// Its bus was already closed.
    after_close: bool,
    /// Position in its channel's log.
    index: Option<usize>,
}

/// The model. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Model {
    scopes: BTreeMap<ScopeId, MScope>,
    buses: Vec<MBus>,
    subs: BTreeMap<SubId, MSub>,
    /// Subscriptions whose `subscribe` failed (as it should, e.g. outside
    /// every scope): no later op may name them.
    failed_subs: BTreeSet<SubId>,
    tasks: BTreeMap<TaskId, MTask>,
    events: BTreeMap<EventId, MEvent>,
    /// Logical clock: one tick per op and per observation.
    now: u64,
    coverage: Coverage,
    // Indexes kept in step with the maps above, so that an op costs in
    // proportion to what is alive, not to the run's history.
    /// Subscriptions still held (not dropped).
    held: Pool<SubId>,
    /// Subscriptions whose stream has not ended (live, or born ended on a
    /// closed bus and not yet pulled to its end).
    unfinished: BTreeSet<SubId>,
    /// Scopes that have neither exited nor been cancelled.
    alive_scopes: BTreeSet<ScopeId>,
    /// Tasks not yet released (nor cancelled).
    waiting: Pool<TaskId>,
    /// Tasks released that have not finished (nor been cancelled).
    released: BTreeSet<TaskId>,
    /// Live subscriptions with credit and events waiting: stuck, if still
    /// there after a settle.
    owed: BTreeSet<SubId>,
    /// Subscriptions not yet ended, with credit, on a closed bus: unended,
    /// if still there after a settle.
    ending: BTreeSet<SubId>,
    /// Subscriptions that received since the last settle.
    received_since: BTreeSet<SubId>,
    /// Sends per route on open buses, all and on isolated buses (indexed
    /// as `EventType::ALL`).
    route_sends: [u64; 8],
    isolated_route_sends: [u64; 8],
}

/// A set with O(1) insertion, removal and indexing, for drawing a random
/// member. Its order is that of insertion, except that a removal moves the
/// last member into the hole: deterministic, given the same history.
#[derive(Clone, Debug)]
struct Pool<T> {
    items: Vec<T>,
    at: HashMap<T, usize>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            items: Vec::new(),
            at: HashMap::new(),
        }
    }
}

impl<T: Copy + Eq + std::hash::Hash> Pool<T> {
    fn insert(&mut self, item: T) {
        if !self.at.contains_key(&item) {
            self.at.insert(item, self.items.len());
            self.items.push(item);
        }
    }

    fn remove(&mut self, item: T) {
        if let Some(i) = self.at.remove(&item) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.at.insert(*moved, i);
            }
        }
    }
}

fn route_index(route: EventType) -> usize {
    EventType::ALL
        .iter()
        .position(|t| *t == route)
        .unwrap_or_default()
}

impl Model {
    /// An empty world: no scope, no bus.
    pub fn new() -> Model {
        Model::default()
    }

    /// How many times each rule has been checked on a situation that could
    /// break it.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    // ----- what the workload generator may ask -----

    /// Scopes ops may name: open or closing, and not being cancelled.
    pub fn usable_scopes(&self) -> Vec<ScopeId> {
        self.alive_scopes
            .iter()
            .copied()
            .filter(|id| self.scopes[id].usable())
            .collect()
    }

    /// Whether the bus in reach in `scope` is closed.
    pub fn bus_closed(&self, scope: ScopeId) -> bool {
        self.scopes
            .get(&scope)
            .is_some_and(|s| self.buses[s.bus].closed)
    }

    /// How many ancestors `scope` has (0 for a root).
    pub fn depth(&self, scope: ScopeId) -> usize {
        let mut depth = 0;
        let mut up = self.scopes.get(&scope).and_then(|s| s.parent);
        while let Some(p) = up {
            depth += 1;
            up = self.scopes.get(&p).and_then(|s| s.parent);
        }
        depth
    }

    /// Usable scopes a new scope may be opened in (not at the nesting limit).
    pub fn nestable_scopes(&self) -> Vec<ScopeId> {
        self.usable_scopes()
            .into_iter()
            .filter(|s| self.depth(*s) < MAX_NESTING)
            .collect()
    }

    /// Scopes that `close_scope` may name.
    pub fn closable_scopes(&self) -> Vec<ScopeId> {
        self.alive_scopes
            .iter()
            .copied()
            .filter(|id| {
                let s = &self.scopes[id];
                s.state == ScopeState::Open && !s.cancel_requested
            })
            .collect()
    }

    /// Root scopes that are still usable.
    pub fn usable_roots(&self) -> usize {
        self.alive_scopes
            .iter()
            .filter(|id| {
                let s = &self.scopes[id];
                s.parent.is_none() && s.usable()
            })
            .count()
    }

    /// Subscriptions that `consume`, `drop_subscription` and
    /// `cancel_subscriber` may name, in an order that depends only on the
    /// run's history (not sorted).
    pub fn held_subs(&self) -> &[SubId] {
        &self.held.items
    }

    /// Whether a subscription is still held (not dropped or cancelled): its
    /// subscriber task exists.
    pub fn is_held(&self, sub: SubId) -> bool {
        self.subs
            .get(&sub)
            .is_some_and(|s| s.state != SubState::Dropped)
    }

    /// Where a send that races with `sub`'s poll should go: its scope (if
    /// still usable) and its type; `None` if it is not live.
    pub fn preempt_target(&self, sub: SubId) -> Option<(ScopeId, EventType)> {
        let s = self.subs.get(&sub)?;
        (s.state == SubState::Live && self.scopes.get(&s.scope)?.usable())
            .then_some((s.scope, s.ty))
    }

    /// The root scope `scope` is nested in (itself, for a root).
    pub fn root_of(&self, scope: ScopeId) -> ScopeId {
        let mut at = scope;
        while let Some(parent) = self.scopes.get(&at).and_then(|s| s.parent) {
            at = parent;
        }
        at
    }

    /// The root scope whose task runs the scope `sub` was created in.
    pub fn root_of_sub(&self, sub: SubId) -> Option<ScopeId> {
        self.subs.get(&sub).map(|s| self.root_of(s.scope))
    }

    /// The usable scopes of `root`'s tree (those its task polls), the ones
    /// on their way out (close requested, or closing) first, with how many
    /// of them are on their way out.
    pub fn usable_in_tree(&self, root: ScopeId) -> (Vec<ScopeId>, usize) {
        let mut leaving = Vec::new();
        let mut open = Vec::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            let Some(s) = self.scopes.get(&id) else {
                continue;
            };
            if s.usable() {
                if s.state == ScopeState::Open {
                    open.push(id);
                } else {
                    leaving.push(id);
                }
            }
            stack.extend(s.children.iter().copied());
        }
        let n = leaving.len();
        leaving.extend(open);
        (leaving, n)
    }

    /// Worker tasks not yet released, in an order that depends only on the
    /// run's history (not sorted).
    pub fn waiting_tasks(&self) -> &[TaskId] {
        &self.waiting.items
    }

    /// Whether some scope, subscription or task is still running, i.e.
    /// whether there is anything left to close.
    pub fn has_open_scopes(&self) -> bool {
        self.alive_scopes.iter().any(|id| self.scopes[id].usable())
    }

    // ----- validity -----

    /// Whether `op` may be applied now. Ops that name a handle that does not
    /// exist (any more) are invalid: a replay skips them.
    ///
    /// # Errors
    /// Why the op is not valid now, for humans.
    pub fn validate(&self, op: &Op) -> Result<(), String> {
        let usable = |s: &ScopeId| match self.scopes.get(s) {
            Some(scope) if scope.usable() => Ok(()),
            Some(_) => Err(format!("{s} has exited or is being cancelled")),
            None => Err(format!("{s} does not exist")),
        };
        let fresh_event = |e: &EventId| {
            if self.events.contains_key(e) {
                Err(format!("event#{e} was already sent"))
            } else {
                Ok(())
            }
        };
        let held = |s: &SubId| {
            if self.is_held(*s) {
                Ok(())
            } else {
                Err(format!("{s} does not exist or was dropped"))
            }
        };
        match op {
            Op::OpenScope { scope, parent, .. } => {
                if self.scopes.contains_key(scope) {
                    return Err(format!("{scope} already exists"));
                }
                if let Some(p) = parent
                    && self.depth(*p) + 1 > MAX_NESTING
                {
                    return Err(format!(
                        "{scope} would be nested deeper than {MAX_NESTING} scopes"
                    ));
                }
                parent.as_ref().map_or(Ok(()), usable)
            }
            Op::CloseScope { scope } => match self.scopes.get(scope) {
                Some(s) if s.state == ScopeState::Open && !s.cancel_requested => Ok(()),
                Some(_) => Err(format!("{scope} is not open")),
                None => Err(format!("{scope} does not exist")),
            },
            Op::CancelScope { scope } | Op::Observe { scope } => usable(scope),
            Op::Subscribe { sub, scope, .. } => {
                if self.subs.contains_key(sub) || self.failed_subs.contains(sub) {
                    return Err(format!("{sub} already exists"));
                }
                scope.as_ref().map_or(Ok(()), usable)
            }
            Op::Send { scope, event, .. } => {
                fresh_event(event)?;
                scope.as_ref().map_or(Ok(()), usable)
            }
            Op::Consume { sub, .. }
            | Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub } => held(sub),
            Op::Spawn { task, scope } => {
                if self.tasks.contains_key(task) {
                    return Err(format!("{task} already exists"));
                }
                usable(scope)
            }
            Op::Release { task, send } => {
                match self.tasks.get(task) {
                    Some(t) if t.state == TaskState::Waiting => {}
                    Some(_) => return Err(format!("{task} was already released or cancelled")),
                    None => return Err(format!("{task} does not exist")),
                }
                send.as_ref().map_or(Ok(()), |s| fresh_event(&s.event))
            }
            Op::Settle => Ok(()),
        }
    }

    // ----- ops -----

    /// Applies `op`, which [`validate`](Model::validate) accepted, and checks
    /// the implementation's `reply` to it.
    ///
    /// # Errors
    /// The first rule the reply breaks.
    pub fn apply(&mut self, op: &Op, reply: &Reply) -> Result<(), Violation> {
        self.now += 1;
        let checked = self.apply_op(op, reply);
        if checked.is_ok() {
            // ROBUST-1: the op was answered, as expected, without a fault.
            self.coverage.hit(Rule::Robust1);
        }
        checked
    }

    fn apply_op(&mut self, op: &Op, reply: &Reply) -> Result<(), Violation> {
        match op {
            Op::OpenScope {
                scope,
                parent,
                isolated,
            } => {
                if reply == &Err(OpError::Closed) && parent.is_some_and(|p| self.exiting(p)) {
                    // An exiting scope may refuse new tasks (a nested scope is
                    // one); the scope then does not exist.
                    return Ok(());
                }
                expect_done(op, reply)?;
                self.open_scope(*scope, *parent, *isolated);
                Ok(())
            }
            Op::CloseScope { scope } => {
                expect_done(op, reply)?;
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.state = ScopeState::CloseRequested;
                }
                Ok(())
            }
            Op::CancelScope { scope } => {
                expect_done(op, reply)?;
                self.request_cancel(*scope);
                Ok(())
            }
            Op::Subscribe { sub, scope, ty } => self.subscribe(*sub, *scope, *ty, reply),
            Op::Send { scope, ty, event } => self.send_op(*scope, *ty, *event, reply),
            Op::Consume { sub, k } => {
                expect_done(op, reply)?;
                if let Some(s) = self.subs.get_mut(sub) {
                    s.credits += u64::from(*k);
                    let channel = self.buses[s.bus].channels.entry(s.route).or_default();
                    if s.state == SubState::Live && s.credits > 0 {
                        channel.hungry.insert(*sub);
                        if s.cursor() < channel.log.len() {
                            self.owed.insert(*sub);
                        }
                    }
                    if s.credits > 0 && self.unfinished.contains(sub) && self.buses[s.bus].closed {
                        self.ending.insert(*sub);
                    }
                }
                Ok(())
            }
            Op::DropSubscription { sub } | Op::CancelSubscriber { sub } => {
                expect_done(op, reply)?;
                self.drop_sub(*sub);
                Ok(())
            }
            Op::Spawn { task, scope } => {
                if reply == &Err(OpError::Closed) && self.exiting(*scope) {
                    // An exiting scope may refuse new tasks; the task then
                    // does not exist.
                    return Ok(());
                }
                expect_done(op, reply)?;
                self.tasks.insert(
                    *task,
                    MTask {
                        scope: *scope,
                        state: TaskState::Waiting,
                        released_after_cancel: false,
                    },
                );
                self.waiting.insert(*task);
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.tasks.push(*task);
                }
                Ok(())
            }
            Op::Release { task, send } => {
                expect_done(op, reply)?;
                let cancelled = self
                    .tasks
                    .get(task)
                    .is_some_and(|t| self.scopes[&t.scope].cancel_requested);
                if let Some(t) = self.tasks.get_mut(task) {
                    t.state = TaskState::Released(*send);
                    t.released_after_cancel = cancelled;
                }
                self.waiting.remove(*task);
                self.released.insert(*task);
                Ok(())
            }
            Op::Settle => expect_done(op, reply),
            Op::Observe { scope } => self.observe_stats(*scope, reply),
        }
    }

    fn open_scope(&mut self, id: ScopeId, parent: Option<ScopeId>, isolated: bool) {
        let parent_bus = parent.and_then(|p| self.scopes.get(&p)).map(|p| p.bus);
        let (bus, owns_bus) = match parent_bus {
            // SCOPE-2: a nested, non-isolated scope uses its parent's bus.
            Some(bus) if !isolated => (bus, false),
            // SCOPE-1 (root) and SCOPE-3 (isolated): a bus of its own.
            _ => {
                self.buses.push(MBus {
                    owner: id,
                    owner_isolated: parent.is_some(),
                    owner_root: parent.is_none(),
                    closed: false,
                    channels: BTreeMap::new(),
                });
                (self.buses.len() - 1, true)
            }
        };
        if let Some(p) = parent.and_then(|p| self.scopes.get_mut(&p)) {
            p.children.push(id);
        }
        self.scopes.insert(
            id,
            MScope {
                parent,
                isolated,
                bus,
                owns_bus,
                state: ScopeState::Open,
                cancel_requested: false,
                closed_before_cancel: false,
                children: Vec::new(),
                tasks: Vec::new(),
            },
        );
        self.alive_scopes.insert(id);
    }

    fn request_cancel(&mut self, id: ScopeId) {
        let mut stack = vec![id];
        while let Some(s) = stack.pop() {
            if let Some(scope) = self.scopes.get_mut(&s)
                && !matches!(scope.state, ScopeState::Exited | ScopeState::Cancelled)
            {
                scope.cancel_requested = true;
                scope.closed_before_cancel = matches!(
                    scope.state,
                    ScopeState::CloseRequested | ScopeState::Closing
                );
                stack.extend(scope.children.iter().copied());
            }
        }
    }

    /// The live subscriptions of `route` on `bus`.
    fn live(&self, bus: BusIx, route: EventType) -> impl Iterator<Item = &MSub> {
        self.buses[bus]
            .channels
            .get(&route)
            .into_iter()
            .flat_map(|c| c.members.iter())
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

    fn sends_snapshot(&self, bus: BusIx) -> [u64; 8] {
        let mut snapshot = [0; 8];
        for (route, channel) in &self.buses[bus].channels {
            snapshot[route_index(*route)] = channel.log.len() as u64;
        }
        snapshot
    }

    fn subscribe(
        &mut self,
        sub: SubId,
        scope: Option<ScopeId>,
        ty: EventType,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let Some(scope_id) = scope else {
            self.failed_subs.insert(sub);
            return match reply {
                Err(OpError::ContextMissing) => {
                    self.coverage.hit(Rule::Missing1);
                    Ok(())
                }
                Ok(_) => violation(
                    Rule::Missing1,
                    format!(
                        "subscribing to {ty} outside every scope succeeded; expected ContextMissing"
                    ),
                ),
                Err(e) => violation(
                    Rule::Missing1,
                    format!(
                        "subscribing to {ty} outside every scope failed with {e}; expected ContextMissing"
                    ),
                ),
            };
        };
        let scope = &self.scopes[&scope_id];
        let bus = scope.bus;
        let route = ty.route();
        let closed = self.buses[bus].closed;
        match reply {
            Ok(Answer::Done) => {}
            Err(OpError::Closed) if closed => {
                // CLOSE-3 allows refusing a subscription on a closed bus.
                self.failed_subs.insert(sub);
                self.coverage.hit(Rule::Close3);
                return Ok(());
            }
            Err(OpError::ContextMissing) => {
                return violation(
                    scope.bus_rule(),
                    format!(
                        "subscribing to {ty} in {scope_id} failed with ContextMissing; a bus is in reach there"
                    ),
                );
            }
            other => {
                return violation(
                    Rule::Robust1,
                    format!(
                        "subscribing to {ty} in {scope_id} answered {}; expected success",
                        show(other)
                    ),
                );
            }
        }
        let retained = self.retained(bus, route);
        let channel = self.buses[bus].channels.entry(route).or_default();
        channel.subscribed = true;
        let start = channel.log.len();
        let drop_pending = channel.unstored > 0;
        let route_snapshot = self.sends_snapshot(bus);
        let drops_seen = self.buses[bus]
            .channels
            .get(&route)
            .map_or(0, |c| c.drops.len());
        let sends_seen = SendsSeen {
            all: self.route_sends[route_index(route)],
            isolated: self.isolated_route_sends[route_index(route)],
            own: start as u64,
        };
        self.subs.insert(
            sub,
            MSub {
                scope: scope_id,
                bus,
                ty,
                route,
                start,
                received: 0,
                credits: 0,
                state: if closed {
                    SubState::BornEnded
                } else {
                    SubState::Live
                },
                last_progress: self.now,
                vis_pending: retained > 0,
                drop_pending,
                route_snapshot,
                sends_seen,
                drops_seen,
            },
        );
        self.held.insert(sub);
        self.unfinished.insert(sub);
        if let Some(channel) = self.buses[bus].channels.get_mut(&route) {
            channel.members.insert(sub);
        }
        Ok(())
    }

    fn send_op(
        &mut self,
        scope: Option<ScopeId>,
        ty: EventType,
        event: EventId,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let result = match reply {
            Ok(Answer::Done) => Ok(()),
            Ok(other) => {
                return violation(
                    Rule::Robust1,
                    format!("send answered {other:?}; expected a plain success"),
                );
            }
            Err(e) => Err(e.clone()),
        };
        match scope {
            None => {
                self.events.insert(
                    event,
                    MEvent {
                        sent_as: ty,
                        route: ty.route(),
                        bus: None,
                        origin: None,
                        stored: false,
                        after_close: false,
                        index: None,
                    },
                );
                match result {
                    Err(OpError::ContextMissing) => {
                        self.coverage.hit(Rule::Missing1);
                        Ok(())
                    }
                    Ok(()) => violation(
                        Rule::Missing1,
                        format!(
                            "sending {ty} event#{event} outside every scope succeeded; expected ContextMissing"
                        ),
                    ),
                    Err(e) => violation(
                        Rule::Missing1,
                        format!(
                            "sending {ty} event#{event} outside every scope failed with {e}; expected ContextMissing"
                        ),
                    ),
                }
            }
            Some(scope) => self.send_in(scope, ty, event, result, "send"),
        }
    }

    /// A send from inside `scope` (by the driver or a worker task) with the
    /// outcome the implementation reported.
    fn send_in(
        &mut self,
        scope_id: ScopeId,
        ty: EventType,
        event: EventId,
        result: Result<(), OpError>,
        who: &str,
    ) -> Result<(), Violation> {
        let scope = &self.scopes[&scope_id];
        let bus = scope.bus;
        let route = ty.route();
        if self.buses[bus].closed {
            self.events.insert(
                event,
                MEvent {
                    sent_as: ty,
                    route,
                    bus: Some(bus),
                    origin: Some(scope_id),
                    stored: false,
                    after_close: true,
                    index: None,
                },
            );
            // CLOSE-2: a send after close may succeed (and deliver nothing) or
            // fail with Closed; it must not hang, and nothing may arrive.
            self.buses[bus]
                .channels
                .entry(route)
                .or_default()
                .after_close += 1;
            let dropped = self.buses[bus]
                .channels
                .get(&route)
                .is_some_and(|c| !c.drops.is_empty());
            return match result {
                Ok(()) | Err(OpError::Closed) => {
                    self.coverage.hit(Rule::Close2);
                    Ok(())
                }
                Err(e) if dropped => violation(
                    Rule::Cancel1,
                    format!(
                        "{who} of {ty} event#{event} in {scope_id} after its bus closed failed with {e}, after a subscriber of its type was dropped or cancelled; expected success or Closed"
                    ),
                ),
                Err(e) => violation(
                    Rule::Close2,
                    format!(
                        "{who} of {ty} event#{event} in {scope_id} after its bus closed failed with {e}; expected success or Closed"
                    ),
                ),
            };
        }
        match result {
            Ok(()) => self.coverage.hit(Rule::Send1),
            Err(OpError::ContextMissing) => {
                return violation(
                    scope.bus_rule(),
                    format!(
                        "{who} of {ty} event#{event} in {scope_id} failed with ContextMissing; a bus is in reach there"
                    ),
                );
            }
            Err(OpError::Closed) if self.sees_closed_bus(scope_id) => {
                return violation(
                    scope.bus_rule(),
                    format!(
                        "{who} of {ty} event#{event} in {scope_id} failed with Closed, but the bus of {scope_id} is open: \
                         the scope seems to use a bus that has closed (its own, or an enclosing scope's)"
                    ),
                );
            }
            Err(e)
                if self.buses[bus]
                    .channels
                    .get(&route)
                    .is_some_and(|c| !c.drops.is_empty()) =>
            {
                return violation(
                    Rule::Cancel1,
                    format!(
                        "{who} of {ty} event#{event} in {scope_id} failed with {e} while its bus is open, after a subscriber of its type was dropped or cancelled"
                    ),
                );
            }
            Err(e) => {
                return violation(
                    Rule::Send1,
                    format!(
                        "{who} of {ty} event#{event} in {scope_id} failed with {e} while its bus is open"
                    ),
                );
            }
        }
        let stored = self.live_count(bus, route) > 0;
        // Coverage of SCOPE-1 / SCOPE-3 (subscriptions of the same route on
        // other buses must not see this event) is worked out at the next
        // settle from these counts.
        self.route_sends[route_index(route)] += 1;
        if self.buses[bus].owner_isolated {
            self.isolated_route_sends[route_index(route)] += 1;
        }
        let channel = self.buses[bus].channels.entry(route).or_default();
        let index = channel.log.len();
        channel.log.push(event);
        self.owed.extend(channel.hungry.iter().copied());
        if !stored {
            channel.unstored += 1;
        }
        self.events.insert(
            event,
            MEvent {
                sent_as: ty,
                route,
                bus: Some(bus),
                origin: Some(scope_id),
                stored,
                after_close: false,
                index: Some(index),
            },
        );
        Ok(())
    }

    /// Whether the scope's body has returned: it is exiting, and may refuse
    /// new tasks.
    fn exiting(&self, id: ScopeId) -> bool {
        self.scopes
            .get(&id)
            .is_some_and(|s| s.state == ScopeState::Closing)
    }

    /// Whether a scope whose bus is open could be confusing it with a closed
    /// one: it is a nested scope that is itself closing (and so would have
    /// closed a bus of its own), or some enclosing scope's bus is closed.
    fn sees_closed_bus(&self, id: ScopeId) -> bool {
        let scope = &self.scopes[&id];
        if scope.parent.is_some()
            && !scope.isolated
            && matches!(scope.state, ScopeState::Closing | ScopeState::Exited)
        {
            return true;
        }
        let mut up = scope.parent;
        while let Some(p) = up {
            let parent = &self.scopes[&p];
            if parent.bus != scope.bus && self.buses[parent.bus].closed {
                return true;
            }
            up = parent.parent;
        }
        false
    }

    fn drop_sub(&mut self, sub: SubId) {
        let now = self.now;
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        let was_live = s.state == SubState::Live;
        s.state = SubState::Dropped;
        let (bus, route, cursor) = (s.bus, s.route, s.cursor());
        self.forget(sub);
        self.held.remove(sub);
        let channel = self.buses[bus].channels.entry(route).or_default();
        channel.members.remove(&sub);
        if !was_live {
            return;
        }
        channel.drops.push(now);
        if channel.log.len() > cursor {
            channel.dropped_with_backlog = true;
        }
    }

    /// Takes a subscription whose stream ended (or that was dropped) out of
    /// the indexes of what is still running.
    fn forget(&mut self, sub: SubId) {
        self.unfinished.remove(&sub);
        self.owed.remove(&sub);
        self.ending.remove(&sub);
        self.received_since.remove(&sub);
        if let Some(s) = self.subs.get(&sub)
            && let Some(channel) = self.buses[s.bus].channels.get_mut(&s.route)
        {
            channel.hungry.remove(&sub);
        }
    }

    /// Closes `bus`: its subscriptions with credit must now end.
    fn close_bus(&mut self, bus: BusIx) {
        let b = &mut self.buses[bus];
        if b.closed {
            return;
        }
        b.closed = true;
        for channel in b.channels.values() {
            for id in &channel.members {
                if self.unfinished.contains(id) && self.subs[id].credits > 0 {
                    self.ending.insert(*id);
                }
            }
        }
    }

    /// Coverage that a subscription's receipt or end confirms: it lived
    /// through sends of its route on other buses (SCOPE-1, SCOPE-3), sends
    /// of look-alike types on its own bus (ROUTE-1) and drops of its
    /// siblings (CANCEL-1), and none of them disturbed it.
    fn note_undisturbed(&mut self, sub_id: SubId) {
        let Some(sub) = self.subs.get(&sub_id) else {
            return;
        };
        let bus = &self.buses[sub.bus];
        let now = self.sends_snapshot(sub.bus);
        let r = route_index(sub.route);
        let seen = sub.sends_seen;
        let foreign = (self.route_sends[r] - seen.all) - (now[r] - seen.own);
        let foreign_isolated = if bus.owner_isolated {
            foreign
        } else {
            self.isolated_route_sends[r] - seen.isolated
        };
        let lookalike_sent = EventType::ALL.iter().any(|t| {
            *t == t.route()
                && *t != sub.route
                && t.family() == sub.route.family()
                && now[route_index(*t)] > sub.route_snapshot[route_index(*t)]
        });
        let drops = bus.channels.get(&sub.route).map_or(0, |c| c.drops.len());
        let mut hits = Vec::new();
        if foreign > foreign_isolated {
            hits.push(Rule::Scope1);
        }
        if foreign_isolated > 0 {
            hits.push(Rule::Scope3);
        }
        if lookalike_sent {
            hits.push(Rule::Route1);
        }
        if drops > sub.drops_seen {
            hits.push(Rule::Cancel1);
        }
        let sends_seen = SendsSeen {
            all: self.route_sends[r],
            isolated: self.isolated_route_sends[r],
            own: now[r],
        };
        if let Some(sub) = self.subs.get_mut(&sub_id) {
            sub.sends_seen = sends_seen;
            sub.route_snapshot = now;
            sub.drops_seen = drops;
        }
        for rule in hits {
            self.coverage.hit(rule);
        }
    }

    fn observe_stats(&mut self, scope: ScopeId, reply: &Reply) -> Result<(), Violation> {
        let counts = match reply {
            Ok(Answer::Stats(counts)) => counts,
            other => {
                return violation(
                    Rule::Robust1,
                    format!(
                        "observe {scope} answered {}; expected statistics",
                        show(other)
                    ),
                );
            }
        };
        let mut listed = BTreeSet::new();
        for c in counts {
            if !listed.insert(c.ty.route()) {
                return violation(
                    Rule::Robust1,
                    format!(
                        "observe {scope} listed {} twice (aliases route as their target): which count holds?",
                        c.ty.route()
                    ),
                );
            }
        }
        let bus = self.scopes[&scope].bus;
        for route in EventType::ALL.into_iter().filter(|t| t.route() == *t) {
            let (subs, retained, retained_events) = counts
                .iter()
                .find(|c| c.ty == route)
                .map_or((Some(0), 0, None), |c| {
                    (c.subscriptions, c.retained, c.retained_events.clone())
                });
            let want_subs = self.live_count(bus, route) as u64;
            let want_retained = self.retained(bus, route) as u64;
            let (after_close, unstored, logged, dropped_with_backlog) = self.buses[bus]
                .channels
                .get(&route)
                .map_or((0, 0, false, false), |c| {
                    (
                        c.after_close,
                        c.unstored,
                        !c.log.is_empty(),
                        c.dropped_with_backlog,
                    )
                });
            let what = format!("the bus of {scope}, {route}");
            // What a bus in which dropped subscriptions still hold their place
            // would report: the RECLAIM-2 failure mode, told apart from others
            // (worked out only when something is off: it scans every
            // subscription the run ever had).
            let (dropped_subs, dropped_retained) =
                if subs.is_some_and(|n| n != want_subs) || retained != want_retained {
                    self.as_if_dropped_held(bus, route)
                } else {
                    (0, 0)
                };
            if let Some(subs) = subs
                && subs != want_subs
            {
                // Counts off in opposite directions for two look-alike types,
                // or a type missing from the report while a look-alike is
                // there: the bus keeps them as one (ROUTE-1).
                let reported = |t: EventType| {
                    counts
                        .iter()
                        .find(|c| c.ty == t)
                        .map_or(Some(0), |c| c.subscriptions)
                };
                let missing = !counts.iter().any(|c| c.ty == route);
                let swapped = EventType::ALL.into_iter().find(|t| {
                    *t == t.route()
                        && *t != route
                        && t.family() == route.family()
                        && ((missing && counts.iter().any(|c| c.ty == *t))
                            || reported(*t).is_some_and(|n| {
                                let want = self.live_count(bus, *t) as u64;
                                (n > want) == (subs < want_subs) && n != want
                            }))
                });
                if let Some(other) = swapped {
                    return violation(
                        Rule::Route1,
                        format!(
                            "{what}: {subs} live subscriptions reported, the model has {want_subs}, \
                             while look-alike {other} is reported too: the bus seems to keep {route} and {other} as one type"
                        ),
                    );
                }
                let rule = if subs > want_subs && subs <= want_subs + dropped_subs {
                    Rule::Reclaim2
                } else {
                    Rule::Reclaim1
                };
                return violation(
                    rule,
                    format!(
                        "{what}: {subs} live subscriptions reported, the model has {want_subs}"
                    ),
                );
            }
            if let Some(ids) = &retained_events
                && let Some(v) = self.explain_retained(bus, route, ids, &what)
            {
                return Err(v);
            }
            if retained > want_retained
                && retained > dropped_retained
                && self.buses[bus].closed
                && after_close > 0
            {
                return violation(
                    Rule::Close2,
                    format!(
                        "{what}: {retained} events retained, the model expects {want_retained}: \
                         events sent after the bus closed are still held (the bus still accepts them)"
                    ),
                );
            }
            if retained != want_retained {
                let rule = if retained > want_retained && retained <= dropped_retained {
                    Rule::Reclaim2
                } else if retained > want_retained && unstored > 0 {
                    Rule::Drop1
                } else {
                    Rule::Reclaim1
                };
                return violation(
                    rule,
                    format!(
                        "{what}: {retained} events retained, the model expects {want_retained} \
                         (the events some live subscription has yet to receive)"
                    ),
                );
            }
            if want_subs > 0 && logged {
                self.coverage.hit(Rule::Reclaim1);
            }
            if dropped_with_backlog {
                self.coverage.hit(Rule::Reclaim2);
            }
            if unstored > 0 {
                self.coverage.hit(Rule::Drop1);
            }
        }
        Ok(())
    }

    /// How many dropped subscriptions `route` has on `bus`, and how many
    /// events the bus would retain if they still held their place.
    fn as_if_dropped_held(&self, bus: BusIx, route: EventType) -> (u64, u64) {
        let len = self.log_len(bus, route);
        let mut dropped = 0;
        let mut retained = 0;
        for s in self.subs.values() {
            if s.bus != bus || s.route != route {
                continue;
            }
            match s.state {
                SubState::Dropped => {
                    dropped += 1;
                    retained = retained.max(len - s.cursor().min(len));
                }
                SubState::Live => retained = retained.max(len - s.cursor().min(len)),
                _ => {}
            }
        }
        (dropped, retained as u64)
    }

    /// With the exact ids an implementation retains, names the first event
    /// that is held but should not be (or freed but should not be), and the
    /// rule that says so.
    fn explain_retained(
        &self,
        bus: BusIx,
        route: EventType,
        ids: &[EventId],
        what: &str,
    ) -> Option<Violation> {
        let log = self.buses[bus]
            .channels
            .get(&route)
            .map(|c| c.log.clone())
            .unwrap_or_default();
        let len = log.len();
        let slowest = self
            .subs
            .values()
            .filter(|s| s.bus == bus && s.route == route && s.state == SubState::Live)
            .map(|s| s.cursor().min(len))
            .min();
        let expected: std::collections::BTreeSet<EventId> = match slowest {
            Some(from) => log[from..].iter().copied().collect(),
            None => Default::default(),
        };
        let held: std::collections::BTreeSet<EventId> = ids.iter().copied().collect();
        let make = |rule, why: String| Violation {
            rule,
            message: format!("{what}: {why}"),
        };
        if let Some(extra) = held.difference(&expected).next() {
            let Some(event) = self.events.get(extra) else {
                return Some(make(
                    Rule::Robust1,
                    format!("event#{extra} is reported retained, but it was never sent"),
                ));
            };
            if event.after_close {
                return Some(make(
                    Rule::Close2,
                    format!(
                        "event#{extra}, sent after the bus closed, is still held (the bus still accepts sends)"
                    ),
                ));
            }
            if !event.stored {
                return Some(make(
                    Rule::Drop1,
                    format!("event#{extra}, sent when nobody subscribed to its type, is held"),
                ));
            }
            let index = event.index.unwrap_or_default();
            let pinned_by_dropped = self.subs.iter().any(|(_, s)| {
                s.bus == bus
                    && s.route == route
                    && s.state == SubState::Dropped
                    && s.cursor() <= index
            });
            let rule = if pinned_by_dropped {
                Rule::Reclaim2
            } else {
                Rule::Reclaim1
            };
            return Some(make(
                rule,
                format!("event#{extra} is held, but no live subscription still needs it"),
            ));
        }
        expected.difference(&held).next().map(|missing| {
            make(
                Rule::Reclaim1,
                format!("event#{missing} is no longer held, but a live subscription has yet to receive it"),
            )
        })
    }

    // ----- observations -----

    /// Checks one observation against the model and applies it.
    ///
    /// # Errors
    /// The first rule the observation breaks.
    pub fn observe(&mut self, observation: &Observation) -> Result<(), Violation> {
        self.now += 1;
        match observation {
            Observation::Received { sub, event } => self.received(*sub, *event),
            Observation::Ended { sub } => self.ended(*sub),
            Observation::ScopeClosing { scope } => self.scope_closing(*scope),
            Observation::ScopeExited { scope } => self.scope_exited(*scope),
            Observation::ScopeCancelled { scope } => self.scope_cancelled(*scope),
            Observation::TaskDone { task, sent } => self.task_done(*task, sent.clone()),
        }
    }

    fn received(&mut self, sub_id: SubId, event: EventId) -> Result<(), Violation> {
        let Some(sub) = self.subs.get(&sub_id) else {
            return violation(
                Rule::Robust1,
                format!("{sub_id}, which does not exist, received event#{event}"),
            );
        };
        match sub.state {
            SubState::Live => {}
            SubState::BornEnded => {
                return violation(
                    Rule::Close3,
                    format!("{sub_id} subscribed after its bus closed, yet received event#{event}"),
                );
            }
            SubState::Ended => {
                return violation(
                    Rule::Close1,
                    format!("{sub_id} received event#{event} after its stream ended"),
                );
            }
            SubState::Dropped => {
                return violation(
                    Rule::Robust1,
                    format!("{sub_id} received event#{event} after it was dropped"),
                );
            }
        }
        if sub.credits == 0 {
            return violation(
                Rule::Robust1,
                format!(
                    "{sub_id} received event#{event} without credit: the adapter pulled more than asked"
                ),
            );
        }
        let log = &self.buses[sub.bus].channels[&sub.route].log;
        let expected = log.get(sub.cursor()).copied();
        if expected != Some(event) {
            return Err(self.misdelivery(sub_id, event, expected));
        }
        // Correct. Count what this receipt exercised.
        let pending = log.len() - sub.cursor();
        let index = sub.cursor();
        let (bus, route, scope) = (sub.bus, sub.route, sub.scope);
        let others = self.buses[bus].channels[&route].members.iter().any(|id| {
            let s = &self.subs[id];
            *id != sub_id && s.start <= index && matches!(s.state, SubState::Live | SubState::Ended)
        });
        let origin = self.events[&event].origin;
        let now = self.now;
        let sub = self.subs.get_mut(&sub_id).expect("checked above");
        let first = sub.received == 0;
        sub.received += 1;
        sub.credits -= 1;
        sub.last_progress = now;
        if sub.credits == 0 {
            self.owed.remove(&sub_id);
            self.ending.remove(&sub_id);
            if let Some(channel) = self.buses[bus].channels.get_mut(&route) {
                channel.hungry.remove(&sub_id);
            }
        } else if pending == 1 {
            self.owed.remove(&sub_id);
        }
        let (vis, drop) = (
            first && std::mem::take(&mut sub.vis_pending),
            first && std::mem::take(&mut sub.drop_pending),
        );
        self.received_since.insert(sub_id);
        self.note_undisturbed(sub_id);
        if pending >= 2 {
            self.coverage.hit(Rule::Fifo1);
        }
        if others {
            self.coverage.hit(Rule::Fanout1);
        }
        if origin.is_some() && origin != Some(scope) {
            self.coverage.hit(Rule::Scope2);
        }
        if vis {
            self.coverage.hit(Rule::Vis1);
        }
        if drop {
            self.coverage.hit(Rule::Drop1);
        }
        Ok(())
    }

    /// Names the rule a wrong receipt breaks: `got` arrived at `sub` where
    /// the model expected `expected` (or nothing).
    fn misdelivery(&self, sub_id: SubId, got: EventId, expected: Option<EventId>) -> Violation {
        let sub = &self.subs[&sub_id];
        let want = match expected {
            Some(e) => format!("the model expected event#{e} next"),
            None => "the model expected nothing yet".to_owned(),
        };
        let who = format!("{sub_id} ({} in {})", sub.ty, sub.scope);
        let make = |rule, why: String| Violation {
            rule,
            message: format!("{who} received event#{got}, but {want}: {why}"),
        };
        let Some(event) = self.events.get(&got) else {
            return make(Rule::Robust1, "no such event was ever sent".to_owned());
        };
        if event.route != sub.route {
            return make(
                Rule::Route1,
                format!("event#{got} is a {}, a different type", event.sent_as),
            );
        }
        let Some(bus) = event.bus else {
            return make(
                Rule::Missing1,
                "it was sent outside every scope, where no bus is in reach".to_owned(),
            );
        };
        let origin = event.origin.map_or("?".to_owned(), |s| s.to_string());
        if bus != sub.bus {
            let (theirs, ours) = (&self.buses[bus], &self.buses[sub.bus]);
            let rule = if theirs.owner_isolated || ours.owner_isolated {
                Rule::Scope3
            } else if theirs.owner_root && ours.owner_root {
                Rule::Scope1
            } else {
                Rule::Scope2
            };
            return make(
                rule,
                format!(
                    "it was sent in {origin}, on the bus of {}, not on the bus of {} it subscribed to",
                    theirs.owner, ours.owner
                ),
            );
        }
        if event.after_close {
            return make(
                Rule::Close2,
                format!("it was sent in {origin} after the bus closed"),
            );
        }
        let index = event.index.unwrap_or_default();
        if index < sub.start {
            if event.stored {
                return make(
                    Rule::Vis1,
                    "it was sent before the subscription was created".to_owned(),
                );
            }
            return make(
                Rule::Drop1,
                "it was sent before the subscription was created, when nobody subscribed to its type".to_owned(),
            );
        }
        if index < sub.cursor() {
            return make(Rule::Fifo1, "it was already received".to_owned());
        }
        make(
            Rule::Fifo1,
            "it was sent after the event the model expected: order is broken".to_owned(),
        )
    }

    fn ended(&mut self, sub_id: SubId) -> Result<(), Violation> {
        let Some(sub) = self.subs.get(&sub_id) else {
            return violation(
                Rule::Robust1,
                format!("{sub_id}, which does not exist, ended"),
            );
        };
        if sub.credits == 0 {
            return violation(
                Rule::Robust1,
                format!("{sub_id} reported its end without credit to pull"),
            );
        }
        match sub.state {
            SubState::BornEnded => {
                self.coverage.hit(Rule::Close3);
            }
            SubState::Live => {
                let bus = &self.buses[sub.bus];
                let len = self.log_len(sub.bus, sub.route);
                let scope = &self.scopes[&sub.scope];
                // A bus whose owning scope is being cancelled is closing:
                // cancellation is asynchronous, and the implementation may
                // close the bus before it reports the scope cancelled.
                let closing = bus.closed || self.scopes[&bus.owner].cancel_requested;
                if !closing
                    && scope.parent.is_some()
                    && !scope.isolated
                    && matches!(
                        scope.state,
                        ScopeState::Closing | ScopeState::Exited | ScopeState::Cancelled
                    )
                {
                    return violation(
                        Rule::Scope2,
                        format!(
                            "{sub_id} ({} in {}) ended when {} closed, but that nested scope shares its parent's bus, which is still open: it seems to have had a bus of its own",
                            sub.ty, sub.scope, sub.scope
                        ),
                    );
                }
                if !closing {
                    return violation(
                        Rule::Close1,
                        format!(
                            "{sub_id} ({} in {}) ended while its bus is still open",
                            sub.ty, sub.scope
                        ),
                    );
                }
                if sub.cursor() < len {
                    let next = self.buses[sub.bus].channels[&sub.route].log[sub.cursor()];
                    let hint = match self.events.get(&next).and_then(|e| e.origin) {
                        Some(origin) if origin != sub.scope => format!(
                            " (hint: event#{next} was sent in {origin}, which shares the bus of {}; a scope not really sharing its parent's bus would lose it, SCOPE-2)",
                            sub.scope
                        ),
                        _ => String::new(),
                    };
                    return violation(
                        Rule::Close1,
                        format!(
                            "{sub_id} ({} in {}) ended with {} events sent before the close still undelivered (next: event#{next}){hint}",
                            sub.ty,
                            sub.scope,
                            len - sub.cursor(),
                        ),
                    );
                }
                self.coverage.hit(Rule::Close1);
            }
            SubState::Ended | SubState::Dropped => {
                return violation(
                    Rule::Robust1,
                    format!("{sub_id} reported its end twice, or after it was dropped"),
                );
            }
        }
        self.note_undisturbed(sub_id);
        self.forget(sub_id);
        if let Some(sub) = self.subs.get_mut(&sub_id) {
            sub.state = SubState::Ended;
        }
        Ok(())
    }

    fn scope_closing(&mut self, id: ScopeId) -> Result<(), Violation> {
        let Some(scope) = self.scopes.get(&id) else {
            return violation(
                Rule::Robust1,
                format!("{id}, which does not exist, began closing"),
            );
        };
        if scope.cancel_requested && !scope.closed_before_cancel {
            return violation(
                Rule::Task2,
                format!("{id} was cancelled, yet its body went on and returned"),
            );
        }
        if scope.state != ScopeState::CloseRequested {
            return violation(
                Rule::Robust1,
                format!("{id} began closing without being asked to"),
            );
        }
        let (bus, owns) = (scope.bus, scope.owns_bus);
        if let Some(s) = self.scopes.get_mut(&id) {
            s.state = ScopeState::Closing;
        }
        if owns {
            self.close_bus(bus);
        }
        Ok(())
    }

    fn scope_exited(&mut self, id: ScopeId) -> Result<(), Violation> {
        let Some(scope) = self.scopes.get(&id) else {
            return violation(Rule::Robust1, format!("{id}, which does not exist, exited"));
        };
        if scope.cancel_requested && !scope.closed_before_cancel {
            return violation(
                Rule::Task2,
                format!("{id} was cancelled, yet it went on to exit normally"),
            );
        }
        // Its exit raced with a cancellation requested after its close: its
        // unfinished tasks count as cancelled.
        let cancelled_meanwhile = scope.cancel_requested;
        if scope.state != ScopeState::Closing {
            return violation(Rule::Task1, format!("{id} exited before its body returned"));
        }
        // TASK-1: exit waits for every task and nested scope.
        for task in &scope.tasks {
            if !cancelled_meanwhile
                && !matches!(
                    self.tasks[task].state,
                    TaskState::Done | TaskState::Cancelled
                )
            {
                return violation(
                    Rule::Task1,
                    format!("{id} exited while its {task} had not finished"),
                );
            }
        }
        for child in &scope.children {
            if !cancelled_meanwhile
                && !matches!(
                    self.scopes[child].state,
                    ScopeState::Exited | ScopeState::Cancelled
                )
            {
                return violation(
                    Rule::Task1,
                    format!("{id} exited while its nested {child} was still running"),
                );
            }
        }
        if !cancelled_meanwhile && (!scope.tasks.is_empty() || !scope.children.is_empty()) {
            self.coverage.hit(Rule::Task1);
        }
        let (bus, owns, tasks) = (scope.bus, scope.owns_bus, scope.tasks.clone());
        if cancelled_meanwhile {
            for task in tasks {
                if let Some(t) = self.tasks.get_mut(&task)
                    && matches!(t.state, TaskState::Waiting | TaskState::Released(_))
                {
                    t.state = TaskState::Cancelled;
                    self.waiting.remove(task);
                    self.released.remove(&task);
                }
            }
            if owns {
                self.close_bus(bus);
            }
        }
        if let Some(s) = self.scopes.get_mut(&id) {
            s.state = ScopeState::Exited;
        }
        self.alive_scopes.remove(&id);
        Ok(())
    }

    fn scope_cancelled(&mut self, id: ScopeId) -> Result<(), Violation> {
        let Some(scope) = self.scopes.get(&id) else {
            return violation(
                Rule::Robust1,
                format!("{id}, which does not exist, was cancelled"),
            );
        };
        if !scope.cancel_requested
            || matches!(scope.state, ScopeState::Exited | ScopeState::Cancelled)
        {
            if let Some(parent) = scope.parent
                && self.scopes[&parent].state == ScopeState::Closing
            {
                return violation(
                    Rule::Task1,
                    format!("{parent}'s exit cancelled its nested {id} instead of waiting for it"),
                );
            }
            return violation(
                Rule::Robust1,
                format!("{id} reported a cancellation nobody asked for"),
            );
        }
        let (bus, owns, tasks) = (scope.bus, scope.owns_bus, scope.tasks.clone());
        let mut unfinished = false;
        for task in tasks {
            if let Some(t) = self.tasks.get_mut(&task)
                && matches!(t.state, TaskState::Waiting | TaskState::Released(_))
            {
                t.state = TaskState::Cancelled;
                self.waiting.remove(task);
                self.released.remove(&task);
                unfinished = true;
            }
        }
        if unfinished {
            self.coverage.hit(Rule::Task2);
        }
        if let Some(s) = self.scopes.get_mut(&id) {
            s.state = ScopeState::Cancelled;
        }
        self.alive_scopes.remove(&id);
        if owns {
            self.close_bus(bus);
        }
        Ok(())
    }

    fn task_done(
        &mut self,
        task_id: TaskId,
        sent: Option<(EventId, Result<(), OpError>)>,
    ) -> Result<(), Violation> {
        let Some(task) = self.tasks.get(&task_id) else {
            return violation(
                Rule::Robust1,
                format!("{task_id}, which does not exist, finished"),
            );
        };
        let scope_id = task.scope;
        // Cancellation is cooperative: a task already woken (released) when
        // the cancellation was requested may finish the step it was woken
        // for. Nothing woken after the request may run, and nothing at all
        // once the scope reported cancelled.
        if task.state == TaskState::Cancelled
            || matches!(
                self.scopes[&scope_id].state,
                ScopeState::Cancelled | ScopeState::Exited
            )
        {
            return violation(
                Rule::Task2,
                format!("{task_id} ran after its scope {scope_id} was cancelled"),
            );
        }
        if task.released_after_cancel {
            return violation(
                Rule::Task2,
                format!(
                    "{task_id} was released after the cancellation of its scope {scope_id} was requested, yet it ran"
                ),
            );
        }
        let spec = match task.state {
            TaskState::Released(spec) => spec,
            TaskState::Waiting => {
                return violation(
                    Rule::Robust1,
                    format!("{task_id} finished before it was released"),
                );
            }
            _ => {
                return violation(Rule::Robust1, format!("{task_id} finished twice"));
            }
        };
        if let Some(t) = self.tasks.get_mut(&task_id) {
            t.state = TaskState::Done;
        }
        self.released.remove(&task_id);
        self.waiting.remove(task_id);
        match (spec, sent) {
            (None, None) => Ok(()),
            (Some(spec), Some((event, result))) if spec.event == event => self.send_in(
                scope_id,
                spec.ty,
                event,
                result,
                &format!("{task_id}'s send"),
            ),
            (spec, sent) => violation(
                Rule::Robust1,
                format!("{task_id} was to send {spec:?} but reported {sent:?}"),
            ),
        }
    }

    // ----- liveness -----

    /// After a settle (nothing left runnable), checks that everything that
    /// should have happened did.
    ///
    /// # Errors
    /// Stuck subscriptions first (for the harness to diagnose), else the first
    /// other broken expectation.
    pub fn check_settled(&mut self) -> Result<(), SettleFailure> {
        self.now += 1;
        let stuck: Vec<SubId> = self.owed.iter().copied().collect();
        if !stuck.is_empty() {
            return Err(SettleFailure::Stuck(stuck));
        }
        let unended: Vec<SubId> = self.ending.iter().copied().collect();
        if !unended.is_empty() {
            return Err(SettleFailure::Unended(unended));
        }
        for id in &self.alive_scopes {
            let scope = &self.scopes[id];
            let fail =
                |rule, message: String| Err(SettleFailure::Violation(Violation { rule, message }));
            if scope.cancel_requested {
                if !matches!(scope.state, ScopeState::Exited | ScopeState::Cancelled) {
                    return fail(
                        Rule::Task2,
                        format!("{id} was cancelled but is still running"),
                    );
                }
                continue;
            }
            match scope.state {
                ScopeState::CloseRequested => {
                    return fail(
                        Rule::Task1,
                        format!("{id} was asked to close, but its body never returned"),
                    );
                }
                ScopeState::Closing => {
                    let tasks_done = scope.tasks.iter().all(|t| {
                        matches!(self.tasks[t].state, TaskState::Done | TaskState::Cancelled)
                    });
                    let children_done = scope.children.iter().all(|c| {
                        matches!(
                            self.scopes[c].state,
                            ScopeState::Exited | ScopeState::Cancelled
                        )
                    });
                    if tasks_done && children_done {
                        return fail(
                            Rule::Task1,
                            format!(
                                "{id} is closing and all its tasks are done, yet it never exited"
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        for id in &self.released {
            let task = &self.tasks[id];
            if let TaskState::Released(_) = task.state
                && !self.scopes[&task.scope].cancel_requested
            {
                return Err(SettleFailure::Violation(Violation {
                    rule: Rule::Task1,
                    message: format!("{id} was released but never ran to completion"),
                }));
            }
        }
        // Everything settled as predicted: count what was exercised (the
        // rest is counted as subscriptions receive and end).
        let mut hits = Vec::new();
        for id in std::mem::take(&mut self.received_since) {
            if self
                .subs
                .get(&id)
                .is_some_and(|s| s.state == SubState::Live)
            {
                hits.push(Rule::Wake1);
            }
        }
        for rule in hits {
            self.coverage.hit(rule);
        }
        Ok(())
    }

    /// Names the rule a stuck subscription breaks. `woken` tells what a
    /// diagnostic spurious wakeup showed: `Some(true)` if the subscription
    /// then received its next event (the event was there: a lost wakeup),
    /// `Some(false)` if not (it was never delivered), `None` if the
    /// implementation cannot be woken from outside.
    pub fn classify_stuck(&self, sub_id: SubId, woken: Option<bool>) -> Violation {
        let sub = &self.subs[&sub_id];
        let log = &self.buses[sub.bus].channels[&sub.route].log;
        let next = log[sub.cursor().min(log.len().saturating_sub(1))];
        let waiting = log.len() - sub.cursor().min(log.len());
        let who = format!(
            "{sub_id} ({} in {}) has credit {} and {waiting} event{} waiting (next: event#{next}), but received nothing more after the implementation settled",
            sub.ty,
            sub.scope,
            sub.credits,
            if waiting == 1 { "" } else { "s" }
        );
        let channel = &self.buses[sub.bus].channels[&sub.route];
        let sibling_dropped = channel.drops.iter().any(|t| *t > sub.last_progress);
        let make = |rule, why: &str| Violation {
            rule,
            message: format!("{who}: {why}"),
        };
        if woken == Some(true) {
            if sibling_dropped {
                return make(
                    Rule::Cancel1,
                    "a spurious wakeup made it receive, so the event was there but its waker was lost, after another subscriber of the same type was dropped or cancelled",
                );
            }
            return make(
                Rule::Wake1,
                "a spurious wakeup made it receive, so the event was there but the send did not wake it (lost wakeup)",
            );
        }
        let mut hints = Vec::new();
        let bus = &self.buses[sub.bus];
        let lookalikes: Vec<&str> = bus
            .channels
            .iter()
            .filter(|(route, c)| {
                **route != sub.route && route.family() == sub.route.family() && c.subscribed
            })
            .map(|(route, _)| route.name())
            .collect();
        if !lookalikes.is_empty() {
            hints.push(format!(
                "look-alike types are subscribed on the same bus ({}): routing by name, by subclass or by generic base would do this (ROUTE-1)",
                lookalikes.join(", ")
            ));
        }
        if let Some(origin) = self.events.get(&next).and_then(|e| e.origin)
            && origin != sub.scope
        {
            hints.push(format!(
                "event#{next} was sent in {origin}, which shares the bus of {}: a scope not really sharing its parent's bus would do this (SCOPE-2)",
                sub.scope
            ));
        }
        let hints = if hints.is_empty() {
            String::new()
        } else {
            format!(" (hints: {})", hints.join("; "))
        };
        if sibling_dropped {
            return make(
                Rule::Cancel1,
                &format!(
                    "it stopped receiving after another subscriber of the same type was dropped or cancelled{hints}"
                ),
            );
        }
        match woken {
            Some(_) => make(
                Rule::Fanout1,
                &format!(
                    "even a spurious wakeup finds nothing: the events were never delivered to it{hints}"
                ),
            ),
            None => make(
                Rule::Fanout1,
                &format!(
                    "it was either never woken (WAKE-1) or never given the events; this implementation cannot be woken from outside to tell which{hints}"
                ),
            ),
        }
    }

    /// Names the rule a subscription breaks whose stream should have ended
    /// (credit, nothing left, bus closed) but did not. `ended` tells what a
    /// diagnostic spurious wakeup showed: `Some(true)` if it then ended (the
    /// end was there, the wakeup lost), `Some(false)` if not, `None` if the
    /// implementation cannot be woken from outside.
    pub fn classify_unended(&self, sub_id: SubId, ended: Option<bool>) -> Violation {
        let sub = &self.subs[&sub_id];
        let (rule, what) = if sub.state == SubState::BornEnded {
            (
                Rule::Close3,
                format!(
                    "{sub_id} ({} in {}) was subscribed after its bus closed; pulled, its stream must end, but it hangs",
                    sub.ty, sub.scope
                ),
            )
        } else {
            (
                Rule::Close1,
                format!(
                    "{sub_id} ({} in {}) received everything sent before its bus closed and has credit, yet its stream never ended",
                    sub.ty, sub.scope
                ),
            )
        };
        let channel = &self.buses[sub.bus].channels[&sub.route];
        let sibling_dropped = channel.drops.iter().any(|t| *t > sub.last_progress);
        match ended {
            Some(false) | None if sibling_dropped => Violation {
                rule: Rule::Cancel1,
                message: format!(
                    "{what}, after another subscriber of the same type was dropped or cancelled"
                ),
            },
            Some(true) if sibling_dropped => Violation {
                rule: Rule::Cancel1,
                message: format!(
                    "{what}: a spurious wakeup made it end, so the close did not wake it (lost wakeup), after another subscriber of the same type was dropped or cancelled"
                ),
            },
            Some(true) => Violation {
                rule: Rule::Wake1,
                message: format!(
                    "{what}: a spurious wakeup made it end, so the close did not wake it (lost wakeup)"
                ),
            },
            _ => Violation {
                rule,
                message: what,
            },
        }
    }

    /// Whether the stream of `sub` has ended (as observed).
    pub fn has_ended(&self, sub: SubId) -> bool {
        self.subs
            .get(&sub)
            .is_some_and(|s| s.state == SubState::Ended)
    }

    /// Whether `sub` has received its next expected event since `received`
    /// (used by the harness's diagnosis of stuck subscriptions).
    pub fn received_count(&self, sub: SubId) -> usize {
        self.subs.get(&sub).map_or(0, |s| s.received)
    }
}

fn expect_done(op: &Op, reply: &Reply) -> Result<(), Violation> {
    match reply {
        Ok(Answer::Done) => Ok(()),
        other => violation(
            Rule::Robust1,
            format!("`{op}` answered {}; expected success", show(other)),
        ),
    }
}

fn show(reply: &Reply) -> String {
    match reply {
        Ok(Answer::Done) => "success".to_owned(),
        Ok(Answer::Stats(_)) => "statistics".to_owned(),
        Err(e) => format!("the error {e}"),
    }
}
