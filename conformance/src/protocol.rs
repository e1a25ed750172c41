//! The adapter protocol's messages (PROTOCOL.md), as Rust types: the one
//! definition used by the runner's client ([`crate::stdio`]) and by the stdio
//! server ([`crate::serve`]) that exposes any in-process implementation.
//!
//! Every message is one line of JSON. Requests and replies are internally
//! tagged by `type`; unknown fields are refused, so a reply that does not fit
//! the protocol is caught rather than half-read.

use scopebus_sim::catalogue::{EventId, EventType};
use scopebus_sim::op::{
    Answer, Interjection, Observation, Op, OpError, ReentryAction, ReentryOutcome, ReentryPoint,
    Reply, ScopeId, SubId, TaskId, TaskRef, TypeCount,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest reply line the runner accepts, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// A request from the runner to the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The handshake: the runner's protocol version and the catalogue.
    Hello {
        /// Request id, echoed by the reply.
        id: u64,
        /// The runner's protocol version.
        protocol: u32,
        /// The catalogue's wire names.
        catalogue: Vec<String>,
    },
    /// Forget everything, start a fresh world.
    Reset {
        /// Request id.
        id: u64,
    },
    /// Apply an op.
    Op {
        /// Request id.
        id: u64,
        /// The op.
        op: Op,
    },
    /// Run one scheduling step of the adapter's choice.
    Step {
        /// Request id.
        id: u64,
    },
    /// List the runnable tasks.
    Runnable {
        /// Request id.
        id: u64,
    },
    /// Poll one task.
    Poll {
        /// Request id.
        id: u64,
        /// The task.
        task: TaskRef,
    },
    /// Wake one task spuriously.
    Wake {
        /// Request id.
        id: u64,
        /// The task.
        task: TaskRef,
    },
    /// Poll a task and, at its first yield point, run a `send` or `spawn`
    /// op, or poll another task (`{"poll": TASK}`).
    Preempt {
        /// Request id.
        id: u64,
        /// The task.
        task: TaskRef,
        /// What runs at the yield point.
        with: Interjection,
    },
    /// Move a task to a new waker: wakeups through its old wakers are lost
    /// from now on, and it is runnable. Answered with `woken`.
    Migrate {
        /// Request id.
        id: u64,
        /// The task.
        task: TaskRef,
    },
    /// End the session; the adapter exits.
    Bye {
        /// Request id.
        id: u64,
    },
}

impl Request {
    /// The request's id.
    pub fn id(&self) -> u64 {
        match self {
            Request::Hello { id, .. }
            | Request::Reset { id }
            | Request::Op { id, .. }
            | Request::Step { id }
            | Request::Runnable { id }
            | Request::Poll { id, .. }
            | Request::Wake { id, .. }
            | Request::Preempt { id, .. }
            | Request::Migrate { id, .. }
            | Request::Bye { id } => *id,
        }
    }
}

/// A reply from the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// The handshake's answer.
    Hello {
        /// The request's id.
        id: u64,
        /// The adapter's protocol version.
        protocol: u32,
        /// The implementation's name.
        name: String,
        /// Its language.
        language: String,
        /// Its version.
        version: String,
        /// What it runs on, e.g. `CPython 3.13.0` (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runtime: Option<String>,
        /// What it can do (names as in PROTOCOL.md).
        capabilities: Vec<String>,
        /// The features the adapter provides itself rather than the
        /// library (PROTOCOL.md, "Emulated features"; optional).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        emulates: Vec<String>,
    },
    /// Done (reset).
    Ok {
        /// The request's id.
        id: u64,
        /// What happened meanwhile.
        #[serde(default)]
        observations: Vec<WireObservation>,
    },
    /// The result of an op.
    Result {
        /// The request's id.
        id: u64,
        /// Its result.
        result: WireResult,
        /// What happened during it.
        #[serde(default)]
        observations: Vec<WireObservation>,
    },
    /// A step or poll ran (or found nothing to run).
    Stepped {
        /// The request's id.
        id: u64,
        /// Whether anything ran.
        ran: bool,
        /// What happened during it.
        #[serde(default)]
        observations: Vec<WireObservation>,
    },
    /// The runnable tasks.
    Runnable {
        /// The request's id.
        id: u64,
        /// The tasks, in the adapter's order.
        tasks: Vec<TaskRef>,
    },
    /// A wake (or migration) was delivered (or the task does not exist).
    Woken {
        /// The request's id.
        id: u64,
        /// Whether the task exists.
        existed: bool,
    },
    /// A preempted poll ran (or the task was not runnable).
    Preempted {
        /// The request's id.
        id: u64,
        /// Whether the task ran (if not, nothing else happened).
        ran: bool,
        /// The interjected op's result, if it ran and was an op (absent for
        /// a poll).
        #[serde(default)]
        result: Option<WireResult>,
        /// Observations of the poll before the interjection ran.
        #[serde(default)]
        before: Vec<WireObservation>,
        /// Observations from then on (for a poll, the other task's come
        /// first).
        #[serde(default)]
        observations: Vec<WireObservation>,
        /// Whether the interjection ran at a yield point (else right after
        /// the poll).
        #[serde(default)]
        at_yield_point: bool,
    },
    /// Goodbye.
    Bye {
        /// The request's id.
        id: u64,
    },
    /// The request could not be carried out at all.
    Error {
        /// The request's id.
        id: u64,
        /// What went wrong.
        error: WireError,
    },
}

impl Response {
    /// The id the reply carries.
    pub fn id(&self) -> u64 {
        match self {
            Response::Hello { id, .. }
            | Response::Ok { id, .. }
            | Response::Result { id, .. }
            | Response::Stepped { id, .. }
            | Response::Runnable { id, .. }
            | Response::Woken { id, .. }
            | Response::Preempted { id, .. }
            | Response::Bye { id }
            | Response::Error { id, .. } => *id,
        }
    }

    /// The reply's `type`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Hello { .. } => "hello",
            Response::Ok { .. } => "ok",
            Response::Result { .. } => "result",
            Response::Stepped { .. } => "stepped",
            Response::Runnable { .. } => "runnable",
            Response::Woken { .. } => "woken",
            Response::Preempted { .. } => "preempted",
            Response::Bye { .. } => "bye",
            Response::Error { .. } => "error",
        }
    }
}

/// An op's result: `{"ok": "done"}`, `{"ok": {"stats": [...]}}` or
/// `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WireResult {
    /// Success.
    Ok(WireOk),
    /// The op was refused, with a reason the model judges.
    Error(WireError),
}

/// A successful result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WireOk {
    /// Nothing to report.
    Done,
    /// Statistics, for `observe`.
    Stats(Vec<WireCount>),
}

/// Live subscriptions and retained events of one type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCount {
    /// The catalogue type.
    #[serde(rename = "type")]
    pub ty: EventType,
    /// Live subscriptions, or `null` if the implementation cannot count them.
    pub subscriptions: Option<u64>,
    /// Retained events.
    pub retained: u64,
    /// Which events are retained, if the implementation can tell (then a
    /// mismatch names the exact event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained_events: Option<Vec<EventId>>,
}

/// The fixed set of error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No bus in reach.
    ContextMissing,
    /// The bus in reach is closed.
    Closed,
    /// The implementation cannot do this.
    NotSupported,
    /// `settle` found work left forever.
    DidNotSettle,
    /// A handle the adapter does not know.
    UnknownHandle,
    /// The request could not be understood.
    Malformed,
    /// Wrong protocol version.
    UnsupportedProtocol,
    /// Anything else.
    Internal,
}

impl ErrorCode {
    /// The code as written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ContextMissing => "context_missing",
            ErrorCode::Closed => "closed",
            ErrorCode::NotSupported => "not_supported",
            ErrorCode::DidNotSettle => "did_not_settle",
            ErrorCode::UnknownHandle => "unknown_handle",
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnsupportedProtocol => "unsupported_protocol",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error: a code, a message for humans, and the language's own exception.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireError {
    /// The code.
    pub code: ErrorCode,
    /// What happened, for humans.
    #[serde(default)]
    pub message: String,
    /// The language's own exception or error type, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

impl WireError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> WireError {
        WireError {
            code,
            message: message.into(),
            exception: None,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.name())?;
        if let Some(e) = &self.exception {
            write!(f, " ({e})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// An observation on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireObservation {
    /// A subscriber received an event.
    Received {
        /// The subscription.
        sub: SubId,
        /// The event's id.
        event: EventId,
    },
    /// A subscriber's stream ended.
    Ended {
        /// The subscription.
        sub: SubId,
    },
    /// A scope's body returned.
    ScopeClosing {
        /// The scope.
        scope: ScopeId,
    },
    /// A scope finished exiting.
    ScopeExited {
        /// The scope.
        scope: ScopeId,
    },
    /// A scope was cancelled.
    ScopeCancelled {
        /// The scope.
        scope: ScopeId,
    },
    /// A root scope whose body was made to fail is gone, raising `error`
    /// (`fail_scope`, FAIL-1).
    ScopeFailed {
        /// The scope.
        scope: ScopeId,
        /// What the scope raised.
        error: WireError,
        /// Whether that is the body's own error (itself, or alone inside an
        /// exception group).
        own: bool,
    },
    /// A subscriber's pull raised an error it did not cause (optional).
    Failed {
        /// The subscription.
        sub: SubId,
        /// What was raised.
        error: WireError,
    },
    /// A subscriber made to fail has unwound; its cleanup's send, if any,
    /// and the send's outcome (`fail_subscriber`, FAIL-2).
    SubscriberFailed {
        /// The subscription.
        sub: SubId,
        /// Its cleanup's send and the send's outcome.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<WireSent>,
    },
    /// A probe armed by `reenter` ran inside the bus's callback into the
    /// task of `sub` (REENTER-1).
    Reentered {
        /// The subscription whose task was armed.
        sub: SubId,
        /// What the probe did.
        action: ReentryAction,
        /// Where the bus called it: `wake` or `drop`.
        during: ReentryPoint,
        /// `returned`, `blocked` or `failed`.
        outcome: ReentryOutcome,
        /// For humans: what happened instead of a return.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A worker ran for the first time (optional).
    TaskStarted {
        /// The task.
        task: TaskId,
    },
    /// A worker finished, having sent its event (if any).
    TaskDone {
        /// The task.
        task: TaskId,
        /// Its send and the send's outcome.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<WireSent>,
    },
}

/// A worker's send: the event, and the error if it failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSent {
    /// The event's id.
    pub event: EventId,
    /// The send's error, or `null`.
    pub error: Option<WireError>,
}

fn op_error(e: &WireError) -> OpError {
    match e.code {
        ErrorCode::ContextMissing => OpError::ContextMissing,
        ErrorCode::Closed => OpError::Closed,
        ErrorCode::NotSupported => OpError::NotSupported(e.to_string()),
        _ => OpError::Other(e.to_string()),
    }
}

fn wire_error(e: &OpError) -> WireError {
    match e {
        OpError::ContextMissing => WireError::new(ErrorCode::ContextMissing, ""),
        OpError::Closed => WireError::new(ErrorCode::Closed, ""),
        OpError::NotSupported(m) => WireError::new(ErrorCode::NotSupported, m.clone()),
        OpError::Other(m) => WireError::new(ErrorCode::Internal, m.clone()),
    }
}

/// A send's event and outcome, as the harness keeps it.
fn from_wire_sent(s: &WireSent) -> (EventId, Result<(), OpError>) {
    let result = match &s.error {
        None => Ok(()),
        Some(e) => Err(op_error(e)),
    };
    (s.event, result)
}

/// A send's event and outcome, as the wire carries it.
fn to_wire_sent((event, result): &(EventId, Result<(), OpError>)) -> WireSent {
    WireSent {
        event: *event,
        error: result.as_ref().err().map(wire_error),
    }
}

impl From<&WireObservation> for Observation {
    fn from(o: &WireObservation) -> Observation {
        match o {
            WireObservation::Received { sub, event } => Observation::Received {
                sub: *sub,
                event: *event,
            },
            WireObservation::Ended { sub } => Observation::Ended { sub: *sub },
            WireObservation::ScopeClosing { scope } => Observation::ScopeClosing { scope: *scope },
            WireObservation::ScopeExited { scope } => Observation::ScopeExited { scope: *scope },
            WireObservation::ScopeCancelled { scope } => {
                Observation::ScopeCancelled { scope: *scope }
            }
            WireObservation::ScopeFailed { scope, error, own } => Observation::ScopeFailed {
                scope: *scope,
                error: error.to_string(),
                own: *own,
            },
            WireObservation::SubscriberFailed { sub, sent } => Observation::SubscriberFailed {
                sub: *sub,
                sent: sent.as_ref().map(from_wire_sent),
            },
            WireObservation::Reentered {
                sub,
                action,
                during,
                outcome,
                detail,
            } => Observation::Reentered {
                sub: *sub,
                action: *action,
                during: *during,
                outcome: *outcome,
                detail: detail.clone(),
            },
            WireObservation::TaskStarted { task } => Observation::TaskStarted { task: *task },
            WireObservation::Failed { sub, error } => Observation::Failed {
                sub: *sub,
                error: error.to_string(),
            },
            WireObservation::TaskDone { task, sent } => Observation::TaskDone {
                task: *task,
                sent: sent.as_ref().map(from_wire_sent),
            },
        }
    }
}

impl From<&Observation> for WireObservation {
    fn from(o: &Observation) -> WireObservation {
        match o {
            Observation::Received { sub, event } => WireObservation::Received {
                sub: *sub,
                event: *event,
            },
            Observation::Ended { sub } => WireObservation::Ended { sub: *sub },
            Observation::ScopeClosing { scope } => WireObservation::ScopeClosing { scope: *scope },
            Observation::ScopeExited { scope } => WireObservation::ScopeExited { scope: *scope },
            Observation::ScopeCancelled { scope } => {
                WireObservation::ScopeCancelled { scope: *scope }
            }
            Observation::ScopeFailed { scope, error, own } => WireObservation::ScopeFailed {
                scope: *scope,
                error: WireError::new(ErrorCode::Internal, error.clone()),
                own: *own,
            },
            Observation::SubscriberFailed { sub, sent } => WireObservation::SubscriberFailed {
                sub: *sub,
                sent: sent.as_ref().map(to_wire_sent),
            },
            Observation::Reentered {
                sub,
                action,
                during,
                outcome,
                detail,
            } => WireObservation::Reentered {
                sub: *sub,
                action: *action,
                during: *during,
                outcome: *outcome,
                detail: detail.clone(),
            },
            Observation::TaskStarted { task } => WireObservation::TaskStarted { task: *task },
            Observation::Failed { sub, error } => WireObservation::Failed {
                sub: *sub,
                error: WireError::new(ErrorCode::Internal, error.clone()),
            },
            Observation::TaskDone { task, sent } => WireObservation::TaskDone {
                task: *task,
                sent: sent.as_ref().map(to_wire_sent),
            },
        }
    }
}

impl WireResult {
    /// As the harness's reply.
    pub fn to_reply(&self) -> Reply {
        match self {
            WireResult::Ok(WireOk::Done) => Ok(Answer::Done),
            WireResult::Ok(WireOk::Stats(counts)) => Ok(Answer::Stats(
                counts
                    .iter()
                    .map(|c| TypeCount {
                        ty: c.ty.route(),
                        subscriptions: c.subscriptions,
                        retained: c.retained,
                        retained_events: c.retained_events.clone(),
                    })
                    .collect(),
            )),
            WireResult::Error(e) => Err(op_error(e)),
        }
    }

    /// From the harness's reply.
    pub fn from_reply(reply: &Reply) -> WireResult {
        match reply {
            Ok(Answer::Done) => WireResult::Ok(WireOk::Done),
            Ok(Answer::Stats(counts)) => WireResult::Ok(WireOk::Stats(
                counts
                    .iter()
                    .map(|c| WireCount {
                        ty: c.ty,
                        subscriptions: c.subscriptions,
                        retained: c.retained,
                        retained_events: c.retained_events.clone(),
                    })
                    .collect(),
            )),
            Err(e) => WireResult::Error(wire_error(e)),
        }
    }
}

/// The catalogue's wire names, as sent in `hello`.
pub fn catalogue() -> Vec<String> {
    EventType::ALL.iter().map(|t| t.name().to_owned()).collect()
}
