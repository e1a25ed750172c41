//! The harness: feeds a trace (or a seed's freshly generated workload) to an
//! implementation and to the model, and stops at the first disagreement.
//!
//! One seed fixes everything: the swarm configuration, every op, every
//! scheduling choice and every injected fault are drawn from one ChaCha8
//! stream seeded with it. What actually ran is recorded as a trace, which
//! [`replay`] reruns exactly, without any randomness.

use crate::diagnosis::{self, wake_probe};
use crate::iut::{Fault, Implementation};
use crate::model::{Disagreement, Layout, Mode, Model, Violation};
use crate::op::{Answer, Entry, Interjection, Observation, Op, OpError, Reply, TaskRef};
use crate::rules::{Capabilities, Capability, Coverage, Rule};
use crate::steps::{Observed, Step};
use crate::workload::{Ids, Swarm};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Credit given to every subscription at the end of a run, so that each one
/// drains and ends.
const FINAL_CREDIT: u32 = 1 << 20;

/// The first disagreement of a run, attributed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The rule broken.
    pub rule: Rule,
    /// The failure's shape (failing seeds of a rule are grouped by it).
    pub mode: Mode,
    /// The first observation where implementation and model differ, and what
    /// the model expected instead.
    pub message: String,
    /// Index, in the run's trace, of the entry during which it showed.
    pub entry: usize,
    /// The entry itself, for humans.
    pub entry_text: String,
    /// Whether the implementation broke (panicked, crashed, hung) rather
    /// than answered wrongly.
    pub fault: bool,
    /// Whether the failure says nothing about the implementation's
    /// semantics: its adapter broke the protocol, so the run cannot be
    /// judged at all.
    pub unjudgeable: bool,
    /// Whether the run was cut short by the runner's time budget
    /// ([`crate::iut::Fault::OutOfTime`]): the failure is no failure, and
    /// the run says nothing about the implementation.
    pub cut: bool,
    /// The model's evidence, when the model (not a fault) found it.
    pub evidence: Option<Box<Disagreement>>,
}

impl Failure {
    /// The failure as attributed by `violation`, keeping where it showed.
    pub fn attributed(&self, violation: Violation) -> Failure {
        Failure {
            rule: violation.rule,
            mode: violation.mode,
            message: violation.message,
            ..self.clone()
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at entry {} (`{}`): {}",
            self.rule, self.entry, self.entry_text, self.message
        )
    }
}

/// Counts of what a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Ops applied.
    pub ops: u64,
    /// Scheduling steps taken (polls that ran something).
    pub polls: u64,
    /// Spurious wakeups injected.
    pub wakes: u64,
    /// Tasks moved to a new waker (`migrate` faults).
    pub migrations: u64,
    /// Preempted polls whose interjection ran at a yield point inside the
    /// poll (not after it).
    pub preempted: u64,
    /// Observations checked.
    pub observations: u64,
    /// Entries skipped because they were not valid (or not runnable) when
    /// their turn came.
    pub skipped: u64,
}

impl Counts {
    /// Adds `other`'s counts to these (summing runs of many seeds).
    pub fn add(&mut self, other: &Counts) {
        self.ops += other.ops;
        self.polls += other.polls;
        self.wakes += other.wakes;
        self.migrations += other.migrations;
        self.preempted += other.preempted;
        self.observations += other.observations;
        self.skipped += other.skipped;
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Run {
    /// What actually ran: every effective entry, up to and including the
    /// failing one.
    pub trace: Vec<Entry>,
    /// The first disagreement, if any.
    pub failure: Option<Failure>,
    /// How often each rule was checked.
    pub coverage: Coverage,
    /// What the run did.
    pub counts: Counts,
    /// A hash of every entry and observation, in order: two runs of one seed
    /// must agree on it (determinism).
    pub fingerprint: u64,
    /// Capabilities the implementation declared but answered `not
    /// supported` for: the rules needing them are not tested.
    pub unsupported: Capabilities,
    /// The capabilities the implementation declared.
    pub capabilities: Capabilities,
    /// The implementation's transcript of the run, if it keeps one (an
    /// out-of-process adapter: every request and reply).
    pub transcript: Option<Vec<String>>,
    /// For a replay: how many of the given entries were stepped (taking
    /// effect or skipped), the failing one included; for a generated run,
    /// the trace's length.
    pub stepped: usize,
}

/// A run in progress: an implementation, the model, and the trace so far.
pub struct Session<I: Implementation> {
    imp: I,
    model: Model,
    capabilities: Capabilities,
    trace: Vec<Entry>,
    counts: Counts,
    hasher: DefaultHasher,
    log: Option<Vec<String>>,
    steps: Option<Vec<Step>>,
    unsupported: Capabilities,
    /// What the implementation listed as runnable, if nothing has run since.
    listed: Option<Vec<TaskRef>>,
}

impl<I: Implementation> Session<I> {
    /// Starts a session on a fresh implementation, judged by the model with
    /// the spec's layout.
    pub fn new(imp: I) -> Session<I> {
        Session::laid_out(imp, Layout::SPEC)
    }

    /// Starts a session judged by a model whose buses are laid out as
    /// `layout` says (diagnosis: what would a bus laid out that way do?).
    pub fn laid_out(imp: I, layout: Layout) -> Session<I> {
        let capabilities = imp.info().capabilities;
        Session {
            imp,
            model: Model::with_layout(layout),
            capabilities,
            trace: Vec::new(),
            counts: Counts::default(),
            hasher: DefaultHasher::new(),
            log: None,
            steps: None,
            unsupported: Capabilities::none(),
            listed: None,
        }
    }

    /// Keeps a human-readable log of every entry that takes effect, the
    /// implementation's reply, and each observation.
    pub fn with_log(mut self) -> Self {
        self.log = Some(Vec::new());
        self
    }

    /// Keeps every entry that takes effect as data, with its reply and
    /// observations ([`Step`]).
    pub fn with_steps(mut self) -> Self {
        self.steps = Some(Vec::new());
        self
    }

    /// The steps so far (empty unless [`with_steps`](Session::with_steps)).
    pub fn take_steps(&mut self) -> Vec<Step> {
        self.steps.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The log so far (empty unless [`with_log`](Session::with_log)).
    pub fn take_log(&mut self) -> Vec<String> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(log) = self.log.as_mut() {
            log.push(line());
        }
    }

    /// The model's current state.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The tasks the implementation says are runnable. Until the next step,
    /// polling one of them must run it.
    pub fn runnable(&mut self) -> Vec<TaskRef> {
        let listed = self.imp.runnable();
        self.listed = Some(listed.clone());
        listed
    }

    /// A poll that ran nothing must report nothing, and must not be of a
    /// task the implementation listed as runnable just before (`listed`).
    fn check_idle_poll(
        &mut self,
        entry: &Entry,
        task: TaskRef,
        listed: Option<&[TaskRef]>,
    ) -> Result<(), Failure> {
        let reported = self.imp.take_observations();
        let complaint = if !reported.is_empty() {
            Some(format!(
                "a poll of {task} that ran nothing reported {} observations",
                reported.len()
            ))
        } else if task != TaskRef::Any && listed.is_some_and(|l| l.contains(&task)) {
            Some(format!(
                "{task} was listed as runnable just before, yet polling it ran nothing"
            ))
        } else {
            None
        };
        match complaint {
            Some(m) => Err(self.fault(entry, Fault::Protocol(m))),
            None => Ok(()),
        }
    }

    /// A wake or migration of a subscriber whose stream is still open must
    /// find its task.
    fn check_exists(&self, entry: &Entry, task: TaskRef) -> Result<(), Failure> {
        match task {
            TaskRef::Sub(sub) if self.model.is_held(sub) && !self.model.has_ended(sub) => {
                Err(self.fault(
                    entry,
                    Fault::Protocol(format!(
                        "{task} is a subscriber whose stream has not ended, yet the implementation says it has no such task"
                    )),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Runs one entry. Returns whether it took effect (`false`: skipped, as
    /// not valid or not runnable now).
    ///
    /// # Errors
    /// The first disagreement between implementation and model, attributed.
    pub fn step(&mut self, entry: &Entry) -> Result<bool, Failure> {
        // What was listed as runnable holds until something runs.
        let listed = self.listed.take();
        self.check_capability(entry)?;
        match entry {
            Entry::Op(op) => self.step_op(entry, op),
            Entry::Poll(task) => self.step_poll(entry, *task, listed.as_deref()),
            Entry::Preempt(task, with) => self.step_preempt(entry, *task, with, listed.as_deref()),
            Entry::Migrate(task) => {
                let moved = match self.imp.migrate(*task) {
                    Ok(moved) => moved,
                    Err(f) => return Err(self.fault_while(entry, f)),
                };
                self.step_moved(entry, *task, moved, |c| &mut c.migrations)
            }
            Entry::Wake(task) => {
                let woke = match self.imp.wake(*task) {
                    Ok(woke) => woke,
                    Err(f) => return Err(self.fault_while(entry, f)),
                };
                self.step_moved(entry, *task, woke, |c| &mut c.wakes)
            }
        }
    }

    /// A scheduling entry the implementation cannot carry out: the trace
    /// cannot be judged on it (skipping would quietly change what it tests).
    fn check_capability(&self, entry: &Entry) -> Result<(), Failure> {
        let needs = match entry {
            Entry::Op(Op::Abandon { .. }) => Some(Capability::Abandon),
            Entry::Op(Op::SpawnProcessor { .. }) => Some(Capability::Processors),
            Entry::Op(Op::FailScope { .. } | Op::FailSubscriber { .. }) => {
                Some(Capability::Failures)
            }
            Entry::Op(Op::SubscribeShared { .. }) => Some(Capability::Share),
            Entry::Op(Op::Reenter { .. }) => Some(Capability::Reenter),
            Entry::Op(_) => None,
            Entry::Poll(TaskRef::Any) => Some(Capability::Step),
            Entry::Poll(_) => Some(Capability::Schedule),
            Entry::Wake(_) => Some(Capability::Wake),
            Entry::Migrate(_) => Some(Capability::Migrate),
            Entry::Preempt(..) => Some(Capability::Preempt),
        };
        match needs.filter(|c| !self.capabilities.has(*c)) {
            Some(capability) => Err(self.unjudgeable(
                self.trace.len(),
                entry,
                format!(
                    "this entry needs the `{capability}` capability, which the implementation does not declare"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Whether `op` may run now: valid in the model, and not acting on an
    /// exited scope unless the implementation can (`exited_scopes`; an op
    /// it cannot run is skipped, as an invalid one, so that a trace made
    /// for another implementation still replays).
    fn runnable_op(&self, op: &Op) -> bool {
        self.model.validate(op).is_ok()
            && (self.capabilities.has(Capability::ExitedScopes)
                || !self.model.acts_on_exited_scope(op))
    }

    fn step_op(&mut self, entry: &Entry, op: &Op) -> Result<bool, Failure> {
        if !self.runnable_op(op) {
            self.counts.skipped += 1;
            return Ok(false);
        }
        self.record(entry);
        self.counts.ops += 1;
        let reply = self.imp.apply(op).map_err(|f| self.fault(entry, f))?;
        reply.hash(&mut self.hasher);
        self.note_reply(&reply);
        if let Err(OpError::NotSupported(why)) = &reply {
            return self.not_supported(entry, op, why);
        }
        self.model
            .apply(op, &reply)
            .map_err(|d| self.disagreement(entry, d))?;
        self.check_observations(entry)?;
        if *op == Op::Settle {
            self.check_settled(entry)?;
        }
        Ok(true)
    }

    /// The implementation cannot do `op` at all: the rules that depend on
    /// its capability are not tested (never passed), and the op changes
    /// nothing in the model. An op every workload needs cannot be judged.
    fn not_supported(&mut self, entry: &Entry, op: &Op, why: &str) -> Result<bool, Failure> {
        let exited = self.model.acts_on_exited_scope(op);
        match capability_of(op).or(exited.then_some(Capability::ExitedScopes)) {
            Some(capability) => {
                self.unsupported = self.unsupported.with(capability);
                self.check_observations(entry)?;
                Ok(true)
            }
            None => Err(self.unjudgeable(
                self.trace.len().saturating_sub(1),
                entry,
                format!(
                    "the implementation does not support `{}` ({why}), which every workload needs",
                    op.name()
                ),
            )),
        }
    }

    fn step_poll(
        &mut self,
        entry: &Entry,
        task: TaskRef,
        listed: Option<&[TaskRef]>,
    ) -> Result<bool, Failure> {
        let ran = match self.imp.poll(task) {
            Ok(ran) => ran,
            Err(f) => return Err(self.fault_while(entry, f)),
        };
        if !ran {
            self.check_idle_poll(entry, task, listed)?;
            self.counts.skipped += 1;
            return Ok(false);
        }
        self.record(entry);
        self.counts.polls += 1;
        self.check_observations(entry)?;
        Ok(true)
    }

    /// A wake or migration: `done` tells whether the task existed.
    fn step_moved(
        &mut self,
        entry: &Entry,
        task: TaskRef,
        done: bool,
        count: fn(&mut Counts) -> &mut u64,
    ) -> Result<bool, Failure> {
        if !done {
            self.check_exists(entry, task)?;
            self.counts.skipped += 1;
            return Ok(false);
        }
        self.record(entry);
        *count(&mut self.counts) += 1;
        Ok(true)
    }

    fn step_preempt(
        &mut self,
        entry: &Entry,
        task: TaskRef,
        with: &Interjection,
        listed: Option<&[TaskRef]>,
    ) -> Result<bool, Failure> {
        let valid = match with {
            Interjection::Op(op @ (Op::Send { .. } | Op::Spawn { .. })) => self.runnable_op(op),
            Interjection::Op(_) => false,
            Interjection::Poll(other) => *other != task && *other != TaskRef::Any,
        };
        if !valid || task == TaskRef::Any {
            self.counts.skipped += 1;
            return Ok(false);
        }
        let preempted = match self.imp.poll_preempted(task, with) {
            Ok(preempted) => preempted,
            Err(f) => return Err(self.fault_while(entry, f)),
        };
        let Some(preempted) = preempted else {
            self.check_idle_poll(entry, task, listed)?;
            self.counts.skipped += 1;
            return Ok(false);
        };
        if preempted.at_yield_point {
            self.counts.preempted += 1;
        }
        self.record(entry);
        self.counts.polls += 1;
        let observations = self.imp.take_observations();
        match (with, preempted.reply) {
            (Interjection::Op(op), Some(reply)) => {
                let split = preempted.observations_before.min(observations.len());
                self.check_interjected(entry, op, reply, &observations, split)?;
            }
            (Interjection::Poll(_), None) => {
                self.counts.polls += 1;
                self.check(entry, &observations)?;
            }
            (Interjection::Op(_), None) => {
                return Err(self.fault(
                    entry,
                    Fault::Protocol(
                        "a preempted poll ran an op but gave no reply to it".to_owned(),
                    ),
                ));
            }
            (Interjection::Poll(_), Some(_)) => {
                return Err(self.fault(
                    entry,
                    Fault::Protocol(
                        "a preempted poll ran a poll but gave a reply to an op".to_owned(),
                    ),
                ));
            }
        }
        Ok(true)
    }

    /// The op run inside a preempted poll: the observations reported before
    /// it (the first `split`), its reply, then the rest.
    fn check_interjected(
        &mut self,
        entry: &Entry,
        op: &Op,
        reply: Reply,
        observations: &[Observation],
        split: usize,
    ) -> Result<(), Failure> {
        self.counts.ops += 1;
        let (before, after) = observations.split_at(split);
        self.check(entry, before)?;
        reply.hash(&mut self.hasher);
        self.note_reply(&reply);
        if let Err(OpError::NotSupported(why)) = &reply {
            return Err(self.fault(
                entry,
                Fault::Protocol(format!(
                    "`{}` inside a poll is not supported ({why}), yet the implementation claims the `preempt` capability",
                    op.name()
                )),
            ));
        }
        self.model
            .apply(op, &reply)
            .map_err(|d| self.disagreement(entry, d))?;
        self.check(entry, after)
    }

    fn record(&mut self, entry: &Entry) {
        let index = self.trace.len();
        self.note(|| format!("{index:>6}  {entry}"));
        if let Some(steps) = self.steps.as_mut() {
            steps.push(Step {
                index,
                entry: entry.clone(),
                text: entry.to_string(),
                reply: None,
                observations: Vec::new(),
            });
        }
        entry.hash(&mut self.hasher);
        self.trace.push(entry.clone());
    }

    fn note_reply(&mut self, reply: &Reply) {
        if let Some(step) = self.steps.as_mut().and_then(|s| s.last_mut()) {
            step.reply = Some(reply_text(reply));
        }
        self.note(|| format!("        => {}", reply_text(reply)));
    }

    fn check_observations(&mut self, entry: &Entry) -> Result<(), Failure> {
        let observations = self.imp.take_observations();
        self.check(entry, &observations)
    }

    fn check(&mut self, entry: &Entry, observations: &[Observation]) -> Result<(), Failure> {
        // What one step reported is fingerprinted as a set: an implementation
        // may report simultaneous events in an order of its own (asyncio's
        // task groups cancel their tasks in set order, by address). The model
        // accepts any legal order; the trace does not depend on it.
        let mut hashes: Vec<u64> = observations
            .iter()
            .map(|o| {
                let mut h = DefaultHasher::new();
                o.hash(&mut h);
                h.finish()
            })
            .collect();
        hashes.sort_unstable();
        hashes.hash(&mut self.hasher);
        for observation in observations {
            self.note(|| format!("        -> {observation}"));
            if let Some(step) = self.steps.as_mut().and_then(|s| s.last_mut()) {
                step.observations.push(Observed::of(observation));
            }
            self.counts.observations += 1;
            self.model
                .observe(observation)
                .map_err(|d| self.disagreement(entry, d))?;
        }
        Ok(())
    }

    /// After a settle: liveness. A stuck or unended subscription is probed
    /// first ([`wake_probe`]), so that diagnosis can tell a lost wakeup from
    /// an event never given.
    fn check_settled(&mut self, entry: &Entry) -> Result<(), Failure> {
        let Err(found) = self.model.check_settled() else {
            return Ok(());
        };
        let probed = wake_probe::probe(found, &mut self.imp, &mut self.model, self.capabilities);
        Err(self.disagreement(entry, probed))
    }

    /// The failure the model's `disagreement` during `entry` is, attributed
    /// from its evidence.
    fn disagreement(&self, entry: &Entry, disagreement: Disagreement) -> Failure {
        let violation = diagnosis::classify(&disagreement);
        Failure {
            rule: violation.rule,
            mode: violation.mode,
            message: violation.message,
            entry: self.trace.len().saturating_sub(1),
            entry_text: entry.to_string(),
            fault: false,
            unjudgeable: false,
            cut: false,
            evidence: Some(Box::new(disagreement)),
        }
    }

    /// The implementation broke during `entry`.
    /// A fault while carrying out a scheduling entry, which is recorded only
    /// once it has run: it is recorded now, so that the trace ends with the
    /// entry the implementation failed on and replays to the same fault.
    fn fault_while(&mut self, entry: &Entry, fault: Fault) -> Failure {
        self.record(entry);
        self.fault(entry, fault)
    }

    fn fault(&self, entry: &Entry, fault: Fault) -> Failure {
        let violation = diagnosis::fault::fault(&fault, entry, &self.model);
        Failure {
            rule: violation.rule,
            mode: violation.mode,
            message: violation.message,
            entry: self.trace.len().saturating_sub(1),
            entry_text: entry.to_string(),
            fault: true,
            unjudgeable: fault.is_protocol(),
            cut: fault.is_cut(),
            evidence: None,
        }
    }

    /// The implementation cannot be driven through `entry` at all.
    fn unjudgeable(&self, at: usize, entry: &Entry, message: String) -> Failure {
        Failure {
            rule: Rule::Robust1,
            mode: Mode::Protocol,
            message,
            entry: at,
            entry_text: entry.to_string(),
            fault: true,
            unjudgeable: true,
            cut: false,
            evidence: None,
        }
    }

    /// Ends a workload the way every generated run ends: settle and observe;
    /// release every worker, close every scope, give every subscription
    /// enough credit to drain; settle and observe again. Afterwards
    /// everything has been checked, closed and drained.
    ///
    /// # Errors
    /// The first disagreement.
    pub fn wind_down(&mut self) -> Result<(), Failure> {
        self.step(&Entry::Op(Op::Settle))?;
        let stats = self.capabilities.has(Capability::Stats);
        if stats {
            for scope in self.model.usable_scopes() {
                self.step(&Entry::Op(Op::Observe { scope }))?;
            }
        }
        // In id order, so that the closing sequence reads naturally.
        let mut waiting = self.model.waiting_tasks().to_vec();
        waiting.sort();
        for task in waiting {
            self.step(&Entry::Op(Op::Release { task, send: None }))?;
        }
        for scope in self.model.closable_scopes() {
            self.step(&Entry::Op(Op::CloseScope { scope }))?;
        }
        let mut held = self.model.held_subs().to_vec();
        held.sort();
        for sub in held {
            self.step(&Entry::Op(Op::Consume {
                sub,
                k: FINAL_CREDIT,
            }))?;
        }
        self.step(&Entry::Op(Op::Settle))?;
        if stats {
            for scope in self.model.usable_scopes() {
                self.step(&Entry::Op(Op::Observe { scope }))?;
            }
        }
        Ok(())
    }

    /// Ends the session.
    pub fn finish(self, failure: Option<Failure>) -> Run {
        Run {
            stepped: self.trace.len(),
            trace: self.trace,
            failure,
            coverage: self.model.coverage().clone(),
            counts: self.counts,
            fingerprint: self.hasher.finish(),
            unsupported: self.unsupported,
            capabilities: self.capabilities,
            transcript: self.imp.transcript(),
        }
    }
}

/// The capability an op needs; `None` for the ops every implementation must
/// support.
pub fn capability_of(op: &Op) -> Option<Capability> {
    match op {
        Op::OpenScope {
            parent: Some(_),
            isolated: true,
            ..
        } => Some(Capability::Isolated),
        Op::CancelScope { .. } | Op::CancelSubscriber { .. } => Some(Capability::Cancel),
        Op::Observe { .. } => Some(Capability::Stats),
        Op::Spawn { .. } | Op::Release { .. } => Some(Capability::Tasks),
        Op::Abandon { .. } => Some(Capability::Abandon),
        Op::SpawnProcessor { .. } => Some(Capability::Processors),
        Op::FailScope { .. } | Op::FailSubscriber { .. } => Some(Capability::Failures),
        Op::SubscribeShared { .. } => Some(Capability::Share),
        Op::Reenter { .. } => Some(Capability::Reenter),
        _ => None,
    }
}

/// Reruns `entries` on `imp` exactly, skipping entries that are not valid
/// (or not runnable) when their turn comes. The failure, if any, is the
/// model's first disagreement, attributed from its evidence alone; the
/// counterfactual steps of [`crate::diagnosis::Diagnosis`] come on top.
pub fn replay(imp: &mut dyn Implementation, entries: &[Entry]) -> Run {
    replay_laid_out(imp, entries, Layout::SPEC)
}

/// [`replay`], judged by a model whose buses are laid out as `layout` says.
pub fn replay_laid_out(imp: &mut dyn Implementation, entries: &[Entry], layout: Layout) -> Run {
    let mut session = Session::laid_out(imp, layout);
    let mut failure = None;
    let mut stepped = 0;
    for entry in entries {
        stepped += 1;
        if let Err(f) = session.step(entry) {
            failure = Some(f);
            break;
        }
    }
    Run {
        stepped,
        ..session.finish(failure)
    }
}

/// What a generated run should look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Workload ops to draw (scheduling steps and the closing sequence come
    /// on top).
    pub ops: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig { ops: 200 }
    }
}

/// Generates the workload of `seed` and runs it on `imp` as it goes: each
/// op is drawn from the model's current state, then some scheduling steps
/// (and faults) follow, chosen by the seed's scheduler among the tasks that
/// are runnable at that moment. The run ends by releasing every worker,
/// closing every scope, giving every subscription enough credit to drain,
/// settling, and observing.
pub fn generate(seed: u64, config: GenConfig, imp: &mut dyn Implementation) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let capabilities = imp.info().capabilities;
    let mut swarm = Swarm::draw(&mut rng, capabilities, config.ops);
    let mut ids = Ids::default();
    let mut session = Session::new(imp);
    let result = drive(&mut session, &mut swarm, &mut rng, &mut ids, config);
    session.finish(result.err())
}

/// The swarm configuration `seed` draws, for reports.
pub fn swarm_of(seed: u64, capabilities: Capabilities, config: GenConfig) -> Swarm {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Swarm::draw(&mut rng, capabilities, config.ops)
}

fn drive(
    session: &mut Session<&mut dyn Implementation>,
    swarm: &mut Swarm,
    rng: &mut ChaCha8Rng,
    ids: &mut Ids,
    config: GenConfig,
) -> Result<(), Failure> {
    let schedule = swarm.capabilities.has(Capability::Schedule);
    let step = swarm.capabilities.has(Capability::Step);
    for _ in 0..config.ops {
        let op = swarm.next_op(rng, session.model(), ids);
        session.step(&Entry::Op(op))?;
        if !schedule {
            // An implementation that schedules itself still gets steps
            // between ops, of its own choice.
            if step {
                for _ in 0..rng.random_range(0..=swarm.max_steps) {
                    session.step(&Entry::Poll(TaskRef::Any))?;
                }
            }
            continue;
        }
        for _ in 0..rng.random_range(0..=swarm.max_steps) {
            if swarm.wake_p > 0.0 && rng.random_bool(swarm.wake_p) {
                let held = session.model().held_subs();
                if !held.is_empty() {
                    let sub = held[rng.random_range(0..held.len())];
                    session.step(&Entry::Wake(TaskRef::Sub(sub)))?;
                }
            }
            if swarm.migrate_p > 0.0 && rng.random_bool(swarm.migrate_p) {
                let held = session.model().held_subs();
                if !held.is_empty() {
                    let sub = held[rng.random_range(0..held.len())];
                    session.step(&Entry::Migrate(TaskRef::Sub(sub)))?;
                }
            }
            let runnable = session.runnable();
            let Some(task) = swarm.scheduler.pick(rng, &runnable) else {
                break;
            };
            let preempt = if swarm.preempt_p > 0.0 && rng.random_bool(swarm.preempt_p) {
                swarm.interjection(rng, task, &runnable, session.model(), ids)
            } else {
                None
            };
            match preempt {
                Some(with) => session.step(&Entry::Preempt(task, with))?,
                None => session.step(&Entry::Poll(task))?,
            };
        }
    }
    session.wind_down()
}

/// A reply as `replay -v` prints it.
fn reply_text(reply: &Reply) -> String {
    match reply {
        Ok(Answer::Done) => "ok".to_owned(),
        Ok(Answer::Stats(counts)) => {
            let parts: Vec<String> = counts
                .iter()
                .map(|c| {
                    let live = c.subscriptions.map_or("?".to_owned(), |n| n.to_string());
                    format!("{} {live} live, {} retained", c.ty, c.retained)
                })
                .collect();
            format!("stats: {}", parts.join("; "))
        }
        Err(e) => e.to_string(),
    }
}
