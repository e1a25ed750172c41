//! Seeded scheduling policies: which runnable task the executor polls next.
//!
//! - `Random`: uniformly among the runnable tasks.
//! - `Pct`: probabilistic concurrency testing (Burckhardt et al., ASPLOS
//!   2010): every task gets a random priority when first seen, the highest
//!   runnable priority always runs, and at `depth` randomly chosen steps the
//!   running task drops below all others. A bug that needs `d` ordering
//!   constraints is found with probability at least 1/(n·k^(d-1)).

use crate::op::TaskRef;
use rand::{Rng, RngExt};
use std::collections::BTreeMap;

/// A policy and its state for one run.
#[derive(Clone, Debug)]
pub enum Scheduler {
    /// Uniform random choice.
    Random,
    /// PCT with its priorities and change points.
    Pct {
        /// Priority of every task seen so far.
        priorities: BTreeMap<TaskRef, u64>,
        /// Step numbers at which the running task is demoted, ascending.
        change_points: Vec<u64>,
        /// Steps taken so far.
        step: u64,
        /// The next demoted priority (counts down, below every initial one).
        next_low: u64,
    },
}

/// Priorities below this are demoted ones; initial ones are above.
const DEMOTED: u64 = 1 << 32;

impl Scheduler {
    /// PCT with `depth` change points spread over about `horizon` steps.
    pub fn pct(rng: &mut impl Rng, depth: u32, horizon: u64) -> Scheduler {
        let mut change_points: Vec<u64> = (0..depth)
            .map(|_| rng.random_range(0..horizon.max(1)))
            .collect();
        change_points.sort_unstable();
        Scheduler::Pct {
            priorities: BTreeMap::new(),
            change_points,
            step: 0,
            next_low: DEMOTED - 1,
        }
    }

    /// A short name for reports: `random` or `pct(d=N)`.
    pub fn describe(&self) -> String {
        match self {
            Scheduler::Random => "random".to_owned(),
            Scheduler::Pct { change_points, .. } => format!("pct(d={})", change_points.len()),
        }
    }

    /// Picks one of `runnable` (which must not be empty; `None` if it is).
    pub fn pick(&mut self, rng: &mut impl Rng, runnable: &[TaskRef]) -> Option<TaskRef> {
        if runnable.is_empty() {
            return None;
        }
        match self {
            Scheduler::Random => Some(runnable[rng.random_range(0..runnable.len())]),
            Scheduler::Pct {
                priorities,
                change_points,
                step,
                next_low,
            } => {
                for task in runnable {
                    priorities
                        .entry(*task)
                        .or_insert_with(|| rng.random_range(DEMOTED..u64::MAX));
                }
                let chosen = *runnable.iter().max_by_key(|t| priorities[*t])?;
                if change_points.first() == Some(step) {
                    change_points.remove(0);
                    priorities.insert(chosen, *next_low);
                    *next_low = next_low.saturating_sub(1);
                }
                *step += 1;
                Some(chosen)
            }
        }
    }
}
