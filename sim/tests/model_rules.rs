//! The model, pinned rule by rule with hand-written scenarios: for each rule
//! of SPEC.md, the behaviour the rule allows passes, and a behaviour that
//! breaks it is reported under that rule's ID.

use scopebus_sim::catalogue::EventType::{self, *};
use scopebus_sim::diagnosis::classify;
use scopebus_sim::model::{Disagreement, Mode, Model, Violation};
use scopebus_sim::op::{
    Answer, Observation, Op, OpError, ReentryAction, ReentryOutcome, ReentryPoint, Reply, ScopeId,
    SendSpec, SubId, TaskId, TypeCount,
};
use scopebus_sim::rules::Rule;

const DONE: Reply = Ok(Answer::Done);

struct World(Model);

fn s(n: u32) -> ScopeId {
    ScopeId(n)
}
fn sub(n: u32) -> SubId {
    SubId(n)
}

impl World {
    fn new() -> World {
        World(Model::new())
    }
    /// Applies a valid op that the implementation answered as expected.
    fn ok(&mut self, op: Op) -> &mut Self {
        self.0.validate(&op).expect("valid op");
        let reply = match &op {
            Op::Subscribe { scope: None, .. } | Op::Send { scope: None, .. } => {
                Err(OpError::ContextMissing)
            }
            _ => DONE,
        };
        self.0.apply(&op, &reply).expect("expected reply");
        self
    }
    fn reply(&mut self, op: Op, reply: Reply) -> Result<(), Violation> {
        self.0.validate(&op).expect("valid op");
        self.0.apply(&op, &reply).map_err(|d| classify(&d))
    }
    fn see(&mut self, o: Observation) -> Result<(), Violation> {
        self.0.observe(&o).map_err(|d| classify(&d))
    }
    fn seen(&mut self, o: Observation) -> &mut Self {
        self.0.observe(&o).expect("allowed observation");
        self
    }
    fn root(&mut self, n: u32) -> &mut Self {
        self.ok(Op::OpenScope {
            scope: s(n),
            parent: None,
            isolated: false,
        })
    }
    fn nested(&mut self, n: u32, parent: u32, isolated: bool) -> &mut Self {
        self.ok(Op::OpenScope {
            scope: s(n),
            parent: Some(s(parent)),
            isolated,
        })
    }
    fn subscribe(&mut self, id: u32, scope: u32, ty: EventType) -> &mut Self {
        self.ok(Op::Subscribe {
            sub: sub(id),
            scope: Some(s(scope)),
            ty,
        })
        .ok(Op::Consume {
            sub: sub(id),
            k: 10,
        })
    }
    fn send(&mut self, scope: u32, ty: EventType, event: u64) -> &mut Self {
        self.ok(Op::Send {
            scope: Some(s(scope)),
            ty,
            event,
        })
    }
    fn got(&mut self, id: u32, event: u64) -> Result<(), Violation> {
        self.see(Observation::Received {
            sub: sub(id),
            event,
        })
    }
    fn close(&mut self, scope: u32) -> &mut Self {
        self.ok(Op::CloseScope { scope: s(scope) })
            .seen(Observation::ScopeClosing { scope: s(scope) })
    }
    fn stats(
        &mut self,
        scope: u32,
        ty: EventType,
        subs: u64,
        retained: u64,
    ) -> Result<(), Violation> {
        self.reply(
            Op::Observe { scope: s(scope) },
            Ok(Answer::Stats(vec![TypeCount {
                ty,
                subscriptions: Some(subs),
                retained,
                retained_events: None,
            }])),
        )
    }
    fn settle(&mut self) -> Result<(), Disagreement> {
        self.0.apply(&Op::Settle, &DONE).expect("settle");
        self.0.check_settled()
    }
}

/// The rule of a settle's finding, given what the wake probe showed.
fn probed(d: Disagreement, woken: Option<bool>) -> Rule {
    match d {
        Disagreement::Stuck(mut s) => {
            s.woken = woken;
            classify(&Disagreement::Stuck(s)).rule
        }
        Disagreement::Unended(mut u) => {
            u.ended_when_woken = woken;
            classify(&Disagreement::Unended(u)).rule
        }
        other => panic!("not a liveness finding: {other:?}"),
    }
}

/// The rule of a settle's finding that is not about subscriptions.
fn settled_rule(r: Result<(), Disagreement>) -> Rule {
    classify(&r.expect_err("the model must object")).rule
}

fn rule(r: Result<(), Violation>) -> Rule {
    r.expect_err("the model must object").rule
}

#[test]
fn route_1_exact_type() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, AlphaPing)
        .subscribe(2, 1, PingAlias);
    w.send(1, BetaPing, 1)
        .send(1, DerivedPing, 2)
        .send(1, AlphaPing, 3);
    w.got(1, 3).unwrap();
    w.got(2, 3)
        .expect("ROUTE-1: an alias receives its target's events");
    let mut w = World::new();
    w.root(1).subscribe(1, 1, AlphaPing).send(1, BetaPing, 1);
    assert_eq!(rule(w.got(1, 1)), Rule::Route1, "same name, other module");
    let mut w = World::new();
    w.root(1).subscribe(1, 1, GenericU8).send(1, GenericU16, 1);
    assert_eq!(
        rule(w.got(1, 1)),
        Rule::Route2,
        "other generic instantiation"
    );
    let mut w = World::new();
    w.root(1).subscribe(1, 1, AlphaPing).send(1, DerivedPing, 1);
    assert_eq!(rule(w.got(1, 1)), Rule::Route1, "subclass");
}

#[test]
fn vis_1_nothing_from_before_subscription() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .send(1, Login, 1)
        .subscribe(2, 1, Login);
    w.send(1, Login, 2);
    assert_eq!(rule(w.got(2, 1)), Rule::Vis1);
    w.got(2, 2).unwrap();
}

#[test]
fn fanout_1_every_subscription_gets_everything() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .subscribe(2, 1, Login)
        .send(1, Login, 1);
    w.got(1, 1).unwrap();
    let found = w
        .settle()
        .expect_err("sub#2 has credit and an event waiting: it is stuck");
    let Disagreement::Stuck(stuck) = &found else {
        panic!("stuck, not {found:?}");
    };
    assert_eq!(stuck.subs, vec![sub(2)]);
    assert_eq!(probed(found, Some(false)), Rule::Fanout1);
    w.got(2, 1).unwrap();
    w.settle().unwrap();
}

#[test]
fn fifo_1_order_and_once() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .send(1, Login, 1)
        .send(1, Login, 2);
    assert_eq!(rule(w.got(1, 2)), Rule::Fifo1, "out of order");
    w.got(1, 1).unwrap();
    assert_eq!(rule(w.got(1, 1)), Rule::Fifo1, "twice");
    w.got(1, 2).unwrap();
}

#[test]
fn drop_1_no_subscriber_no_storage_no_late_delivery() {
    let mut w = World::new();
    w.root(1).send(1, Login, 1).subscribe(1, 1, Login);
    assert_eq!(rule(w.got(1, 1)), Rule::Drop1);
    let mut w = World::new();
    w.root(1).send(1, Login, 1);
    w.stats(1, Login, 0, 0).unwrap();
    let mut w = World::new();
    w.root(1).send(1, Login, 1);
    assert_eq!(
        rule(w.stats(1, Login, 0, 1)),
        Rule::Drop1,
        "stored with no subscriber"
    );
}

#[test]
fn reclaim_1_retained_is_what_live_cursors_need() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .subscribe(2, 1, Login)
        .send(1, Login, 1)
        .send(1, Login, 2);
    w.stats(1, Login, 2, 2).unwrap();
    w.got(1, 1).unwrap();
    w.got(1, 2).unwrap();
    w.stats(1, Login, 2, 2).expect("sub#2 still needs both");
    w.got(2, 1).unwrap();
    assert_eq!(
        rule(w.stats(1, Login, 2, 2)),
        Rule::Reclaim1,
        "event#1 must be freed"
    );
    w.stats(1, Login, 2, 1).unwrap();
}

#[test]
fn reclaim_2_dropped_subscription_holds_nothing() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .subscribe(2, 1, Login)
        .send(1, Login, 1);
    w.got(1, 1).unwrap();
    w.ok(Op::DropSubscription { sub: sub(2) });
    assert_eq!(rule(w.stats(1, Login, 1, 1)), Rule::Reclaim2);
    assert_eq!(rule(w.stats(1, Login, 2, 0)), Rule::Reclaim2);
    w.stats(1, Login, 1, 0).unwrap();
}

#[test]
fn scope_1_roots_have_their_own_buses() {
    let mut w = World::new();
    w.root(1).root(2).subscribe(1, 1, Login).send(2, Login, 1);
    assert_eq!(rule(w.got(1, 1)), Rule::Scope1);
    let mut w = World::new();
    w.root(1);
    let r = w.reply(
        Op::Subscribe {
            sub: sub(1),
            scope: Some(s(1)),
            ty: Login,
        },
        Err(OpError::ContextMissing),
    );
    assert_eq!(rule(r), Rule::Scope1, "a root scope always has a bus");
}

#[test]
fn scope_2_nested_shares_parent_bus() {
    let mut w = World::new();
    w.root(1)
        .nested(2, 1, false)
        .subscribe(1, 2, Login)
        .subscribe(2, 1, Login);
    w.send(1, Login, 1).send(2, Login, 2);
    w.got(1, 1).expect("child sees parent's events");
    w.got(2, 1).unwrap();
    w.got(2, 2).expect("parent sees child's events");
    let mut w = World::new();
    w.root(1).nested(2, 1, false);
    let r = w.reply(
        Op::Send {
            scope: Some(s(2)),
            ty: Login,
            event: 1,
        },
        Err(OpError::ContextMissing),
    );
    assert_eq!(rule(r), Rule::Scope2);
}

#[test]
fn scope_3_isolated_is_separate_both_ways() {
    let mut w = World::new();
    w.root(1)
        .nested(2, 1, true)
        .subscribe(1, 2, Login)
        .subscribe(2, 1, Login);
    w.send(1, Login, 1).send(2, Login, 2);
    assert_eq!(rule(w.got(1, 1)), Rule::Scope3, "parent to isolated child");
    assert_eq!(rule(w.got(2, 2)), Rule::Scope3, "isolated child to parent");
    w.got(1, 2).unwrap();
    w.got(2, 1).unwrap();
}

#[test]
fn missing_1_no_bus_no_service() {
    let mut w = World::new();
    w.ok(Op::Subscribe {
        sub: sub(1),
        scope: None,
        ty: Login,
    });
    let r = w.reply(
        Op::Send {
            scope: None,
            ty: Login,
            event: 1,
        },
        DONE,
    );
    assert_eq!(rule(r), Rule::Missing1);
    let r = w.reply(
        Op::Subscribe {
            sub: sub(2),
            scope: None,
            ty: Login,
        },
        Err(OpError::Closed),
    );
    assert_eq!(rule(r), Rule::Missing1, "the error must be ContextMissing");
}

#[test]
fn close_1_drain_then_end() {
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).send(1, Login, 1).close(1);
    let early = w.see(Observation::Ended { sub: sub(1) });
    assert_eq!(rule(early), Rule::Close1, "ended with event#1 undelivered");
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).send(1, Login, 1).close(1);
    w.got(1, 1).unwrap();
    let found = w
        .settle()
        .expect_err("drained, has credit, bus closed: must have ended");
    let Disagreement::Unended(unended) = &found else {
        panic!("unended, not {found:?}");
    };
    assert_eq!(unended.subs, vec![sub(1)]);
    // A probe that does not make it end: it never ends (CLOSE-1); one that
    // does: the close lost its wakeup (WAKE-1).
    assert_eq!(probed(found.clone(), Some(false)), Rule::Close1);
    assert_eq!(probed(found.clone(), None), Rule::Close1);
    assert_eq!(probed(found, Some(true)), Rule::Wake1);
    w.seen(Observation::Ended { sub: sub(1) });
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login);
    let r = w.see(Observation::Ended { sub: sub(1) });
    assert_eq!(rule(r), Rule::Close1, "ended while the bus is open");
}

#[test]
fn close_2_send_after_close_delivers_nothing() {
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).close(1);
    w.reply(
        Op::Send {
            scope: Some(s(1)),
            ty: Login,
            event: 1,
        },
        Err(OpError::Closed),
    )
    .expect("Closed is allowed");
    w.send(1, Login, 2);
    assert_eq!(rule(w.got(1, 2)), Rule::Close2);
}

#[test]
fn close_3_subscribe_after_close_ends_without_delivering() {
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .close(1)
        .subscribe(2, 1, Login);
    let found = w.settle().expect_err("sub#1 and sub#2 must end");
    let Disagreement::Unended(unended) = &found else {
        panic!("unended, not {found:?}");
    };
    assert_eq!(unended.subs, vec![sub(1), sub(2)]);
    assert_eq!(probed(found, Some(false)), Rule::Close1);
    w.seen(Observation::Ended { sub: sub(1) });
    let found = w.settle().expect_err("sub#2 must end");
    assert_eq!(probed(found, Some(false)), Rule::Close3);
    w.seen(Observation::Ended { sub: sub(2) })
        .seen(Observation::ScopeExited { scope: s(1) });
    w.settle().unwrap();
}

#[test]
fn lost_wakeups_read_as_wake_1_even_after_a_drop() {
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).subscribe(2, 1, Login);
    w.ok(Op::CancelSubscriber { sub: sub(1) }).send(1, Login, 1);
    let found = w.settle().expect_err("sub#2 is stuck");
    // A sibling's drop before the lost wakeup is circumstance: the first
    // reading is WAKE-1, saying so; only diagnosis's replay without the
    // drop names CANCEL-1 (conformance/tests: the drop mutants).
    let Disagreement::Stuck(mut stuck) = found else {
        panic!("stuck, not {found:?}");
    };
    stuck.woken = Some(true);
    let reading = classify(&Disagreement::Stuck(stuck));
    assert_eq!(reading.rule, Rule::Wake1);
    assert!(
        reading.message.contains("dropped or cancelled"),
        "{}",
        reading.message
    );
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).send(1, Login, 1);
    let found = w.settle().expect_err("sub#1 is stuck");
    assert_eq!(probed(found.clone(), Some(true)), Rule::Wake1);
    // Without a probe, a lost wakeup and an undelivered event look alike:
    // the observation is that the stream was not received (FANOUT-1).
    assert_eq!(probed(found, None), Rule::Fanout1);
}

/// CANCEL-2: an abandon changes nothing the model expects (the
/// subscription and its credit stay); what an abandoned receive breaks
/// reads first as the symptom's own rule (diagnosis's replay without the
/// abandons names CANCEL-2: the `recv-holds-cursor` mutant), and a
/// subscription that received as it should after an abandon counts.
#[test]
fn cancel_2_an_abandon_changes_nothing_the_model_expects() {
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).subscribe(2, 1, Login);
    w.ok(Op::Abandon { sub: sub(1) }).send(1, Login, 1);
    // Still owed the event, and its credit: nothing to receive is stuck.
    let found = w.settle().expect_err("sub#1 and sub#2 are owed event#1");
    assert_eq!(probed(found, Some(false)), Rule::Fanout1);
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).subscribe(2, 1, Login);
    w.ok(Op::Abandon { sub: sub(1) }).send(1, Login, 1);
    let before = w.0.coverage().get(Rule::Cancel2);
    w.got(1, 1).expect("received after its abandon");
    w.got(2, 1).expect("a sibling received too");
    assert_eq!(w.0.coverage().get(Rule::Cancel2), before + 2);
    w.settle().expect("nothing owed");
    // Received twice after an abandon: a duplicate, read as FIFO-1.
    assert_eq!(rule(w.got(1, 1)), Rule::Fifo1);
}

#[test]
fn send_1_send_succeeds_while_open() {
    let mut w = World::new();
    w.root(1);
    let r = w.reply(
        Op::Send {
            scope: Some(s(1)),
            ty: Login,
            event: 1,
        },
        Err(OpError::Closed),
    );
    assert_eq!(rule(r), Rule::Send1);
}

#[test]
fn task_1_exit_waits_for_tasks() {
    let mut w = World::new();
    w.root(1).ok(Op::Spawn {
        task: TaskId(1),
        scope: s(1),
    });
    w.close(1);
    let r = w.see(Observation::ScopeExited { scope: s(1) });
    assert_eq!(rule(r), Rule::Task1, "exited before task#1 finished");
    w.ok(Op::Release {
        task: TaskId(1),
        send: Some(SendSpec {
            ty: Login,
            event: 1,
        }),
    });
    let found = w.settle();
    assert_eq!(settled_rule(found), Rule::Task1, "released task never ran");
    w.seen(Observation::TaskDone {
        task: TaskId(1),
        sent: Some((1, Err(OpError::Closed))),
    });
    let found = w.settle();
    assert_eq!(
        settled_rule(found),
        Rule::Task1,
        "all tasks done: the scope must exit"
    );
    w.seen(Observation::ScopeExited { scope: s(1) });
    w.settle().unwrap();
}

#[test]
fn task_2_cancelled_scope_cancels_tasks() {
    let spawned_in_isolated = || {
        let mut w = World::new();
        w.root(1).nested(2, 1, true).ok(Op::Spawn {
            task: TaskId(1),
            scope: s(2),
        });
        w
    };
    let release = Op::Release {
        task: TaskId(1),
        send: None,
    };
    let done = Observation::TaskDone {
        task: TaskId(1),
        sent: None,
    };
    // Started, waiting, then woken after the cancellation was requested:
    // it must never run.
    let mut w = spawned_in_isolated();
    w.seen(Observation::TaskStarted { task: TaskId(1) });
    w.ok(Op::CancelScope { scope: s(2) }).ok(release.clone());
    assert_eq!(
        rule(w.see(done.clone())),
        Rule::Task3,
        "woken after the request: how promptly cancellation takes effect is TASK-3's"
    );
    // Never started: its first step was scheduled when it was spawned,
    // before the cancellation, so it may still run (asyncio's TaskGroup
    // does this), and an implementation that does not report starts is
    // judged so too.
    let mut w = spawned_in_isolated();
    w.ok(Op::CancelScope { scope: s(2) }).ok(release.clone());
    w.see(done.clone())
        .expect("its first step was scheduled before the cancellation");
    // Cancellation is cooperative: a task already woken when the
    // cancellation is requested may finish that step...
    let mut w = spawned_in_isolated();
    w.seen(Observation::TaskStarted { task: TaskId(1) });
    w.ok(release.clone()).ok(Op::CancelScope { scope: s(2) });
    w.see(done.clone())
        .expect("it was woken before the cancellation");
    // ...but nothing runs once the scope reported cancelled.
    let mut w = spawned_in_isolated();
    w.ok(release.clone())
        .ok(Op::CancelScope { scope: s(2) })
        .seen(Observation::ScopeCancelled { scope: s(2) });
    assert_eq!(rule(w.see(done.clone())), Rule::Task2);
    let mut w = spawned_in_isolated();
    w.ok(Op::CancelScope { scope: s(2) });
    let found = w.settle();
    assert_eq!(
        settled_rule(found),
        Rule::Task2,
        "cancel requested, never done"
    );
    w.seen(Observation::ScopeCancelled { scope: s(2) });
    w.settle().unwrap();
}

/// Tasks spawned in a nested, non-isolated scope belong to the task group
/// of its root (Haiway's `isolated` docstring): the nested scope neither
/// waits for them nor cancels them; the root does both.
#[test]
fn task_1_and_task_2_nested_scopes_share_their_roots_task_group() {
    let spawned_in_nested = || {
        let mut w = World::new();
        w.root(1).nested(2, 1, false).ok(Op::Spawn {
            task: TaskId(1),
            scope: s(2),
        });
        w.seen(Observation::TaskStarted { task: TaskId(1) });
        w
    };
    // The nested scope exits at once...
    let mut w = spawned_in_nested();
    w.close(2);
    assert_eq!(
        settled_rule(w.settle()),
        Rule::Task1,
        "a nested scope must not wait for its group's tasks"
    );
    w.seen(Observation::ScopeExited { scope: s(2) });
    w.settle().unwrap();
    // ...and its root waits for the task.
    w.close(1);
    let r = w.see(Observation::ScopeExited { scope: s(1) });
    assert_eq!(
        rule(r),
        Rule::Task1,
        "the root exited before task#1 finished"
    );
    // Cancelling the nested scope leaves the task to run when released.
    let mut w = spawned_in_nested();
    w.ok(Op::CancelScope { scope: s(2) })
        .seen(Observation::ScopeCancelled { scope: s(2) })
        .ok(Op::Release {
            task: TaskId(1),
            send: None,
        });
    assert_eq!(
        settled_rule(w.settle()),
        Rule::Task1,
        "the task is the root's, which was not cancelled: it must run"
    );
    w.seen(Observation::TaskDone {
        task: TaskId(1),
        sent: None,
    });
    w.settle().unwrap();
    // Cancelling the root cancels it: released after the request, it must
    // not run (TASK-3), and nothing of the group runs once the root
    // reported cancelled (TASK-2).
    let mut w = spawned_in_nested();
    w.ok(Op::CancelScope { scope: s(1) }).ok(Op::Release {
        task: TaskId(1),
        send: None,
    });
    let done = Observation::TaskDone {
        task: TaskId(1),
        sent: None,
    };
    assert_eq!(rule(w.see(done.clone())), Rule::Task3);
    let mut w = spawned_in_nested();
    w.ok(Op::CancelScope { scope: s(1) })
        .seen(Observation::ScopeCancelled { scope: s(2) })
        .seen(Observation::ScopeCancelled { scope: s(1) });
    assert_eq!(
        rule(w.see(Observation::TaskStarted { task: TaskId(1) })),
        Rule::Task2,
        "started again after its group's owner reported cancelled"
    );
}

/// A subscriber's pull that raises (a `failed` observation) is never
/// allowed; from its evidence alone it reads as ROBUST-1 (diagnosis may
/// then find a sibling's drop caused it: CANCEL-1).
#[test]
fn robust_1_a_pull_that_raises() {
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login);
    let found =
        w.0.observe(&Observation::Failed {
            sub: sub(1),
            error: "CancelledError".to_owned(),
        })
        .expect_err("a failed pull is never allowed");
    let v = classify(&found);
    assert_eq!((v.rule, v.mode), (Rule::Robust1, Mode::PullRaised), "{v:?}");
}

#[test]
fn robust_1_unexpected_errors_and_impossible_reports() {
    let mut w = World::new();
    let r = w.reply(
        Op::OpenScope {
            scope: s(1),
            parent: None,
            isolated: false,
        },
        Err(OpError::Other("boom".into())),
    );
    assert_eq!(rule(r), Rule::Robust1);
    let mut w = World::new();
    w.root(1)
        .ok(Op::Subscribe {
            sub: sub(1),
            scope: Some(s(1)),
            ty: Login,
        })
        .send(1, Login, 1);
    assert_eq!(rule(w.got(1, 1)), Rule::Robust1, "received without credit");
    assert_eq!(rule(w.got(9, 1)), Rule::Robust1, "unknown subscription");
}

#[test]
fn validity_rejects_dangling_handles() {
    let w = World::new();
    assert!(w.0.validate(&Op::CloseScope { scope: s(1) }).is_err());
    assert!(w.0.validate(&Op::Consume { sub: sub(1), k: 1 }).is_err());
    let mut w = World::new();
    w.root(1)
        .subscribe(1, 1, Login)
        .ok(Op::DropSubscription { sub: sub(1) });
    assert!(w.0.validate(&Op::Consume { sub: sub(1), k: 1 }).is_err());
    w.send(1, Login, 5);
    let again = Op::Send {
        scope: Some(s(1)),
        ty: Login,
        event: 5,
    };
    assert!(w.0.validate(&again).is_err(), "event ids are unique");
}

/// PROC-1: a processor (a subscription read by a task of its scope's task
/// group) drains what was sent and ends when its scope's body returns, and
/// then the scope exits; that counts. Its scope may not exit before it has
/// ended (TASK-1), and once its group is cancelled it may not run (TASK-2).
/// A bus that closes only after the scope's tasks is the closes-after-tasks
/// layout: judged by that layout's model, the processor that never ends is
/// what it predicts (diagnosis then names PROC-1).
#[test]
fn proc_1_processors_end_at_the_close_and_let_their_scope_exit() {
    let processor = |scope: u32| Op::SpawnProcessor {
        sub: sub(1),
        scope: s(scope),
        ty: Login,
    };
    let mut w = World::new();
    w.root(1).ok(processor(1)).send(1, Login, 1).close(1);
    let before = w.0.coverage().get(Rule::Proc1);
    w.got(1, 1).expect("drains what was sent before the close");
    w.seen(Observation::Ended { sub: sub(1) });
    assert_eq!(w.0.coverage().get(Rule::Proc1), before + 1);
    w.seen(Observation::ScopeExited { scope: s(1) });
    w.settle().expect("nothing owed");
    // The scope exited while its processor still ran.
    let mut w = World::new();
    w.root(1).ok(processor(1)).close(1);
    let r = w.see(Observation::ScopeExited { scope: s(1) });
    assert_eq!(rule(r), Rule::Task1);
    // A processor that never ends once its bus closed.
    let mut w = World::new();
    w.root(1).ok(processor(1)).close(1);
    assert!(matches!(w.settle(), Err(Disagreement::Unended(_))));
    // Cancelled with its group, it still received.
    let mut w = World::new();
    w.root(1).ok(processor(1)).send(1, Login, 1);
    w.ok(Op::CancelScope { scope: s(1) })
        .seen(Observation::ScopeCancelled { scope: s(1) });
    assert_eq!(rule(w.got(1, 1)), Rule::Task2);
    // The closes-after-tasks layout: the bus is still open at settle.
    let layout = scopebus_sim::model::Layout::of(
        scopebus_sim::model::Owners::Spec,
        scopebus_sim::model::Closing::AfterTasks,
    );
    let mut w = World(Model::with_layout(layout));
    w.root(1).ok(processor(1)).close(1);
    w.settle().expect("that layout's bus has not closed");
}

/// FAIL-1: a root scope whose body was made to fail reports `scope_failed`
/// with its body's own error; then its tasks are cancelled (nothing of
/// them runs), its bus is closed (subscriptions drain, then end), and that
/// counts. Exiting normally, reporting a cancellation, raising another
/// error or a body that returns are FAIL-1's; a failed scope still
/// running at a settle reads first as a cancellation not taken (TASK-2),
/// which diagnosis renames FAIL-1 when a cancellation instead would go.
#[test]
fn fail_1_a_failed_body_cancels_closes_and_raises_its_own_error() {
    let failed = |own: bool| Observation::ScopeFailed {
        scope: s(1),
        error: "BodyFailure: scope#1's body failed".to_owned(),
        own,
    };
    let fail = Op::FailScope { scope: s(1) };
    let spawn = Op::Spawn {
        task: TaskId(1),
        scope: s(1),
    };
    let done = Observation::TaskDone {
        task: TaskId(1),
        sent: None,
    };
    // As it should: the subscription drains and ends, the task is gone.
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).send(1, Login, 1);
    w.ok(spawn.clone()).ok(fail.clone());
    let before = w.0.coverage().get(Rule::Fail1);
    w.seen(failed(true));
    assert_eq!(w.0.coverage().get(Rule::Fail1), before + 1);
    w.got(1, 1)
        .expect("drains what was sent before the failure");
    w.seen(Observation::Ended { sub: sub(1) });
    assert_eq!(rule(w.see(done.clone())), Rule::Task2, "cancelled with it");
    // Swallowed, turned into a cancellation, replaced, or the body returned.
    for wrong in [
        Observation::ScopeExited { scope: s(1) },
        Observation::ScopeCancelled { scope: s(1) },
        failed(false),
        Observation::ScopeClosing { scope: s(1) },
    ] {
        let mut w = World::new();
        w.root(1).ok(fail.clone());
        assert_eq!(rule(w.see(wrong.clone())), Rule::Fail1, "{wrong}");
    }
    // A failure nobody caused.
    let mut w = World::new();
    w.root(1);
    assert_eq!(rule(w.see(failed(true))), Rule::Robust1);
    // Still running at a settle.
    let mut w = World::new();
    w.root(1).ok(spawn).ok(fail);
    assert_eq!(settled_rule(w.settle()), Rule::Task2);
    // Only an open root scope may fail.
    let mut w = World::new();
    w.root(1).nested(2, 1, true);
    assert!(w.0.validate(&Op::FailScope { scope: s(2) }).is_err());
    w.close(1);
    assert!(w.0.validate(&Op::FailScope { scope: s(1) }).is_err());
}

/// FAIL-2: a subscriber made to fail is owed nothing from the op on (as
/// after a drop); when it reports `subscriber_failed`, its cleanup's send
/// is judged as any send from its scope, and that counts. A failure never
/// reported by a settle, a report nobody caused, or one with another send
/// than asked are failures.
#[test]
fn fail_2_a_failed_subscriber_is_let_go_of_and_its_cleanup_sends() {
    let fail = |send: Option<SendSpec>| Op::FailSubscriber { sub: sub(1), send };
    let cleanup = SendSpec {
        ty: Login,
        event: 7,
    };
    let failed = |sent: Option<(u64, Result<(), OpError>)>| Observation::SubscriberFailed {
        sub: sub(1),
        sent,
    };
    // As it should: the sibling gets the cleanup's event; the failed one
    // is owed nothing, even what was sent before it failed.
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).subscribe(2, 1, Login);
    w.send(1, Login, 1).ok(fail(Some(cleanup)));
    let before = w.0.coverage().get(Rule::Fail2);
    w.seen(failed(Some((7, Ok(())))));
    assert_eq!(w.0.coverage().get(Rule::Fail2), before + 1);
    w.got(2, 1).expect("the sibling gets what was sent before");
    w.got(2, 7).expect("and the cleanup's event");
    assert_eq!(
        rule(w.got(1, 1)),
        Rule::Robust1,
        "the failed one gets nothing"
    );
    // The cleanup's send refused while the bus is open.
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).ok(fail(Some(cleanup)));
    assert_eq!(
        rule(w.see(failed(Some((7, Err(OpError::Closed)))))),
        Rule::Send1
    );
    // Never reported.
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).ok(fail(None));
    assert_eq!(settled_rule(w.settle()), Rule::Fail2);
    // Reported with nobody having caused it, or with another send.
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login);
    assert_eq!(rule(w.see(failed(None))), Rule::Robust1);
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login).ok(fail(None));
    assert_eq!(rule(w.see(failed(Some((7, Ok(())))))), Rule::Robust1);
    // Processors are not made to fail this way.
    let mut w = World::new();
    w.root(1).ok(Op::SpawnProcessor {
        sub: sub(3),
        scope: s(1),
        ty: Login,
    });
    assert!(
        w.0.validate(&Op::FailSubscriber {
            sub: sub(3),
            send: None
        })
        .is_err()
    );
}

/// EXIT-1: `send` and `subscribe` through the handle of a scope that has
/// exited act on the bus it had. A nested scope's is its parent's, open
/// while the parent runs: sends deliver, subscriptions live; ContextMissing,
/// `Closed` or an end there are EXIT-1's. A root's is closed: a send may
/// succeed or say closed (CLOSE-2), a subscription must end (CLOSE-3), and
/// ContextMissing is still EXIT-1's (the handle lost its bus). While the
/// bus's owner is being cancelled, the handle may not be used.
#[test]
fn exit_1_an_exited_scopes_handle_keeps_the_bus_it_had() {
    let stale_send = |event| Op::Send {
        scope: Some(s(2)),
        ty: Login,
        event,
    };
    let nested_gone = || {
        let mut w = World::new();
        w.root(1)
            .nested(2, 1, false)
            .subscribe(1, 1, Login)
            .close(2);
        w.seen(Observation::ScopeExited { scope: s(2) });
        w
    };
    let mut w = nested_gone();
    let before = w.0.coverage().get(Rule::Exit1);
    w.send(2, Login, 1);
    assert_eq!(w.0.coverage().get(Rule::Exit1), before + 1);
    w.got(1, 1).expect("the parent's subscriber gets it");
    w.subscribe(2, 2, Login);
    assert_eq!(rule(w.see(Observation::Ended { sub: sub(2) })), Rule::Exit1);
    for refusal in [
        OpError::ContextMissing,
        OpError::Closed,
        OpError::Other("gone".into()),
    ] {
        let mut w = nested_gone();
        assert_eq!(rule(w.reply(stale_send(1), Err(refusal))), Rule::Exit1);
    }
    let mut w = nested_gone();
    let refused = w.reply(
        Op::Subscribe {
            sub: sub(2),
            scope: Some(s(2)),
            ty: Login,
        },
        Err(OpError::Closed),
    );
    assert_eq!(rule(refused), Rule::Exit1);
    // A root that has exited: its bus is closed.
    let root_gone = || {
        let mut w = World::new();
        w.root(2).close(2);
        w.seen(Observation::ScopeExited { scope: s(2) });
        w
    };
    let mut w = root_gone();
    w.reply(stale_send(1), Err(OpError::Closed))
        .expect("closed is allowed");
    w.reply(stale_send(2), DONE)
        .expect("so is a success that delivers nothing");
    assert_eq!(w.0.coverage().get(Rule::Exit1), 2);
    w.subscribe(3, 2, Login);
    assert_eq!(probed(w.settle().unwrap_err(), Some(false)), Rule::Close3);
    let mut w = root_gone();
    let lost = w.reply(stale_send(1), Err(OpError::ContextMissing));
    assert_eq!(rule(lost), Rule::Exit1);
    // Not while the owner's cancellation is under way.
    let mut w = World::new();
    w.root(1).nested(2, 1, false).close(2);
    w.seen(Observation::ScopeExited { scope: s(2) })
        .ok(Op::CancelScope { scope: s(1) });
    assert!(w.0.validate(&stale_send(1)).is_err());
}

#[test]
fn reenter_1_a_callback_of_the_bus_may_use_the_bus() {
    let arm = |action| Op::Reenter {
        sub: sub(1),
        action,
    };
    let report = |action, outcome| Observation::Reentered {
        sub: sub(1),
        action,
        during: ReentryPoint::Wake,
        outcome,
        detail: None,
    };
    let armed = |action| {
        let mut w = World::new();
        w.root(1).subscribe(1, 1, Login).ok(arm(action));
        w
    };
    // A probe that returned is a check passed.
    let mut w = armed(ReentryAction::Stats);
    w.see(report(ReentryAction::Stats, ReentryOutcome::Returned))
        .expect("a probe that returned");
    assert_eq!(w.0.coverage().get(Rule::Reenter1), 1);
    // One that was blocked, or failed, is REENTER-1's, with its own mode.
    for (outcome, mode) in [
        (ReentryOutcome::Blocked, Mode::CallbackBlocked),
        (ReentryOutcome::Failed, Mode::CallbackFailed),
    ] {
        let mut w = armed(ReentryAction::Subscribe);
        let broke = w
            .see(report(ReentryAction::Subscribe, outcome))
            .expect_err("the model must object");
        assert_eq!((broke.rule, broke.mode), (Rule::Reenter1, mode));
    }
    // A probe fires once: a second report, or one of an action that was
    // never armed, is impossible (ROBUST-1), not REENTER-1's.
    let mut w = armed(ReentryAction::Stats);
    w.seen(report(ReentryAction::Stats, ReentryOutcome::Returned));
    let twice = w.see(report(ReentryAction::Stats, ReentryOutcome::Returned));
    assert_eq!(rule(twice), Rule::Robust1);
    let mut w = armed(ReentryAction::Stats);
    let other = w.see(report(ReentryAction::Subscribe, ReentryOutcome::Returned));
    assert_eq!(rule(other), Rule::Robust1);
    // Arming again replaces the probe that has not fired.
    let mut w = armed(ReentryAction::Stats);
    w.ok(arm(ReentryAction::Subscribe));
    w.see(report(ReentryAction::Subscribe, ReentryOutcome::Returned))
        .expect("the latest probe");
    // Only a live subscription's task is armed.
    let mut w = World::new();
    w.root(1).subscribe(1, 1, Login);
    w.ok(Op::DropSubscription { sub: sub(1) });
    assert!(w.0.validate(&arm(ReentryAction::Stats)).is_err());
}
