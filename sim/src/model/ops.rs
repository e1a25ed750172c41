//! Ops: what each does to the model, and the check of the implementation's
//! reply to it. Sends are in `send`, `observe` in `stats`.

use super::Model;
use super::disagreement::{Disagreement, Mode};
use super::state::{Bus, Scope, ScopeState, SubState, Subscription, Task, TaskState};
use crate::catalogue::EventType;
use crate::op::{Answer, Op, OpError, Reply, ScopeId, SendSpec, SubId, TaskId};
use crate::rules::Rule;
use std::collections::BTreeMap;

impl Model {
    pub(super) fn apply_op(&mut self, op: &Op, reply: &Reply) -> Result<(), Disagreement> {
        match op {
            Op::OpenScope {
                scope,
                parent,
                isolated,
            } => self.open_scope_op(op, *scope, *parent, *isolated, reply),
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
            Op::FailScope { scope } => {
                expect_done(op, reply)?;
                // FAIL-1: the seed's "unless the scope itself is cancelled,
                // fails": a failing body takes its group down as a
                // cancellation would, and its error goes up.
                self.request_cancel(*scope);
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.failed = true;
                }
                Ok(())
            }
            Op::Subscribe { sub, scope, ty } => self.subscribe(*sub, *scope, *ty, reply),
            Op::SubscribeShared {
                sub,
                puller,
                scope,
                ty,
            } => self.subscribe_shared(*sub, *puller, *scope, *ty, reply),
            Op::SpawnProcessor { sub, scope, ty } => self.spawn_processor(*sub, *scope, *ty, reply),
            Op::Send { scope, ty, event } => self.send_op(*scope, *ty, *event, reply),
            Op::Consume { sub, k } if self.pullers.contains_key(sub) => {
                expect_done(op, reply)?;
                self.consume_puller(*sub, *k);
                Ok(())
            }
            Op::Consume { sub, k } => {
                expect_done(op, reply)?;
                if let Some(s) = self.subs.get_mut(sub) {
                    s.credits += u64::from(*k);
                    self.index_credited(*sub);
                }
                Ok(())
            }
            Op::DropSubscription { sub } | Op::CancelSubscriber { sub } => {
                expect_done(op, reply)?;
                self.drop_sub(*sub);
                Ok(())
            }
            Op::FailSubscriber { sub, send } => self.fail_subscriber(*sub, *send, reply),
            Op::Abandon { sub } => {
                expect_done(op, reply)?;
                // A shared subscription's puller abandons a receive of it.
                self.abandon(self.pullers.get(sub).copied().unwrap_or(*sub));
                Ok(())
            }
            Op::Reenter { sub, action } => {
                expect_done(op, reply)?;
                self.arm_reentry(*sub, *action);
                Ok(())
            }
            Op::Spawn { task, scope } => self.spawn(op, *task, *scope, reply),
            Op::Release { task, send } => {
                expect_done(op, reply)?;
                self.release(*task, *send);
                Ok(())
            }
            Op::Settle => expect_done(op, reply),
            Op::Observe { scope } => self.observe_stats(*scope, reply),
        }
    }

    fn open_scope_op(
        &mut self,
        op: &Op,
        scope: ScopeId,
        parent: Option<ScopeId>,
        isolated: bool,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        if reply == &Err(OpError::Closed) && parent.is_some_and(|p| self.exiting(self.group_of(p)))
        {
            // TASK-1: an exiting task group may refuse new tasks (a nested
            // scope is one); the scope then does not exist.
            return Ok(());
        }
        expect_done(op, reply)?;
        self.open_scope(scope, parent, isolated);
        Ok(())
    }

    /// SCOPE-1, SCOPE-2, SCOPE-3: the new scope owns a bus, or uses its
    /// parent's, as the model's layout says.
    fn open_scope(&mut self, id: ScopeId, parent: Option<ScopeId>, isolated: bool) {
        let parent_bus = parent.and_then(|p| self.scopes.get(&p)).map(|p| p.bus);
        let group = match parent {
            Some(p) if !isolated => self.group_of(p),
            _ => id,
        };
        let mut scope = Scope {
            parent,
            isolated,
            bus: 0,
            owns_bus: false,
            state: ScopeState::Open,
            cancel_requested: false,
            failed: false,
            closed_before_cancel: false,
            group,
            group_used: false,
            children: Vec::new(),
            tasks: Vec::new(),
        };
        match parent_bus {
            Some(bus) if !self.layout.owns_bus(false, isolated) => scope.bus = bus,
            _ => {
                self.buses.push(Bus {
                    owner: id,
                    owner_kind: scope.kind(),
                    closed: false,
                    channels: BTreeMap::new(),
                });
                scope.bus = self.buses.len() - 1;
                scope.owns_bus = true;
            }
        }
        if let Some(p) = parent.and_then(|p| self.scopes.get_mut(&p)) {
            p.children.push(id);
        }
        self.scopes.insert(id, scope);
        self.index_scope_opened(id);
    }

    /// Cancellation is requested for `id`; if it owns a task group, also for
    /// every scope still running in that group (the scopes nested in it and
    /// in the non-isolated scopes within it), and so on down (TASK-2). A
    /// nested, non-isolated scope's cancellation cancels its body only.
    fn request_cancel(&mut self, id: ScopeId) {
        let mut stack = vec![id];
        while let Some(s) = stack.pop() {
            let members = self.group_scopes(s);
            if let Some(scope) = self.scopes.get_mut(&s)
                && !scope.gone()
            {
                scope.cancel_requested = true;
                scope.closed_before_cancel = matches!(
                    scope.state,
                    ScopeState::CloseRequested | ScopeState::Closing
                );
                stack.extend(members);
                // Its processors may be cancelled at any moment now: none
                // is owed events or its end any more (TASK-2).
                for p in self.group_processors(s) {
                    self.index_finished(p);
                }
            }
        }
    }

    pub(super) fn subscribe(
        &mut self,
        sub: SubId,
        scope: Option<ScopeId>,
        ty: EventType,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        let Some(scope) = scope else {
            self.failed_subs.insert(sub);
            return self.expect_context_missing(&format!("subscribing to {ty}"), reply);
        };
        let closed = self.buses[self.scopes[&scope].bus].closed;
        let through_exited = self.scopes[&scope].gone();
        match reply {
            Ok(Answer::Done) => {}
            Err(OpError::Closed) if closed => {
                // CLOSE-3 allows refusing a subscription on a closed bus.
                self.failed_subs.insert(sub);
                self.coverage.hit(Rule::Close3);
                if through_exited {
                    self.coverage.hit(Rule::Exit1);
                }
                return Ok(());
            }
            Err(e) if through_exited => {
                // EXIT-1: the handle keeps the bus the scope had.
                let state = if closed { "closed" } else { "open" };
                return Disagreement::certain(
                    Rule::Exit1,
                    Mode::ExitedHandle,
                    format!(
                        "subscribing to {ty} in {scope}, which has exited, failed with {e}; the bus it had ({state}) is still in reach through its handle"
                    ),
                );
            }
            Err(OpError::ContextMissing) => {
                return Disagreement::certain(
                    self.scopes[&scope].kind().rule(),
                    Mode::NoBus,
                    format!(
                        "subscribing to {ty} in {scope} failed with ContextMissing; a bus is in reach there"
                    ),
                );
            }
            other => {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::OpRefused,
                    format!(
                        "subscribing to {ty} in {scope} answered {}; expected success",
                        show(other)
                    ),
                );
            }
        }
        self.add_subscription(sub, scope, ty, closed);
        if through_exited {
            self.coverage.hit(Rule::Exit1);
            if let Some(s) = self.subs.get_mut(&sub) {
                s.through_exited = true;
            }
        }
        Ok(())
    }

    /// A subscription made in `scope`: live, or born ended if its bus is
    /// closed (CLOSE-3). Its stream starts after everything sent so far
    /// (VIS-1).
    fn add_subscription(&mut self, sub: SubId, scope: ScopeId, ty: EventType, closed: bool) {
        let bus = self.scopes[&scope].bus;
        let route = ty.route();
        let channel = self.buses[bus].channels.entry(route).or_default();
        channel.subscribed = true;
        let start = channel.log.len();
        let exposure = self.new_exposure(bus, route, start);
        self.subs.insert(
            sub,
            Subscription {
                scope,
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
                born_on_closed_bus: closed,
                processor: false,
                cancelled_with_group: false,
                failed: false,
                through_exited: false,
                share: None,
                exposure,
            },
        );
        self.index_subscribed(sub);
    }

    /// A processor: a subscription made in `scope`, as `subscribe` makes
    /// one, pulled with unlimited credit by a task of the scope's task
    /// group, which its group's owner waits for at exit (TASK-1) and cancels
    /// with itself (TASK-2). An exiting group may refuse it, as any task.
    fn spawn_processor(
        &mut self,
        sub: SubId,
        scope: ScopeId,
        ty: EventType,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        if reply == &Err(OpError::Closed) && self.exiting(self.group_of(scope)) {
            self.failed_subs.insert(sub);
            return Ok(());
        }
        self.subscribe(sub, Some(scope), ty, reply)?;
        let Some(s) = self.subs.get_mut(&sub) else {
            return Ok(());
        };
        s.processor = true;
        s.credits = PROCESSOR_CREDIT;
        self.index_credited(sub);
        self.index_processor_spawned(sub);
        Ok(())
    }

    /// MISSING-1: with no bus in reach, `what` must fail with
    /// `ContextMissing`.
    pub(super) fn expect_context_missing(
        &mut self,
        what: &str,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        let answered = match reply {
            Err(OpError::ContextMissing) => {
                self.coverage.hit(Rule::Missing1);
                return Ok(());
            }
            Ok(_) => "succeeded".to_owned(),
            Err(e) => format!("failed with {e}"),
        };
        Disagreement::certain(
            Rule::Missing1,
            Mode::BusOutsideScopes,
            format!("{what} outside every scope {answered}; expected ContextMissing"),
        )
    }

    /// A subscription is dropped, or its subscriber cancelled: it stops
    /// being live at once (RECLAIM-2), and it must disturb no other
    /// (CANCEL-1).
    pub(super) fn drop_sub(&mut self, sub: SubId) {
        let now = self.now;
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        let was_live = s.state == SubState::Live;
        s.state = SubState::Dropped;
        let (bus, route, cursor) = (s.bus, s.route, s.cursor());
        self.index_dropped(sub);
        self.index_processor_over(sub);
        // Any drop counts for CANCEL-1 (a subscription made after close that
        // an implementation keeps live is dropped mid-wait all the same);
        // only a live one can leave events behind for RECLAIM-2.
        let channel = self.buses[bus].channels.entry(route).or_default();
        channel.drops.push(now);
        if was_live && channel.log.len() > cursor {
            channel.dropped_with_backlog = true;
        }
    }

    /// FAIL-2: the subscriber's task fails: from now on it is owed
    /// nothing, as after a drop; its cleanup's send, if any, is judged when
    /// the task reports `subscriber_failed` (it happens as the task unwinds,
    /// in order with what else the implementation reports).
    fn fail_subscriber(
        &mut self,
        sub: SubId,
        send: Option<SendSpec>,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        expect_done(&Op::FailSubscriber { sub, send }, reply)?;
        if let Some(s) = self.subs.get_mut(&sub) {
            s.failed = true;
            self.failing_subs.insert(sub, (s.scope, send));
        }
        self.drop_sub(sub);
        Ok(())
    }

    /// The subscriber abandons its pending pull and starts a new one: the
    /// subscription and its credit stay as they were (CANCEL-2). An abandon
    /// with credit (the subscriber may have been waiting in a pull) is
    /// noted on its channel, for coverage.
    fn abandon(&mut self, sub: SubId) {
        let Some(s) = self.subs.get(&sub) else {
            return;
        };
        if s.credits > 0 && s.state == SubState::Live {
            let (bus, route) = (s.bus, s.route);
            self.buses[bus].channels.entry(route).or_default().abandons += 1;
        }
    }

    fn spawn(
        &mut self,
        op: &Op,
        task: TaskId,
        scope: ScopeId,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        if reply == &Err(OpError::Closed) && self.exiting(self.group_of(scope)) {
            // TASK-1: an exiting task group may refuse new tasks; the task
            // then does not exist.
            return Ok(());
        }
        expect_done(op, reply)?;
        self.tasks.insert(
            task,
            Task {
                scope,
                state: TaskState::Waiting,
                released_after_cancel: false,
                started: false,
            },
        );
        self.index_spawned(task);
        if let Some(s) = self.scopes.get_mut(&scope) {
            s.tasks.push(task);
        }
        Ok(())
    }

    /// A worker is released; if it had started and its group's
    /// cancellation was already requested, it must never run (TASK-3).
    fn release(&mut self, task: TaskId, send: Option<SendSpec>) {
        let cancelled = self
            .tasks
            .get(&task)
            .is_some_and(|t| t.started && self.task_cancel_requested(t));
        if let Some(t) = self.tasks.get_mut(&task) {
            t.state = TaskState::Released(send);
            t.released_after_cancel = cancelled;
        }
        self.index_released(task);
    }

    /// The owner of the task group of `scope`'s tasks: `scope` itself if it
    /// is a root or isolated scope, else its nearest such ancestor.
    pub(super) fn group_of(&self, scope: ScopeId) -> ScopeId {
        self.scopes.get(&scope).map_or(scope, |s| s.group)
    }

    /// The scopes still running as tasks of `owner`'s group (nested in
    /// `owner` or in a non-isolated scope within it); none if `owner` owns
    /// no group. From an index: costs what is alive.
    pub(super) fn group_scopes(&self, owner: ScopeId) -> Vec<ScopeId> {
        self.index
            .group_scopes
            .get(&owner)
            .map_or_else(Vec::new, |s| s.iter().copied().collect())
    }

    /// The worker tasks of `owner`'s group (spawned in it or in a
    /// non-isolated scope within it) neither finished nor cancelled; none if
    /// `owner` owns no group. From an index: costs what is alive.
    pub(super) fn group_tasks(&self, owner: ScopeId) -> Vec<TaskId> {
        self.index
            .group_tasks
            .get(&owner)
            .map_or_else(Vec::new, |t| t.iter().copied().collect())
    }

    /// The processors of `owner`'s group whose task has not finished (their
    /// stream has not ended, they were not cancelled); none if `owner` owns
    /// no group. From an index: costs what is alive.
    pub(super) fn group_processors(&self, owner: ScopeId) -> Vec<SubId> {
        self.index
            .group_processors
            .get(&owner)
            .map_or_else(Vec::new, |t| t.iter().copied().collect())
    }

    /// Whether the cancellation of `task`'s group was requested.
    pub(super) fn task_cancel_requested(&self, task: &super::state::Task) -> bool {
        self.scopes[&self.group_of(task.scope)].cancel_requested
    }

    /// Whether the scope's body has returned: it is exiting, and may refuse
    /// new tasks.
    pub(super) fn exiting(&self, id: ScopeId) -> bool {
        self.scopes
            .get(&id)
            .is_some_and(|s| s.state == ScopeState::Closing)
    }
}

/// A processor's credit: more than any run sends.
pub(crate) const PROCESSOR_CREDIT: u64 = 1 << 40;

/// ROBUST-1: an op that must succeed was answered otherwise.
fn expect_done(op: &Op, reply: &Reply) -> Result<(), Disagreement> {
    match reply {
        Ok(Answer::Done) => Ok(()),
        other => Disagreement::certain(
            Rule::Robust1,
            Mode::OpRefused,
            format!("`{op}` answered {}; expected success", show(other)),
        ),
    }
}

/// A reply, in words.
pub(super) fn show(reply: &Reply) -> String {
    match reply {
        Ok(Answer::Done) => "success".to_owned(),
        Ok(Answer::Stats(_)) => "statistics".to_owned(),
        Err(e) => format!("the error {e}"),
    }
}
