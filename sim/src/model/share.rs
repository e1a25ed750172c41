//! Shared subscriptions (SHARE-1): one subscription pulled by two subscriber
//! tasks at once (`subscribe_shared`): `sub`, which owns it, and `puller`.
//!
//! # Invariants
//!
//! - The subscription's `credits` is both tasks' credit together, and
//!   [`Share::puller_credits`] the puller's part of it, so whatever owes
//!   the subscription an event (liveness, the indexes) needs nothing new:
//!   an event is owed while either task has credit.
//! - A receipt by either task is a receipt of the subscription: it must be
//!   the subscription's next event, as for any subscription; one already
//!   received went to both tasks, which is SHARE-1's (diagnosis names it
//!   from the misdelivery's `shared` fact).
//! - Either task may report the end once; the first moves the subscription
//!   to its end, as any end, and the other's end is allowed after it.

use super::Model;
use super::disagreement::{Disagreement, Mode};
use super::state::SubState;
use crate::catalogue::{EventId, EventType};
use crate::op::{Op, Reply, ScopeId, SubId};
use crate::rules::Rule;

/// A subscription's second puller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Share {
    /// Its handle.
    pub puller: SubId,
    /// Its part of the subscription's credit.
    pub puller_credits: u64,
    /// Whether the owner's task, and the puller's, reported the end.
    pub ended: [bool; 2],
}

impl Model {
    /// `subscribe_shared`: a subscription made in `scope`, as `subscribe`
    /// makes one, then shared with `puller`.
    pub(super) fn subscribe_shared(
        &mut self,
        sub: SubId,
        puller: SubId,
        scope: ScopeId,
        ty: EventType,
        reply: &Reply,
    ) -> Result<(), Disagreement> {
        self.subscribe(sub, Some(scope), ty, reply)?;
        match self.subs.get_mut(&sub) {
            Some(s) => {
                s.share = Some(Share {
                    puller,
                    puller_credits: 0,
                    ended: [false; 2],
                });
                self.pullers.insert(puller, sub);
            }
            None => {
                self.failed_subs.insert(puller);
            }
        }
        Ok(())
    }

    /// `consume` naming a shared subscription's puller: its credit, and the
    /// subscription's.
    pub(super) fn consume_puller(&mut self, puller: SubId, k: u32) {
        let Some(owner) = self.pullers.get(&puller).copied() else {
            return;
        };
        if let Some(s) = self.subs.get_mut(&owner)
            && let Some(share) = s.share.as_mut()
        {
            share.puller_credits += u64::from(k);
            s.credits += u64::from(k);
            self.index_credited(owner);
        }
    }

    /// A receipt reported by `sub_id`, which may be a shared subscription's
    /// owner or puller: checked against that task's own credit, then as a
    /// receipt of the subscription.
    pub(super) fn received_by(
        &mut self,
        sub_id: SubId,
        event: EventId,
    ) -> Result<(), Disagreement> {
        let (owner, by_puller) = match self.pullers.get(&sub_id) {
            Some(owner) => (*owner, true),
            None => (sub_id, false),
        };
        let mut contended = false;
        if let Some(share) = self.subs.get(&owner).and_then(|s| s.share) {
            let (puller, owner_credit) = (
                share.puller_credits,
                self.subs[&owner].credits - share.puller_credits,
            );
            let (credit, other) = match by_puller {
                true => (puller, owner_credit),
                false => (owner_credit, puller),
            };
            // Both tasks could be pulling: the event could go to both.
            contended = other > 0;
            if credit == 0 && self.subs[&owner].state == SubState::Live {
                return Disagreement::certain(
                    Rule::Robust1,
                    Mode::Impossible,
                    format!(
                        "{sub_id} received event#{event} without credit of its own: the adapter pulled more than asked"
                    ),
                );
            }
        }
        self.received(owner, event).map_err(|d| match d {
            // Said of the task that received it.
            Disagreement::Misdelivery(mut m) if by_puller => {
                m.sub.sub = sub_id;
                Disagreement::Misdelivery(m)
            }
            other => other,
        })?;
        if contended {
            self.coverage.hit(Rule::Share1);
        }
        if by_puller && let Some(share) = self.subs.get_mut(&owner).and_then(|s| s.share.as_mut()) {
            share.puller_credits -= 1;
        }
        Ok(())
    }

    /// An end reported by `sub_id`, which may be a shared subscription's
    /// owner or puller: the first of the two is the subscription's end, the
    /// second is allowed after it, once.
    pub(super) fn ended_by(&mut self, sub_id: SubId) -> Result<(), Disagreement> {
        let (owner, which) = match self.pullers.get(&sub_id) {
            Some(owner) => (*owner, 1),
            None => (sub_id, 0),
        };
        let Some(share) = self.subs.get(&owner).and_then(|s| s.share) else {
            return self.ended(sub_id);
        };
        if share.ended[which] {
            return Disagreement::certain(
                Rule::Robust1,
                Mode::Impossible,
                format!("{sub_id} reported its end twice"),
            );
        }
        if !share.ended[1 - which] || self.subs[&owner].state != SubState::Ended {
            self.ended(owner)?;
        } else {
            self.coverage.hit(Rule::Close1);
        }
        if let Some(share) = self.subs.get_mut(&owner).and_then(|s| s.share.as_mut()) {
            share.ended[which] = true;
        }
        Ok(())
    }

    /// Whether `sub` is a shared subscription's puller (only `consume` may
    /// name it).
    pub fn is_puller(&self, sub: SubId) -> bool {
        self.pullers.contains_key(&sub)
    }

    /// Pullers of shared subscriptions still held, which `consume` may
    /// name.
    pub fn held_pullers(&self) -> Vec<SubId> {
        self.pullers
            .iter()
            .filter(|(_, owner)| self.is_held(**owner))
            .map(|(puller, _)| *puller)
            .collect()
    }

    /// Whether `op`, naming a shared subscription's task, is valid; `None`
    /// if it names none (the ordinary checks apply). Only `consume` and
    /// `abandon` name the puller; `fail_subscriber` never names either.
    pub(super) fn validate_shared(&self, op: &Op) -> Option<Result<(), String>> {
        let sub = match op {
            Op::Consume { sub, .. }
            | Op::Abandon { sub }
            | Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::FailSubscriber { sub, .. } => *sub,
            _ => return None,
        };
        let answer = match (op, self.pullers.get(&sub)) {
            (Op::Consume { .. } | Op::Abandon { .. }, Some(owner)) => match self.is_held(*owner) {
                true => Ok(()),
                false => Err(format!("{sub}'s shared subscription was dropped")),
            },
            (_, Some(_)) => Err(format!(
                "{sub} is a shared subscription's second puller: only `consume` and `abandon` apply to it"
            )),
            (Op::FailSubscriber { .. }, None) if self.is_shared(sub) => Err(format!(
                "{sub} is shared: `fail_subscriber` does not apply to it"
            )),
            _ => return None,
        };
        Some(answer)
    }

    /// The second puller of `sub`, if it is shared.
    pub fn puller_of(&self, sub: SubId) -> Option<SubId> {
        self.subs.get(&sub).and_then(|s| s.share).map(|s| s.puller)
    }

    /// Whether some subscription was ever shared (`subscribe_shared`).
    pub fn has_shared(&self) -> bool {
        !self.pullers.is_empty()
    }

    /// Whether `sub` is shared with a second puller.
    pub fn is_shared(&self, sub: SubId) -> bool {
        self.subs.get(&sub).is_some_and(|s| s.share.is_some())
    }
}
