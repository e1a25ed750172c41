//! Observations: what the implementation reports it did on its own time
//! (events received, streams ended, scopes closing, exiting or cancelled,
//! tasks done), checked against the model and applied to it.

use super::Model;
use super::disagreement::{Disagreement, EarlyEnd, EventFacts, Misdelivery, Mode, StreamPosition};
use super::state::{ScopeState, SubState, TaskState};
use crate::catalogue::EventId;
use crate::op::{OpError, ScopeId, SubId, TaskId};
use crate::rules::Rule;

impl Model {
    pub(super) fn received(&mut self, sub_id: SubId, event: EventId) -> Result<(), Disagreement> {
        self.check_receiver(sub_id, event)?;
        let sub = &self.subs[&sub_id];
        let log = &self.buses[sub.bus].channels[&sub.route].log;
        let expected = log.get(sub.cursor()).copied();
        if expected != Some(event) {
            // FAIL-2: a failing subscriber's cleanup event, received before
            // that subscriber reported its failure (and with it the send).
            if let Some((failed, _)) = self
                .failing_subs
                .iter()
                .find(|(_, (_, spec))| spec.is_some_and(|s| s.event == event))
            {
                return Disagreement::certain(
                    Rule::Fail2,
                    Mode::CleanupNeverRan,
                    format!(
                        "{sub_id} received event#{event}, the cleanup send of {failed}'s failed subscriber, before that subscriber reported its failure (`subscriber_failed`, which says the send happened)"
                    ),
                );
            }
            return Err(Disagreement::Misdelivery(
                self.misdelivery(sub_id, event, expected),
            ));
        }
        self.record_receipt(sub_id, event);
        Ok(())
    }

    /// The receiving subscription must exist, be live and have credit.
    fn check_receiver(&self, sub_id: SubId, event: EventId) -> Result<(), Disagreement> {
        let Some(sub) = self.subs.get(&sub_id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{sub_id}, which does not exist, received event#{event}"),
            );
        };
        match sub.state {
            SubState::Live => {}
            SubState::BornEnded => {
                return Disagreement::certain(
                    Rule::Close3,
                    Mode::DeliveredAfterClose,
                    format!("{sub_id} subscribed after its bus closed, yet received event#{event}"),
                );
            }
            SubState::Ended => {
                return Disagreement::certain(
                    Rule::Close1,
                    Mode::AfterEnd,
                    format!("{sub_id} received event#{event} after its stream ended"),
                );
            }
            SubState::Dropped if sub.cancelled_with_group => {
                return self.processor_ran_after_cancel(sub_id, &format!("received event#{event}"));
            }
            SubState::Dropped if sub.failed => {
                return failed_subscriber_went_on(sub_id, &format!("received event#{event}"));
            }
            SubState::Dropped => {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!("{sub_id} received event#{event} after it was dropped"),
                );
            }
        }
        if sub.credits == 0 {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!(
                    "{sub_id} received event#{event} without credit: the adapter pulled more than asked"
                ),
            );
        }
        Ok(())
    }

    /// TASK-2: the processor `sub_id`, cancelled with its task group, still
    /// ran (`did` says what it reported).
    fn processor_ran_after_cancel(&self, sub_id: SubId, did: &str) -> Result<(), Disagreement> {
        let owner = self.group_of(self.subs[&sub_id].scope);
        Disagreement::of_scope(
            owner,
            Rule::Task2,
            Mode::RanAfterCancel,
            format!(
                "the processor {sub_id} {did} after its task group's owner {owner} was cancelled"
            ),
        )
    }

    /// The facts about a wrong receipt: `got` arrived at `sub` where the
    /// model expected `expected` (or nothing).
    fn misdelivery(&self, sub_id: SubId, got: EventId, expected: Option<EventId>) -> Misdelivery {
        let sub = &self.subs[&sub_id];
        let event = self.events.get(&got).map(|e| {
            let same_route = e.route == sub.route;
            let same_bus = e.bus == Some(sub.bus);
            let position = match e.index {
                Some(i) if same_route && same_bus && !e.after_close => {
                    if i < sub.start {
                        StreamPosition::BeforeStart
                    } else if i < sub.cursor() {
                        StreamPosition::AlreadyReceived
                    } else {
                        StreamPosition::Ahead
                    }
                }
                _ => StreamPosition::Outside,
            };
            EventFacts {
                sent_as: e.sent_as,
                same_route,
                bus: e.bus.map(|b| self.buses[b].facts()),
                same_bus,
                origin: e.origin,
                stored: e.stored,
                after_close: e.after_close,
                position,
            }
        });
        Misdelivery {
            sub: sub.label(sub_id),
            got,
            expected,
            event,
            sub_bus: self.buses[sub.bus].facts(),
            shared: sub.share.is_some(),
        }
    }

    /// A correct receipt: the cursor moves on, and what it exercised is
    /// counted (FIFO-1, FANOUT-1, SCOPE-2, VIS-1, DROP-1, and through
    /// `note_undisturbed` SCOPE-1, SCOPE-3, ROUTE-1, CANCEL-1).
    fn record_receipt(&mut self, sub_id: SubId, event: EventId) {
        let sub = &self.subs[&sub_id];
        let (bus, route, scope, index) = (sub.bus, sub.route, sub.scope, sub.cursor());
        let pending = self.buses[bus].channels[&route].log.len() - index;
        let others = self.buses[bus].channels[&route].held.iter().any(|id| {
            let s = &self.subs[id];
            *id != sub_id && s.start <= index && matches!(s.state, SubState::Live | SubState::Ended)
        });
        let origin = self.events[&event].origin;
        let now = self.now;
        let sub = self.subs.get_mut(&sub_id).expect("checked by the caller");
        let first = sub.received == 0;
        sub.received += 1;
        sub.credits -= 1;
        sub.last_progress = now;
        let vis = first && std::mem::take(&mut sub.exposure.vis_pending);
        let drop = first && std::mem::take(&mut sub.exposure.drop_pending);
        self.index_received(sub_id, pending);
        self.note_undisturbed(sub_id);
        let hits = [
            (pending >= 2, Rule::Fifo1),
            (others, Rule::Fanout1),
            (origin.is_some() && origin != Some(scope), Rule::Scope2),
            (vis, Rule::Vis1),
            (drop, Rule::Drop1),
        ];
        for (hit, rule) in hits {
            if hit {
                self.coverage.hit(rule);
            }
        }
    }

    pub(super) fn ended(&mut self, sub_id: SubId) -> Result<(), Disagreement> {
        let Some(sub) = self.subs.get(&sub_id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{sub_id}, which does not exist, ended"),
            );
        };
        if sub.failed {
            return failed_subscriber_went_on(sub_id, "reported its end");
        }
        if sub.credits == 0 {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{sub_id} reported its end without credit to pull"),
            );
        }
        match sub.state {
            // CLOSE-3: a subscription made after close ends when pulled.
            SubState::BornEnded => self.coverage.hit(Rule::Close3),
            SubState::Live => {
                self.check_live_end(sub_id)?;
                // CLOSE-1: drained, then ended, once the bus closed.
                self.coverage.hit(Rule::Close1);
                self.note_closed_before_tasks(sub_id);
            }
            SubState::Dropped if sub.cancelled_with_group => {
                return self.processor_ran_after_cancel(sub_id, "reported its end");
            }
            SubState::Ended | SubState::Dropped => {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!(
                        "{sub_id} reported its end twice, or after it was dropped or cancelled (a cancelled subscriber reports nothing more)"
                    ),
                );
            }
        }
        self.note_undisturbed(sub_id);
        self.index_finished(sub_id);
        self.index_processor_over(sub_id);
        if let Some(sub) = self.subs.get_mut(&sub_id) {
            sub.state = SubState::Ended;
        }
        Ok(())
    }

    /// PROC-1: `sub` ended because its bus closed when its owner's body
    /// returned, while the owner was still waiting for tasks of its group
    /// (`sub`'s own processor among them, or any other): the bus closed
    /// before the wait, as the processor pattern needs.
    fn note_closed_before_tasks(&mut self, sub_id: SubId) {
        let sub = &self.subs[&sub_id];
        let owner = self.buses[sub.bus].owner;
        let scope = &self.scopes[&owner];
        if scope.state != ScopeState::Closing || scope.cancel_requested {
            return;
        }
        let group = self.group_of(owner);
        let waiting = sub.processor
            || !self.group_tasks(group).is_empty()
            || !self.group_processors(group).is_empty()
            || self
                .group_scopes(group)
                .iter()
                .any(|c| !self.scopes[c].gone());
        if waiting {
            self.coverage.hit(Rule::Proc1);
        }
    }

    /// A live subscription may end only once its bus has closed (or is
    /// closing: cancellation is asynchronous) and it has received
    /// everything sent before the close (CLOSE-1).
    fn check_live_end(&self, sub_id: SubId) -> Result<(), Disagreement> {
        let sub = &self.subs[&sub_id];
        let bus = &self.buses[sub.bus];
        let scope = &self.scopes[&sub.scope];
        let bus_closing = bus.closed || self.scopes[&bus.owner].cancel_requested;
        let len = bus.channels[&sub.route].log.len();
        let undelivered = (sub.cursor() < len).then(|| {
            let next = bus.channels[&sub.route].log[sub.cursor()];
            let origin = self.events.get(&next).and_then(|e| e.origin);
            (len - sub.cursor(), next, origin)
        });
        if bus_closing && undelivered.is_none() {
            return Ok(());
        }
        Err(Disagreement::EarlyEnd(EarlyEnd {
            sub: sub.label(sub_id),
            bus_closing,
            own_nested_scope_gone: scope.parent.is_some()
                && !scope.isolated
                && matches!(
                    scope.state,
                    ScopeState::Closing | ScopeState::Exited | ScopeState::Cancelled
                ),
            through_exited: sub.through_exited,
            undelivered,
            raised: None,
            born_after_close: sub.state == SubState::BornEnded,
        }))
    }

    /// A subscriber's pull raised instead of yielding an event or ending:
    /// never allowed (ROBUST-1 as it reads; diagnosis asks whether a
    /// sibling's drop or cancellation caused it, CANCEL-1).
    pub(super) fn failed(&mut self, sub_id: SubId, error: &str) -> Result<(), Disagreement> {
        if !self.subs.contains_key(&sub_id) {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{sub_id}, which does not exist, failed: {error}"),
            );
        }
        let sub = &self.subs[&sub_id];
        if sub.failed {
            return failed_subscriber_went_on(sub_id, &format!("reported a failed pull ({error})"));
        }
        let bus = &self.buses[sub.bus];
        Err(Disagreement::EarlyEnd(EarlyEnd {
            sub: sub.label(sub_id),
            bus_closing: bus.closed || self.scopes[&bus.owner].cancel_requested,
            own_nested_scope_gone: false,
            through_exited: false,
            undelivered: None,
            raised: Some(error.to_owned()),
            born_after_close: sub.state == SubState::BornEnded,
        }))
    }

    pub(super) fn scope_closing(&mut self, id: ScopeId) -> Result<(), Disagreement> {
        let Some(scope) = self.scopes.get(&id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{id}, which does not exist, began closing"),
            );
        };
        if scope.failed {
            return Disagreement::of_scope(
                id,
                Rule::Fail1,
                Mode::ErrorLost,
                format!("{id}'s body failed, yet it went on and returned"),
            );
        }
        if scope.cancel_requested && !scope.closed_before_cancel {
            return Disagreement::of_scope(
                id,
                Rule::Task2,
                Mode::RanAfterCancel,
                format!("{id} was cancelled, yet its body went on and returned"),
            );
        }
        if scope.state != ScopeState::CloseRequested {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{id} began closing without being asked to"),
            );
        }
        let (bus, owns) = (scope.bus, scope.owns_bus);
        if let Some(s) = self.scopes.get_mut(&id) {
            s.state = ScopeState::Closing;
        }
        // PROC-1: the bus closes when the body returns, before the scope
        // waits for its tasks (unless diagnosis asks what a bus that closes
        // only after them would do).
        if owns && self.layout.closes_when_body_returns() {
            self.close_bus(bus);
        }
        Ok(())
    }

    pub(super) fn scope_exited(&mut self, id: ScopeId) -> Result<(), Disagreement> {
        let Some(scope) = self.scopes.get(&id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{id}, which does not exist, exited"),
            );
        };
        if scope.failed {
            return Disagreement::of_scope(
                id,
                Rule::Fail1,
                Mode::ErrorLost,
                format!("{id}'s body failed, yet it exited normally: the error was swallowed"),
            );
        }
        if scope.cancel_requested && !scope.closed_before_cancel {
            return Disagreement::of_scope(
                id,
                Rule::Task2,
                Mode::RanAfterCancel,
                format!("{id} was cancelled, yet it went on to exit normally"),
            );
        }
        if scope.state != ScopeState::Closing {
            return Disagreement::of_scope(
                id,
                Rule::Task1,
                Mode::ExitedEarly,
                format!("{id} exited before its body returned"),
            );
        }
        // Its exit raced with a cancellation requested after its close: its
        // unfinished tasks count as cancelled.
        let (cancelled_meanwhile, bus, owns) = (scope.cancel_requested, scope.bus, scope.owns_bus);
        if !cancelled_meanwhile {
            self.check_exit_waited(id)?;
        }
        if cancelled_meanwhile {
            self.cancel_unfinished_tasks(id);
        }
        if owns {
            // Closed already when the body returned, unless the layout
            // closes buses only after their scope's tasks.
            self.close_bus(bus);
        }
        if let Some(s) = self.scopes.get_mut(&id) {
            s.state = ScopeState::Exited;
        }
        self.index_scope_gone(id);
        Ok(())
    }

    /// TASK-1: the exit of a task group's owner waits for every task and
    /// nested scope of its group. A nested, non-isolated scope waits for
    /// nothing: its tasks are its group owner's to wait for.
    fn check_exit_waited(&mut self, id: ScopeId) -> Result<(), Disagreement> {
        let scope = &self.scopes[&id];
        if !scope.owns_group(id) {
            let unfinished = scope.tasks.iter().any(|t| !self.tasks[t].state.finished());
            if unfinished || scope.children.iter().any(|c| !self.scopes[c].gone()) {
                // It rightly did not wait for what belongs to its group.
                self.coverage.hit(Rule::Task1);
            }
            return Ok(());
        }
        if let Some(processor) = self.group_processors(id).first() {
            let spawned_in = self.subs[processor].scope;
            return Disagreement::of_scope(
                id,
                Rule::Task1,
                Mode::ExitedEarly,
                format!(
                    "{id} exited while the processor {processor}, spawned in {spawned_in}, had not finished"
                ),
            );
        }
        let tasks = self.group_tasks(id);
        if let Some(task) = tasks.iter().find(|t| !self.tasks[t].state.finished()) {
            let spawned_in = self.tasks[task].scope;
            let place = if spawned_in == id {
                String::new()
            } else {
                format!(" (spawned in {spawned_in}, which shares its task group)")
            };
            return Disagreement::of_scope(
                id,
                Rule::Task1,
                Mode::ExitedEarly,
                format!("{id} exited while its {task}{place} had not finished"),
            );
        }
        let members = self.group_scopes(id);
        if let Some(child) = members.iter().find(|c| !self.scopes[c].gone()) {
            return Disagreement::of_scope(
                id,
                Rule::Task1,
                Mode::ExitedEarly,
                format!("{id} exited while {child}, a scope of its task group, was still running"),
            );
        }
        if scope.group_used {
            self.coverage.hit(Rule::Task1);
        }
        Ok(())
    }

    /// The unfinished tasks of the group `id` owns (if it owns one) are
    /// cancelled, processors included (their subscriptions are dropped);
    /// returns whether there were any.
    fn cancel_unfinished_tasks(&mut self, id: ScopeId) -> bool {
        let processors = self.group_processors(id);
        let mut any = !processors.is_empty();
        for p in processors {
            self.drop_sub(p);
            if let Some(s) = self.subs.get_mut(&p) {
                s.cancelled_with_group = true;
            }
        }
        for task in self.group_tasks(id) {
            if let Some(t) = self.tasks.get_mut(&task)
                && matches!(t.state, TaskState::Waiting | TaskState::Released(_))
            {
                if t.started {
                    // TASK-3: it had started and was waiting when the
                    // cancellation was requested (perhaps woken since), and
                    // it did not run again.
                    self.coverage.hit(Rule::Task3);
                }
                t.state = TaskState::Cancelled;
                self.index_task_over(task);
                any = true;
            }
        }
        any
    }

    /// FAIL-1: a scope whose body was made to fail is gone, raising `error`
    /// (its body's own if `own`).
    pub(super) fn scope_failed(
        &mut self,
        id: ScopeId,
        error: &str,
        own: bool,
    ) -> Result<(), Disagreement> {
        let Some(scope) = self.scopes.get(&id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{id}, which does not exist, failed"),
            );
        };
        if !scope.failed || scope.gone() {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!(
                    "{id} failed with {error}, though its body was not made to fail (or it was gone already)"
                ),
            );
        }
        if !own {
            return Disagreement::of_scope(
                id,
                Rule::Fail1,
                Mode::ErrorLost,
                format!(
                    "{id}'s body failed, but what the scope raised ({error}) is reported as not the body's own error (`own: false`): another error, or the body's wrapped with others"
                ),
            );
        }
        self.coverage.hit(Rule::Fail1);
        self.end_cancelled_scope(id);
        Ok(())
    }

    pub(super) fn scope_cancelled(&mut self, id: ScopeId) -> Result<(), Disagreement> {
        let Some(scope) = self.scopes.get(&id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{id}, which does not exist, was cancelled"),
            );
        };
        if scope.failed && !scope.gone() {
            return Disagreement::of_scope(
                id,
                Rule::Fail1,
                Mode::ErrorLost,
                format!(
                    "{id}'s body failed, yet it reported a cancellation: the error was turned into one"
                ),
            );
        }
        if !scope.cancel_requested || scope.gone() {
            // A nested scope that shares its task group, cancelled, took
            // this scope (a task of the group) with it, as if it owned the
            // group: TASK-1 says whose tasks these are.
            if let Some(nested) = self.cancelled_nested_ancestor(id) {
                let owner = self.group_of(nested);
                return Disagreement::of_scope(
                    nested,
                    Rule::Task1,
                    Mode::WrongTaskGroup,
                    format!(
                        "cancelling {nested}, a nested scope that shares {owner}'s task group, cancelled {id}, which belongs to {owner}'s group"
                    ),
                );
            }
            // An enclosing scope that exited (or is exiting) without waiting
            // for the scope nested in it dropped it: TASK-1.
            if let Some(ancestor) = self.exited_ancestor(id) {
                let (mode, whose) = if self.scopes[&ancestor].owns_group(ancestor) {
                    (Mode::ExitedEarly, "waiting for it")
                } else {
                    (
                        Mode::WrongTaskGroup,
                        "leaving it to the task group it shares",
                    )
                };
                return Disagreement::of_scope(
                    ancestor,
                    Rule::Task1,
                    mode,
                    format!("{ancestor}'s exit cancelled its nested {id} instead of {whose}"),
                );
            }
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{id} reported a cancellation nobody asked for"),
            );
        }
        self.end_cancelled_scope(id);
        Ok(())
    }

    /// A cancelled (or failed) scope is gone: its unfinished tasks are
    /// cancelled, the bus it owns closed.
    fn end_cancelled_scope(&mut self, id: ScopeId) {
        let (bus, owns) = (self.scopes[&id].bus, self.scopes[&id].owns_bus);
        if self.cancel_unfinished_tasks(id) {
            // TASK-2: the cancellation reached tasks still running.
            self.coverage.hit(Rule::Task2);
        }
        if let Some(s) = self.scopes.get_mut(&id) {
            s.state = ScopeState::Cancelled;
        }
        self.index_scope_gone(id);
        if owns {
            self.close_bus(bus);
        }
    }

    /// The nearest enclosing scope of `id` that owns no task group and whose
    /// cancellation was requested: its cancellation is its body's alone, so
    /// it cannot be why `id` was cancelled.
    fn cancelled_nested_ancestor(&self, id: ScopeId) -> Option<ScopeId> {
        let mut up = self.scopes.get(&id)?.parent;
        while let Some(p) = up {
            let parent = &self.scopes[&p];
            if parent.cancel_requested && !parent.owns_group(p) {
                return Some(p);
            }
            up = parent.parent;
        }
        None
    }

    /// The nearest enclosing scope of `id` that is exiting or has exited:
    /// a task group's owner should have waited for `id`, a nested scope
    /// should have left it alone.
    fn exited_ancestor(&self, id: ScopeId) -> Option<ScopeId> {
        let mut up = self.scopes.get(&id)?.parent;
        while let Some(p) = up {
            let parent = &self.scopes[&p];
            if matches!(parent.state, ScopeState::Closing | ScopeState::Exited) {
                return Some(p);
            }
            up = parent.parent;
        }
        None
    }

    /// A worker ran for the first time. From now on, once its group's
    /// cancellation is requested, a release must not make it run (TASK-3).
    pub(super) fn task_started(&mut self, task_id: TaskId) -> Result<(), Disagreement> {
        let task = self.check_task_may_run(task_id, "started")?;
        if task.started || task.state.finished() {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{task_id} reported starting twice, or after it finished"),
            );
        }
        if let Some(t) = self.tasks.get_mut(&task_id) {
            t.started = true;
        }
        Ok(())
    }

    pub(super) fn task_done(
        &mut self,
        task_id: TaskId,
        sent: Option<(EventId, Result<(), OpError>)>,
    ) -> Result<(), Disagreement> {
        let spec = self.check_task_may_finish(task_id)?;
        let scope = self.tasks[&task_id].scope;
        if let Some(t) = self.tasks.get_mut(&task_id) {
            t.state = TaskState::Done;
        }
        self.index_task_over(task_id);
        match (spec, sent) {
            (None, None) => Ok(()),
            (Some(spec), Some((event, result))) if spec.event == event => {
                self.send_in(scope, spec.ty, event, result, &format!("{task_id}'s send"))
            }
            (spec, sent) => Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!(
                    "{task_id} was to send {} but reported {}",
                    show_spec(spec),
                    show_sent(&sent)
                ),
            ),
        }
    }

    /// FAIL-2: a subscriber made to fail has unwound; its cleanup's send,
    /// if it had one, is judged as any send from the subscription's scope.
    pub(super) fn subscriber_failed(
        &mut self,
        sub: SubId,
        sent: Option<(EventId, Result<(), OpError>)>,
    ) -> Result<(), Disagreement> {
        let Some((scope, spec)) = self.failing_subs.remove(&sub) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("the subscriber of {sub} reported a failure nobody caused (or twice)"),
            );
        };
        self.coverage.hit(Rule::Fail2);
        match (spec, sent) {
            (None, None) => Ok(()),
            (Some(spec), Some((event, result))) if spec.event == event => self.send_in(
                scope,
                spec.ty,
                event,
                result,
                &format!("the cleanup of {sub}'s failed subscriber"),
            ),
            (spec, sent) => Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!(
                    "the cleanup of {sub}'s failed subscriber was to send {} but reported {}",
                    show_spec(spec),
                    show_sent(&sent)
                ),
            ),
        }
    }

    /// The task, if it exists (ROBUST-1) and may run at all: not cancelled,
    /// and its group's owner not gone (TASK-2). `did` says what it reported
    /// ("started", "finished").
    fn check_task_may_run(
        &self,
        task_id: TaskId,
        did: &str,
    ) -> Result<&super::state::Task, Disagreement> {
        let Some(task) = self.tasks.get(&task_id) else {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{task_id}, which does not exist, {did}"),
            );
        };
        let owner = self.group_of(task.scope);
        if task.state == TaskState::Cancelled || self.scopes[&owner].gone() {
            return Disagreement::of_scope(
                owner,
                Rule::Task2,
                Mode::RanAfterCancel,
                format!("{task_id} {did} after its task group's owner {owner} was cancelled"),
            );
        }
        Ok(task)
    }

    /// A task may finish once released, once, and (cancellation being
    /// cooperative) only if it was woken before its scope's cancellation
    /// was requested (TASK-3) and not after the scope reported cancelled
    /// (TASK-2).
    /// Returns what it was to send.
    fn check_task_may_finish(
        &self,
        task_id: TaskId,
    ) -> Result<Option<crate::op::SendSpec>, Disagreement> {
        let task = self.check_task_may_run(task_id, "finished")?;
        let scope = self.group_of(task.scope);
        if task.released_after_cancel {
            return Disagreement::of_scope(
                scope,
                Rule::Task3,
                Mode::RanAfterCancel,
                format!(
                    "{task_id} had started and was waiting when the cancellation of its task group's owner {scope} was requested; released after that, it still ran"
                ),
            );
        }
        match task.state {
            TaskState::Released(spec) => Ok(spec),
            TaskState::Waiting => Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{task_id} finished before it was released"),
            ),
            _ => Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{task_id} finished twice"),
            ),
        }
    }

    /// Closes `bus`: its subscriptions with credit must now end (CLOSE-1).
    pub(super) fn close_bus(&mut self, bus: super::state::BusIx) {
        if self.buses[bus].closed || !self.layout.closes() {
            return;
        }
        self.buses[bus].closed = true;
        self.index_bus_closed(bus);
    }
}

/// The subscriber task of `sub_id`, made to fail (`fail_subscriber`), still
/// reported something (`did`): a failed task reports nothing more.
fn failed_subscriber_went_on(sub_id: SubId, did: &str) -> Result<(), Disagreement> {
    Disagreement::certain(
        Rule::Robust1,
        Mode::Impossible,
        format!(
            "the subscriber of {sub_id} was made to fail (`fail_subscriber`), so it reports nothing more, yet it {did}"
        ),
    )
}

/// A send an op asked for, for messages: `Login event#4`, or `nothing`.
fn show_spec(spec: Option<crate::op::SendSpec>) -> String {
    spec.map_or_else(
        || "nothing".to_owned(),
        |s| format!("{} event#{}", s.ty, s.event),
    )
}

/// A send a task reported, for messages: `sending event#4 (ok)`, or
/// `no send`.
fn show_sent(sent: &Option<(EventId, Result<(), OpError>)>) -> String {
    match sent {
        None => "no send".to_owned(),
        Some((event, Ok(()))) => format!("sending event#{event} (ok)"),
        Some((event, Err(e))) => format!("sending event#{event} ({e})"),
    }
}
