//! What the workload generator, the harness and the shrinker may ask the
//! model: which handles ops may name now, and whether an op is valid.
//! Nothing here changes the model.

use super::Model;
use super::state::{ScopeState, SubState, TaskState};
use crate::catalogue::{EventId, EventType};
use crate::op::{Op, ScopeId, SendSpec, SubId, TaskId};

/// How deeply scopes may nest (a root is at depth 0). Nested scopes are
/// nested futures, polled recursively; the limit keeps every valid workload
/// well within a thread's stack.
pub const MAX_NESTING: usize = 64;

impl Model {
    /// Scopes ops may name: open or closing, and not being cancelled.
    pub fn usable_scopes(&self) -> Vec<ScopeId> {
        self.index
            .running_scopes
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
        self.index
            .running_scopes
            .iter()
            .copied()
            .filter(|id| {
                let s = &self.scopes[id];
                s.state == ScopeState::Open && !s.cancel_requested
            })
            .collect()
    }

    /// Root scopes whose body may be made to fail (`fail_scope`): open,
    /// neither asked to close nor cancelled.
    pub fn failable_scopes(&self) -> Vec<ScopeId> {
        let mut open = self.closable_scopes();
        open.retain(|id| self.scopes[id].parent.is_none());
        open
    }

    /// `fail_scope`: an open root scope (not asked to close, not cancelled).
    fn check_failable(&self, scope: ScopeId) -> Result<(), String> {
        match self.scopes.get(&scope) {
            Some(s) if s.parent.is_some() => Err(format!(
                "{scope} is nested: only a root scope's body is made to fail"
            )),
            Some(s) if s.state == ScopeState::Open && !s.cancel_requested => Ok(()),
            Some(_) => Err(format!("{scope} is not open")),
            None => Err(format!("{scope} does not exist")),
        }
    }

    /// `fail_subscriber`: a held subscription (processors are refused
    /// before this), and a cleanup send only with a fresh event while its
    /// scope is usable.
    fn check_failable_sub(
        &self,
        sub: SubId,
        send: Option<crate::op::SendSpec>,
    ) -> Result<(), String> {
        if !self.is_held(sub) {
            return Err(format!("{sub} does not exist or was dropped"));
        }
        match send {
            None => Ok(()),
            Some(s) => {
                self.check_fresh(s.event)?;
                self.check_usable(self.subs[&sub].scope)
            }
        }
    }

    /// Whether `sub`'s scope may still be named by ops (a failing
    /// subscriber's cleanup sends there).
    pub fn sub_scope_usable(&self, sub: SubId) -> bool {
        self.subs
            .get(&sub)
            .is_some_and(|s| self.check_usable(s.scope).is_ok())
    }

    /// Scopes that have exited or been cancelled and that `send` and
    /// `subscribe` may still name through their handle (EXIT-1): those
    /// whose bus is not in the middle of a cancellation.
    pub fn exited_scopes(&self) -> Vec<ScopeId> {
        self.index
            .gone_scopes
            .items
            .iter()
            .copied()
            .filter(|id| self.check_exited(*id).is_ok())
            .collect()
    }

    /// Whether `op` is a `send` or `subscribe` through the handle of a scope
    /// that has exited or been cancelled (EXIT-1; needs the
    /// `exited_scopes` capability).
    pub fn acts_on_exited_scope(&self, op: &Op) -> bool {
        let scope = match op {
            Op::Send { scope, .. } | Op::Subscribe { scope, .. } => *scope,
            _ => None,
        };
        scope.is_some_and(|s| self.scopes.get(&s).is_some_and(|s| s.gone()))
    }

    /// A `send` or `subscribe` may name `scope` if it is usable, or if it is
    /// gone (EXIT-1) and its bus's owner is usable or gone too: while the
    /// owner's cancellation is under way, whether its bus has closed yet is
    /// the implementation's timing, which the model cannot follow.
    fn check_reachable(&self, scope: ScopeId) -> Result<(), String> {
        self.check_usable(scope)
            .or_else(|e| self.check_exited(scope).map_err(|_| e))
    }

    fn check_exited(&self, scope: ScopeId) -> Result<(), String> {
        let Some(s) = self.scopes.get(&scope) else {
            return Err(format!("{scope} does not exist"));
        };
        let owner = &self.scopes[&self.buses[s.bus].owner];
        match s.gone() && (owner.usable() || owner.gone()) {
            true => Ok(()),
            false => Err(format!(
                "{scope} has not exited, or its bus is being cancelled"
            )),
        }
    }

    /// Root scopes that are still usable.
    pub fn usable_roots(&self) -> usize {
        self.index
            .running_scopes
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
        &self.index.held_subs.items
    }

    /// Whether some processor's task has not finished.
    pub fn has_running_processors(&self) -> bool {
        self.index.group_processors.values().any(|s| !s.is_empty())
    }

    /// The processors whose task has not finished, in id order: the ones
    /// `cancel_subscriber` may name besides [`held_subs`](Model::held_subs).
    pub fn running_processors(&self) -> Vec<SubId> {
        let mut all: Vec<SubId> = self
            .index
            .group_processors
            .values()
            .flatten()
            .copied()
            .collect();
        all.sort();
        all
    }

    /// Held subscriptions with credit left (their subscriber may be waiting
    /// in a pull), in held order. Costs what is held.
    pub fn credited_subs(&self) -> Vec<SubId> {
        self.held_subs()
            .iter()
            .copied()
            .filter(|s| self.subs[s].credits > 0)
            .collect()
    }

    /// Whether a subscription is still held (not dropped or cancelled): its
    /// subscriber task exists.
    pub fn is_held(&self, sub: SubId) -> bool {
        self.subs
            .get(&sub)
            .is_some_and(|s| s.state != SubState::Dropped)
    }

    /// Whether the stream of `sub` has ended (as observed).
    pub fn has_ended(&self, sub: SubId) -> bool {
        self.subs
            .get(&sub)
            .is_some_and(|s| s.state == SubState::Ended)
    }

    /// How many events `sub` has received.
    pub fn received_count(&self, sub: SubId) -> usize {
        self.subs.get(&sub).map_or(0, |s| s.received)
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

    /// Whether the bus `sub` reads is about to close: its owner was asked
    /// to close and its body has not returned yet (its next poll closes the
    /// bus: the moment to poll it in the middle of `sub`'s registration).
    pub fn bus_about_to_close(&self, sub: SubId) -> bool {
        self.subs.get(&sub).is_some_and(|s| {
            let owner = &self.scopes[&self.buses[s.bus].owner];
            owner.state == ScopeState::CloseRequested && !owner.cancel_requested
        })
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
        &self.index.unreleased_tasks.items
    }

    /// Worker tasks not yet released whose task group's cancellation was
    /// requested but has not taken effect: releasing one tests TASK-3.
    /// Costs what is alive: the running scopes, and the unfinished tasks of
    /// the groups whose cancellation is pending.
    pub fn tasks_being_cancelled(&self) -> Vec<TaskId> {
        let unreleased = |t: &TaskId| self.tasks[t].state == super::state::TaskState::Waiting;
        self.index
            .running_scopes
            .iter()
            .filter(|id| self.scopes[*id].cancel_requested)
            .flat_map(|id| self.index.group_tasks.get(id).into_iter().flatten())
            .copied()
            .filter(unreleased)
            .collect()
    }

    /// Whether some scope is still usable, i.e. whether there is anything
    /// left to close.
    pub fn has_open_scopes(&self) -> bool {
        self.index
            .running_scopes
            .iter()
            .any(|id| self.scopes[id].usable())
    }

    /// Whether `op` may be applied now. Ops that name a handle that does not
    /// exist (any more) are invalid: a replay skips them.
    ///
    /// # Errors
    /// Why the op is not valid now, for humans.
    pub fn validate(&self, op: &Op) -> Result<(), String> {
        if let Some(answer) = self.validate_shared(op) {
            return answer;
        }
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
                parent.map_or(Ok(()), |p| self.check_usable(p))
            }
            Op::CloseScope { scope } => match self.scopes.get(scope) {
                Some(s) if s.state == ScopeState::Open && !s.cancel_requested => Ok(()),
                Some(_) => Err(format!("{scope} is not open")),
                None => Err(format!("{scope} does not exist")),
            },
            Op::FailScope { scope } => self.check_failable(*scope),
            Op::CancelScope { scope } | Op::Observe { scope } => self.check_usable(*scope),
            Op::Subscribe { sub, scope, .. } => {
                self.check_new_sub(*sub)?;
                scope.map_or(Ok(()), |s| self.check_reachable(s))
            }
            Op::SpawnProcessor { sub, scope, .. } => {
                self.check_new_sub(*sub)?;
                self.check_usable(*scope)
            }
            Op::Send { scope, event, .. } => {
                self.check_fresh(*event)?;
                scope.map_or(Ok(()), |s| self.check_reachable(s))
            }
            Op::SubscribeShared {
                sub, puller, scope, ..
            } => {
                self.check_new_sub(*sub)?;
                self.check_new_sub(*puller)?;
                match sub == puller {
                    true => Err(format!("{sub} cannot be its own second puller")),
                    false => self.check_usable(*scope),
                }
            }
            Op::Consume { sub, .. }
            | Op::DropSubscription { sub }
            | Op::FailSubscriber { sub, .. }
                if self.subs.get(sub).is_some_and(|s| s.processor) =>
            {
                Err(format!(
                    "{sub} is a processor's: only `cancel_subscriber` and `abandon` apply to it"
                ))
            }
            Op::Consume { sub, .. }
            | Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::Abandon { sub } => match self.is_held(*sub) {
                true => Ok(()),
                false => Err(format!("{sub} does not exist or was dropped")),
            },
            Op::Reenter { sub, .. } => match self.subs.get(sub).map(|s| s.state) {
                Some(SubState::Live | SubState::BornEnded) => Ok(()),
                Some(_) => Err(format!("{sub} was dropped or has ended")),
                None => Err(format!("{sub} does not exist")),
            },
            Op::FailSubscriber { sub, send } => self.check_failable_sub(*sub, *send),
            Op::Spawn { task, scope } => {
                if self.tasks.contains_key(task) {
                    return Err(format!("{task} already exists"));
                }
                self.check_usable(*scope)
            }
            Op::Release { task, send } => self.check_release(*task, *send),
            Op::Settle => Ok(()),
        }
    }

    fn check_release(&self, task: TaskId, send: Option<SendSpec>) -> Result<(), String> {
        match self.tasks.get(&task) {
            Some(t) if t.state == TaskState::Waiting => {}
            Some(_) => return Err(format!("{task} was already released or cancelled")),
            None => return Err(format!("{task} does not exist")),
        }
        send.map_or(Ok(()), |s| self.check_fresh(s.event))
    }

    fn check_new_sub(&self, sub: SubId) -> Result<(), String> {
        match self.subs.contains_key(&sub)
            || self.failed_subs.contains(&sub)
            || self.pullers.contains_key(&sub)
        {
            true => Err(format!("{sub} already exists")),
            false => Ok(()),
        }
    }

    fn check_usable(&self, scope: ScopeId) -> Result<(), String> {
        match self.scopes.get(&scope) {
            Some(s) if s.usable() => Ok(()),
            Some(_) => Err(format!("{scope} has exited or is being cancelled")),
            None => Err(format!("{scope} does not exist")),
        }
    }

    fn check_fresh(&self, event: EventId) -> Result<(), String> {
        match self.events.contains_key(&event) {
            true => Err(format!("event#{event} was already sent")),
            false => Ok(()),
        }
    }
}
