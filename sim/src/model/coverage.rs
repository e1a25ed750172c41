//! Coverage: counting, for each rule, the situations that could have broken
//! it and did not. A rule with no such situation is "not exercised", never
//! passed (SPEC.md, "How rules are checked").
//!
//! Most counts are taken where a check passes (in `ops`, `observations`,
//! `stats`, `liveness`). What is here is the one count that needs memory:
//! a subscription that lived through sends of its route on other buses
//! (SCOPE-1, SCOPE-3), sends of look-alike types on its own bus (ROUTE-1)
//! or drops of its siblings (CANCEL-1) exercises those rules only once it
//! receives or ends undisturbed. Each subscription keeps a snapshot of the
//! counts it has already been credited for.

use super::Model;
use super::disagreement::ScopeKind;
use super::state::BusIx;
use crate::catalogue::EventType;
use crate::op::SubId;
use crate::rules::Rule;

/// Counts of sends of one route on open buses, at some moment.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SendsSeen {
    /// On every bus.
    all: u64,
    /// On buses owned by isolated scopes.
    isolated: u64,
    /// On the subscription's own bus.
    own: u64,
}

/// What one subscription's receipts have exercised so far.
#[derive(Clone, Debug, Default)]
pub(super) struct SubExposure {
    /// Events of its route were retained when it subscribed: its first
    /// receipt exercises VIS-1.
    pub vis_pending: bool,
    /// An event of its route was dropped for want of subscribers before it
    /// subscribed: its first receipt exercises DROP-1.
    pub drop_pending: bool,
    /// Sends per route on its bus when last credited (ROUTE-1).
    route_snapshot: [u64; 8],
    /// Sends of its route, all, on isolated buses and on its own bus, when
    /// last credited (SCOPE-1, SCOPE-3).
    sends_seen: SendsSeen,
    /// Drops of its siblings when last credited (CANCEL-1).
    drops_seen: usize,
    /// Abandoned pulls on its channel, its own included, when last
    /// credited (CANCEL-2).
    abandons_seen: usize,
}

/// Sends per route on open buses, over the whole run.
#[derive(Clone, Debug, Default)]
pub(super) struct RouteSends {
    /// On every bus (indexed as `EventType::ALL`).
    all: [u64; 8],
    /// On buses owned by isolated scopes.
    isolated: [u64; 8],
}

pub(super) fn route_index(route: EventType) -> usize {
    EventType::ALL
        .iter()
        .position(|t| *t == route)
        .unwrap_or_default()
}

impl Model {
    /// Counts a send of `route` on the open `bus`.
    pub(super) fn count_send(&mut self, bus: BusIx, route: EventType) {
        let r = route_index(route);
        self.route_sends.all[r] += 1;
        if self.buses[bus].owner_kind == ScopeKind::Isolated {
            self.route_sends.isolated[r] += 1;
        }
    }

    /// The exposure of a subscription created now on `bus` for `route`.
    pub(super) fn new_exposure(&self, bus: BusIx, route: EventType, start: usize) -> SubExposure {
        let r = route_index(route);
        let channel = self.buses[bus].channels.get(&route);
        SubExposure {
            vis_pending: self.retained(bus, route) > 0,
            drop_pending: channel.is_some_and(|c| c.unstored > 0),
            route_snapshot: self.sends_snapshot(bus),
            sends_seen: SendsSeen {
                all: self.route_sends.all[r],
                isolated: self.route_sends.isolated[r],
                own: start as u64,
            },
            drops_seen: channel.map_or(0, |c| c.drops.len()),
            abandons_seen: channel.map_or(0, |c| c.abandons),
        }
    }

    pub(super) fn sends_snapshot(&self, bus: BusIx) -> [u64; 8] {
        let mut snapshot = [0; 8];
        for (route, channel) in &self.buses[bus].channels {
            snapshot[route_index(*route)] = channel.log.len() as u64;
        }
        snapshot
    }

    /// A subscription received or ended undisturbed: credits it (and the
    /// rules) with what it lived through since it was last credited.
    pub(super) fn note_undisturbed(&mut self, sub_id: SubId) {
        let Some(sub) = self.subs.get(&sub_id) else {
            return;
        };
        let now = self.sends_snapshot(sub.bus);
        let r = route_index(sub.route);
        let seen = sub.exposure.sends_seen;
        let foreign = (self.route_sends.all[r] - seen.all) - (now[r] - seen.own);
        let foreign_isolated = if self.buses[sub.bus].owner_kind == ScopeKind::Isolated {
            foreign
        } else {
            self.route_sends.isolated[r] - seen.isolated
        };
        let routing_rule = sub.route.routing_rule();
        let lookalike_sent = EventType::ALL.iter().any(|t| {
            *t == t.route()
                && *t != sub.route
                && t.family() == sub.route.family()
                && now[route_index(*t)] > sub.exposure.route_snapshot[route_index(*t)]
        });
        let channel = self.buses[sub.bus].channels.get(&sub.route);
        let drops = channel.map_or(0, |c| c.drops.len());
        let abandons = channel.map_or(0, |c| c.abandons);
        let cancel = drops > sub.exposure.drops_seen;
        let abandoned = abandons > sub.exposure.abandons_seen;
        let sends_seen = SendsSeen {
            all: self.route_sends.all[r],
            isolated: self.route_sends.isolated[r],
            own: now[r],
        };
        if let Some(sub) = self.subs.get_mut(&sub_id) {
            sub.exposure.sends_seen = sends_seen;
            sub.exposure.route_snapshot = now;
            sub.exposure.drops_seen = drops;
            sub.exposure.abandons_seen = abandons;
        }
        let hits = [
            (foreign > foreign_isolated, Rule::Scope1),
            (foreign_isolated > 0, Rule::Scope3),
            (lookalike_sent, routing_rule),
            (cancel, Rule::Cancel1),
            (abandoned, Rule::Cancel2),
        ];
        for (hit, rule) in hits {
            if hit {
                self.coverage.hit(rule);
            }
        }
    }
}
