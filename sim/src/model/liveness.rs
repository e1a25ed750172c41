//! Liveness: after a settle (nothing left runnable), everything that should
//! have happened did. Checked in this order: subscriptions owed events,
//! subscriptions owed their end, scopes, released tasks.

use super::Model;
use super::disagreement::{Disagreement, Mode, Stuck, Unended};
use super::state::{ScopeState, SubState, TaskState};
use crate::op::SubId;
use crate::rules::Rule;

impl Model {
    /// After a settle, checks that everything that should have happened did.
    ///
    /// # Errors
    /// Stuck subscriptions first (the harness probes them before diagnosis
    /// names the rule), then unended ones, else the first other broken
    /// expectation.
    pub fn check_settled(&mut self) -> Result<(), Disagreement> {
        self.now += 1;
        if let Some(first) = self.index.owed_events.first() {
            let subs = self.index.owed_events.iter().copied().collect();
            return Err(Disagreement::Stuck(self.stuck(*first, subs)));
        }
        if let Some(first) = self.index.owed_end.first() {
            let subs = self.index.owed_end.iter().copied().collect();
            return Err(Disagreement::Unended(self.unended(*first, subs)));
        }
        self.check_scopes_settled()?;
        self.check_tasks_settled()?;
        if let Some(sub) = self.failing_subs.keys().next() {
            return Disagreement::certain(
                Rule::Fail2,
                Mode::CleanupNeverRan,
                format!(
                    "the subscriber of {sub} was made to fail, but never reported that it unwound (its cleanup never ran)"
                ),
            );
        }
        // WAKE-1: subscriptions that received since the last settle, and
        // are still live, were woken as they should be.
        for id in self.index_settled() {
            if self
                .subs
                .get(&id)
                .is_some_and(|s| s.state == SubState::Live)
            {
                self.coverage.hit(Rule::Wake1);
            }
        }
        Ok(())
    }

    /// TASK-1, TASK-2: no scope is left half-way.
    fn check_scopes_settled(&self) -> Result<(), Disagreement> {
        for id in &self.index.running_scopes {
            let scope = &self.scopes[id];
            if scope.failed && !scope.gone() {
                return Disagreement::of_scope(
                    *id,
                    Rule::Task2,
                    Mode::SurvivedCancel,
                    format!("{id}'s body failed, but the scope is still running"),
                );
            }
            if scope.cancel_requested {
                if !scope.gone() {
                    return Disagreement::of_scope(
                        *id,
                        Rule::Task2,
                        Mode::SurvivedCancel,
                        format!("{id} was cancelled but is still running"),
                    );
                }
                continue;
            }
            match scope.state {
                ScopeState::CloseRequested => {
                    return Disagreement::of_scope(
                        *id,
                        Rule::Task1,
                        Mode::NeverExited,
                        format!("{id} was asked to close, but its body never returned"),
                    );
                }
                ScopeState::Closing => {
                    let tasks = self.group_tasks(*id);
                    let tasks_done = tasks.iter().all(|t| self.tasks[t].state.finished())
                        && self.group_processors(*id).is_empty();
                    let members = self.group_scopes(*id);
                    let children_done = members.iter().all(|c| self.scopes[c].gone());
                    if tasks_done && children_done {
                        return Disagreement::of_scope(
                            *id,
                            Rule::Task1,
                            Mode::NeverExited,
                            format!(
                                "{id} is closing and all its tasks are done, yet it never exited"
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// TASK-1: every released task (whose task group is not being
    /// cancelled) ran.
    fn check_tasks_settled(&self) -> Result<(), Disagreement> {
        for id in &self.index.released_tasks {
            let task = &self.tasks[id];
            if let TaskState::Released(_) = task.state
                && !self.task_cancel_requested(task)
            {
                return Disagreement::of_scope(
                    task.scope,
                    Rule::Task1,
                    Mode::TaskNeverRan,
                    format!("{id} was released but never ran to completion"),
                );
            }
        }
        Ok(())
    }

    /// The facts about a stuck subscription.
    fn stuck(&self, sub_id: SubId, subs: Vec<SubId>) -> Stuck {
        let sub = &self.subs[&sub_id];
        let bus = &self.buses[sub.bus];
        let channel = &bus.channels[&sub.route];
        let log = &channel.log;
        let next = log[sub.cursor().min(log.len().saturating_sub(1))];
        let lookalikes = bus
            .channels
            .iter()
            .filter(|(route, c)| {
                **route != sub.route && route.family() == sub.route.family() && c.subscribed
            })
            .map(|(route, _)| route.name())
            .collect();
        Stuck {
            subs,
            sub: sub.label(sub_id),
            credits: sub.credits,
            waiting: log.len() - sub.cursor().min(log.len()),
            next,
            next_from_other_scope: self
                .events
                .get(&next)
                .and_then(|e| e.origin)
                .filter(|origin| *origin != sub.scope),
            lookalikes,
            sibling_dropped: channel.drops.iter().any(|t| *t > sub.last_progress),
            woken: None,
        }
    }

    /// The facts about a subscription that should have ended.
    fn unended(&self, sub_id: SubId, subs: Vec<SubId>) -> Unended {
        let sub = &self.subs[&sub_id];
        let channel = &self.buses[sub.bus].channels[&sub.route];
        Unended {
            subs,
            sub: sub.label(sub_id),
            born_ended: sub.state == SubState::BornEnded,
            sibling_dropped: channel.drops.iter().any(|t| *t > sub.last_progress),
            ended_when_woken: None,
        }
    }
}
