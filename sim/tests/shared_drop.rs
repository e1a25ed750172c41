//! A drop of a shared subscription (`subscribe_shared`) ends both its tasks
//! at once; CANCEL-1's counterfactual stands an abandon of each task, in
//! turn, in its place. What the drop did may then show at the first of
//! them: that is still the drop's point, and a sibling broken there by the
//! abandoned receive alone is CANCEL-2's (Haiway, whose receive cancels the
//! future every subscription of the type waits on), while one that only the
//! drop breaks stays CANCEL-1's.

use scopebus_sim::catalogue::EventType;
use scopebus_sim::diagnosis::Diagnosis;
use scopebus_sim::iut::{Fault, ImplInfo, Implementation};
use scopebus_sim::model::Layout;
use scopebus_sim::op::{Answer, Entry, Observation, Op, Reply, ScopeId, SubId, TaskRef};
use scopebus_sim::rules::{Capabilities, Capability, Rule};
use std::collections::BTreeSet;

/// A scripted bus that sends nothing: every op succeeds, and the first
/// abandon (if `abandon_breaks`) or the first drop of a subscription of
/// the processors' type makes every live processor's pull raise.
struct Scripted {
    abandon_breaks: bool,
    processors: BTreeSet<SubId>,
    broken: bool,
    observed: Vec<Observation>,
}

impl Scripted {
    fn new(abandon_breaks: bool) -> Scripted {
        Scripted {
            abandon_breaks,
            processors: BTreeSet::new(),
            broken: false,
            observed: Vec::new(),
        }
    }

    /// Every processor's pull raises, once.
    fn break_processors(&mut self) {
        if std::mem::replace(&mut self.broken, true) {
            return;
        }
        for sub in &self.processors {
            self.observed.push(Observation::Failed {
                sub: *sub,
                error: "asyncio.exceptions.CancelledError: CancelledError".into(),
            });
        }
    }
}

impl Implementation for Scripted {
    fn info(&self) -> ImplInfo {
        ImplInfo {
            name: "scripted".into(),
            language: "rust".into(),
            version: "0".into(),
            runtime: None,
            emulates: Vec::new(),
            capabilities: [
                Capability::Step,
                Capability::Abandon,
                Capability::Processors,
                Capability::Share,
                Capability::Cancel,
            ]
            .into_iter()
            .collect::<Capabilities>(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        match op {
            Op::SpawnProcessor { sub, .. } => {
                self.processors.insert(*sub);
            }
            Op::Abandon { .. } if self.abandon_breaks => self.break_processors(),
            Op::DropSubscription { .. } => self.break_processors(),
            _ => {}
        }
        Ok(Ok(Answer::Done))
    }

    fn runnable(&self) -> Vec<TaskRef> {
        Vec::new()
    }

    fn poll(&mut self, _task: TaskRef) -> Result<bool, Fault> {
        Ok(false)
    }

    fn wake(&mut self, _task: TaskRef) -> Result<bool, Fault> {
        Ok(false)
    }

    fn take_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.observed)
    }
}

/// Haiway's seed 623, shrunk: a shared subscription and a processor of its
/// type; the shared subscription's first task waits in a pull when the
/// subscription is dropped.
fn trace() -> Vec<Entry> {
    let (scope, ty) = (ScopeId(1), EventType::GenericU16);
    vec![
        Entry::Op(Op::OpenScope {
            scope,
            parent: None,
            isolated: false,
        }),
        Entry::Op(Op::SubscribeShared {
            sub: SubId(1),
            puller: SubId(2),
            scope,
            ty,
        }),
        Entry::Op(Op::SpawnProcessor {
            sub: SubId(3),
            scope,
            ty,
        }),
        Entry::Poll(TaskRef::Any),
        Entry::Op(Op::Consume {
            sub: SubId(1),
            k: 1,
        }),
        Entry::Poll(TaskRef::Any),
        Entry::Op(Op::DropSubscription { sub: SubId(1) }),
    ]
}

fn judged(abandon_breaks: bool) -> Rule {
    let mut diagnosis = Diagnosis::with_layout(Layout::SPEC, move || Scripted::new(abandon_breaks));
    let run = diagnosis.judge(&trace());
    let failure = run.failure.expect("the drop breaks the processor's pull");
    assert!(
        failure.entry_text.contains("drop sub#1"),
        "fails at the drop: {failure}"
    );
    failure.rule
}

#[test]
fn a_sibling_broken_at_the_first_abandon_standing_for_a_shared_drop_is_cancel_2() {
    assert_eq!(judged(true), Rule::Cancel2);
}

#[test]
fn a_sibling_that_only_the_drop_breaks_stays_cancel_1() {
    assert_eq!(judged(false), Rule::Cancel1);
}
