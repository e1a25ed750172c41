//! Merging the reports of the shards of one run (`--shard K/N`) into the
//! report of the whole range, as `cargo xtask merge` does.
//!
//! Shards are read back into typed [`Report`]s ([`crate::report::from_json`]
//! checks every field), merged, and judged by the runner's own code:
//! verdicts by [`Verdict::decide`], the outcome by [`Report::conforming`],
//! [`Report::judged`] and [`Report::exit_code`].
//!
//! The merge is exact: for the same implementation, ops per seed and seed
//! range, the merged report equals (field for field, apart from `seconds`)
//! the report of one unsharded run. Counts add up (an overflow is refused,
//! never wrapped); per rule and failure mode, the lowest failing seed wins
//! and the failing seeds add up; the explained modes are the
//! [`MODES_SHOWN`] with the lowest seeds (each shard explains its own
//! lowest, so the whole range's are among them); the determinism sample is
//! chosen over the whole range by every shard, so the shards' samples add
//! up to the unsharded one.

use crate::report::{from_json, to_json};
use crate::runner::{
    Determinism, MODES_SHOWN, ModeSeen, Report, RuleFailure, RuleResult, Seeds, Stopped, Verdict,
};
use scopebus_sim::harness::Counts;
use scopebus_sim::model::Mode;
use scopebus_sim::rules::Capability;
use serde_json::Value;
use std::collections::BTreeMap;

/// Merges the JSON reports of all `N` shards of one run (in any order)
/// into the JSON report of the whole range.
///
/// # Errors
/// See [`merge`]; a report that does not read back says which and where.
pub fn merge_json(shards: &[Value]) -> Result<Value, String> {
    let reports = shards
        .iter()
        .enumerate()
        .map(|(i, v)| from_json(v).map_err(|e| format!("report {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    merge(&reports).map(|r| to_json(&r))
}

/// Merges the reports of all `N` shards of one run (in any order) into the
/// report of the whole range.
///
/// # Errors
/// If a report is not a shard's, if shards are missing or repeated, if the
/// shards differ in anything that must be the same (implementation,
/// capabilities, ops per seed, seed range, bus layout, expectations), or if
/// a count overflows.
pub fn merge(shards: &[Report]) -> Result<Report, String> {
    let (start, count) = check_shards(shards)?;
    let first = &shards[0];
    let mut counts = Counts::default();
    let mut determinism = Determinism::default();
    for r in shards {
        counts = add_counts(&counts, &r.counts)?;
        determinism.checked = determinism
            .checked
            .checked_add(r.determinism.checked)
            .ok_or("the determinism counts overflow")?;
        determinism.mismatches.extend(&r.determinism.mismatches);
        determinism
            .differences
            .extend(r.determinism.differences.iter().cloned());
    }
    determinism.mismatches.sort_unstable();
    determinism.differences.sort();
    let rules = (0..first.rules.len())
        .map(|n| {
            merge_rule(
                shards,
                n,
                first.stale.iter().any(|(r, _)| *r == first.rules[n].rule),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report {
        seeds: Seeds::Range { start, count },
        counts,
        rules,
        determinism,
        unjudgeable: shards
            .iter()
            .filter_map(|r| r.unjudgeable.clone())
            .min_by_key(|u| u.seed),
        stopped: merge_stopped(shards)?,
        // Shards run side by side: the whole took as long as the slowest.
        run_time: shards.iter().map(|r| r.run_time).max().unwrap_or_default(),
        shrink_time: shards
            .iter()
            .map(|r| r.shrink_time)
            .max()
            .unwrap_or_default(),
        ..first.clone()
    })
}

/// The whole range stopped early if any shard did: with the first such
/// shard's reason (named), and the seeds every shard ran, summed.
fn merge_stopped(shards: &[Report]) -> Result<Option<Stopped>, String> {
    let mut stopped: Vec<(&Report, &Stopped)> = shards
        .iter()
        .filter_map(|r| r.stopped.as_ref().map(|s| (r, s)))
        .collect();
    stopped.sort_by_key(|(r, _)| r.seeds.bounds().0);
    let Some(&(_, first)) = stopped.first() else {
        return Ok(None);
    };
    let mut seeds_run: u64 = 0;
    for r in shards {
        seeds_run = seeds_run
            .checked_add(r.seed_count())
            .ok_or("the seeds run overflow")?;
    }
    let name = |r: &Report| match r.seeds {
        Seeds::Shard { index, of, .. } => format!("{index}/{of}"),
        _ => "?".to_owned(),
    };
    let mut names: Vec<String> = stopped.iter().take(5).map(|(r, _)| name(r)).collect();
    if stopped.len() > 5 {
        names.push(format!("and {} more", stopped.len() - 5));
    }
    let label = match stopped.len() {
        1 => "shard",
        _ => "shards",
    };
    Ok(Some(Stopped {
        kind: first.kind,
        message: format!(
            "{label} {} stopped early; the first: {}",
            names.join(", "),
            first.message
        ),
        seeds_run,
    }))
}

/// Every report must be a different shard of one run, and all must be
/// there. Returns the whole range: its first seed and size.
fn check_shards(shards: &[Report]) -> Result<(u64, u64), String> {
    let first = shards.first().ok_or("no reports to merge")?;
    let whole = |r: &Report| match r.seeds {
        Seeds::Shard {
            start,
            count,
            index,
            of,
        } => Some((start, count, index, of)),
        _ => None,
    };
    let Some((start, count, _, of)) = whole(first) else {
        return Err(not_a_shard(1));
    };
    let mut present = BTreeMap::new();
    for (i, r) in shards.iter().enumerate() {
        let (s, c, index, o) = whole(r).ok_or_else(|| not_a_shard(i + 1))?;
        if (s, c, o) != (start, count, of) {
            return Err(format!(
                "report {} is shard {index}/{o} of {c} seeds from {s}, but report 1 is of {of} \
                 shards of {count} seeds from {start}: they are not shards of one run",
                i + 1
            ));
        }
        if let Some(earlier) = present.insert(index, i) {
            return Err(format!(
                "reports {} and {} are both shard {index}/{of}",
                earlier + 1,
                i + 1
            ));
        }
        check_same_run(first, r, i)?;
    }
    if shards.len() as u64 != of {
        let missing: Vec<String> = (1..=of.min(present.len() as u64 + 10))
            .filter(|k| !present.contains_key(k))
            .map(|k| format!("{k}/{of}"))
            .collect();
        return Err(format!(
            "shards missing: {} of {of} are here; missing: {}{} (all {of} are needed to stand for the whole range)",
            shards.len(),
            missing.join(", "),
            if of - (shards.len() as u64) > missing.len() as u64 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    Ok((start, count))
}

fn not_a_shard(n: usize) -> String {
    format!(
        "report {n} is not a shard's: it has no `shard` field (write it with \
         `cargo xtask conformance --shard K/N --json PATH`)"
    )
}

/// What every shard of one run shares.
fn check_same_run(first: &Report, r: &Report, i: usize) -> Result<(), String> {
    let differ = |what: &str, a: String, b: String| {
        Err(format!(
            "report {} differs from report 1 in {what} ({a} against {b}): they are not shards of one run",
            i + 1
        ))
    };
    let (a, b) = (&r.implementation, &first.implementation);
    if (&r.target, &a.language, &a.version) != (&first.target, &b.language, &b.version) {
        return differ(
            "the implementation",
            format!("{} {} {}", r.target, a.language, a.version),
            format!("{} {} {}", first.target, b.language, b.version),
        );
    }
    let pairs = [
        (
            "capabilities",
            format!("{:?}", a.capabilities),
            format!("{:?}", b.capabilities),
        ),
        (
            "ops per seed",
            r.ops_per_seed.to_string(),
            first.ops_per_seed.to_string(),
        ),
        (
            "bus layout",
            r.layout.name().to_owned(),
            first.layout.name().to_owned(),
        ),
        ("profile", r.profile.to_string(), first.profile.to_string()),
        (
            "expectations",
            format!("{:?}", r.expectations),
            format!("{:?}", first.expectations),
        ),
        (
            "stale deviations",
            format!("{:?}", r.stale),
            format!("{:?}", first.stale),
        ),
    ];
    for (what, x, y) in pairs {
        if x != y {
            return differ(what, x, y);
        }
    }
    Ok(())
}

fn add_counts(a: &Counts, b: &Counts) -> Result<Counts, String> {
    let add = |x: u64, y: u64, what: &str| {
        x.checked_add(y)
            .ok_or_else(|| format!("the shards' {what} add up past {}", u64::MAX))
    };
    Ok(Counts {
        ops: add(a.ops, b.ops, "ops")?,
        polls: add(a.polls, b.polls, "polls")?,
        wakes: add(a.wakes, b.wakes, "wakes")?,
        migrations: add(a.migrations, b.migrations, "migrations")?,
        preempted: add(a.preempted, b.preempted, "preempted polls")?,
        observations: add(a.observations, b.observations, "observations")?,
        skipped: add(a.skipped, b.skipped, "skipped entries")?,
    })
}

/// The `n`-th rule over every shard: checks and failing seeds add up, each
/// mode keeps its lowest seed, and the verdict is decided again.
fn merge_rule(shards: &[Report], n: usize, stale: bool) -> Result<RuleResult, String> {
    let versions: Vec<&RuleResult> = shards.iter().map(|r| &r.rules[n]).collect();
    let rule = versions[0].rule;
    let mut checks = 0u64;
    let mut partial = 0u64;
    let mut modes: BTreeMap<Mode, ModeSeen> = BTreeMap::new();
    let mut explained: BTreeMap<Mode, &RuleFailure> = BTreeMap::new();
    let mut missing: Vec<Capability> = Vec::new();
    for v in &versions {
        checks = checks
            .checked_add(v.checks)
            .ok_or_else(|| format!("{rule}: the shards' checks add up past {}", u64::MAX))?;
        if v.partial > v.checks {
            return Err(format!(
                "{rule}: a shard has {} partial checks of {} checks",
                v.partial, v.checks
            ));
        }
        partial = partial
            .checked_add(v.partial)
            .ok_or_else(|| format!("{rule}: the shards' partial checks overflow"))?;
        for m in &v.modes {
            let merged = modes.entry(m.mode).or_insert(ModeSeen { seeds: 0, ..*m });
            merged.seed = merged.seed.min(m.seed);
            merged.seeds = merged
                .seeds
                .checked_add(m.seeds)
                .ok_or_else(|| format!("{rule}: the shards' failing seeds overflow"))?;
        }
        for f in &v.failures {
            let kept = explained.entry(f.mode).or_insert(f);
            if f.seed < kept.seed {
                *kept = f;
            }
        }
        missing.extend(
            v.missing
                .iter()
                .filter(|c| !missing.contains(c))
                .collect::<Vec<_>>(),
        );
    }
    missing.sort();
    let mut modes: Vec<ModeSeen> = modes.into_values().collect();
    modes.sort_by_key(|m| m.seed);
    let failures = modes
        .iter()
        .take(MODES_SHOWN)
        .filter_map(|m| {
            explained.get(&m.mode).map(|f| RuleFailure {
                failing_seeds: m.seeds,
                ..(*f).clone()
            })
        })
        .collect();
    let deviation = versions[0].deviation.clone();
    Ok(RuleResult {
        rule,
        level: versions[0].level,
        verdict: Verdict::decide(
            !modes.is_empty(),
            checks,
            &missing,
            deviation.as_deref(),
            stale,
        ),
        checks,
        partial,
        modes,
        failures,
        missing,
        deviation,
    })
}
