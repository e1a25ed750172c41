//! Indexes over the model's records, kept in step with them so that an op
//! costs in proportion to what is alive, not to the run's history.
//!
//! Every update goes through one of the `Model` methods below, each named
//! for the event that causes it; no other module touches an index. What
//! each index holds:
//!
//! | index | holds |
//! |---|---|
//! | `held_subs` | subscriptions not dropped (in draw order), processors' excepted |
//! | `unended_subs` | subscriptions whose stream has not ended: live, or born ended and not yet pulled to its end |
//! | `running_scopes` | scopes that have neither exited nor been cancelled |
//! | `gone_scopes` | scopes that have exited or been cancelled (in the order they went) |
//! | `unreleased_tasks` | tasks spawned, neither released nor cancelled (in draw order) |
//! | `released_tasks` | tasks released, neither finished nor cancelled |
//! | `owed_events` | live subscriptions with credit and events waiting: stuck if still here after a settle |
//! | `owed_end` | unended subscriptions with credit on a closed bus: unended if still here after a settle |
//! | `received_since_settle` | subscriptions that received since the last settle |
//! | `group_tasks` | per task group's owner: the tasks of its group neither finished nor cancelled |
//! | `group_scopes` | per task group's owner: the scopes running as tasks of its group |
//! | `group_processors` | per task group's owner: the processors of its group whose task has not finished |
//! | `Channel::held`, `Channel::with_credit` | per channel: its held subscriptions; its live ones with credit |

use super::Model;
use super::state::{BusIx, SubState};
use crate::op::{ScopeId, SubId, TaskId};
use std::collections::{BTreeSet, HashMap};

/// A set with O(1) insertion, removal and indexing, for drawing a random
/// member. Its order is that of insertion, except that a removal moves the
/// last member into the hole: deterministic, given the same history.
#[derive(Clone, Debug)]
pub(super) struct Pool<T> {
    pub items: Vec<T>,
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

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub(super) struct Indexes {
    pub held_subs: Pool<SubId>,
    pub unended_subs: BTreeSet<SubId>,
    pub running_scopes: BTreeSet<ScopeId>,
    pub gone_scopes: Pool<ScopeId>,
    pub unreleased_tasks: Pool<TaskId>,
    pub released_tasks: BTreeSet<TaskId>,
    pub owed_events: BTreeSet<SubId>,
    pub owed_end: BTreeSet<SubId>,
    pub group_tasks: HashMap<ScopeId, BTreeSet<TaskId>>,
    pub group_scopes: HashMap<ScopeId, BTreeSet<ScopeId>>,
    pub group_processors: HashMap<ScopeId, BTreeSet<SubId>>,
    pub received_since_settle: BTreeSet<SubId>,
}

impl Model {
    pub(super) fn index_scope_opened(&mut self, scope: ScopeId) {
        self.index.running_scopes.insert(scope);
        if let Some(owner) = self.group_joined_by(scope) {
            self.index
                .group_scopes
                .entry(owner)
                .or_default()
                .insert(scope);
            self.mark_group_used(owner);
        }
    }

    pub(super) fn index_scope_gone(&mut self, scope: ScopeId) {
        self.index.running_scopes.remove(&scope);
        self.index.gone_scopes.insert(scope);
        if let Some(owner) = self.group_joined_by(scope)
            && let Some(members) = self.index.group_scopes.get_mut(&owner)
        {
            members.remove(&scope);
        }
    }

    /// The owner of the task group a nested scope runs in as a task (its
    /// parent's group); `None` for a root.
    fn group_joined_by(&self, scope: ScopeId) -> Option<ScopeId> {
        Some(self.group_of(self.scopes.get(&scope)?.parent?))
    }

    fn mark_group_used(&mut self, owner: ScopeId) {
        if let Some(s) = self.scopes.get_mut(&owner) {
            s.group_used = true;
        }
    }

    /// The owner of `task`'s task group.
    fn task_group(&self, task: TaskId) -> Option<ScopeId> {
        Some(self.group_of(self.tasks.get(&task)?.scope))
    }

    pub(super) fn index_subscribed(&mut self, sub: SubId) {
        self.index.held_subs.insert(sub);
        self.index.unended_subs.insert(sub);
        let s = &self.subs[&sub];
        if let Some(channel) = self.buses[s.bus].channels.get_mut(&s.route) {
            channel.held.insert(sub);
        }
    }

    /// `sub` was given credit: it is owed what is waiting, and its end if
    /// its bus is closed.
    pub(super) fn index_credited(&mut self, sub: SubId) {
        let s = &self.subs[&sub];
        if s.credits == 0 {
            return;
        }
        let (bus, route, live, cursor) = (s.bus, s.route, s.state == SubState::Live, s.cursor());
        let channel = self.buses[bus].channels.entry(route).or_default();
        if live {
            channel.with_credit.insert(sub);
            if cursor < channel.log.len() {
                self.index.owed_events.insert(sub);
            }
        }
        if self.index.unended_subs.contains(&sub) && self.buses[bus].closed {
            self.index.owed_end.insert(sub);
        }
    }

    /// An event was appended to `bus`'s channel of `route`: every live
    /// subscription there with credit is owed it.
    pub(super) fn index_sent(&mut self, bus: BusIx, route: crate::catalogue::EventType) {
        if let Some(channel) = self.buses[bus].channels.get(&route) {
            self.index
                .owed_events
                .extend(channel.with_credit.iter().copied());
        }
    }

    /// `sub` received one event; `pending` events were waiting before it.
    pub(super) fn index_received(&mut self, sub: SubId, pending: usize) {
        self.index.received_since_settle.insert(sub);
        let s = &self.subs[&sub];
        if s.credits == 0 {
            self.index.owed_events.remove(&sub);
            self.index.owed_end.remove(&sub);
            let (bus, route) = (s.bus, s.route);
            if let Some(channel) = self.buses[bus].channels.get_mut(&route) {
                channel.with_credit.remove(&sub);
            }
        } else if pending == 1 {
            self.index.owed_events.remove(&sub);
        }
    }

    /// `sub`'s stream ended, or it was dropped: nothing is owed to it any
    /// more.
    pub(super) fn index_finished(&mut self, sub: SubId) {
        self.index.unended_subs.remove(&sub);
        self.index.owed_events.remove(&sub);
        self.index.owed_end.remove(&sub);
        self.index.received_since_settle.remove(&sub);
        if let Some(s) = self.subs.get(&sub)
            && let Some(channel) = self.buses[s.bus].channels.get_mut(&s.route)
        {
            channel.with_credit.remove(&sub);
        }
    }

    /// `sub` was dropped: it is no longer held.
    pub(super) fn index_dropped(&mut self, sub: SubId) {
        self.index_finished(sub);
        self.index.held_subs.remove(sub);
        let s = &self.subs[&sub];
        if let Some(channel) = self.buses[s.bus].channels.get_mut(&s.route) {
            channel.held.remove(&sub);
        }
    }

    /// `bus` closed: its unended subscriptions with credit are owed their
    /// end.
    pub(super) fn index_bus_closed(&mut self, bus: BusIx) {
        for channel in self.buses[bus].channels.values() {
            for id in &channel.held {
                if self.index.unended_subs.contains(id) && self.subs[id].credits > 0 {
                    self.index.owed_end.insert(*id);
                }
            }
        }
    }

    pub(super) fn index_spawned(&mut self, task: TaskId) {
        self.index.unreleased_tasks.insert(task);
        if let Some(owner) = self.task_group(task) {
            self.index
                .group_tasks
                .entry(owner)
                .or_default()
                .insert(task);
            self.mark_group_used(owner);
        }
    }

    /// The processor `sub` joined its scope's task group.
    pub(super) fn index_processor_spawned(&mut self, sub: SubId) {
        let owner = self.group_of(self.subs[&sub].scope);
        self.index
            .group_processors
            .entry(owner)
            .or_default()
            .insert(sub);
        self.mark_group_used(owner);
        // Not the workload's to give credit to, drop or abandon.
        self.index.held_subs.remove(sub);
    }

    /// `sub`, if a processor, finished its task: its stream ended, or it
    /// was cancelled.
    pub(super) fn index_processor_over(&mut self, sub: SubId) {
        let Some(s) = self.subs.get(&sub).filter(|s| s.processor) else {
            return;
        };
        let owner = self.group_of(s.scope);
        if let Some(members) = self.index.group_processors.get_mut(&owner) {
            members.remove(&sub);
        }
    }

    pub(super) fn index_released(&mut self, task: TaskId) {
        self.index.unreleased_tasks.remove(task);
        self.index.released_tasks.insert(task);
    }

    /// `task` finished or was cancelled.
    pub(super) fn index_task_over(&mut self, task: TaskId) {
        self.index.unreleased_tasks.remove(task);
        self.index.released_tasks.remove(&task);
        if let Some(owner) = self.task_group(task)
            && let Some(tasks) = self.index.group_tasks.get_mut(&owner)
        {
            tasks.remove(&task);
        }
    }

    /// The settle was checked: receipts since then start over.
    pub(super) fn index_settled(&mut self) -> BTreeSet<SubId> {
        std::mem::take(&mut self.index.received_since_settle)
    }
}
