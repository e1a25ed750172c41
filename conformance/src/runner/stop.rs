//! When a run stops before its last seed: a run against any adapter
//! finishes in bounded time.
//!
//! Two things stop a run early. **The breaker**: after [`BREAKER`] runs in
//! a row in which the adapter broke (hung, crashed, or broke the protocol),
//! the layout probe's included, no new seed is started against it; more seeds would cost a timeout each
//! and say nothing new. **The deadline** (`--deadline`): once it passes, no
//! new seed starts, and a wait for a reply in flight is cut at it
//! ([`crate::deadline`]).
//!
//! # Invariants
//!
//! - A stopped run reports what it has: the rules that failed, with their
//!   repros, and why it stopped, after how many seeds. It is never
//!   conforming; it is judged only if some `must` rule failed (a hang or a
//!   crash is a failure: exit 1); otherwise it is NOT JUDGED (exit 2).
//! - A seed cut short by the deadline is not counted at all: neither its
//!   checks nor its failure (a cut wait is no hang).
//! - A run cut short neither counts towards the breaker nor resets it.
//! - "In a row" is in the order seeds finish; with several worker threads a
//!   stopped run depends on timing, which the report says.

use super::tally::SeedResult;
use scopebus_sim::model::Mode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Seeds in a row in which the adapter broke before the run stops.
pub const BREAKER: u32 = 3;

/// Why a run stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// The breaker: the adapter broke in [`BREAKER`] seeds in a row.
    Broke,
    /// `--deadline` passed.
    Deadline,
}

impl StopKind {
    /// The name JSON reports use: `broke` or `deadline`.
    pub fn name(self) -> &'static str {
        match self {
            StopKind::Broke => "broke",
            StopKind::Deadline => "deadline",
        }
    }

    /// The kind a JSON report names.
    ///
    /// # Errors
    /// If `name` is neither `broke` nor `deadline`.
    pub fn from_name(name: &str) -> Result<StopKind, String> {
        match name {
            "broke" => Ok(StopKind::Broke),
            "deadline" => Ok(StopKind::Deadline),
            other => Err(format!(
                "`{other}` is not a reason to stop: expected `broke` or `deadline`"
            )),
        }
    }
}

/// How a run stopped early: why, in words, and after how many seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Why.
    pub kind: StopKind,
    /// Why, for the report (e.g. "the adapter hung or crashed in 3 seeds
    /// in a row, the last seed 7").
    pub message: String,
    /// Seeds that ran to their end (and count in the report).
    pub seeds_run: u64,
}

/// The run's stop state, shared by the worker threads.
pub struct Stop {
    /// Set once the run stops: waits of seeds in flight are cut by it.
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
    budget: Option<Duration>,
    in_a_row: AtomicU32,
    reason: Mutex<Option<(StopKind, String)>>,
}

impl Stop {
    /// A stop state for a run that began now and may last `budget`.
    pub fn new(budget: Option<Duration>) -> Stop {
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            deadline: budget.map(|b| Instant::now() + b),
            budget,
            in_a_row: AtomicU32::new(0),
            reason: Mutex::new(None),
        }
    }

    /// The flag set once the run stops, for
    /// [`crate::deadline::within_stoppable`].
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }

    /// The run's deadline, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether another seed may start: no reason to stop yet, and the
    /// deadline (if any) not passed (if it has, that becomes the reason).
    pub fn may_start(&self) -> bool {
        let mut reason = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if reason.is_some() {
            return false;
        }
        if let (Some(deadline), Some(budget)) = (self.deadline, self.budget)
            && Instant::now() >= deadline
        {
            *reason = Some(deadline_passed(budget));
            return false;
        }
        true
    }

    /// Counts a run before the seeds (the layout probe) in which the
    /// adapter broke towards the breaker.
    pub fn broke_once(&self) {
        self.in_a_row.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a finished seed towards the breaker.
    pub fn finished(&self, result: &SeedResult) {
        if result.cut {
            // A run cut short says nothing either way.
            return;
        }
        let broke = result.failure.as_ref().is_some_and(|(f, _)| {
            f.unjudgeable || (f.fault && matches!(f.mode, Mode::Hang | Mode::Crash))
        });
        if !broke {
            self.in_a_row.store(0, Ordering::SeqCst);
            return;
        }
        let n = self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= BREAKER {
            let mut reason = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
            self.flag.store(true, Ordering::SeqCst);
            reason.get_or_insert_with(|| {
                (
                    StopKind::Broke,
                    format!(
                        "the adapter hung, crashed or broke the protocol in {n} runs in a row (the last, seed {}), so no more seeds were started against it",
                        result.seed
                    ),
                )
            });
        }
    }

    /// Whether the run stopped early, and why: `seeds_run` of `planned`
    /// seeds ran to their end (fewer with no reason recorded: the deadline
    /// cut the last ones short).
    pub fn stopped(&self, seeds_run: u64, planned: u64) -> Option<Stopped> {
        if seeds_run >= planned {
            return None;
        }
        let reason = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        let (kind, message) = reason
            .clone()
            .unwrap_or_else(|| deadline_passed(self.budget.unwrap_or_default()));
        Some(Stopped {
            kind,
            message,
            seeds_run,
        })
    }

    /// Whether the breaker stopped the run (the adapter is known to break:
    /// rerunning its seeds would only cost more timeouts).
    pub fn broke(&self) -> bool {
        matches!(
            *self.reason.lock().unwrap_or_else(PoisonError::into_inner),
            Some((StopKind::Broke, _))
        )
    }
}

/// The reason a run stops at its deadline of `budget`.
fn deadline_passed(budget: Duration) -> (StopKind, String) {
    (
        StopKind::Deadline,
        format!("the deadline ({} s) passed", budget.as_secs_f64()),
    )
}
