//! The vocabulary of a workload: handles, operations, scheduling entries,
//! and what an implementation answers and reports.
//!
//! A trace is a list of [`Entry`]s. An [`Op`] is something a user of the bus
//! does; a `poll` or `wake` entry is a scheduling choice or an injected fault.
//! Handles (scopes, subscriptions, tasks) are small numbers the workload
//! assigns, so that traces stay readable and stable under shrinking.

use crate::catalogue::{EventId, EventType};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "#{}"), self.0)
            }
        }
    };
}

handle!(
    /// A scope of the workload, `scope#N`.
    ScopeId,
    "scope"
);
handle!(
    /// A subscription of the workload, and the subscriber task that owns it,
    /// `sub#N`.
    SubId,
    "sub"
);
handle!(
    /// A worker task spawned into a scope, `task#N`.
    TaskId,
    "task"
);

/// An event a worker task sends when it is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSpec {
    /// The catalogue type.
    pub ty: EventType,
    /// The event's id.
    pub event: EventId,
}

/// What user code the bus calls does to that same bus (REENTER-1): the
/// probe a `reenter` arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReentryAction {
    /// Reads the bus's statistics (every type's live subscriptions and
    /// retained events).
    Stats,
    /// Subscribes to a type nobody else uses, then lets go of it at once
    /// (a new type: the bus must add it to its map of types).
    Subscribe,
}

impl fmt::Display for ReentryAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReentryAction::Stats => "reads the bus's statistics",
            ReentryAction::Subscribe => "subscribes to a new type and lets go of it",
        })
    }
}

/// Where the bus called the user code a probe ran in (REENTER-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReentryPoint {
    /// The bus woke the task (Rust: called the waker's `wake`).
    Wake,
    /// The bus let go of the task's waker (Rust: dropped its clone).
    Drop,
}

impl fmt::Display for ReentryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReentryPoint::Wake => "woke",
            ReentryPoint::Drop => "let go of",
        })
    }
}

/// How a probe's use of the bus went (REENTER-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReentryOutcome {
    /// It returned.
    Returned,
    /// It did not return in time: the bus held a lock it needed.
    Blocked,
    /// It panicked or raised.
    Failed,
}

/// One thing a user of the bus does. Serialized with an `"op"` tag, e.g.
/// `{"op":"send","scope":1,"ty":"alpha.Ping","event":4}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Opens a scope: a root scope (`parent` absent), or one nested in
    /// `parent`, isolated or not. A nested scope runs as a task of its parent.
    OpenScope {
        /// The new scope's handle.
        scope: ScopeId,
        /// The scope it is opened in; absent for a root scope.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ScopeId>,
        /// Whether it gets a bus of its own.
        #[serde(default, skip_serializing_if = "is_false")]
        isolated: bool,
    },
    /// Lets the scope's body return: the scope closes the bus it owns, then
    /// waits for its tasks and exits.
    CloseScope {
        /// The scope.
        scope: ScopeId,
    },
    /// Cancels the scope: its bus (if it owns one) closes and its tasks,
    /// nested scopes included, are cancelled.
    CancelScope {
        /// The scope.
        scope: ScopeId,
    },
    /// The body of root scope `scope` fails: at its next step it raises an
    /// error (Rust: panics) instead of returning. The scope cancels the
    /// tasks of its group, closes its bus and re-raises the body's error,
    /// reported as `scope_failed`. Only a scope that is open (neither asked
    /// to close nor cancelled) and is a root may fail: where a nested
    /// scope's error goes (its parent's task group, a handle) is the
    /// implementation's choice. Needs the `failures` capability (FAIL-1).
    FailScope {
        /// The scope.
        scope: ScopeId,
    },
    /// Subscribes, in `scope` (or outside every scope), to `ty`; a subscriber
    /// task is created to own the subscription. It pulls only when given
    /// credit by `consume`.
    Subscribe {
        /// The subscription's handle.
        sub: SubId,
        /// Where to subscribe; absent: outside every scope.
        #[serde(default)]
        scope: Option<ScopeId>,
        /// The catalogue type.
        ty: EventType,
    },
    /// Sends an event of `ty`, in `scope` (or outside every scope).
    Send {
        /// Where to send; absent: outside every scope.
        #[serde(default)]
        scope: Option<ScopeId>,
        /// The catalogue type.
        ty: EventType,
        /// The event's id.
        event: EventId,
    },
    /// Gives the subscriber task `k` more credits: it will pull up to `k`
    /// more events (one per poll).
    Consume {
        /// The subscription.
        sub: SubId,
        /// How many more events it may pull.
        k: u32,
    },
    /// The subscriber releases its subscription (drops it), even mid-wait.
    DropSubscription {
        /// The subscription.
        sub: SubId,
    },
    /// The subscriber task is cancelled, dropping the subscription it owns.
    CancelSubscriber {
        /// The subscription.
        sub: SubId,
    },
    /// The subscriber task fails: it raises an error (Rust: panics) where
    /// it is, even mid-wait; while the error unwinds, its cleanup (a
    /// `finally`, a `Drop` guard) lets go of the subscription and sends
    /// `send`, if any, from the subscription's scope, and the task reports
    /// `subscriber_failed` with that send's outcome; complete when the
    /// reply is sent, like `cancel_subscriber`. Only a subscriber task
    /// (not a processor), and `send` only while its scope is usable. Needs
    /// the `failures` capability (FAIL-2).
    FailSubscriber {
        /// The subscription.
        sub: SubId,
        /// What its cleanup sends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<SendSpec>,
    },
    /// Subscribes, in `scope`, to `ty`, and creates two subscriber tasks
    /// that pull that one subscription at once, each with its own credit
    /// (`consume` names either): `sub`, which owns it, and `puller`. Each
    /// event of the subscription goes to one of them (SHARE-1); the end
    /// reaches both. `drop_subscription` and `cancel_subscriber` of `sub`
    /// end both tasks (at once) and let go of the subscription; `abandon`
    /// of `sub` or of `puller` gives up that task's pending pull only;
    /// `fail_subscriber` never names a shared subscription, and only
    /// `consume` and `abandon` name `puller`. Needs the `share` capability.
    SubscribeShared {
        /// The subscription's handle, and its owning task's.
        sub: SubId,
        /// The second puller's handle.
        puller: SubId,
        /// Where to subscribe.
        scope: ScopeId,
        /// The catalogue type.
        ty: EventType,
    },
    /// The subscriber abandons the pull it is waiting in, if any, as a
    /// timeout (or a `select`) around the receive would, and starts a new
    /// one at once: the pending receive is dropped or cancelled, the
    /// subscription and the subscriber's credit are kept. Changes nothing
    /// the model can see; needs the `abandon` capability (CANCEL-2).
    Abandon {
        /// The subscription.
        sub: SubId,
    },
    /// Arms a probe on the subscriber task of `sub` (REENTER-1): the next
    /// time the bus calls back into that task (wakes it, or lets go of the
    /// waker it registered), the callback does `action` on the
    /// subscription's bus, as a waker's `wake` or `drop` may, and the
    /// adapter reports `reentered` with whether it returned. One probe per
    /// arming; arming again replaces one that has not run. Only a
    /// subscription that is still held (not dropped, not ended) and was
    /// made in a scope. Changes nothing else the model can see; needs the
    /// `reenter` capability.
    Reenter {
        /// The subscription.
        sub: SubId,
        /// What the probe does.
        action: ReentryAction,
    },
    /// The seed's background processor: in `scope`, subscribes to `ty`
    /// (the subscription exists from this op on, VIS-1), and spawns into
    /// the scope's task group a task that pulls it with unlimited credit,
    /// reporting each event received, until its stream ends; the task then
    /// finishes. `cancel_subscriber` cancels the task, `abandon` gives up
    /// its pending pull (a timeout around the processor's receive);
    /// `consume` and `drop_subscription` do not apply. Needs the `processors` capability
    /// (PROC-1).
    SpawnProcessor {
        /// The processor's subscription (and task) handle.
        sub: SubId,
        /// The scope it subscribes and is spawned in.
        scope: ScopeId,
        /// The catalogue type.
        ty: EventType,
    },
    /// Spawns a worker task into `scope`; it waits for `release`.
    Spawn {
        /// The task's handle.
        task: TaskId,
        /// The scope it belongs to.
        scope: ScopeId,
    },
    /// Releases a worker: it sends `send` (if any) from inside its scope, then
    /// finishes.
    Release {
        /// The task.
        task: TaskId,
        /// What it sends before finishing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<SendSpec>,
    },
    /// Runs the implementation until nothing is runnable.
    Settle,
    /// Reads the statistics of the bus in reach in `scope`.
    Observe {
        /// The scope.
        scope: ScopeId,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Op {
    /// The op's name as serialized (`"send"`, `"open_scope"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::OpenScope { .. } => "open_scope",
            Op::CloseScope { .. } => "close_scope",
            Op::CancelScope { .. } => "cancel_scope",
            Op::FailScope { .. } => "fail_scope",
            Op::Subscribe { .. } => "subscribe",
            Op::SubscribeShared { .. } => "subscribe_shared",
            Op::Send { .. } => "send",
            Op::Consume { .. } => "consume",
            Op::DropSubscription { .. } => "drop_subscription",
            Op::CancelSubscriber { .. } => "cancel_subscriber",
            Op::Abandon { .. } => "abandon",
            Op::Reenter { .. } => "reenter",
            Op::FailSubscriber { .. } => "fail_subscriber",
            Op::SpawnProcessor { .. } => "spawn_processor",
            Op::Spawn { .. } => "spawn",
            Op::Release { .. } => "release",
            Op::Settle => "settle",
            Op::Observe { .. } => "observe",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |s: &Option<ScopeId>| match s {
            Some(s) => s.to_string(),
            None => "no scope".to_owned(),
        };
        match self {
            Op::OpenScope {
                scope,
                parent: None,
                ..
            } => write!(f, "open {scope} (root)"),
            Op::OpenScope {
                scope,
                parent: Some(p),
                isolated,
            } => write!(
                f,
                "open {scope} in {p}{}",
                if *isolated { ", isolated" } else { "" }
            ),
            Op::CloseScope { scope } => write!(f, "close {scope}"),
            Op::CancelScope { scope } => write!(f, "cancel {scope}"),
            Op::FailScope { scope } => write!(f, "make {scope}'s body fail"),
            Op::Subscribe { sub, scope, ty } => {
                write!(f, "{sub} = subscribe {ty} in {}", at(scope))
            }
            Op::SubscribeShared {
                sub,
                puller,
                scope,
                ty,
            } => write!(
                f,
                "{sub} = subscribe {ty} in {scope}, pulled by two tasks ({sub} and {puller})"
            ),
            Op::Send { scope, ty, event } => write!(f, "send {ty} event#{event} in {}", at(scope)),
            Op::Consume { sub, k } => write!(f, "consume {k} from {sub}"),
            Op::DropSubscription { sub } => write!(f, "drop {sub}"),
            Op::CancelSubscriber { sub } => write!(f, "cancel the subscriber of {sub}"),
            Op::Abandon { sub } => write!(f, "abandon the pending pull of {sub}"),
            Op::Reenter { sub, action } => write!(
                f,
                "arm {sub}'s task: when the bus next wakes it or lets go of its waker, the callback {action}"
            ),
            Op::FailSubscriber { sub, send: None } => {
                write!(f, "make the subscriber of {sub} fail")
            }
            Op::FailSubscriber { sub, send: Some(s) } => write!(
                f,
                "make the subscriber of {sub} fail; its cleanup sends {} event#{}",
                s.ty, s.event
            ),
            Op::SpawnProcessor { sub, scope, ty } => {
                write!(f, "{sub} = spawn a processor of {ty} in {scope}")
            }
            Op::Spawn { task, scope } => write!(f, "spawn {task} in {scope}"),
            Op::Release { task, send: None } => write!(f, "release {task}"),
            Op::Release {
                task,
                send: Some(s),
            } => write!(f, "release {task}, which sends {} event#{}", s.ty, s.event),
            Op::Settle => f.write_str("settle"),
            Op::Observe { scope } => write!(f, "observe the bus of {scope}"),
        }
    }
}

/// A task the scheduler can poll: a root scope (whose future also runs its
/// tasks and nested scopes) or a subscriber task, or, for implementations
/// that schedule themselves, whatever they run next. Serialized as
/// `"scope#N"`, `"sub#N"` or `"any"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskRef {
    /// The root scope's future.
    Scope(ScopeId),
    /// The subscriber task of a subscription.
    Sub(SubId),
    /// One scheduling step of the implementation's own choice.
    Any,
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskRef::Scope(s) => s.fmt(f),
            TaskRef::Sub(s) => s.fmt(f),
            TaskRef::Any => f.write_str("any"),
        }
    }
}

impl FromStr for TaskRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "any" {
            return Ok(TaskRef::Any);
        }
        let bad = || format!("`{s}` is not a task: expected `scope#N`, `sub#N` or `any`");
        let (kind, n) = s.split_once('#').ok_or_else(bad)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = n.parse().map_err(|_| bad())?;
        match kind {
            "scope" => Ok(TaskRef::Scope(ScopeId(n))),
            "sub" => Ok(TaskRef::Sub(SubId(n))),
            _ => Err(bad()),
        }
    }
}

impl Serialize for TaskRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What runs at a yield point inside another task's poll, as a second
/// thread could at that very moment: a `send` or `spawn`, or a poll of
/// another task. Serialized as the op, or as `{"poll":"scope#1"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Interjection {
    /// An op (`send` or `spawn`).
    Op(Op),
    /// A poll of another task.
    Poll(TaskRef),
}

impl fmt::Display for Interjection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interjection::Op(op) => op.fmt(f),
            Interjection::Poll(t) => write!(f, "poll {t}"),
        }
    }
}

impl Serialize for Interjection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Interjection::Op(op) => op.serialize(s),
            Interjection::Poll(t) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("poll", t)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Interjection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Strict(value) = Strict::deserialize(d)?;
        interjection(&value).map_err(D::Error::custom)
    }
}

/// Reads an interjection from JSON.
fn interjection(value: &serde_json::Value) -> Result<Interjection, String> {
    if let Some(task) = value.get("poll") {
        if value.as_object().is_some_and(|o| o.len() != 1) {
            return Err(format!(
                "a `poll` interjection has no other fields, found {value}"
            ));
        }
        let task: TaskRef = serde_json::from_value(task.clone()).map_err(|e| e.to_string())?;
        return Ok(Interjection::Poll(task));
    }
    let op: Op = serde_json::from_value(value.clone()).map_err(|e| format!("{e} in {value}"))?;
    if !matches!(op, Op::Send { .. } | Op::Spawn { .. }) {
        return Err(format!(
            "a `preempt` runs a `send`, a `spawn` or a `poll`, found `{}` in {value}",
            op.name()
        ));
    }
    Ok(Interjection::Op(op))
}

/// One entry of a trace: an op, or a scheduling choice or fault. Serialized
/// as the op itself, `{"poll":"sub#2"}`, `{"wake":"sub#2"}`,
/// `{"migrate":"sub#2"}` or `{"preempt":"sub#2","with":...}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// A user operation.
    Op(Op),
    /// The scheduler polls this task (skipped if it is not runnable then).
    Poll(TaskRef),
    /// A fault: a spurious wakeup of this task.
    Wake(TaskRef),
    /// A fault: the task moves to a new waker (as a future moved into
    /// another task); wakeups through its old wakers are lost.
    Migrate(TaskRef),
    /// The scheduler polls this task and, at the first yield point inside
    /// that poll (or right after it, if there is none), runs the
    /// interjection, as another thread could at that very moment.
    Preempt(TaskRef, Interjection),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Op(op) => op.fmt(f),
            Entry::Poll(t) => write!(f, "poll {t}"),
            Entry::Wake(t) => write!(f, "wake {t} spuriously"),
            Entry::Migrate(t) => write!(f, "move {t} to a new waker"),
            Entry::Preempt(t, with) => write!(f, "poll {t}, preempted by: {with}"),
        }
    }
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Entry::Op(op) => op.serialize(s),
            Entry::Preempt(t, with) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("preempt", t)?;
                map.serialize_entry("with", with)?;
                map.end()
            }
            Entry::Poll(t) | Entry::Wake(t) | Entry::Migrate(t) => {
                let key = match self {
                    Entry::Poll(_) => "poll",
                    Entry::Wake(_) => "wake",
                    _ => "migrate",
                };
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(key, t)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Strict(value) = Strict::deserialize(d)?;
        let Some(object) = value.as_object() else {
            return Err(D::Error::custom(format!(
                "an entry must be an object such as {{\"op\":\"settle\"}} or {{\"poll\":\"sub#1\"}}, found {value}"
            )));
        };
        if let Some(task) = object.get("preempt") {
            let with = object.get("with").ok_or_else(|| {
                D::Error::custom(format!(
                    "a `preempt` entry needs a `with` op, found {value}"
                ))
            })?;
            if object.len() != 2 {
                return Err(D::Error::custom(format!(
                    "a `preempt` entry has only `preempt` and `with`, found {value}"
                )));
            }
            let task: TaskRef = serde_json::from_value(task.clone()).map_err(D::Error::custom)?;
            let with = interjection(with).map_err(D::Error::custom)?;
            return Ok(Entry::Preempt(task, with));
        }
        for key in ["poll", "wake", "migrate"] {
            if let Some(task) = object.get(key) {
                if object.len() != 1 {
                    return Err(D::Error::custom(format!(
                        "a `{key}` entry has no other fields, found {value}"
                    )));
                }
                let task: TaskRef =
                    serde_json::from_value(task.clone()).map_err(D::Error::custom)?;
                return Ok(match key {
                    "poll" => Entry::Poll(task),
                    "wake" => Entry::Wake(task),
                    _ => Entry::Migrate(task),
                });
            }
        }
        if !object.contains_key("op") {
            return Err(D::Error::custom(format!(
                "an entry needs an `op`, `poll`, `wake`, `migrate` or `preempt` field, found {value}"
            )));
        }
        let op: Op = serde_json::from_value(value.clone())
            .map_err(|e| D::Error::custom(format!("{e} in {value}")))?;
        // Serde lets a variant without fields ignore extra ones; we do not.
        if matches!(op, Op::Settle) && object.len() != 1 {
            return Err(D::Error::custom(format!(
                "`settle` takes no fields, found {value}"
            )));
        }
        Ok(Entry::Op(op))
    }
}

/// A JSON value read with every object's keys required to be distinct
/// (plain `serde_json::Value` keeps the last of duplicated keys silently).
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Strict::deserialize(d).map(|Strict(v)| v)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key `{key}`")));
            }
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Why an operation was refused. An `Err` answer is a legitimate outcome
/// (the model says which are expected); it is not a fault of the adapter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum OpError {
    /// No bus in reach (MISSING-1).
    ContextMissing,
    /// The bus in reach is closed (CLOSE-2, CLOSE-3).
    Closed,
    /// The implementation cannot do this operation.
    NotSupported(String),
    /// Anything else, with the implementation's own description.
    Other(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::ContextMissing => f.write_str("ContextMissing"),
            OpError::Closed => f.write_str("Closed"),
            OpError::NotSupported(d) => write!(f, "NotSupported({d})"),
            OpError::Other(d) => write!(f, "error({d})"),
        }
    }
}

/// Live subscriptions and retained events of one catalogue route on one bus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeCount {
    /// The route (never an alias).
    pub ty: EventType,
    /// Live subscriptions; `None` if the implementation cannot count them
    /// (then only `retained` is checked).
    pub subscriptions: Option<u64>,
    /// Retained events.
    pub retained: u64,
    /// Which events are retained, if the implementation can tell: then a
    /// mismatch names the exact event and why it should (not) be held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained_events: Option<Vec<EventId>>,
}

/// A successful answer to an op.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Answer {
    /// Done; nothing to report.
    Done,
    /// The statistics asked for by `observe`; routes not listed count as
    /// zero.
    Stats(Vec<TypeCount>),
}

/// What an implementation answers to an op.
pub type Reply = Result<Answer, OpError>;

/// Something the implementation did on its own time, reported in the order
/// it happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// A subscriber task received an event.
    Received {
        /// The subscription.
        sub: SubId,
        /// The event's id.
        event: EventId,
    },
    /// A subscriber task saw its subscription end.
    Ended {
        /// The subscription.
        sub: SubId,
    },
    /// A subscriber task's pull raised an error (one the adapter did not
    /// cause: not its own cancellation) instead of yielding or ending.
    Failed {
        /// The subscription.
        sub: SubId,
        /// What was raised, for humans: `exception: message`.
        error: String,
    },
    /// The scope's body returned; the bus it owns is now closed.
    ScopeClosing {
        /// The scope.
        scope: ScopeId,
    },
    /// The scope finished exiting: every task of it is done.
    ScopeExited {
        /// The scope.
        scope: ScopeId,
    },
    /// The scope was cancelled and is gone.
    ScopeCancelled {
        /// The scope.
        scope: ScopeId,
    },
    /// The scope's body failed (`fail_scope`) and the scope is gone,
    /// raising an error: its tasks are cancelled, its bus is closed.
    ScopeFailed {
        /// The scope.
        scope: ScopeId,
        /// What the scope raised, for humans: `exception: message`.
        error: String,
        /// Whether that is the body's own error (itself, or alone inside an
        /// exception group), not another error or a cancellation.
        own: bool,
    },
    /// A subscriber task made to fail (`fail_subscriber`) has unwound: its
    /// subscription is let go of, and its cleanup sent its event, if it
    /// had one, with this outcome (FAIL-2).
    SubscriberFailed {
        /// The subscription.
        sub: SubId,
        /// The event its cleanup sent and the send's outcome.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<(EventId, Result<(), OpError>)>,
    },
    /// A worker task ran for the first time (optional: an implementation
    /// that reports it is held to TASK-2's cooperative cancellation for its
    /// later steps).
    TaskStarted {
        /// The task.
        task: TaskId,
    },
    /// A probe armed by `reenter` ran (REENTER-1): the bus woke the task
    /// of `sub`, or let go of its waker, and the callback did `action` on
    /// the same bus, with this outcome.
    Reentered {
        /// The subscription whose task was armed.
        sub: SubId,
        /// What the probe did.
        action: ReentryAction,
        /// Where the bus called it.
        during: ReentryPoint,
        /// Whether the action returned.
        outcome: ReentryOutcome,
        /// For humans: what happened instead of a return.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A released worker ran: it sent its event, if it had one, with this
    /// outcome, and finished.
    TaskDone {
        /// The task.
        task: TaskId,
        /// The event it sent and the send's outcome.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<(EventId, Result<(), OpError>)>,
    },
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observation::Received { sub, event } => write!(f, "{sub} received event#{event}"),
            Observation::Ended { sub } => write!(f, "{sub} ended"),
            Observation::Failed { sub, error } => write!(f, "{sub}'s pull raised {error}"),
            Observation::ScopeClosing { scope } => write!(f, "{scope} began closing"),
            Observation::ScopeExited { scope } => write!(f, "{scope} exited"),
            Observation::ScopeCancelled { scope } => write!(f, "{scope} was cancelled"),
            Observation::ScopeFailed {
                scope,
                error,
                own: true,
            } => write!(f, "{scope} failed with its body's error ({error})"),
            Observation::ScopeFailed {
                scope,
                error,
                own: false,
            } => write!(f, "{scope} failed with {error}, not its body's error"),
            Observation::SubscriberFailed { sub, sent: None } => {
                write!(f, "the subscriber of {sub} failed")
            }
            Observation::SubscriberFailed {
                sub,
                sent: Some((event, Ok(()))),
            } => write!(
                f,
                "the subscriber of {sub} failed; its cleanup sent event#{event}"
            ),
            Observation::SubscriberFailed {
                sub,
                sent: Some((event, Err(e))),
            } => write!(
                f,
                "the subscriber of {sub} failed; its cleanup failed to send event#{event} ({e})"
            ),
            Observation::Reentered {
                sub,
                action,
                during,
                outcome,
                detail,
            } => {
                let how = match outcome {
                    ReentryOutcome::Returned => "returned",
                    ReentryOutcome::Blocked => "was blocked",
                    ReentryOutcome::Failed => "failed",
                };
                write!(
                    f,
                    "the bus {during} {sub}'s waker, and the callback, which {action}, {how}"
                )?;
                match detail {
                    Some(d) => write!(f, " ({d})"),
                    None => Ok(()),
                }
            }
            Observation::TaskStarted { task } => write!(f, "{task} started"),
            Observation::TaskDone { task, sent: None } => write!(f, "{task} finished"),
            Observation::TaskDone {
                task,
                sent: Some((event, Ok(()))),
            } => write!(f, "{task} sent event#{event} and finished"),
            Observation::TaskDone {
                task,
                sent: Some((event, Err(e))),
            } => write!(f, "{task} failed to send event#{event} ({e}) and finished"),
        }
    }
}
