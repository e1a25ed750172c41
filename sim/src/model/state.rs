//! The model's records: scopes, buses and their channels, subscriptions,
//! tasks and events. Plain data; the transitions that change them are in
//! the sibling modules, the indexes over them in `indexes`.

use super::disagreement::{BusFacts, ScopeKind, SubLabel};
use crate::catalogue::{EventId, EventType};
use crate::op::{ScopeId, SendSpec, SubId, TaskId};
use std::collections::{BTreeMap, BTreeSet};

/// Index of a bus in the model.
pub(super) type BusIx = usize;

/// Where a scope is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ScopeState {
    Open,
    /// `close_scope` was applied; the body has not returned yet.
    CloseRequested,
    /// The body returned; the owned bus is closed; waiting for tasks.
    Closing,
    Exited,
    Cancelled,
}

#[derive(Clone, Debug)]
pub(super) struct Scope {
    pub parent: Option<ScopeId>,
    pub isolated: bool,
    pub bus: BusIx,
    pub owns_bus: bool,
    pub state: ScopeState,
    pub cancel_requested: bool,
    /// Its body was made to fail (`fail_scope`, FAIL-1): its cancellation
    /// was requested by the failure, and it must report `scope_failed`.
    pub failed: bool,
    /// Its close was requested before its cancellation: its body, already
    /// woken, may still return, and it may finish exiting.
    pub closed_before_cancel: bool,
    /// The owner of the task group its tasks (and the scopes nested in it)
    /// join: itself for a root or isolated scope, else its parent's group
    /// (TASK-1, as Haiway's `isolated` docstring says).
    pub group: ScopeId,
    /// Some task or scope ever joined the group it owns (coverage only).
    pub group_used: bool,
    pub children: Vec<ScopeId>,
    /// Worker tasks spawned in it (they belong to its group).
    pub tasks: Vec<TaskId>,
}

impl Scope {
    /// Whether ops may still name this scope.
    pub fn usable(&self) -> bool {
        !self.cancel_requested
            && matches!(
                self.state,
                ScopeState::Open | ScopeState::CloseRequested | ScopeState::Closing
            )
    }

    /// Whether it has exited or been cancelled.
    pub fn gone(&self) -> bool {
        matches!(self.state, ScopeState::Exited | ScopeState::Cancelled)
    }

    /// Whether it is the scope `id` and owns a task group.
    pub fn owns_group(&self, id: ScopeId) -> bool {
        self.group == id
    }

    pub fn kind(&self) -> ScopeKind {
        match (self.parent, self.isolated) {
            (None, _) => ScopeKind::Root,
            (Some(_), true) => ScopeKind::Isolated,
            (Some(_), false) => ScopeKind::Nested,
        }
    }
}

/// One route of one bus.
#[derive(Clone, Debug, Default)]
pub(super) struct Channel {
    /// Every event of this route sent on this bus while it was open, stored
    /// or not, in send order.
    pub log: Vec<EventId>,
    /// How many of them were sent with no live subscription.
    pub unstored: u64,
    /// Logical times at which a live subscription of this route was dropped
    /// or cancelled.
    pub drops: Vec<u64>,
    /// How many times a subscriber here abandoned a pull it may have been
    /// waiting in (it had credit): CANCEL-2's situation.
    pub abandons: usize,
    /// Whether some subscription was dropped while events were still waiting
    /// for it (what RECLAIM-2 is about).
    pub dropped_with_backlog: bool,
    /// Whether a subscription of this route was ever created here.
    pub subscribed: bool,
    /// Sends of this route made after the bus closed.
    pub after_close: u64,
    /// Its subscriptions that are still held (not dropped).
    pub held: BTreeSet<SubId>,
    /// Its live subscriptions with credit: a send owes each of them the
    /// event.
    pub with_credit: BTreeSet<SubId>,
}

#[derive(Clone, Debug)]
pub(super) struct Bus {
    pub owner: ScopeId,
    pub owner_kind: ScopeKind,
    pub closed: bool,
    pub channels: BTreeMap<EventType, Channel>,
}

impl Bus {
    pub fn facts(&self) -> BusFacts {
        BusFacts {
            owner: self.owner,
            kind: self.owner_kind,
        }
    }
}

/// Where a subscription is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SubState {
    Live,
    /// Subscribed on a closed bus: must end without receiving (CLOSE-3).
    BornEnded,
    Ended,
    Dropped,
}

#[derive(Clone, Debug)]
pub(super) struct Subscription {
    pub scope: ScopeId,
    pub bus: BusIx,
    pub ty: EventType,
    pub route: EventType,
    pub start: usize,
    pub received: usize,
    pub credits: u64,
    pub state: SubState,
    pub last_progress: u64,
    /// Subscribed after its bus closed (CLOSE-3); stays set once it ends
    /// or is dropped.
    pub born_on_closed_bus: bool,
    /// Pulled by a processor, a task of its scope's task group, with
    /// unlimited credit (`spawn_processor`, PROC-1).
    pub processor: bool,
    /// A processor cancelled with its task group (its owner reported
    /// cancelled): anything it reports after that is TASK-2's.
    pub cancelled_with_group: bool,
    /// Its subscriber was made to fail (`fail_subscriber`, FAIL-2): it
    /// reports nothing more.
    pub failed: bool,
    /// Made through the handle of a scope that had exited or been
    /// cancelled (EXIT-1).
    pub through_exited: bool,
    /// Its second puller, if it is shared (`subscribe_shared`, SHARE-1).
    pub share: Option<super::share::Share>,
    /// What its receipts have exercised so far (coverage only).
    pub exposure: super::coverage::SubExposure,
}

impl Subscription {
    /// How far it has received: an index into its channel's log.
    pub fn cursor(&self) -> usize {
        self.start + self.received
    }

    pub fn label(&self, sub: SubId) -> SubLabel {
        SubLabel {
            sub,
            ty: self.ty,
            scope: self.scope,
        }
    }
}

/// Where a worker task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TaskState {
    Waiting,
    Released(Option<SendSpec>),
    Done,
    Cancelled,
}

impl TaskState {
    pub fn finished(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Cancelled)
    }
}

#[derive(Clone, Debug)]
pub(super) struct Task {
    pub scope: ScopeId,
    pub state: TaskState,
    /// Released after its task group's cancellation was requested, once it
    /// had started (reported `task_started`): it must never run. A task not
    /// known to have started may still run its first step, which was
    /// scheduled when it was spawned.
    pub released_after_cancel: bool,
    /// It reported `task_started` (before or after its group's
    /// cancellation was requested: either way, released after the request,
    /// it was waiting, and must not run).
    pub started: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Event {
    pub sent_as: EventType,
    pub route: EventType,
    /// The bus it was sent on; `None` if sent outside every scope.
    pub bus: Option<BusIx>,
    pub origin: Option<ScopeId>,
    /// Some live subscription existed when it was sent.
    pub stored: bool,
    /// Its bus was already closed.
    pub after_close: bool,
    /// Position in its channel's log.
    pub index: Option<usize>,
}

impl Event {
    /// An event that is in no channel's log: sent outside every scope, or
    /// after its bus closed.
    pub fn unlogged(
        sent_as: EventType,
        bus: Option<BusIx>,
        origin: Option<ScopeId>,
        after_close: bool,
    ) -> Event {
        Event {
            sent_as,
            route: sent_as.route(),
            bus,
            origin,
            stored: false,
            after_close,
            index: None,
        }
    }
}
