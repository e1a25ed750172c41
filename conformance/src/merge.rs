//! Merging the JSON reports of the shards of one run (`--shard K/N`) into the
//! report of the whole range, as `cargo xtask merge` does.
//!
//! The merge is exact: for the same implementation, ops per seed and seed
//! range, the merged report equals (field for field, apart from `seconds`)
//! the report of one unsharded run. Counts add up; per rule, the lowest
//! failing seed wins and the failing seeds add up; verdicts are recomputed
//! by the same precedence the runner applies to the whole range; the
//! determinism sample is chosen over the whole range by every shard, so the
//! shards' samples add up to the unsharded one.

use serde_json::{Value, json};
use std::collections::BTreeSet;

/// What a shard report must say about itself.
struct ShardInfo {
    index: u64,
    of: u64,
    first_seed: u64,
    seeds: u64,
}

fn shard_info(i: usize, report: &Value) -> Result<ShardInfo, String> {
    let shard = report.get("shard").ok_or_else(|| {
        format!(
            "report {} is not a shard's: it has no `shard` field (write it with \
             `cargo xtask conformance --shard K/N --json PATH`)",
            i + 1
        )
    })?;
    let field = |name: &str| {
        shard.get(name).and_then(Value::as_u64).ok_or_else(|| {
            format!(
                "report {}: `shard.{name}` is missing or not a whole number",
                i + 1
            )
        })
    };
    Ok(ShardInfo {
        index: field("index")?,
        of: field("of")?,
        first_seed: field("first_seed")?,
        seeds: field("seeds")?,
    })
}

fn u64_of(report: &Value, name: &str, i: usize) -> Result<u64, String> {
    report.get(name).and_then(Value::as_u64).ok_or_else(|| {
        format!(
            "report {}: `{name}` is missing or not a whole number",
            i + 1
        )
    })
}

/// The verdicts a rule can have, in the order the runner decides them: a
/// failure (real, or expected by the deviations file) first, then a missing
/// capability, then what only the whole range can say.
const PRECEDENCE: [&str; 5] = [
    "not_tested",
    "unexpected_pass",
    "expected_failure",
    "passed",
    "not_exercised",
];

/// Merges the JSON reports of all `N` shards of one run (each written by
/// `cargo xtask conformance --shard K/N --json PATH`, in any order) into the
/// report of the whole range.
///
/// # Errors
/// If a report is not a shard's, if shards are missing or repeated, or if
/// the shards differ in anything that must be the same (implementation,
/// capabilities, ops per seed, seed range, expectations file, rule set).
pub fn merge_json(shards: &[Value]) -> Result<Value, String> {
    let Some(first) = shards.first() else {
        return Err("no reports to merge".to_owned());
    };
    let infos: Vec<ShardInfo> = shards
        .iter()
        .enumerate()
        .map(|(i, r)| shard_info(i, r))
        .collect::<Result<_, _>>()?;
    let of = infos[0].of;
    let (start, count) = (infos[0].first_seed, infos[0].seeds);
    for (i, info) in infos.iter().enumerate() {
        if (info.of, info.first_seed, info.seeds) != (of, start, count) {
            return Err(format!(
                "report {} is shard {}/{} of {} seeds from {}, but report 1 is of {} shards of {} \
                 seeds from {}: they are not shards of one run",
                i + 1,
                info.index,
                info.of,
                info.seeds,
                info.first_seed,
                of,
                count,
                start
            ));
        }
    }
    let mut present: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    // Each report's own seeds: (first, count).
    let mut slices = Vec::with_capacity(shards.len());
    for (i, info) in infos.iter().enumerate() {
        // The slice this shard must have run, from the range it names.
        let seeds = crate::runner::Seeds::shard(start, count, info.index, of)
            .map_err(|e| format!("report {}: {e}", i + 1))?;
        let (slice_start, slice_count) = seeds.bounds();
        let (ran_start, ran_count) = (
            u64_of(&shards[i], "first_seed", i)?,
            u64_of(&shards[i], "seeds", i)?,
        );
        if (ran_start, ran_count) != (slice_start, slice_count) {
            return Err(format!(
                "report {} says it is shard {}/{of} of {count} seeds from {start}, which is seeds \
                 {slice_start} and the {} after, but it ran {ran_count} seeds from {ran_start}",
                i + 1,
                info.index,
                slice_count - 1
            ));
        }
        slices.push((slice_start, slice_count));
        if let Some(earlier) = present.insert(info.index, i) {
            return Err(format!(
                "reports {} and {} are both shard {}/{of}",
                earlier + 1,
                i + 1,
                info.index
            ));
        }
    }
    let missing: Vec<String> = (1..=of)
        .filter(|k| !present.contains_key(k))
        .map(|k| format!("{k}/{of}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shards missing: {} (all {of} are needed to stand for the whole range)",
            missing.join(", ")
        ));
    }
    for key in [
        "implementation",
        "language",
        "version",
        "capabilities",
        "ops_per_seed",
        "expectations",
        "stale_deviations",
    ] {
        for (i, report) in shards.iter().enumerate() {
            if report.get(key) != first.get(key) {
                return Err(format!(
                    "report {} differs from report 1 in `{key}` ({} against {}): they are not \
                     shards of one run",
                    i + 1,
                    report.get(key).unwrap_or(&Value::Null),
                    first.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
    }

    let mut merged = first.clone();
    let object = merged
        .as_object_mut()
        .ok_or("report 1 is not a JSON object")?;
    object.remove("shard");
    object.insert("seeds".into(), json!(count));
    object.insert("first_seed".into(), json!(start));
    for key in ["ops", "polls", "observations"] {
        let mut sum = 0u64;
        for (i, r) in shards.iter().enumerate() {
            sum = sum.saturating_add(u64_of(r, key, i)?);
        }
        object.insert(key.into(), json!(sum));
    }
    // Shards run side by side: the whole took as long as the slowest.
    let seconds = shards
        .iter()
        .filter_map(|r| r.get("seconds").and_then(Value::as_f64))
        .fold(0.0, f64::max);
    object.insert("seconds".into(), json!(seconds));

    let mut checked = 0u64;
    let mut mismatches = Vec::new();
    for (i, r) in shards.iter().enumerate() {
        let d = r
            .get("determinism")
            .ok_or_else(|| format!("report {}: `determinism` is missing", i + 1))?;
        checked += u64_of(d, "checked", i)?;
        let listed = d
            .get("mismatches")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("report {}: `determinism.mismatches` is not a list", i + 1))?;
        for seed in listed {
            mismatches.push(seed.as_u64().ok_or_else(|| {
                format!(
                    "report {}: `determinism.mismatches` holds {seed}, not a seed",
                    i + 1
                )
            })?);
        }
    }
    mismatches.sort_unstable();
    object.insert(
        "determinism".into(),
        json!({"checked": checked, "mismatches": mismatches}),
    );

    let mut unjudgeable: Option<(u64, &Value)> = None;
    for (i, r) in shards.iter().enumerate() {
        let Some(u) = r.get("unjudgeable").filter(|u| !u.is_null()) else {
            continue;
        };
        let seed = u.get("seed").and_then(Value::as_u64).ok_or_else(|| {
            format!(
                "report {}: `unjudgeable.seed` is missing or not a seed",
                i + 1
            )
        })?;
        if unjudgeable.is_none_or(|(s, _)| seed < s) {
            unjudgeable = Some((seed, u));
        }
    }
    let unjudgeable = unjudgeable.map(|(_, u)| u.clone());
    object.insert("unjudgeable".into(), unjudgeable.unwrap_or(Value::Null));

    let rules = merge_rules(shards, &slices)?;
    object.insert("rules".into(), Value::Array(rules));
    let verdict = Outcome::of(&merged);
    merged["conforming"] = json!(verdict.conforming);
    merged["success"] = json!(verdict.conforming);
    merged["judged"] = json!(verdict.judged);
    Ok(merged)
}

/// The fields of one rule entry that the merge reads, with their types.
fn check_rule(rule: &Value, (first, count): (u64, u64)) -> Result<(), String> {
    let verdict = rule
        .get("verdict")
        .and_then(Value::as_str)
        .ok_or("`verdict` is missing or not a string")?;
    if !matches!(
        verdict,
        "passed"
            | "failed"
            | "not_tested"
            | "not_exercised"
            | "expected_failure"
            | "unexpected_pass"
    ) {
        return Err(format!("unknown verdict `{verdict}`"));
    }
    rule.get("checks")
        .and_then(Value::as_u64)
        .ok_or("`checks` is missing or not a whole number")?;
    match rule.get("seed") {
        None | Some(Value::Null) => {
            if verdict == "failed" {
                return Err("a failed rule without a `seed`".to_owned());
            }
        }
        Some(seed) => {
            if !matches!(verdict, "failed" | "expected_failure") {
                return Err(format!("a failing `seed` on a rule that is `{verdict}`"));
            }
            let seed = seed.as_u64().ok_or("`seed` is not a whole number")?;
            if seed.wrapping_sub(first) >= count {
                return Err(format!(
                    "failing seed {seed} is outside the shard's seeds {first}..={}",
                    first.wrapping_add(count - 1)
                ));
            }
            rule.get("failing_seeds")
                .and_then(Value::as_u64)
                .ok_or("`failing_seeds` is missing or not a whole number")?;
        }
    }
    Ok(())
}

fn rules_of(report: &Value, i: usize) -> Result<&Vec<Value>, String> {
    report
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("report {}: `rules` is missing or not a list", i + 1))
}

fn merge_rules(shards: &[Value], slices: &[(u64, u64)]) -> Result<Vec<Value>, String> {
    let base = rules_of(&shards[0], 0)?;
    for (i, report) in shards.iter().enumerate() {
        let rules = rules_of(report, i)?;
        let all = scopebus_sim::rules::Rule::ALL;
        if rules.len() != all.len() {
            return Err(format!(
                "report {} lists {} rules; this suite has {}",
                i + 1,
                rules.len(),
                all.len()
            ));
        }
        for (n, (rule, known)) in rules.iter().zip(all).enumerate() {
            let at = |e: String| format!("report {}, rules[{n}]: {e}", i + 1);
            let (id, level) = (
                rule.get("id").and_then(Value::as_str).unwrap_or(""),
                rule.get("level").and_then(Value::as_str).unwrap_or(""),
            );
            if id != known.id() || level != known.level().to_string() {
                return Err(at(format!(
                    "`{id}` at level `{level}`, where this suite has {} ({}), in SPEC.md order",
                    known.id(),
                    known.level()
                )));
            }
            check_rule(rule, slices[i]).map_err(at)?;
        }
    }
    let mut merged = Vec::with_capacity(base.len());
    for n in 0..base.len() {
        // Every report lists SPEC.md's rules in order (checked above).
        let versions: Vec<&Value> = shards.iter().map(|r| &r["rules"][n]).collect();
        let checks: u64 = versions
            .iter()
            .map(|r| r.get("checks").and_then(Value::as_u64).unwrap_or(0))
            .sum();
        // The lowest failing seed of any shard is the whole range's.
        let failed = versions
            .iter()
            .filter_map(|r| Some((r.get("seed")?.as_u64()?, *r)))
            .min_by_key(|(seed, _)| *seed);
        let mut out = match failed {
            Some((_, r)) => {
                let mut out = r.clone();
                let failing: u64 = versions
                    .iter()
                    .filter_map(|r| r.get("failing_seeds").and_then(Value::as_u64))
                    .sum();
                out["failing_seeds"] = json!(failing);
                out
            }
            None => {
                let word = |r: &Value| {
                    r.get("verdict")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                let best = PRECEDENCE
                    .iter()
                    .find_map(|p| versions.iter().find(|r| word(r) == *p))
                    .unwrap_or(&versions[0]);
                let mut out = (*best).clone();
                if word(best) == "not_tested" {
                    let caps: BTreeSet<String> = versions
                        .iter()
                        .filter_map(|r| r.get("missing_capabilities").and_then(Value::as_array))
                        .flatten()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect();
                    out["missing_capabilities"] = json!(caps);
                }
                out
            }
        };
        out["checks"] = json!(checks);
        merged.push(out);
    }
    Ok(merged)
}

/// A report's overall outcome, from its JSON, by the same rules as
/// [`crate::runner::Report::conforming`] and [`crate::runner::Report::judged`].
struct Outcome {
    conforming: bool,
    judged: bool,
}

impl Outcome {
    fn of(report: &Value) -> Outcome {
        let rules: &[Value] = report
            .get("rules")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let must = || {
            rules
                .iter()
                .filter(|r| r.get("level").and_then(Value::as_str) == Some("must"))
        };
        fn verdict(r: &Value) -> &str {
            r.get("verdict").and_then(Value::as_str).unwrap_or("")
        }
        let unjudgeable = !report.get("unjudgeable").is_none_or(Value::is_null);
        let mismatched = report
            .pointer("/determinism/mismatches")
            .and_then(Value::as_array)
            .is_some_and(|m| !m.is_empty());
        let stale = report
            .get("stale_deviations")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        let idle = report
            .get("capabilities")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c == "schedule"))
            && report.get("polls").and_then(Value::as_u64) == Some(0);
        let unexpected = rules.iter().any(|r| verdict(r) == "unexpected_pass");
        let conforming = !unjudgeable
            && !idle
            && !mismatched
            && !stale
            && !unexpected
            && must().all(|r| matches!(verdict(r), "passed" | "expected_failure"));
        let under_exercised = !unjudgeable
            && must().any(|r| verdict(r) == "not_exercised")
            && !must().any(|r| matches!(verdict(r), "failed" | "unexpected_pass" | "not_tested"))
            && !stale;
        Outcome {
            conforming,
            judged: !unjudgeable && !mismatched && !idle && !under_exercised,
        }
    }
}

/// The console table of a merged report: one line per rule with its
/// verdict, checks and lowest failing seed, then the outcome.
pub fn render(report: &Value) -> String {
    use std::fmt::Write;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scopebus conformance (merged shards): {} ({} {})",
        text(report, "implementation"),
        text(report, "language"),
        text(report, "version")
    );
    let first = number(report, "first_seed");
    let seeds = number(report, "seeds");
    let _ = writeln!(
        out,
        "seeds {first}..={} ({seeds} seeds), {} workload ops each, {} ops in all\n",
        first.saturating_add(seeds.saturating_sub(1)),
        number(report, "ops_per_seed"),
        number(report, "ops")
    );
    let _ = writeln!(
        out,
        "{:<10} {:<6} {:<18} {:>9} {:>8}",
        "rule", "level", "verdict", "checks", "seed"
    );
    for rule in report
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let seed = rule
            .get("seed")
            .and_then(Value::as_u64)
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        let _ = writeln!(
            out,
            "{:<10} {:<6} {:<18} {:>9} {:>8}",
            text(rule, "id"),
            text(rule, "level"),
            match text(rule, "verdict").as_str() {
                "passed" => "passed".to_owned(),
                other => other.to_uppercase().replace('_', " "),
            },
            number(rule, "checks"),
            seed
        );
        if let Some(message) = rule.get("message").and_then(Value::as_str) {
            let more = number(rule, "failing_seeds").saturating_sub(1);
            let _ = writeln!(out, "{:>11}{message}", "");
            if more > 0 {
                let _ = writeln!(out, "{:>11}(and {more} more failing seeds)", "");
            }
        }
        for (key, label) in [("repro", "rerun"), ("replay", "replay"), ("trace", "trace")] {
            if let Some(text) = rule.get(key).and_then(Value::as_str) {
                let _ = writeln!(out, "{:>11}{label}: {text}", "");
            }
        }
    }
    if let Some(u) = report.get("unjudgeable").filter(|u| !u.is_null()) {
        let _ = writeln!(
            out,
            "\nnot judged: seed {}, during `{}`: {}",
            number(u, "seed"),
            text(u, "entry"),
            text(u, "message")
        );
    }
    let failed_should: Vec<String> = report
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| text(r, "level") == "should" && text(r, "verdict") == "failed")
        .map(|r| text(r, "id"))
        .collect();
    if !failed_should.is_empty() {
        let _ = writeln!(
            out,
            "\nnote: should rules failed: {} (reported; they do not change the verdict)",
            failed_should.join(", ")
        );
    }
    let outcome = Outcome::of(report);
    let _ = writeln!(
        out,
        "\nverdict: {}",
        if !outcome.judged {
            "NOT JUDGED: some must rule was never exercised, or a run could not be judged"
        } else if outcome.conforming {
            "CONFORMING: every must rule was checked and passed"
        } else {
            "NOT CONFORMING"
        }
    );
    out
}

/// Whether a (merged) report reached a verdict, and whether it conforms:
/// `(judged, conforming)`, as `cargo xtask merge` turns into its exit code.
pub fn outcome(report: &Value) -> (bool, bool) {
    let o = Outcome::of(report);
    (o.judged, o.conforming)
}
