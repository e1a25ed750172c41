//! A proptest state machine over the same ops and the same model as the
//! seeded simulator: proptest generates workloads (ops and scheduling
//! choices), runs them on the reference bus through the harness, and on a
//! failure shrinks them with its own strategy. Failing cases are persisted
//! in `sim/tests/regressions/state_machine.txt` (commit it) and rerun first on
//! every `cargo test`.
//!
//! A second test runs the same machine against mutants and requires that it
//! finds them: a state machine that cannot fail would prove nothing.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestError, TestRng, TestRunner,
};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use scopebus::mutants::Mutant;
use scopebus_sim::catalogue::EventType;
use scopebus_sim::harness::Session;
use scopebus_sim::op::{
    Entry, Interjection, Op, ReentryAction, ScopeId, SendSpec, SubId, TaskId, TaskRef,
};
use scopebus_sim::reference::ReferenceImpl;

/// What the generator needs to know to draw valid entries: the handles in
/// play. (Validity against the implementation's timing, e.g. a scope that has
/// exited by now, is the harness's business: it skips such entries.)
#[derive(Clone, Debug, Default)]
struct Handles {
    /// Usable scopes, with their parents.
    scopes: Vec<(ScopeId, Option<ScopeId>)>,
    /// Scopes closed or cancelled: sends and subscribes through their
    /// handles (EXIT-1).
    gone: Vec<ScopeId>,
    roots: Vec<ScopeId>,
    subs: Vec<SubId>,
    all_subs: Vec<SubId>,
    tasks: Vec<TaskId>,
    next_scope: u32,
    next_sub: u32,
    next_task: u32,
    next_event: u64,
}

impl Handles {
    fn scope_ids(&self) -> Vec<ScopeId> {
        self.scopes.iter().map(|(s, _)| *s).collect()
    }
    fn has_scope(&self, s: &ScopeId) -> bool {
        self.scopes.iter().any(|(id, _)| id == s)
    }
}

struct Workload;

fn maybe_scope(scopes: Vec<ScopeId>) -> BoxedStrategy<Option<ScopeId>> {
    if scopes.is_empty() {
        Just(None).boxed()
    } else {
        prop_oneof![1 => Just(None), 12 => select(scopes).prop_map(Some)].boxed()
    }
}

impl ReferenceStateMachine for Workload {
    type State = Handles;
    type Transition = Entry;

    fn init_state() -> BoxedStrategy<Handles> {
        Just(Handles::default()).boxed()
    }

    fn transitions(state: &Handles) -> BoxedStrategy<Entry> {
        let ty = || select(EventType::ALL.to_vec());
        let scopes = state.scope_ids();
        let scope = state.next_scope + 1;
        let sub = state.next_sub + 1;
        let task = state.next_task + 1;
        let event = state.next_event + 1;
        let mut options: Vec<(u32, BoxedStrategy<Entry>)> = vec![
            (
                3,
                (maybe_scope(scopes.clone()), any::<bool>())
                    .prop_map(move |(parent, isolated)| {
                        Entry::Op(Op::OpenScope {
                            scope: ScopeId(scope),
                            parent,
                            isolated: isolated && parent.is_some(),
                        })
                    })
                    .boxed(),
            ),
            (
                4,
                (maybe_scope(scopes.clone()), ty())
                    .prop_map(move |(scope, ty)| {
                        Entry::Op(Op::Subscribe {
                            sub: SubId(sub),
                            scope,
                            ty,
                        })
                    })
                    .boxed(),
            ),
            (
                6,
                (maybe_scope(scopes.clone()), ty())
                    .prop_map(move |(scope, ty)| Entry::Op(Op::Send { scope, ty, event }))
                    .boxed(),
            ),
            (1, Just(Entry::Op(Op::Settle)).boxed()),
        ];
        if !scopes.is_empty() {
            let pick = || select(scopes.clone());
            options.push((
                1,
                pick()
                    .prop_map(|scope| Entry::Op(Op::CloseScope { scope }))
                    .boxed(),
            ));
            options.push((
                1,
                pick()
                    .prop_map(|scope| Entry::Op(Op::CancelScope { scope }))
                    .boxed(),
            ));
            options.push((
                1,
                pick()
                    .prop_map(|scope| Entry::Op(Op::Observe { scope }))
                    .boxed(),
            ));
            let open_roots: Vec<ScopeId> = state
                .scopes
                .iter()
                .filter(|(_, parent)| parent.is_none())
                .map(|(s, _)| *s)
                .collect();
            if !open_roots.is_empty() {
                options.push((
                    1,
                    select(open_roots)
                        .prop_map(|scope| Entry::Op(Op::FailScope { scope }))
                        .boxed(),
                ));
            }
            options.push((
                1,
                (pick(), ty())
                    .prop_map(move |(scope, ty)| {
                        Entry::Op(Op::SubscribeShared {
                            sub: SubId(sub),
                            puller: SubId(sub + 1),
                            scope,
                            ty,
                        })
                    })
                    .boxed(),
            ));
            options.push((
                1,
                (pick(), ty())
                    .prop_map(move |(scope, ty)| {
                        Entry::Op(Op::SpawnProcessor {
                            sub: SubId(sub),
                            scope,
                            ty,
                        })
                    })
                    .boxed(),
            ));
            options.push((
                1,
                pick()
                    .prop_map(move |scope| {
                        Entry::Op(Op::Spawn {
                            task: TaskId(task),
                            scope,
                        })
                    })
                    .boxed(),
            ));
        }
        if !state.subs.is_empty() {
            let pick = || select(state.subs.clone());
            options.push((
                6,
                (pick(), 1..4u32)
                    .prop_map(|(sub, k)| Entry::Op(Op::Consume { sub, k }))
                    .boxed(),
            ));
            options.push((
                1,
                pick()
                    .prop_map(|sub| Entry::Op(Op::DropSubscription { sub }))
                    .boxed(),
            ));
            options.push((
                1,
                pick()
                    .prop_map(|sub| Entry::Op(Op::CancelSubscriber { sub }))
                    .boxed(),
            ));
            options.push((
                2,
                pick()
                    .prop_map(|sub| Entry::Op(Op::Abandon { sub }))
                    .boxed(),
            ));
            // REENTER-1: a probe on the task, run by the bus's callbacks.
            options.push((
                1,
                (
                    pick(),
                    prop_oneof![Just(ReentryAction::Stats), Just(ReentryAction::Subscribe)],
                )
                    .prop_map(|(sub, action)| Entry::Op(Op::Reenter { sub, action }))
                    .boxed(),
            ));
            options.push((
                1,
                (pick(), proptest::option::of(ty()))
                    .prop_map(move |(sub, send)| {
                        Entry::Op(Op::FailSubscriber {
                            sub,
                            send: send.map(|ty| SendSpec { ty, event }),
                        })
                    })
                    .boxed(),
            ));
            options.push((
                2,
                pick()
                    .prop_map(|sub| Entry::Wake(TaskRef::Sub(sub)))
                    .boxed(),
            ));
        }
        if !state.tasks.is_empty() {
            options.push((
                1,
                (select(state.tasks.clone()), proptest::option::of(ty()))
                    .prop_map(move |(task, send)| {
                        Entry::Op(Op::Release {
                            task,
                            send: send.map(|ty| SendSpec { ty, event }),
                        })
                    })
                    .boxed(),
            ));
        }
        let mut runnable: Vec<TaskRef> = state.roots.iter().map(|s| TaskRef::Scope(*s)).collect();
        runnable.extend(state.all_subs.iter().map(|s| TaskRef::Sub(*s)));
        if !runnable.is_empty() {
            options.push((8, select(runnable).prop_map(Entry::Poll).boxed()));
        }
        if !state.all_subs.is_empty() && !scopes.is_empty() {
            // A subscriber's poll, preempted by a send at its yield point.
            options.push((
                3,
                (select(state.all_subs.clone()), select(scopes.clone()), ty())
                    .prop_map(move |(sub, scope, ty)| {
                        Entry::Preempt(
                            TaskRef::Sub(sub),
                            Interjection::Op(Op::Send {
                                scope: Some(scope),
                                ty,
                                event,
                            }),
                        )
                    })
                    .boxed(),
            ));
        }
        if !state.roots.is_empty() && !scopes.is_empty() {
            // A scope task's poll, preempted by a spawn (racing with its
            // exit) at its yield point.
            options.push((
                2,
                (select(state.roots.clone()), select(scopes.clone()))
                    .prop_map(move |(root, scope)| {
                        Entry::Preempt(
                            TaskRef::Scope(root),
                            Interjection::Op(Op::Spawn {
                                task: TaskId(task),
                                scope,
                            }),
                        )
                    })
                    .boxed(),
            ));
        }
        let mut tasks: Vec<TaskRef> = state.roots.iter().map(|s| TaskRef::Scope(*s)).collect();
        tasks.extend(state.all_subs.iter().map(|s| TaskRef::Sub(*s)));
        if tasks.len() >= 2 {
            // One task's poll, preempted by another's.
            options.push((
                2,
                (select(tasks.clone()), select(tasks))
                    .prop_filter("two different tasks", |(a, b)| a != b)
                    .prop_map(|(a, b)| Entry::Preempt(a, Interjection::Poll(b)))
                    .boxed(),
            ));
        }
        if !state.all_subs.is_empty() {
            options.push((
                1,
                select(state.all_subs.clone())
                    .prop_map(|sub| Entry::Migrate(TaskRef::Sub(sub)))
                    .boxed(),
            ));
        }
        if !state.gone.is_empty() {
            // EXIT-1: through the handle of a scope that has gone.
            let gone = state.gone.clone();
            options.push((
                1,
                (select(gone.clone()), ty())
                    .prop_map(move |(scope, ty)| {
                        Entry::Op(Op::Send {
                            scope: Some(scope),
                            ty,
                            event,
                        })
                    })
                    .boxed(),
            ));
            options.push((
                1,
                (select(gone), ty())
                    .prop_map(move |(scope, ty)| {
                        Entry::Op(Op::Subscribe {
                            sub: SubId(sub),
                            scope: Some(scope),
                            ty,
                        })
                    })
                    .boxed(),
            ));
        }
        Union::new_weighted(options).boxed()
    }

    fn preconditions(state: &Handles, entry: &Entry) -> bool {
        let scope_ok = |s: &Option<ScopeId>| s.as_ref().is_none_or(|s| state.has_scope(s));
        match entry {
            Entry::Op(op) => match op {
                Op::OpenScope { parent, .. } => scope_ok(parent),
                Op::CloseScope { scope } | Op::CancelScope { scope } | Op::Observe { scope } => {
                    state.has_scope(scope)
                }
                Op::FailScope { scope } => state.scopes.contains(&(*scope, None)),
                Op::Subscribe { scope, .. } | Op::Send { scope, .. } => {
                    scope_ok(scope) || scope.is_some_and(|s| state.gone.contains(&s))
                }
                Op::SpawnProcessor { scope, .. } | Op::SubscribeShared { scope, .. } => {
                    state.has_scope(scope)
                }
                Op::Consume { sub, .. }
                | Op::DropSubscription { sub }
                | Op::CancelSubscriber { sub }
                | Op::Abandon { sub }
                | Op::Reenter { sub, .. }
                | Op::FailSubscriber { sub, .. } => state.subs.contains(sub),
                Op::Spawn { scope, .. } => state.has_scope(scope),
                Op::Release { task, .. } => state.tasks.contains(task),
                Op::Settle => true,
            },
            Entry::Poll(TaskRef::Scope(s)) | Entry::Wake(TaskRef::Scope(s)) => {
                state.roots.contains(s)
            }
            Entry::Preempt(task, with) => {
                let task_ok = |task: &TaskRef| match task {
                    TaskRef::Scope(s) => state.roots.contains(s),
                    TaskRef::Sub(s) => state.all_subs.contains(s),
                    TaskRef::Any => true,
                };
                task_ok(task)
                    && match with {
                        Interjection::Op(Op::Send { scope, .. }) => scope_ok(scope),
                        Interjection::Op(Op::Spawn { scope, .. }) => state.has_scope(scope),
                        Interjection::Op(_) => false,
                        Interjection::Poll(other) => task_ok(other),
                    }
            }
            Entry::Poll(TaskRef::Sub(s))
            | Entry::Wake(TaskRef::Sub(s))
            | Entry::Migrate(TaskRef::Sub(s)) => state.all_subs.contains(s),
            Entry::Migrate(TaskRef::Scope(s)) => state.roots.contains(s),
            Entry::Poll(TaskRef::Any)
            | Entry::Wake(TaskRef::Any)
            | Entry::Migrate(TaskRef::Any) => true,
        }
    }

    fn apply(mut state: Handles, entry: &Entry) -> Handles {
        let op = match entry {
            Entry::Op(op) | Entry::Preempt(_, Interjection::Op(op)) => op,
            _ => return state,
        };
        match op {
            Op::OpenScope { scope, parent, .. } => {
                state.next_scope = state.next_scope.max(scope.0);
                state.scopes.push((*scope, *parent));
                if parent.is_none() {
                    state.roots.push(*scope);
                }
            }
            Op::CloseScope { scope } => {
                state.scopes.retain(|(s, _)| s != scope);
                state.gone.push(*scope);
            }
            Op::CancelScope { scope } | Op::FailScope { scope } => {
                // The scope and everything nested in it.
                let mut gone = vec![*scope];
                while let Some(child) = state
                    .scopes
                    .iter()
                    .find(|(s, p)| p.is_some_and(|p| gone.contains(&p)) && !gone.contains(s))
                    .map(|(s, _)| *s)
                {
                    gone.push(child);
                }
                state.scopes.retain(|(s, _)| !gone.contains(s));
                state.gone.extend(gone);
            }
            Op::Subscribe { sub, scope, .. } => {
                state.next_sub = state.next_sub.max(sub.0);
                if scope.is_some() {
                    state.subs.push(*sub);
                    state.all_subs.push(*sub);
                }
            }
            Op::SubscribeShared { sub, puller, .. } => {
                state.next_sub = state.next_sub.max(sub.0).max(puller.0);
                state.subs.extend([*sub, *puller]);
                state.all_subs.extend([*sub, *puller]);
            }
            // A processor's subscription takes no consume, drop or abandon.
            Op::SpawnProcessor { sub, .. } => state.next_sub = state.next_sub.max(sub.0),
            Op::Send { event, .. } => state.next_event = state.next_event.max(*event),
            Op::Abandon { .. } | Op::Reenter { .. } => {}
            Op::DropSubscription { sub } | Op::CancelSubscriber { sub } => {
                state.subs.retain(|s| s != sub)
            }
            Op::FailSubscriber { sub, send } => {
                state.subs.retain(|s| s != sub);
                if let Some(s) = send {
                    state.next_event = state.next_event.max(s.event);
                }
            }
            Op::Spawn { task, .. } => {
                state.next_task = state.next_task.max(task.0);
                state.tasks.push(*task);
            }
            Op::Release { task, send } => {
                state.tasks.retain(|t| t != task);
                if let Some(s) = send {
                    state.next_event = state.next_event.max(s.event);
                }
            }
            Op::Consume { .. } | Op::Settle | Op::Observe { .. } => {}
        }
        state
    }
}

/// The reference bus, run through the harness against the model.
struct ReferenceBus;

impl StateMachineTest for ReferenceBus {
    type SystemUnderTest = Session<ReferenceImpl>;
    type Reference = Workload;

    fn init_test(_: &Handles) -> Self::SystemUnderTest {
        Session::new(ReferenceImpl::new(None))
    }

    fn apply(
        mut session: Self::SystemUnderTest,
        _: &Handles,
        entry: Entry,
    ) -> Self::SystemUnderTest {
        if let Err(failure) = session.step(&entry) {
            panic!("{failure}");
        }
        session
    }

    fn teardown(mut session: Self::SystemUnderTest, _: Handles) {
        if let Err(failure) = session.wind_down() {
            panic!("{failure}");
        }
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        .. Config::default()
    })]

    #[test]
    fn reference_bus_agrees_with_the_model(sequential 1..160 => ReferenceBus);
}

/// Runs the same state machine against `mutant` and returns the shrunk
/// failing case's length, or `None` if the mutant survived.
fn hunt(mutant: Mutant) -> Option<usize> {
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    // A fixed seed: whether the hunt succeeds must not depend on the run
    // (a race mutant such as recheck-skipped is rare in 512 random cases).
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&Workload::sequential_strategy(1..160), |(_, entries, _)| {
        let mut session = Session::new(ReferenceImpl::new(Some(mutant)));
        for entry in &entries {
            if let Err(f) = session.step(entry) {
                return Err(TestCaseError::fail(f.to_string()));
            }
        }
        session
            .wind_down()
            .map_err(|f| TestCaseError::fail(f.to_string()))
    });
    match result {
        Err(TestError::Fail(_, (_, entries, _))) => Some(entries.len()),
        _ => None,
    }
}

#[test]
fn the_state_machine_catches_mutants() {
    for mutant in [
        Mutant::Lifo,
        Mutant::LeakOnDrop,
        Mutant::VisibleLastEvent,
        Mutant::IsolatedSharesParent,
        Mutant::RecheckSkipped,
    ] {
        let size =
            hunt(mutant).unwrap_or_else(|| panic!("{} survived the state machine", mutant.name()));
        assert!(
            size <= 20,
            "{}: shrunk only to {size} entries",
            mutant.name()
        );
    }
}

/// A measurement, not a check: runs `$SCOPEBUS_PROPTEST_CASES` cases
/// (default 1,000) of the state machine on the reference bus, generation
/// and shrinking machinery included, and prints one line
/// `proptest-throughput {"cases": N, "entries": E, "seconds": S}` for
/// `cargo xtask bench`. Ignored by `cargo test`; run it with `--ignored`.
#[test]
#[ignore = "a measurement for cargo xtask bench"]
fn proptest_throughput() {
    let cases: u32 = std::env::var("SCOPEBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let entries = std::cell::Cell::new(0usize);
    let started = std::time::Instant::now();
    let result = runner.run(&Workload::sequential_strategy(1..160), |(_, steps, _)| {
        entries.set(entries.get() + steps.len());
        let mut session = Session::new(ReferenceImpl::new(None));
        for entry in &steps {
            if let Err(f) = session.step(entry) {
                return Err(TestCaseError::fail(f.to_string()));
            }
        }
        session
            .wind_down()
            .map_err(|f| TestCaseError::fail(f.to_string()))
    });
    let seconds = started.elapsed().as_secs_f64();
    assert!(result.is_ok(), "the reference bus failed: {result:?}");
    println!(
        "proptest-throughput {{\"cases\": {cases}, \"entries\": {}, \"seconds\": {seconds}}}",
        entries.get()
    );
}
