//! What the model hands to diagnosis when the implementation does something
//! it did not predict: a [`Disagreement`], with the facts that were true at
//! that moment.
//!
//! The model names the rule itself only where it is certain
//! ([`Disagreement::Certain`]: a task that ran after its scope reported
//! cancelled breaks TASK-2, whatever else happened). Everywhere else it
//! reports *what* it saw (an event where another was expected, a count off,
//! a subscription stuck) and the facts around it, and
//! [`crate::diagnosis`] decides which rule that breaks. The facts are
//! plain data, captured when the disagreement is found, so diagnosis never
//! needs the model's internals.
//!

pub use super::mode::Mode;
use crate::catalogue::{EventId, EventType};
use crate::op::{OpError, ScopeId, SubId};
use crate::rules::Rule;
use std::fmt;

/// A disagreement whose rule is decided: the rule it breaks, the shape of
/// the failure, and what exactly was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// The failure's shape, for grouping failing seeds.
    pub mode: Mode,
    /// What the implementation did, and what the model expected instead.
    pub message: String,
    /// The scope a check of a scope's life (TASK-1, TASK-2) is about.
    pub scope: Option<ScopeId>,
}

impl Violation {
    /// A violation of `rule`, of shape `mode`.
    pub fn new(rule: Rule, mode: Mode, message: impl Into<String>) -> Violation {
        Violation {
            rule,
            mode,
            message: message.into(),
            scope: None,
        }
    }

    /// The same, about `scope`.
    pub fn about(self, scope: ScopeId) -> Violation {
        Violation {
            scope: Some(scope),
            ..self
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

/// Where implementation and model part ways, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disagreement {
    /// A check whose rule the model is certain of.
    Certain(Violation),
    /// An event received where the model expected another one, or none.
    Misdelivery(Misdelivery),
    /// A send, by the driver or a worker task, answered an error the model
    /// did not allow.
    SendRefused(SendRefused),
    /// Statistics (`observe`) that differ from the model's.
    Stats(Box<StatsMismatch>),
    /// A stream that ended while the model expected more from it.
    EarlyEnd(EarlyEnd),
    /// After a settle: a subscription with credit and events waiting that
    /// received nothing more.
    Stuck(Stuck),
    /// After a settle: a subscription with credit, nothing left and a closed
    /// bus whose stream never ended.
    Unended(Unended),
}

impl Disagreement {
    /// A certain violation, as an `Err`.
    pub fn certain<T>(
        rule: Rule,
        mode: Mode,
        message: impl Into<String>,
    ) -> Result<T, Disagreement> {
        Err(Disagreement::Certain(Violation::new(rule, mode, message)))
    }

    /// A certain violation about a scope's life, as an `Err`.
    pub fn of_scope<T>(
        scope: ScopeId,
        rule: Rule,
        mode: Mode,
        message: impl Into<String>,
    ) -> Result<T, Disagreement> {
        Err(Disagreement::Certain(
            Violation::new(rule, mode, message).about(scope),
        ))
    }
}

/// Who a subscription is, for messages: `sub#3 (Login in scope#2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubLabel {
    /// The subscription.
    pub sub: SubId,
    /// The type it subscribed to.
    pub ty: EventType,
    /// The scope it subscribed in.
    pub scope: ScopeId,
}

impl fmt::Display for SubLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} in {})", self.sub, self.ty, self.scope)
    }
}

/// The kind of scope that owns a bus, as the spec lays buses out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    /// A root scope: owns a bus (SCOPE-1).
    Root,
    /// A nested, non-isolated scope: shares its parent's bus (SCOPE-2).
    Nested,
    /// An isolated scope: owns a bus (SCOPE-3).
    Isolated,
}

impl ScopeKind {
    /// The rule that says where the bus of a scope of this kind is.
    pub fn rule(self) -> Rule {
        match self {
            ScopeKind::Root => Rule::Scope1,
            ScopeKind::Nested => Rule::Scope2,
            ScopeKind::Isolated => Rule::Scope3,
        }
    }
}

/// Facts about a bus: whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusFacts {
    /// The scope that owns it.
    pub owner: ScopeId,
    /// The kind of that scope.
    pub kind: ScopeKind,
}

/// Facts about an event that was received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFacts {
    /// The type it was sent as.
    pub sent_as: EventType,
    /// Whether it routes as the subscription's type.
    pub same_route: bool,
    /// The bus it was sent on; `None` if sent outside every scope.
    pub bus: Option<BusFacts>,
    /// Whether that is the subscription's bus.
    pub same_bus: bool,
    /// The scope it was sent in.
    pub origin: Option<ScopeId>,
    /// Whether some live subscription existed when it was sent.
    pub stored: bool,
    /// Whether its bus was already closed when it was sent.
    pub after_close: bool,
    /// Where it stands in the subscription's stream.
    pub position: StreamPosition,
}

/// Where a received event stands relative to the subscription's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamPosition {
    /// Not in the stream's log at all (another bus or route, or after close).
    Outside,
    /// Sent before the subscription was created.
    BeforeStart,
    /// Already received.
    AlreadyReceived,
    /// Later than the event the model expected next.
    Ahead,
}

/// An event received where the model expected another, or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misdelivery {
    /// The subscription that received it.
    pub sub: SubLabel,
    /// What it received.
    pub got: EventId,
    /// What the model expected next, if anything.
    pub expected: Option<EventId>,
    /// The event, if it was ever sent.
    pub event: Option<EventFacts>,
    /// The subscription's bus.
    pub sub_bus: BusFacts,
    /// Whether two tasks pull the subscription (`subscribe_shared`): an
    /// event it already received then went to both (SHARE-1).
    pub shared: bool,
}

impl fmt::Display for Misdelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} received event#{}, but ", self.sub, self.got)?;
        match self.expected {
            Some(e) => write!(f, "the model expected event#{e} next"),
            None => f.write_str("the model expected nothing yet"),
        }
    }
}

/// A send that answered an error the model did not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRefused {
    /// Who sent: `send`, or `task#N's send`.
    pub who: String,
    /// The type sent.
    pub ty: EventType,
    /// The event.
    pub event: EventId,
    /// The scope it was sent in.
    pub scope: ScopeId,
    /// The error answered.
    pub error: OpError,
    /// Whether the bus in reach was closed.
    pub bus_closed: bool,
    /// Whether a subscription of the event's route on that bus was dropped
    /// or cancelled earlier in the run.
    pub sibling_dropped: bool,
    /// Whether the scope could be confusing its open bus with a closed one:
    /// it is a nested scope that has itself closed, or an enclosing scope's
    /// bus is closed.
    pub sees_closed_bus: bool,
    /// The kind of scope the send was made in.
    pub scope_kind: ScopeKind,
    /// Whether that scope had exited or been cancelled: the send went
    /// through a handle that outlived it (EXIT-1).
    pub through_exited: bool,
}

/// Statistics that differ from the model's, for one route of one bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsMismatch {
    /// The scope whose bus was observed.
    pub scope: ScopeId,
    /// The route.
    pub route: EventType,
    /// What differs.
    pub field: StatsField,
    /// A look-alike route whose counts are off the other way, or that is
    /// listed while this one is missing: the bus seems to keep them as one.
    pub merged_with: Option<EventType>,
    /// What the bus would report if its dropped subscriptions still held
    /// their place: (live subscriptions, retained events).
    pub as_if_dropped_held: (u64, u64),
    /// Whether some subscription of the route on this bus was dropped or
    /// cancelled.
    pub any_dropped: bool,
    /// Whether the bus is closed.
    pub bus_closed: bool,
    /// Sends of the route made on this bus after it closed.
    pub sent_after_close: u64,
    /// Sends of the route made on this bus with no live subscription.
    pub sent_unstored: u64,
    /// The subscriptions of the route made on this bus after it closed.
    pub late_subs: Vec<SubId>,
    /// The subscriptions of the route on this bus that were dropped or
    /// cancelled while live.
    pub dropped_subs: Vec<SubId>,
    /// The events of the route sent on this bus when it had no live
    /// subscription of the route (which must not be stored: DROP-1).
    pub unstored_events: Vec<EventId>,
    /// The events of the route sent on this bus after it closed (which must
    /// not be stored: CLOSE-2).
    pub after_close_events: Vec<EventId>,
    /// For an event held that should not be: the live subscriptions of the
    /// route on this bus made after it was sent (which must not see it).
    pub younger_subs: Vec<SubId>,
}

/// The statistic that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsField {
    /// Live subscriptions.
    Subscriptions {
        /// What the implementation reported.
        reported: u64,
        /// What the model has.
        expected: u64,
    },
    /// Retained events, by count.
    Retained {
        /// What the implementation reported.
        reported: u64,
        /// What the model has.
        expected: u64,
    },
    /// An event reported retained that should not be.
    HeldEvent {
        /// The event.
        event: EventId,
        /// Facts about it.
        facts: HeldFacts,
    },
    /// An event reported freed that a live subscription still needs.
    FreedEvent {
        /// The event.
        event: EventId,
    },
}

/// Facts about an event an implementation holds but should not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldFacts {
    /// Sent after its bus closed.
    pub after_close: bool,
    /// Some live subscription existed when it was sent.
    pub stored: bool,
    /// Some dropped subscription had not yet passed it.
    pub pinned_by_dropped: bool,
}

impl StatsMismatch {
    /// Whether the implementation holds more than the model has (events or
    /// live subscriptions): the failure is about something kept, not
    /// something lost.
    pub fn holds_more(&self) -> bool {
        match self.field {
            StatsField::Subscriptions { reported, expected }
            | StatsField::Retained { reported, expected } => reported > expected,
            StatsField::HeldEvent { .. } => true,
            StatsField::FreedEvent { .. } => false,
        }
    }
}

impl fmt::Display for StatsMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the bus of {}, {}: ", self.scope, self.route)?;
        match &self.field {
            StatsField::Subscriptions { reported, expected } => write!(
                f,
                "{reported} live subscriptions reported, the model has {expected}"
            ),
            StatsField::Retained { reported, expected } => write!(
                f,
                "{reported} {} retained, the model expects {expected}",
                if *reported == 1 { "event" } else { "events" }
            ),
            StatsField::HeldEvent { event, .. } => write!(f, "event#{event} is held"),
            StatsField::FreedEvent { event } => write!(f, "event#{event} is no longer held"),
        }
    }
}

/// A stream that ended while the model expected more from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarlyEnd {
    /// The subscription.
    pub sub: SubLabel,
    /// Whether its bus was closed or closing (its owner's cancellation
    /// requested).
    pub bus_closing: bool,
    /// Whether its scope is nested, not isolated, and has itself closed,
    /// exited or been cancelled.
    pub own_nested_scope_gone: bool,
    /// Whether it was made through the handle of a scope that had already
    /// exited or been cancelled (EXIT-1).
    pub through_exited: bool,
    /// Events sent before the close still undelivered: how many, the next
    /// one, and the scope it was sent in.
    pub undelivered: Option<(usize, EventId, Option<ScopeId>)>,
    /// The error its pull raised, if it did not end but failed (a `failed`
    /// observation): nothing a stream may do.
    pub raised: Option<String>,
    /// Whether it was subscribed on a bus already closed (CLOSE-3: its
    /// stream must end when pulled, not raise).
    pub born_after_close: bool,
}

/// A subscription with credit and events waiting that received nothing
/// more after a settle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// Every stuck subscription; the first is the one described.
    pub subs: Vec<SubId>,
    /// The first one.
    pub sub: SubLabel,
    /// Its credit.
    pub credits: u64,
    /// Events waiting for it.
    pub waiting: usize,
    /// The next one.
    pub next: EventId,
    /// The scope the next one was sent in, if not the subscription's own.
    pub next_from_other_scope: Option<ScopeId>,
    /// Look-alike routes subscribed on the same bus.
    pub lookalikes: Vec<&'static str>,
    /// Whether a subscription of its route on its bus was dropped or
    /// cancelled since it last made progress.
    pub sibling_dropped: bool,
    /// What a diagnostic spurious wakeup showed: `Some(true)` if it then
    /// received (a lost wakeup), `Some(false)` if not (never delivered),
    /// `None` if the implementation cannot be woken from outside.
    pub woken: Option<bool>,
}

/// A subscription whose stream should have ended after a settle but did
/// not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unended {
    /// Every unended subscription; the first is the one described.
    pub subs: Vec<SubId>,
    /// The first one.
    pub sub: SubLabel,
    /// Whether it was subscribed after its bus closed.
    pub born_ended: bool,
    /// Whether a subscription of its route on its bus was dropped or
    /// cancelled since it last made progress.
    pub sibling_dropped: bool,
    /// What a diagnostic spurious wakeup showed: `Some(true)` if it then
    /// ended (a lost wakeup), `Some(false)` if not, `None` if the
    /// implementation cannot be woken from outside.
    pub ended_when_woken: Option<bool>,
}
