//! The shape of a failure (delivered after close, never ended, ...):
//! failing seeds of one rule are grouped by it, so that every distinct way
//! a rule fails is shown with a seed of its own. Shapes are named by what
//! was observed, not by the rule: one shape may belong to several rules,
//! and a rule usually has several.

use std::fmt;

/// The shape of a failure: failing seeds of one rule are grouped by it, so
/// that each distinct way the rule fails is shown with a seed of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// An event of another type was delivered.
    OtherType,
    /// An event sent on another bus was delivered.
    AcrossBuses,
    /// An event sent outside every scope was delivered.
    FromNoScope,
    /// An event sent after the bus closed was delivered.
    DeliveredAfterClose,
    /// An event sent before the subscription was created was delivered.
    FromBeforeSubscribing,
    /// An event sent when nobody subscribed was delivered later.
    DroppedEventDelivered,
    /// An event was delivered twice.
    Duplicated,
    /// Events were delivered out of order.
    OutOfOrder,
    /// An event was delivered after the stream ended.
    AfterEnd,
    /// A stream ended while its bus was open.
    EndedWhileOpen,
    /// A stream ended with events sent before the close undelivered.
    EndedEarly,
    /// A waiting subscriber was not woken.
    LostWakeup,
    /// Events were never delivered to a subscription.
    NeverDelivered,
    /// A stream on a closed bus never ended.
    NeverEnded,
    /// A send failed while its bus was open.
    SendFailed,
    /// A send after close failed with an unexpected error.
    SendAfterCloseFailed,
    /// `ContextMissing` where a bus is in reach.
    NoBus,
    /// `Closed` from a scope whose bus is open.
    UsedClosedBus,
    /// Send or subscribe outside every scope did not fail with
    /// `ContextMissing`.
    BusOutsideScopes,
    /// Buses laid out other than the spec says.
    Layout,
    /// Buses that never close.
    NeverCloses,
    /// Buses that close only once their scope's tasks are done (PROC-1).
    ClosesAfterTasks,
    /// An event held that nothing needs.
    HeldTooLong,
    /// An event freed that a live subscription needs.
    FreedTooSoon,
    /// Live subscriptions miscounted.
    Miscounted,
    /// Look-alike types kept as one.
    MergedTypes,
    /// An event held by a subscription made after close.
    HeldByLateSubscription,
    /// An event held by a dropped subscription.
    HeldByDropped,
    /// A scope exited before its tasks finished.
    ExitedEarly,
    /// A scope never finished exiting.
    NeverExited,
    /// A released task never ran.
    TaskNeverRan,
    /// Something ran after its scope's cancellation.
    RanAfterCancel,
    /// A cancelled scope kept running.
    SurvivedCancel,
    /// A task or scope was waited for, or cancelled, by a nested scope that
    /// shares its task group, as if that scope owned one.
    WrongTaskGroup,
    /// A scope whose body failed did not raise its body's error: it exited
    /// normally, reported a cancellation, or raised something else.
    ErrorLost,
    /// A failing subscriber's cleanup never ran.
    CleanupNeverRan,
    /// The handle of an exited scope lost the bus the scope had: a send or
    /// subscribe through it failed with `ContextMissing` or another error,
    /// or acted as if the bus had closed while it is open (EXIT-1).
    ExitedHandle,
    /// A callback the bus made into user code (a waker's `wake` or `drop`)
    /// could not use the bus: it did not return, as when the bus holds a
    /// lock the callback needs (REENTER-1).
    CallbackBlocked,
    /// Such a callback's use of the bus panicked or raised (REENTER-1).
    CallbackFailed,
    /// An op that must succeed failed.
    OpRefused,
    /// A reply or report that no valid run can give.
    Impossible,
    /// The implementation hung.
    Hang,
    /// The implementation panicked or raised.
    Panic,
    /// A subscriber's pull raised an error instead of yielding or ending.
    PullRaised,
    /// The implementation's process died.
    Crash,
    /// The implementation never settled.
    Busy,
    /// The adapter broke the protocol.
    Protocol,
}

impl Mode {
    /// Every mode, in a stable order.
    pub const ALL: [Mode; 47] = [
        Mode::OtherType,
        Mode::AcrossBuses,
        Mode::FromNoScope,
        Mode::DeliveredAfterClose,
        Mode::FromBeforeSubscribing,
        Mode::DroppedEventDelivered,
        Mode::Duplicated,
        Mode::OutOfOrder,
        Mode::AfterEnd,
        Mode::EndedWhileOpen,
        Mode::EndedEarly,
        Mode::LostWakeup,
        Mode::NeverDelivered,
        Mode::NeverEnded,
        Mode::SendFailed,
        Mode::SendAfterCloseFailed,
        Mode::NoBus,
        Mode::UsedClosedBus,
        Mode::BusOutsideScopes,
        Mode::Layout,
        Mode::NeverCloses,
        Mode::ClosesAfterTasks,
        Mode::HeldTooLong,
        Mode::FreedTooSoon,
        Mode::Miscounted,
        Mode::MergedTypes,
        Mode::HeldByLateSubscription,
        Mode::HeldByDropped,
        Mode::ExitedEarly,
        Mode::NeverExited,
        Mode::TaskNeverRan,
        Mode::RanAfterCancel,
        Mode::SurvivedCancel,
        Mode::WrongTaskGroup,
        Mode::ErrorLost,
        Mode::CleanupNeverRan,
        Mode::ExitedHandle,
        Mode::CallbackBlocked,
        Mode::CallbackFailed,
        Mode::PullRaised,
        Mode::OpRefused,
        Mode::Impossible,
        Mode::Hang,
        Mode::Panic,
        Mode::Crash,
        Mode::Busy,
        Mode::Protocol,
    ];

    /// A few words, as reports print it: `delivered after close`.
    pub fn label(self) -> &'static str {
        match self {
            Mode::OtherType => "delivered another type",
            Mode::AcrossBuses => "delivered across buses",
            Mode::FromNoScope => "delivered an event sent outside every scope",
            Mode::DeliveredAfterClose => "delivered after close",
            Mode::FromBeforeSubscribing => "delivered from before subscribing",
            Mode::DroppedEventDelivered => "delivered an event sent with no subscriber",
            Mode::Duplicated => "delivered twice",
            Mode::OutOfOrder => "delivered out of order",
            Mode::AfterEnd => "delivered after the end",
            Mode::EndedWhileOpen => "ended while open",
            Mode::EndedEarly => "ended early",
            Mode::LostWakeup => "lost wakeup",
            Mode::NeverDelivered => "never delivered",
            Mode::NeverEnded => "never ended",
            Mode::SendFailed => "send failed",
            Mode::SendAfterCloseFailed => "send after close failed",
            Mode::NoBus => "no bus in a scope",
            Mode::UsedClosedBus => "closed bus in an open scope",
            Mode::BusOutsideScopes => "no ContextMissing outside scopes",
            Mode::Layout => "buses laid out otherwise",
            Mode::NeverCloses => "buses never close",
            Mode::ClosesAfterTasks => "bus closes only after the scope's tasks",
            Mode::HeldTooLong => "held too long",
            Mode::FreedTooSoon => "freed too soon",
            Mode::Miscounted => "subscriptions miscounted",
            Mode::MergedTypes => "look-alike types merged",
            Mode::HeldByLateSubscription => "held by a subscription made after close",
            Mode::HeldByDropped => "held by a dropped subscription",
            Mode::ExitedEarly => "exited early",
            Mode::NeverExited => "never exited",
            Mode::TaskNeverRan => "task never ran",
            Mode::RanAfterCancel => "ran after cancel",
            Mode::SurvivedCancel => "kept running after cancel",
            Mode::WrongTaskGroup => "nested scope acted as a task group",
            Mode::ErrorLost => "body's error not raised",
            Mode::CleanupNeverRan => "cleanup never ran",
            Mode::ExitedHandle => "exited scope's handle lost its bus",
            Mode::CallbackBlocked => "bus blocked its own callback",
            Mode::CallbackFailed => "bus failed its own callback",
            Mode::PullRaised => "a pull raised",
            Mode::OpRefused => "op refused",
            Mode::Impossible => "impossible report",
            Mode::Hang => "hang",
            Mode::Panic => "panic",
            Mode::Crash => "crash",
            Mode::Busy => "never settled",
            Mode::Protocol => "protocol error",
        }
    }

    /// The mode with this [`label`](Mode::label).
    pub fn from_label(label: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.label() == label)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Mode::from_label(&label)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown failure mode `{label}`")))
    }
}
