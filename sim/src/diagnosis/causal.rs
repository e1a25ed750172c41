//! A failure's causal set: the ops of its trace that bear on what was seen.
//!
//! The subjects of a failure are the handles its evidence, its message and
//! its failing entry name (scopes, subscriptions, tasks, events). The causal
//! set closes them over what can change them:
//!
//! - a subscription or an event: every op on its channel (subscriptions of
//!   its route on its bus, sends of its route there, their consumes, drops
//!   and cancels), the scopes its bus depends on, and the subscriptions and
//!   sends of every other route on its bus (which routes a bus uses decides
//!   which unrelated types diagnosis can rename look-alikes to);
//! - a scope: its opening and its ancestors', its close and cancel and
//!   theirs, its tasks, the scopes nested in it, and everything on its bus;
//! - a task: its spawn and release, and its scope.
//!
//! Everything else (another route, another bus, an unrelated task) is
//! outside it: removing such an op must not change the rule a failure is
//! reported under, which the attribution property test checks.

use crate::catalogue::EventType;
use crate::harness::Failure;
use crate::model::{Disagreement, Layout};
use crate::op::{Entry, Interjection, Op, ScopeId, SubId, TaskId};
use std::collections::{BTreeMap, BTreeSet};

/// What a trace says about its handles: which bus each scope uses (under
/// a layout), each subscription's scope and route, each task's scope, each
/// event's scope and route.
#[derive(Default)]
pub(crate) struct Shape {
    parent: BTreeMap<ScopeId, Option<ScopeId>>,
    /// The scope whose bus each scope uses.
    bus: BTreeMap<ScopeId, ScopeId>,
    sub: BTreeMap<SubId, (ScopeId, EventType)>,
    task: BTreeMap<TaskId, ScopeId>,
    event: BTreeMap<u64, (Option<ScopeId>, EventType)>,
}

impl Shape {
    /// The shape of `trace`, its buses laid out as `layout` says.
    pub(crate) fn of(trace: &[Entry], layout: Layout) -> Shape {
        let mut shape = Shape::default();
        for op in trace.iter().filter_map(op_of) {
            match op {
                Op::OpenScope {
                    scope,
                    parent,
                    isolated,
                } => {
                    shape.parent.insert(*scope, *parent);
                    let bus = match parent {
                        Some(p) if !layout.owns_bus(false, *isolated) => {
                            shape.bus.get(p).copied().unwrap_or(*p)
                        }
                        _ => *scope,
                    };
                    shape.bus.insert(*scope, bus);
                }
                Op::Subscribe {
                    sub,
                    scope: Some(scope),
                    ty,
                }
                | Op::SpawnProcessor { sub, scope, ty } => {
                    shape.sub.insert(*sub, (*scope, ty.route()));
                }
                Op::SubscribeShared {
                    sub,
                    puller,
                    scope,
                    ty,
                } => {
                    shape.sub.insert(*sub, (*scope, ty.route()));
                    shape.sub.insert(*puller, (*scope, ty.route()));
                }
                Op::Send { scope, ty, event } => {
                    shape.event.insert(*event, (*scope, ty.route()));
                }
                Op::Spawn { task, scope } => {
                    shape.task.insert(*task, *scope);
                }
                Op::Release {
                    task,
                    send: Some(spec),
                } => {
                    let scope = shape.task.get(task).copied();
                    shape.event.insert(spec.event, (scope, spec.ty.route()));
                }
                Op::FailSubscriber {
                    sub,
                    send: Some(spec),
                } => {
                    let scope = shape.sub.get(sub).map(|(scope, _)| *scope);
                    shape.event.insert(spec.event, (scope, spec.ty.route()));
                }
                _ => {}
            }
        }
        shape
    }

    /// The channel (bus owner, route) of `route` in `scope`.
    pub(crate) fn channel(&self, scope: ScopeId, route: EventType) -> Option<(ScopeId, EventType)> {
        Some((*self.bus.get(&scope)?, route))
    }

    /// The scope a subscription was made in.
    pub(crate) fn sub_scope(&self, sub: SubId) -> Option<ScopeId> {
        self.sub.get(&sub).map(|(scope, _)| *scope)
    }

    /// The scope a task was spawned in.
    pub(crate) fn task_scope(&self, task: TaskId) -> Option<ScopeId> {
        self.task.get(&task).copied()
    }

    /// The channel of a subscription.
    pub(crate) fn sub_channel(&self, sub: SubId) -> Option<(ScopeId, EventType)> {
        let (scope, route) = self.sub.get(&sub)?;
        self.channel(*scope, *route)
    }

    /// Whether `scope` is `outer` or nested in it.
    pub(crate) fn is_within(&self, scope: ScopeId, outer: ScopeId) -> bool {
        self.ancestors(scope).contains(&outer)
    }

    pub(crate) fn ancestors(&self, scope: ScopeId) -> Vec<ScopeId> {
        let mut up = vec![scope];
        while let Some(Some(p)) = self.parent.get(up.last().unwrap_or(&scope)) {
            if up.contains(p) {
                break;
            }
            up.push(*p);
        }
        up
    }
}

/// The handles a failure names.
#[derive(Default, Debug)]
struct Subjects {
    scopes: BTreeSet<ScopeId>,
    subs: BTreeSet<SubId>,
    tasks: BTreeSet<TaskId>,
    events: BTreeSet<u64>,
}

impl Subjects {
    /// Handles written `scope#N`, `sub#N`, `task#N`, `event#N` in `text`.
    fn read(&mut self, text: &str) {
        for (prefix, at) in [("scope#", 0), ("sub#", 1), ("task#", 2), ("event#", 3)] {
            for (i, _) in text.match_indices(prefix) {
                let digits: String = text[i + prefix.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let Ok(n) = digits.parse::<u64>() else {
                    continue;
                };
                match at {
                    0 => drop(self.scopes.insert(ScopeId(n as u32))),
                    1 => drop(self.subs.insert(SubId(n as u32))),
                    2 => drop(self.tasks.insert(TaskId(n as u32))),
                    _ => drop(self.events.insert(n)),
                }
            }
        }
    }
}

/// The indices of the ops of `trace` (up to the failing entry) that are in
/// `failure`'s causal set; see the module documentation. Scheduling entries
/// and `settle` are left out: they are never candidates for removal.
pub fn causal_ops(trace: &[Entry], failure: &Failure) -> BTreeSet<usize> {
    let trace = &trace[..(failure.entry + 1).min(trace.len())];
    let shape = Shape::of(trace, Layout::SPEC);
    let mut subjects = Subjects::default();
    subjects.read(&failure.message);
    subjects.read(&failure.entry_text);
    let channel_of_sub = |sub: &SubId| shape.sub_channel(*sub);
    // The channels (bus, route) the failure is about, where its evidence
    // says; else every channel of the buses its subjects use.
    let mut channels: BTreeSet<(ScopeId, EventType)> = BTreeSet::new();
    let mut buses: BTreeSet<ScopeId> = BTreeSet::new();
    match failure.evidence.as_deref().and_then(evidence_channel) {
        Some((scope, route)) => {
            channels.extend(shape.bus.get(&scope).map(|b| (*b, route)));
            channels.extend(subjects.subs.iter().filter_map(channel_of_sub));
        }
        None => {
            let mut scopes: BTreeSet<ScopeId> = subjects.scopes.clone();
            scopes.extend(subjects.tasks.iter().filter_map(|t| shape.task.get(t)));
            scopes.extend(
                subjects
                    .subs
                    .iter()
                    .filter_map(|s| shape.sub.get(s).map(|x| x.0)),
            );
            buses.extend(scopes.iter().filter_map(|s| shape.bus.get(s)));
        }
    }
    for (event, (scope, route)) in &shape.event {
        if subjects.events.contains(event) {
            channels.extend(scope.and_then(|s| shape.bus.get(&s)).map(|b| (*b, *route)));
        }
    }
    let mut scopes: BTreeSet<ScopeId> = subjects.scopes.clone();
    scopes.extend(subjects.tasks.iter().filter_map(|t| shape.task.get(t)));
    let mut closed: BTreeSet<ScopeId> = BTreeSet::new();
    for s in scopes
        .iter()
        .chain(buses.iter())
        .chain(channels.iter().map(|(b, _)| b))
    {
        closed.extend(shape.ancestors(*s));
    }
    let typed: BTreeSet<ScopeId> = channels.iter().map(|(b, _)| *b).collect();
    let closure = Closure {
        shape: &shape,
        subjects: &subjects,
        scopes: &closed,
        buses: &buses,
        channels: &channels,
        typed: &typed,
    };
    trace
        .iter()
        .enumerate()
        .filter(|(_, e)| op_of(e).is_some_and(|op| closure.causal(op)))
        .map(|(i, _)| i)
        .collect()
}

/// The channel a model's finding is about, when it is about one: the
/// scope whose bus it is on, and the route.
pub(crate) fn evidence_channel(d: &Disagreement) -> Option<(ScopeId, EventType)> {
    match d {
        Disagreement::Certain(_) => None,
        Disagreement::Misdelivery(m) => Some((m.sub.scope, m.sub.ty.route())),
        Disagreement::SendRefused(s) => Some((s.scope, s.ty.route())),
        Disagreement::Stats(s) => Some((s.scope, s.route)),
        Disagreement::EarlyEnd(e) => Some((e.sub.scope, e.sub.ty.route())),
        Disagreement::Stuck(s) => Some((s.sub.scope, s.sub.ty.route())),
        Disagreement::Unended(u) => Some((u.sub.scope, u.sub.ty.route())),
    }
}

/// The causal set, as a predicate on ops.
struct Closure<'a> {
    shape: &'a Shape,
    subjects: &'a Subjects,
    /// Subject scopes and every ancestor of a scope in play.
    scopes: &'a BTreeSet<ScopeId>,
    /// Buses (by owner) all of whose channels are in play.
    buses: &'a BTreeSet<ScopeId>,
    /// Channels (bus owner, route) in play.
    channels: &'a BTreeSet<(ScopeId, EventType)>,
    /// Buses (by owner) whose subscriptions and sends of any route are in
    /// play: those of the channels.
    typed: &'a BTreeSet<ScopeId>,
}

impl Closure<'_> {
    fn bus(&self, scope: Option<ScopeId>) -> Option<ScopeId> {
        self.shape.bus.get(&scope?).copied()
    }

    fn in_channel(&self, scope: Option<ScopeId>, route: EventType) -> bool {
        self.bus(scope)
            .is_some_and(|b| self.buses.contains(&b) || self.channels.contains(&(b, route)))
    }

    fn typed_bus(&self, scope: Option<ScopeId>) -> bool {
        self.bus(scope).is_some_and(|b| self.typed.contains(&b))
    }

    fn sub(&self, sub: &SubId) -> bool {
        self.subjects.subs.contains(sub)
            || self
                .shape
                .sub
                .get(sub)
                .is_some_and(|(scope, route)| self.in_channel(Some(*scope), *route))
    }

    fn scope(&self, scope: &ScopeId) -> bool {
        self.scopes.contains(scope)
            || self.bus(Some(*scope)).is_some_and(|b| {
                self.buses.contains(&b) || self.channels.iter().any(|(c, _)| *c == b)
            })
    }

    fn causal(&self, op: &Op) -> bool {
        match op {
            Op::OpenScope { scope, parent, .. } => {
                self.scope(scope) || parent.is_some_and(|p| self.scopes.contains(&p))
            }
            Op::CloseScope { scope }
            | Op::CancelScope { scope }
            | Op::FailScope { scope }
            | Op::Observe { scope } => self.scope(scope),
            Op::Subscribe { sub, scope, ty } => {
                self.sub(sub) || self.in_channel(*scope, ty.route()) || self.typed_bus(*scope)
            }
            Op::SpawnProcessor { sub, scope, ty } => {
                let scope = Some(*scope);
                self.sub(sub) || self.in_channel(scope, ty.route()) || self.typed_bus(scope)
            }
            Op::SubscribeShared {
                sub,
                puller,
                scope,
                ty,
            } => {
                let scope = Some(*scope);
                self.sub(sub)
                    || self.sub(puller)
                    || self.in_channel(scope, ty.route())
                    || self.typed_bus(scope)
            }
            Op::Send { scope, ty, event } => {
                self.subjects.events.contains(event)
                    || self.in_channel(*scope, ty.route())
                    || self.typed_bus(*scope)
            }
            Op::Consume { sub, .. }
            | Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::Abandon { sub }
            | Op::Reenter { sub, .. } => self.sub(sub),
            Op::FailSubscriber { sub, send } => {
                self.sub(sub) || send.is_some_and(|s| self.subjects.events.contains(&s.event))
            }
            Op::Spawn { task, .. } | Op::Release { task, .. } => {
                self.subjects.tasks.contains(task)
                    || self.shape.task.get(task).is_some_and(|s| self.scope(s))
            }
            Op::Settle => false,
        }
    }
}

fn op_of(entry: &Entry) -> Option<&Op> {
    match entry {
        Entry::Op(op) | Entry::Preempt(_, Interjection::Op(op)) => Some(op),
        _ => None,
    }
}
