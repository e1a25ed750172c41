//! `observe`: the statistics an implementation reports for the bus in reach
//! in a scope, per route, against the model's (RECLAIM-1, RECLAIM-2,
//! DROP-1). Live subscriptions are counted exactly; retained events are
//! those from the slowest live cursor to the end of the log.

use super::Model;
use super::disagreement::{Disagreement, HeldFacts, Mode, StatsField, StatsMismatch};
use super::ops::show;
use super::state::{BusIx, SubState, Subscription};
use crate::catalogue::{EventId, EventType};
use crate::op::{Answer, Reply, ScopeId, TypeCount};
use crate::rules::Rule;
use std::collections::BTreeSet;

impl Model {
    pub(super) fn observe_stats(
        &mut self,
        scope: ScopeId,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        let counts = match reply {
            Ok(Answer::Stats(counts)) => counts,
            other => {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!(
                        "observe {scope} answered {}; expected statistics",
                        show(other)
                    ),
                );
            }
        };
        let mut listed = BTreeSet::new();
        if let Some(twice) = counts.iter().find(|c| !listed.insert(c.ty.route())) {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!(
                    "observe {scope} listed {} twice (aliases route as their target): which count holds?",
                    twice.ty.route()
                ),
            );
        }
        let bus = self.scopes[&scope].bus;
        for route in EventType::ALL.into_iter().filter(|t| t.route() == *t) {
            self.check_route_stats(scope, bus, route, counts)?;
        }
        Ok(())
    }

    fn check_route_stats(
        &mut self,
        scope: ScopeId,
        bus: BusIx,
        route: EventType,
        counts: &[TypeCount],
    ) -> Result<(), Disagreement> {
        let reported = counts.iter().find(|c| c.ty == route);
        let subs = reported_subscriptions(counts, route);
        let retained = reported.map_or(0, |c| c.retained);
        let want_subs = self.live_count(bus, route) as u64;
        let want_retained = self.retained(bus, route) as u64;
        let mismatch = |field| {
            Err(Disagreement::Stats(Box::new(
                self.stats_mismatch(scope, bus, route, counts, field),
            )))
        };
        if let Some(subs) = subs
            && subs != want_subs
        {
            return mismatch(StatsField::Subscriptions {
                reported: subs,
                expected: want_subs,
            });
        }
        if let Some(ids) = reported.and_then(|c| c.retained_events.as_ref())
            && let Some(field) = self.retained_ids_differ(scope, bus, route, ids)?
        {
            return mismatch(field);
        }
        if retained != want_retained {
            return mismatch(StatsField::Retained {
                reported: retained,
                expected: want_retained,
            });
        }
        let channel = self.buses[bus].channels.get(&route);
        let hits = [
            (
                want_subs > 0 && channel.is_some_and(|c| !c.log.is_empty()),
                Rule::Reclaim1,
            ),
            (
                channel.is_some_and(|c| c.dropped_with_backlog),
                Rule::Reclaim2,
            ),
            (channel.is_some_and(|c| c.unstored > 0), Rule::Drop1),
        ];
        for (hit, rule) in hits {
            match (hit, subs, rule) {
                (false, _, _) => {}
                // RECLAIM-1, RECLAIM-2: the live count was not compared.
                (true, None, Rule::Reclaim1 | Rule::Reclaim2) => self.coverage.hit_partly(rule),
                (true, _, _) => self.coverage.hit(rule),
            }
        }
        Ok(())
    }

    /// With the exact ids an implementation retains, the first event that
    /// is held but should not be, or freed but should not be.
    fn retained_ids_differ(
        &self,
        scope: ScopeId,
        bus: BusIx,
        route: EventType,
        ids: &[EventId],
    ) -> Result<Option<StatsField>, Disagreement> {
        let log = self.buses[bus]
            .channels
            .get(&route)
            .map_or(&[][..], |c| c.log.as_slice());
        let slowest = self
            .channel_subs(bus, route)
            .filter(|s| s.state == SubState::Live)
            .map(|s| s.cursor().min(log.len()))
            .min();
        let expected: BTreeSet<EventId> =
            slowest.map_or_else(BTreeSet::new, |from| log[from..].iter().copied().collect());
        let held: BTreeSet<EventId> = ids.iter().copied().collect();
        if let Some(extra) = held.difference(&expected).next() {
            let Some(event) = self.events.get(extra) else {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!(
                        "the bus of {scope}, {route}: event#{extra} is reported retained, but it was never sent"
                    ),
                );
            };
            let index = event.index.unwrap_or_default();
            let facts = HeldFacts {
                after_close: event.after_close,
                stored: event.stored,
                pinned_by_dropped: self
                    .channel_subs(bus, route)
                    .any(|s| s.state == SubState::Dropped && s.cursor() <= index),
            };
            return Ok(Some(StatsField::HeldEvent {
                event: *extra,
                facts,
            }));
        }
        Ok(expected
            .difference(&held)
            .next()
            .map(|missing| StatsField::FreedEvent { event: *missing }))
    }

    fn stats_mismatch(
        &self,
        scope: ScopeId,
        bus: BusIx,
        route: EventType,
        counts: &[TypeCount],
        field: StatsField,
    ) -> StatsMismatch {
        let channel = self.buses[bus].channels.get(&route);
        let count = |f: fn(&super::state::Channel) -> u64| channel.map_or(0, f);
        StatsMismatch {
            scope,
            route,
            merged_with: match &field {
                StatsField::Subscriptions { reported, expected } => {
                    self.merged_lookalike(bus, route, counts, *reported < *expected)
                }
                _ => None,
            },
            as_if_dropped_held: self.as_if_dropped_held(bus, route),
            any_dropped: channel.is_some_and(|c| !c.drops.is_empty()),
            bus_closed: self.buses[bus].closed,
            sent_after_close: count(|c| c.after_close),
            sent_unstored: count(|c| c.unstored),
            late_subs: self.channel_sub_ids(bus, route, |s| s.born_on_closed_bus),
            dropped_subs: self.channel_sub_ids(bus, route, |s| s.state == SubState::Dropped),
            unstored_events: self.unstored_events(bus, route),
            after_close_events: self.after_close_events(bus, route),
            younger_subs: self.younger_subs(bus, route, &field),
            field,
        }
    }

    /// A look-alike of `route` whose subscription count is off the other
    /// way (`fewer`: this route has fewer than the model), or that is listed
    /// while `route` is missing: the bus seems to keep them as one type.
    fn merged_lookalike(
        &self,
        bus: BusIx,
        route: EventType,
        counts: &[TypeCount],
        fewer: bool,
    ) -> Option<EventType> {
        let reported = |t: EventType| reported_subscriptions(counts, t);
        let missing = !counts.iter().any(|c| c.ty == route);
        EventType::ALL.into_iter().find(|t| {
            *t == t.route()
                && *t != route
                && t.family() == route.family()
                && ((missing && counts.iter().any(|c| c.ty == *t))
                    || reported(*t).is_some_and(|n| {
                        let want = self.live_count(bus, *t) as u64;
                        (n > want) == fewer && n != want
                    }))
        })
    }

    /// What the bus would report if its dropped subscriptions still held
    /// their place: (live subscriptions, retained events). Worked out only
    /// when something is off: it scans every subscription the channel ever
    /// had.
    fn as_if_dropped_held(&self, bus: BusIx, route: EventType) -> (u64, u64) {
        let len = self.log_len(bus, route);
        let mut dropped = 0;
        let mut retained = 0;
        for s in self.channel_subs(bus, route) {
            match s.state {
                SubState::Dropped => {
                    dropped += 1;
                    retained = retained.max(len - s.cursor().min(len));
                }
                SubState::Live => retained = retained.max(len - s.cursor().min(len)),
                _ => {}
            }
        }
        (dropped, retained as u64)
    }

    /// The ids of the subscriptions `route` ever had on `bus` that `pick`
    /// picks, in id order.
    fn channel_sub_ids(
        &self,
        bus: BusIx,
        route: EventType,
        pick: fn(&Subscription) -> bool,
    ) -> Vec<crate::op::SubId> {
        self.subs
            .iter()
            .filter(|(_, s)| s.bus == bus && s.route == route && pick(s))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The events of `route` sent on `bus` while it was open but had no live
    /// subscription of the route.
    fn unstored_events(&self, bus: BusIx, route: EventType) -> Vec<EventId> {
        let Some(channel) = self.buses[bus].channels.get(&route) else {
            return Vec::new();
        };
        channel
            .log
            .iter()
            .filter(|e| self.events.get(e).is_some_and(|e| !e.stored))
            .copied()
            .collect()
    }

    /// The events of `route` sent on `bus` after it closed, in id order.
    fn after_close_events(&self, bus: BusIx, route: EventType) -> Vec<EventId> {
        let mut events: Vec<EventId> = self
            .events
            .iter()
            .filter(|(_, e)| e.after_close && e.bus == Some(bus) && e.route == route)
            .map(|(id, _)| *id)
            .collect();
        events.sort_unstable();
        events
    }

    /// The live subscriptions of `route` on `bus` made after the oldest
    /// event the implementation holds too many of was sent: the event it
    /// names, or, by count, the `reported`-th from the end of the log (as
    /// if every event held were of the log, though some may have been sent
    /// after close: diagnosis asks by replaying without these
    /// subscriptions, which answers only if they were the holders).
    fn younger_subs(
        &self,
        bus: BusIx,
        route: EventType,
        field: &StatsField,
    ) -> Vec<crate::op::SubId> {
        let len = self.log_len(bus, route);
        let index = match field {
            StatsField::HeldEvent { event, .. } => self.events.get(event).and_then(|e| e.index),
            // By count, only where the count can only be events of the log
            // (none were sent after close, which are in no log).
            StatsField::Retained { reported, expected } if reported > expected => {
                len.checked_sub(*reported as usize)
            }
            _ => None,
        };
        let Some(index) = index else {
            return Vec::new();
        };
        self.subs
            .iter()
            .filter(|(_, s)| {
                s.bus == bus && s.route == route && s.state == SubState::Live && s.start > index
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every subscription `route` ever had on `bus`, dropped ones included.
    fn channel_subs(&self, bus: BusIx, route: EventType) -> impl Iterator<Item = &Subscription> {
        self.subs
            .values()
            .filter(move |s| s.bus == bus && s.route == route)
    }
}

/// The live subscriptions an `observe` reported for `route`: its count; 0 if
/// it left the route out; unknown (`None`) if it counts no subscriptions at
/// all (some listed route has `subscriptions: null`), listed or not.
fn reported_subscriptions(counts: &[TypeCount], route: EventType) -> Option<u64> {
    match counts.iter().find(|c| c.ty == route) {
        Some(c) => c.subscriptions,
        None if counts.iter().any(|c| c.subscriptions.is_none()) => None,
        None => Some(0),
    }
}
