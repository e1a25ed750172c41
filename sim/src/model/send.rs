//! Sends, by the driver (`send`) or by a worker task (`release` with a
//! send): the reply's check and the event's place in its channel's log.

use super::Model;
use super::disagreement::{Disagreement, Mode, SendRefused};
use super::state::Event;
use crate::catalogue::{EventId, EventType};
use crate::op::{Answer, OpError, Reply, ScopeId};
use crate::rules::Rule;

impl Model {
    pub(super) fn send_op(
        &mut self,
        scope: Option<ScopeId>,
        ty: EventType,
        event: EventId,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        let result = match reply {
            Ok(Answer::Done) => Ok(()),
            Ok(other) => {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!("send answered {other:?}; expected a plain success"),
                );
            }
            Err(e) => Err(e.clone()),
        };
        let Some(scope) = scope else {
            self.events
                .insert(event, Event::unlogged(ty, None, None, false));
            return self.expect_context_missing(&format!("sending {ty} event#{event}"), reply);
        };
        self.send_in(scope, ty, event, result, "send")
    }

    /// A send from inside `scope` (by the driver, or by a worker: `who`)
    /// with the outcome the implementation reported.
    pub(super) fn send_in(
        &mut self,
        scope: ScopeId,
        ty: EventType,
        event: EventId,
        result: Result<(), OpError>,
        who: &str,
    ) -> Result<(), Disagreement> {
        let bus = self.scopes[&scope].bus;
        let owner = self.buses[bus].owner;
        let through_exited = self.scopes[&scope].gone();
        if through_exited && result == Err(OpError::ContextMissing) {
            return Disagreement::certain(
                Rule::Exit1,
                Mode::ExitedHandle,
                format!(
                    "{who} of {ty} event#{event} in {scope}, which has exited, failed with ContextMissing; the bus it had is still in reach through its handle{}",
                    if self.buses[bus].closed {
                        " (closed: expected success or Closed)"
                    } else {
                        " (and open)"
                    }
                ),
            );
        }
        if result == Err(OpError::Closed) && self.scopes[&owner].cancel_requested {
            // Cancellation is asynchronous: once the owner's cancellation
            // was requested its bus may close at any moment (CLOSE-1), and
            // this `Closed` says it has.
            self.close_bus(bus);
        }
        if self.buses[bus].closed {
            return self.send_after_close(scope, ty, event, result, who);
        }
        match result {
            // SEND-1: a send on an open bus succeeds; EXIT-1: also through
            // the handle of a scope that has exited.
            Ok(()) if through_exited => {
                self.coverage.hit(Rule::Send1);
                self.coverage.hit(Rule::Exit1);
            }
            Ok(()) => self.coverage.hit(Rule::Send1),
            Err(OpError::ContextMissing) => {
                return Disagreement::certain(
                    self.scopes[&scope].kind().rule(),
                    Mode::NoBus,
                    format!(
                        "{who} of {ty} event#{event} in {scope} failed with ContextMissing; a bus is in reach there"
                    ),
                );
            }
            Err(error) => {
                return Err(Disagreement::SendRefused(
                    self.send_refused(scope, ty, event, error, who),
                ));
            }
        }
        let route = ty.route();
        // DROP-1: sent with no live subscription, it must not be stored.
        let stored = self.live_count(bus, route) > 0;
        self.count_send(bus, route);
        let channel = self.buses[bus].channels.entry(route).or_default();
        let index = channel.log.len();
        channel.log.push(event);
        if !stored {
            channel.unstored += 1;
        }
        self.index_sent(bus, route);
        self.events.insert(
            event,
            Event {
                stored,
                index: Some(index),
                ..Event::unlogged(ty, Some(bus), Some(scope), false)
            },
        );
        Ok(())
    }

    /// CLOSE-2: a send after close may succeed (and deliver nothing) or fail
    /// with `Closed`; it must not hang, and nothing may arrive.
    fn send_after_close(
        &mut self,
        scope: ScopeId,
        ty: EventType,
        event: EventId,
        result: Result<(), OpError>,
        who: &str,
    ) -> Result<(), Disagreement> {
        let bus = self.scopes[&scope].bus;
        let route = ty.route();
        self.events
            .insert(event, Event::unlogged(ty, Some(bus), Some(scope), true));
        self.buses[bus]
            .channels
            .entry(route)
            .or_default()
            .after_close += 1;
        match result {
            Ok(()) | Err(OpError::Closed) => {
                self.coverage.hit(Rule::Close2);
                if self.scopes[&scope].gone() {
                    self.coverage.hit(Rule::Exit1);
                }
                Ok(())
            }
            Err(error) => Err(Disagreement::SendRefused(
                self.send_refused(scope, ty, event, error, who),
            )),
        }
    }

    fn send_refused(
        &self,
        scope: ScopeId,
        ty: EventType,
        event: EventId,
        error: OpError,
        who: &str,
    ) -> SendRefused {
        let s = &self.scopes[&scope];
        let bus = &self.buses[s.bus];
        SendRefused {
            who: who.to_owned(),
            ty,
            event,
            scope,
            error,
            bus_closed: bus.closed,
            sibling_dropped: bus
                .channels
                .get(&ty.route())
                .is_some_and(|c| !c.drops.is_empty()),
            sees_closed_bus: self.sees_closed_bus(scope),
            scope_kind: s.kind(),
            through_exited: s.gone(),
        }
    }

    /// Whether a scope whose bus is open could be confusing it with a closed
    /// one: it is a nested scope that is itself closing (and so would have
    /// closed a bus of its own), or some enclosing scope's bus is closed.
    fn sees_closed_bus(&self, id: ScopeId) -> bool {
        let scope = &self.scopes[&id];
        if scope.parent.is_some()
            && !scope.isolated
            && matches!(
                scope.state,
                super::state::ScopeState::Closing | super::state::ScopeState::Exited
            )
        {
            return true;
        }
        let mut up = scope.parent;
        while let Some(p) = up {
            let parent = &self.scopes[&p];
            if parent.bus != scope.bus && self.buses[parent.bus].closed {
                return true;
            }
            up = parent.parent;
        }
        false
    }
}
