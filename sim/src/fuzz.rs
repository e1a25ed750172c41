//! Entry points for coverage-guided fuzzing, and the byte format of fuzzed
//! workloads. Compiled with the `arbitrary` feature.
//!
//! The fuzz targets in `fuzz/` are one-line wrappers around [`ops`] and
//! [`trace`] (and `scopebus_conformance::fuzz::protocol`), so that a stable
//! `cargo test` can replay every corpus entry and every saved crash through
//! exactly the same code.
//!
//! # The byte format of a workload
//!
//! A workload is a sequence of entries, each a tag byte followed by one byte
//! per field, read with [`arbitrary::Unstructured`] one byte at a time (a
//! missing byte reads as 0). Handles are folded into small ranges (scopes
//! 1..=[`SCOPES`], subscriptions 1..=[`SUBS`], tasks 1..=[`TASKS`]) so that
//! random bytes mostly name handles that exist; event ids are not encoded at
//! all: [`normalize`] numbers sends in order, so that every send is fresh.
//! The format is its own inverse's image: [`encode`] turns a trace (after
//! [`compact`]) back into bytes, which is how simulator traces seed the
//! corpus.
//!
//! | tag (byte % 16) | entry | field bytes |
//! |---|---|---|
//! | 0 | `open_scope` | scope, parent (optional), isolated (b & 1) |
//! | 1, 2 | `close_scope`, `cancel_scope` (`fail_scope` if the tag byte has bit 4 set: 18, 50, ...) | scope |
//! | 3 | `subscribe` (`spawn_processor` if the tag byte has bit 4 set: 19, 51, ..., its scope not optional) | sub, scope (optional), type |
//! | 4 | `send` | scope (optional), type |
//! | 5 | `consume` | sub, k (1 + b % 16) |
//! | 6, 7 | `drop_subscription` (`abandon` if the tag byte has bit 4 set: 22, 54, ...), `cancel_subscriber` (`fail_subscriber` if bit 4 is set: 23, 55, ...: sub, send? (b & 1), type) | sub |
//! | 8 | `spawn` | task, scope |
//! | 9 | `release` | task, send? (b & 1), type |
//! | 10 | `settle` (`reenter` if the tag byte has bit 4 set: 26, 58, ...: sub, action (b & 1: 0 `stats`, 1 `subscribe`)) | |
//! | 11 | `observe` (`subscribe_shared` if the tag byte has bit 4 set: 27, 59, ...: sub, puller, scope, type) | scope |
//! | 12, 13, 14 | `poll`, `wake`, `migrate` | task ref |
//! | 15 | `preempt` | task ref, then (b % 3) 0: `send` (scope?, type), 1: `spawn` (task, scope), 2: `poll` (task ref) |
//!
//! A handle byte `b` names scope `1 + b % SCOPES` (likewise subscriptions
//! and tasks); an optional scope is `b % (SCOPES + 1)`, 0 meaning outside
//! every scope; a type is `EventType::ALL[b % 8]`. A task ref is a byte
//! (b % 3: 0 `any`, 1 a scope, 2 a subscription) and, unless `any`, a
//! handle byte.

use crate::catalogue::EventType;
use crate::harness::{Failure, Session};
use crate::op::{
    Entry, Interjection, Op, ReentryAction, ScopeId, SendSpec, SubId, TaskId, TaskRef,
};
use crate::reference::ReferenceImpl;
use crate::trace::TraceFile;
use arbitrary::{Arbitrary, Unstructured};
use scopebus::mutants::Mutant;
use std::collections::BTreeMap;
use std::path::Path;

/// Scope handles a fuzzed workload uses: 1..=SCOPES.
pub const SCOPES: u32 = 8;
/// Subscription handles a fuzzed workload uses: 1..=SUBS.
pub const SUBS: u32 = 32;
/// Task handles a fuzzed workload uses: 1..=TASKS.
pub const TASKS: u32 = 16;
/// At most this many entries are decoded from one input.
pub const MAX_ENTRIES: usize = 2_048;

/// A fuzzed workload: the entries decoded from the fuzzer's bytes. See the
/// module documentation for the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload(pub Vec<Entry>);

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

fn scope(u: &mut Unstructured<'_>) -> ScopeId {
    ScopeId(1 + u32::from(byte(u)) % SCOPES)
}

/// An optional scope: `b % (SCOPES + 1)`, 0 for none (outside every scope).
fn opt_scope(u: &mut Unstructured<'_>) -> Option<ScopeId> {
    match u32::from(byte(u)) % (SCOPES + 1) {
        0 => None,
        n => Some(ScopeId(n)),
    }
}

fn sub(u: &mut Unstructured<'_>) -> SubId {
    SubId(1 + u32::from(byte(u)) % SUBS)
}

fn task(u: &mut Unstructured<'_>) -> TaskId {
    TaskId(1 + u32::from(byte(u)) % TASKS)
}

fn ty(u: &mut Unstructured<'_>) -> EventType {
    EventType::ALL[usize::from(byte(u)) % EventType::ALL.len()]
}

fn task_ref(u: &mut Unstructured<'_>) -> TaskRef {
    match byte(u) % 3 {
        0 => TaskRef::Any,
        1 => TaskRef::Scope(scope(u)),
        _ => TaskRef::Sub(sub(u)),
    }
}

/// An optional send (a worker's, a failing subscriber's cleanup's): a
/// presence byte (b & 1), then its type; the event id is numbered later.
fn send_spec(u: &mut Unstructured<'_>) -> Option<SendSpec> {
    let send = byte(u) & 1 == 1;
    let ty = ty(u);
    send.then_some(SendSpec { ty, event: 0 })
}

fn entry(u: &mut Unstructured<'_>) -> Entry {
    let tag = byte(u);
    let op = match tag % 16 {
        0 => Op::OpenScope {
            scope: scope(u),
            parent: opt_scope(u),
            isolated: byte(u) & 1 == 1,
        },
        1 => Op::CloseScope { scope: scope(u) },
        2 if tag & 16 == 16 => Op::FailScope { scope: scope(u) },
        2 => Op::CancelScope { scope: scope(u) },
        3 if tag & 16 == 16 => Op::SpawnProcessor {
            sub: sub(u),
            scope: scope(u),
            ty: ty(u),
        },
        3 => Op::Subscribe {
            sub: sub(u),
            scope: opt_scope(u),
            ty: ty(u),
        },
        4 => Op::Send {
            scope: opt_scope(u),
            ty: ty(u),
            event: 0,
        },
        5 => Op::Consume {
            sub: sub(u),
            k: 1 + u32::from(byte(u)) % 16,
        },
        6 if tag & 16 == 16 => Op::Abandon { sub: sub(u) },
        6 => Op::DropSubscription { sub: sub(u) },
        7 if tag & 16 == 16 => Op::FailSubscriber {
            sub: sub(u),
            send: send_spec(u),
        },
        7 => Op::CancelSubscriber { sub: sub(u) },
        8 => Op::Spawn {
            task: task(u),
            scope: scope(u),
        },
        9 => Op::Release {
            task: task(u),
            send: send_spec(u),
        },
        10 if tag & 16 == 16 => Op::Reenter {
            sub: sub(u),
            action: match byte(u) & 1 {
                0 => ReentryAction::Stats,
                _ => ReentryAction::Subscribe,
            },
        },
        10 => Op::Settle,
        11 if tag & 16 == 16 => Op::SubscribeShared {
            sub: sub(u),
            puller: sub(u),
            scope: scope(u),
            ty: ty(u),
        },
        11 => Op::Observe { scope: scope(u) },
        12 => return Entry::Poll(task_ref(u)),
        13 => return Entry::Wake(task_ref(u)),
        14 => return Entry::Migrate(task_ref(u)),
        _ => return preempt(u),
    };
    Entry::Op(op)
}

/// Tag 15: a task ref, then what runs at its yield point.
fn preempt(u: &mut Unstructured<'_>) -> Entry {
    let polled = task_ref(u);
    let with = match byte(u) % 3 {
        0 => Interjection::Op(Op::Send {
            scope: opt_scope(u),
            ty: ty(u),
            event: 0,
        }),
        1 => Interjection::Op(Op::Spawn {
            task: task(u),
            scope: scope(u),
        }),
        _ => Interjection::Poll(task_ref(u)),
    };
    Entry::Preempt(polled, with)
}

impl<'a> Arbitrary<'a> for Workload {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut entries = Vec::new();
        while !u.is_empty() && entries.len() < MAX_ENTRIES {
            entries.push(entry(u));
        }
        Ok(Workload(entries))
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary(&mut u)
    }
}

impl Workload {
    /// Decodes `data` (never fails: every byte string is a workload).
    pub fn decode(data: &[u8]) -> Workload {
        Workload::arbitrary_take_rest(Unstructured::new(data)).unwrap_or(Workload(Vec::new()))
    }
}

/// Numbers every send (ops, releases that send, preempting sends) 1, 2, 3...
/// in order, so that no event id is used twice.
pub fn normalize(entries: &[Entry]) -> Vec<Entry> {
    let mut next = 0;
    let mut fresh = || {
        next += 1;
        next
    };
    let mut renumber = |op: &Op| -> Op {
        match op {
            Op::Send { scope, ty, .. } => Op::Send {
                scope: *scope,
                ty: *ty,
                event: fresh(),
            },
            Op::Release {
                task,
                send: Some(spec),
            } => Op::Release {
                task: *task,
                send: Some(SendSpec {
                    ty: spec.ty,
                    event: fresh(),
                }),
            },
            Op::FailSubscriber {
                sub,
                send: Some(spec),
            } => Op::FailSubscriber {
                sub: *sub,
                send: Some(SendSpec {
                    ty: spec.ty,
                    event: fresh(),
                }),
            },
            other => other.clone(),
        }
    };
    entries
        .iter()
        .map(|e| match e {
            Entry::Op(op) => Entry::Op(renumber(op)),
            Entry::Preempt(t, Interjection::Op(op)) => {
                Entry::Preempt(*t, Interjection::Op(renumber(op)))
            }
            other => other.clone(),
        })
        .collect()
}

/// Renames the handles of `entries` densely, in order of first appearance
/// (scopes, subscriptions and tasks from 1), and cuts the trace before the
/// first entry that would need a handle beyond the fuzz format's ranges.
pub fn compact(entries: &[Entry]) -> Vec<Entry> {
    let mut names = Names::default();
    let mut out = Vec::new();
    for e in entries {
        let renamed = match e {
            Entry::Op(op) => names.op(op).map(Entry::Op),
            Entry::Poll(t) => names.task_ref(*t).map(Entry::Poll),
            Entry::Wake(t) => names.task_ref(*t).map(Entry::Wake),
            Entry::Migrate(t) => names.task_ref(*t).map(Entry::Migrate),
            Entry::Preempt(t, with) => names.task_ref(*t).and_then(|t| {
                let with = match with {
                    Interjection::Op(op) => Interjection::Op(names.op(op)?),
                    Interjection::Poll(o) => Interjection::Poll(names.task_ref(*o)?),
                };
                Some(Entry::Preempt(t, with))
            }),
        };
        match renamed {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

/// The new names of a trace's handles, as [`compact`] gives them.
#[derive(Default)]
struct Names {
    scopes: BTreeMap<ScopeId, ScopeId>,
    subs: BTreeMap<SubId, SubId>,
    tasks: BTreeMap<TaskId, TaskId>,
}
impl Names {
    fn scope(&mut self, s: ScopeId) -> Option<ScopeId> {
        let n = self.scopes.len() as u32 + 1;
        let id = *self.scopes.entry(s).or_insert(ScopeId(n));
        (id.0 <= SCOPES).then_some(id)
    }
    fn sub(&mut self, s: SubId) -> Option<SubId> {
        let n = self.subs.len() as u32 + 1;
        let id = *self.subs.entry(s).or_insert(SubId(n));
        (id.0 <= SUBS).then_some(id)
    }
    fn task(&mut self, t: TaskId) -> Option<TaskId> {
        let n = self.tasks.len() as u32 + 1;
        let id = *self.tasks.entry(t).or_insert(TaskId(n));
        (id.0 <= TASKS).then_some(id)
    }
    fn opt_scope(&mut self, s: Option<ScopeId>) -> Option<Option<ScopeId>> {
        match s {
            None => Some(None),
            Some(s) => self.scope(s).map(Some),
        }
    }
    fn task_ref(&mut self, t: TaskRef) -> Option<TaskRef> {
        Some(match t {
            TaskRef::Any => TaskRef::Any,
            TaskRef::Scope(s) => TaskRef::Scope(self.scope(s)?),
            TaskRef::Sub(s) => TaskRef::Sub(self.sub(s)?),
        })
    }
    /// An op that names one existing subscription, renamed.
    fn sub_op(&mut self, op: &Op) -> Option<Op> {
        Some(match op {
            Op::Consume { sub, k } => Op::Consume {
                sub: self.sub(*sub)?,
                k: (*k).clamp(1, 16),
            },
            Op::DropSubscription { sub } => Op::DropSubscription {
                sub: self.sub(*sub)?,
            },
            Op::CancelSubscriber { sub } => Op::CancelSubscriber {
                sub: self.sub(*sub)?,
            },
            Op::Abandon { sub } => Op::Abandon {
                sub: self.sub(*sub)?,
            },
            Op::Reenter { sub, action } => Op::Reenter {
                sub: self.sub(*sub)?,
                action: *action,
            },
            Op::FailSubscriber { sub, send } => Op::FailSubscriber {
                sub: self.sub(*sub)?,
                send: *send,
            },
            other => other.clone(),
        })
    }
    fn op(&mut self, op: &Op) -> Option<Op> {
        Some(match op {
            Op::OpenScope {
                scope,
                parent,
                isolated,
            } => {
                let parent = self.opt_scope(*parent)?;
                Op::OpenScope {
                    scope: self.scope(*scope)?,
                    parent,
                    isolated: *isolated,
                }
            }
            Op::CloseScope { scope } => Op::CloseScope {
                scope: self.scope(*scope)?,
            },
            Op::CancelScope { scope } => Op::CancelScope {
                scope: self.scope(*scope)?,
            },
            Op::FailScope { scope } => Op::FailScope {
                scope: self.scope(*scope)?,
            },
            Op::Subscribe { sub, scope, ty } => Op::Subscribe {
                sub: self.sub(*sub)?,
                scope: self.opt_scope(*scope)?,
                ty: *ty,
            },
            Op::SpawnProcessor { sub, scope, ty } => Op::SpawnProcessor {
                sub: self.sub(*sub)?,
                scope: self.scope(*scope)?,
                ty: *ty,
            },
            Op::SubscribeShared {
                sub,
                puller,
                scope,
                ty,
            } => Op::SubscribeShared {
                sub: self.sub(*sub)?,
                puller: self.sub(*puller)?,
                scope: self.scope(*scope)?,
                ty: *ty,
            },
            Op::Send { scope, ty, event } => Op::Send {
                scope: self.opt_scope(*scope)?,
                ty: *ty,
                event: *event,
            },
            Op::Consume { .. }
            | Op::DropSubscription { .. }
            | Op::CancelSubscriber { .. }
            | Op::Abandon { .. }
            | Op::Reenter { .. }
            | Op::FailSubscriber { .. } => self.sub_op(op)?,
            Op::Spawn { task, scope } => {
                let task = self.task(*task)?;
                Op::Spawn {
                    task,
                    scope: self.scope(*scope)?,
                }
            }
            Op::Release { task, send } => Op::Release {
                task: self.task(*task)?,
                send: *send,
            },
            Op::Settle => Op::Settle,
            Op::Observe { scope } => Op::Observe {
                scope: self.scope(*scope)?,
            },
        })
    }
}

/// Encodes `entries` in the fuzz format: the inverse of
/// [`Workload::decode`] for entries whose handles are in range (see
/// [`compact`]); `None` if one is not.
pub fn encode(entries: &[Entry]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::Op(o) => encode_op(o, &mut out)?,
            Entry::Poll(t) => {
                out.push(12);
                encode_task_ref(*t, &mut out)?;
            }
            Entry::Wake(t) => {
                out.push(13);
                encode_task_ref(*t, &mut out)?;
            }
            Entry::Migrate(t) => {
                out.push(14);
                encode_task_ref(*t, &mut out)?;
            }
            Entry::Preempt(t, with) => {
                out.push(15);
                encode_task_ref(*t, &mut out)?;
                match with {
                    Interjection::Op(Op::Send {
                        scope: s, ty: t, ..
                    }) => {
                        out.extend([0, opt_scope_byte(*s)?, ty_byte(*t)]);
                    }
                    Interjection::Op(Op::Spawn { task: t, scope: s }) => {
                        out.extend([1, task_byte(*t)?, scope_byte(*s)?]);
                    }
                    Interjection::Op(_) => return None,
                    Interjection::Poll(o) => {
                        out.push(2);
                        encode_task_ref(*o, &mut out)?;
                    }
                }
            }
        }
    }
    Some(out)
}

/// A scope's byte in the fuzz format.
fn scope_byte(s: ScopeId) -> Option<u8> {
    (1..=SCOPES).contains(&s.0).then(|| (s.0 - 1) as u8)
}
/// A scope or none, as a byte (0: no scope).
fn opt_scope_byte(s: Option<ScopeId>) -> Option<u8> {
    match s {
        None => Some(0),
        Some(s) => (1..=SCOPES).contains(&s.0).then_some(s.0 as u8),
    }
}
/// A subscription's byte.
fn sub_byte(s: SubId) -> Option<u8> {
    (1..=SUBS).contains(&s.0).then(|| (s.0 - 1) as u8)
}
/// A task's byte.
fn task_byte(t: TaskId) -> Option<u8> {
    (1..=TASKS).contains(&t.0).then(|| (t.0 - 1) as u8)
}
/// A catalogue type's byte.
fn ty_byte(t: EventType) -> u8 {
    EventType::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8
}
/// Appends a task reference.
fn encode_task_ref(t: TaskRef, out: &mut Vec<u8>) -> Option<()> {
    match t {
        TaskRef::Any => out.push(0),
        TaskRef::Scope(s) => out.extend([1, scope_byte(s)?]),
        TaskRef::Sub(s) => out.extend([2, sub_byte(s)?]),
    }
    Some(())
}
/// Appends an op.
fn encode_op(op: &Op, out: &mut Vec<u8>) -> Option<()> {
    match op {
        Op::OpenScope {
            scope: s,
            parent,
            isolated,
        } => out.extend([
            0,
            scope_byte(*s)?,
            opt_scope_byte(*parent)?,
            u8::from(*isolated),
        ]),
        Op::CloseScope { scope: s } => out.extend([1, scope_byte(*s)?]),
        Op::CancelScope { scope: s } => out.extend([2, scope_byte(*s)?]),
        Op::FailScope { scope: s } => out.extend([2 | 16, scope_byte(*s)?]),
        Op::Subscribe {
            sub: s,
            scope: sc,
            ty: t,
        } => out.extend([3, sub_byte(*s)?, opt_scope_byte(*sc)?, ty_byte(*t)]),
        Op::SpawnProcessor {
            sub: s,
            scope: sc,
            ty: t,
        } => out.extend([3 | 16, sub_byte(*s)?, scope_byte(*sc)?, ty_byte(*t)]),
        Op::Send {
            scope: s, ty: t, ..
        } => out.extend([4, opt_scope_byte(*s)?, ty_byte(*t)]),
        Op::Consume { sub: s, k } => {
            if !(1..=16).contains(k) {
                return None;
            }
            out.extend([5, sub_byte(*s)?, (*k - 1) as u8]);
        }
        Op::DropSubscription { sub: s } => out.extend([6, sub_byte(*s)?]),
        Op::CancelSubscriber { sub: s } => out.extend([7, sub_byte(*s)?]),
        Op::Abandon { sub: s } => out.extend([6 | 16, sub_byte(*s)?]),
        Op::FailSubscriber { sub: s, send } => out.extend([
            7 | 16,
            sub_byte(*s)?,
            u8::from(send.is_some()),
            send.map_or(0, |s| ty_byte(s.ty)),
        ]),
        Op::Spawn { task: t, scope: s } => out.extend([8, task_byte(*t)?, scope_byte(*s)?]),
        Op::Release { task: t, send } => out.extend([
            9,
            task_byte(*t)?,
            u8::from(send.is_some()),
            send.map_or(0, |s| ty_byte(s.ty)),
        ]),
        Op::Settle => out.push(10),
        Op::Reenter { sub: s, action } => out.extend([
            10 | 16,
            sub_byte(*s)?,
            u8::from(*action == ReentryAction::Subscribe),
        ]),
        Op::Observe { scope: s } => out.extend([11, scope_byte(*s)?]),
        Op::SubscribeShared {
            sub: s,
            puller: p,
            scope: sc,
            ty: t,
        } => out.extend([
            11 | 16,
            sub_byte(*s)?,
            sub_byte(*p)?,
            scope_byte(*sc)?,
            ty_byte(*t),
        ]),
    }
    Some(())
}
/// What a fuzzed workload did wrong: the failure and the trace that shows
/// it (a normalized workload, run up to the failure).
#[derive(Clone, Debug)]
pub struct Crash {
    /// The first disagreement between the bus and the model.
    pub failure: Failure,
    /// The entries that ran, up to and including the failing one.
    pub trace: Vec<Entry>,
}

/// The `ops` target: decodes `data` into a workload, runs it on the
/// reference bus (or `mutant`) against the model, then winds down (release,
/// close, drain, settle, observe) so that liveness is checked too.
///
/// # Errors
/// The [`Crash`]: any disagreement, panic included (caught and reported as
/// ROBUST-1 by the harness).
pub fn ops(data: &[u8], mutant: Option<Mutant>) -> Result<(), Box<Crash>> {
    run_entries(&entries(data), mutant)
}

/// The workload `data` stands for, as the `ops` target runs it: decoded,
/// its sends numbered ([`normalize`]), and every entry that names a handle
/// no earlier entry created (or creates one twice) left out, so that what
/// runs, and any trace saved from it, is a trace `cargo xtask replay`
/// accepts.
pub fn entries(data: &[u8]) -> Vec<Entry> {
    let mut known = crate::trace::References::default();
    normalize(&Workload::decode(data).0)
        .into_iter()
        .filter(|e| known.admit(e).is_ok())
        .collect()
}

/// Runs `entries` (with their event ids as given) like [`ops`] does.
///
/// # Errors
/// As [`ops`].
pub fn run_entries(entries: &[Entry], mutant: Option<Mutant>) -> Result<(), Box<Crash>> {
    let mut session = Session::new(ReferenceImpl::new(mutant));
    let result = entries
        .iter()
        .try_for_each(|e| session.step(e).map(drop))
        .and_then(|()| session.wind_down());
    match result {
        Ok(()) => Ok(()),
        Err(failure) => {
            let run = session.finish(Some(failure.clone()));
            Err(Box::new(Crash {
                failure,
                trace: run.trace,
            }))
        }
    }
}

/// The `trace` target: `data` as a trace file, read as `cargo xtask replay`
/// reads one. Text that is not a valid trace must be refused with an error;
/// a trace that reads must replay on the reference bus without any
/// disagreement with the model.
///
/// # Errors
/// A description of the disagreement, if a trace that reads fails on the
/// reference bus. (A refused file is not an error: that is the point.)
pub fn trace(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let Ok(file) = TraceFile::parse(text, Path::new("fuzz-input.json")) else {
        return Ok(());
    };
    let mut imp = ReferenceImpl::new(None);
    let run = crate::harness::replay(&mut imp, &file.entries);
    match run.failure {
        None => Ok(()),
        Some(f) => Err(format!(
            "a valid trace fails on the reference bus: {f}\ntrace: {}",
            TraceFile::new("reference", run.trace).to_json()
        )),
    }
}
