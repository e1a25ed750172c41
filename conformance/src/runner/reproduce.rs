//! Flaky failures: before a failure is reported, its seed and its shrunk
//! trace are rerun on fresh instances, a few times and within a time
//! budget. A failure that does not show every time is a finding about the
//! implementation's determinism: the rule still fails (the implementation
//! did it), but the report gives the reproduction rate, the transcripts of
//! a failing and of a passing run, and never presents a command as if it
//! reproduced the failure.

use super::Campaign;
use super::verdict::Reproduction;
use crate::deadline;
use scopebus_sim::diagnosis::Diagnosis;
use scopebus_sim::harness::{GenConfig, Run, generate};
use scopebus_sim::op::Entry;
use scopebus_sim::rules::Rule;
use std::time::{Duration, Instant};

/// Reruns of the seed, and replays of the shrunk trace, after the first of
/// each.
const RERUNS: u32 = 3;

/// Time the reruns of one failure may take (the first of each may take
/// longer, but the caller cuts every wait for a reply at this budget: see
/// [`crate::deadline`]).
pub const TIME: Duration = Duration::from_secs(5);

/// What the reruns left: the counts, and a transcript of a run that failed
/// and of one that passed (for an adapter).
#[derive(Default)]
pub struct Reruns {
    pub reproduction: Reproduction,
    pub failing_transcript: Option<Vec<String>>,
    pub passing_transcript: Option<Vec<String>>,
}

impl Reruns {
    /// Counts one rerun as failed if it failed one of `rules` (a seed's
    /// rerun may be read under the rule its first run was, or the one its
    /// shrunk trace names); one the deadline cut short counts for nothing.
    fn count(&mut self, run: Run, rules: &[Rule], of_seed: bool) {
        if deadline::cut_short(&run) {
            return;
        }
        let failed = run.failure.is_some_and(|f| rules.contains(&f.rule));
        let r = &mut self.reproduction;
        let (runs, failures) = match of_seed {
            true => (&mut r.seed_runs, &mut r.seed_failures),
            false => (&mut r.trace_runs, &mut r.trace_failures),
        };
        *runs += 1;
        *failures += u32::from(failed);
        let keep = match failed {
            true => &mut self.failing_transcript,
            false => &mut self.passing_transcript,
        };
        if keep.is_none() {
            *keep = run.transcript;
        }
    }
}

/// Reruns `seed` (which should fail `seed_rule`) and replays `shrunk`
/// (which should fail `rule`: the two differ when shrinking let diagnosis
/// name the cause) on fresh instances: the seed's first run counts as failed, `first_replay` is the
/// shrunk trace's first replay; up to [`RERUNS`] more of each follow, within
/// [`TIME`] (one more of each at least).
pub fn reproduce(
    campaign: &Campaign,
    diagnosis: &mut Diagnosis<'_>,
    seed: u64,
    seed_rule: Rule,
    rule: Rule,
    shrunk: &[Entry],
    first_replay: Run,
) -> Reruns {
    let mut reruns = Reruns::default();
    reruns.reproduction.seed_runs = 1;
    reruns.reproduction.seed_failures = 1;
    reruns.count(first_replay, &[rule], false);
    let started = Instant::now();
    for n in 0..RERUNS {
        if n > 0 && started.elapsed() > TIME {
            break;
        }
        let mut imp = campaign.target.instantiate();
        let run = generate(seed, GenConfig { ops: campaign.ops }, &mut *imp);
        reruns.count(diagnosis.attribute(run), &[seed_rule, rule], true);
        reruns.count(diagnosis.judge(shrunk), &[rule], false);
    }
    reruns
}
