//! The survivors file (`bus/mutants-survivors.toml`): every mutant
//! cargo-mutants makes of the bus that the killer does not catch, each with
//! the reason it may survive.
//!
//! # Invariants
//!
//! - A mutant is named by its [`key`]: file and description, without line
//!   and column, so that an entry outlives edits elsewhere in the file.
//!   Mutants that would share a key (the same operator swapped twice in one
//!   function) are told apart by ` #1`, ` #2`... in source order
//!   ([`keys`]), so that every key names one mutant and each shard of a run
//!   judges exactly its own. The file names each mutant once; a second
//!   entry for a key is refused when the file is read.
//! - The file is true or the check fails: a survivor it does not list is
//!   *unlisted*; a listed mutant that was tested and did not survive (caught,
//!   timed out, or no longer compiles) is *stale*, and so is one that
//!   cargo-mutants no longer generates at all.
//! - Every entry says whether the mutant is equivalent (no program can tell
//!   it from the bus) and why; only equivalent ones leave the kill rate's
//!   denominator.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One listed survivor.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Survivor {
    /// The mutant's [`key`], e.g. `bus/src/bus.rs: replace Bus::id -> u64 with 0`.
    pub mutant: String,
    /// Whether no program using the bus's public API can tell the mutant
    /// from the bus.
    pub equivalent: bool,
    /// Why it survives: for an equivalent mutant, why nothing can observe
    /// it; for another, why the killer cannot, and what would.
    pub why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    survivor: Vec<Survivor>,
}

/// Reads and checks a survivors file.
///
/// # Errors
/// The file cannot be read, is not TOML of the shape `[[survivor]]` with
/// `mutant`, `equivalent` and `why`, or an entry has an empty `why` or a
/// `mutant` that is not a key (`FILE: DESCRIPTION`) or is listed twice.
pub fn read(path: &Path) -> Result<Vec<Survivor>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the survivors file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// [`read`], from the file's text.
///
/// # Errors
/// As [`read`].
pub fn parse(text: &str) -> Result<Vec<Survivor>, String> {
    let file: File = toml::from_str(text).map_err(|e| {
        format!(
            "not a survivors file (expected [[survivor]] tables with mutant, equivalent, why): {e}"
        )
    })?;
    let mut seen = BTreeSet::new();
    for s in &file.survivor {
        if !seen.insert(s.mutant.as_str()) {
            return Err(format!("`{}` is listed twice", s.mutant));
        }
        if !s.mutant.contains(".rs: ") {
            return Err(format!(
                "`{}` is not a mutant: expected `FILE: DESCRIPTION`, as `cargo mutants --list` prints it without line and column",
                s.mutant
            ));
        }
        if s.why.trim().is_empty() {
            return Err(format!("`{}` is listed without a reason (`why`)", s.mutant));
        }
    }
    Ok(file.survivor)
}

/// The key of a mutant named as cargo-mutants names it
/// (`bus/src/bus.rs:175:9: replace Bus::id -> u64 with 0`): the same
/// without line and column (`bus/src/bus.rs: replace Bus::id -> u64 with 0`).
/// A name without a position is its own key.
pub fn key(name: &str) -> String {
    let Some((file, rest)) = name.split_once(".rs:") else {
        return name.to_owned();
    };
    let mut parts = rest.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(line), Some(column), Some(description))
            if line.chars().all(|c| c.is_ascii_digit())
                && column.chars().all(|c| c.is_ascii_digit()) =>
        {
            format!("{file}.rs:{description}")
        }
        _ => name.to_owned(),
    }
}

/// Every generated mutant's key, by its full name: [`key`], and where two
/// or more mutants share a key (the same operator swapped twice in one
/// function), ` #1`, ` #2`... in source order, so that each names one
/// mutant and a shard can judge it alone.
pub fn keys(generated: &[String]) -> std::collections::HashMap<String, String> {
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for name in generated {
        *total.entry(key(name)).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    generated
        .iter()
        .map(|name| {
            let base = key(name);
            let keyed = if total[&base] > 1 {
                let n = seen.entry(base.clone()).or_default();
                *n += 1;
                format!("{base} #{n}")
            } else {
                base
            };
            (name.clone(), keyed)
        })
        .collect()
}

/// How the tested mutants compare with the file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Survivors the file does not list (keys, one per surviving mutant).
    pub unlisted: Vec<String>,
    /// Listed mutants that were tested and did not survive: key and what
    /// happened to them (`caught`, `timeout`, `unviable`).
    pub stale: Vec<(String, &'static str)>,
    /// Listed mutants cargo-mutants no longer generates.
    pub gone: Vec<String>,
    /// Survivors the file lists as equivalent.
    pub equivalent: usize,
    /// Survivors the file lists as not equivalent (known gaps).
    pub known_gaps: usize,
}

/// Compares a run with the file. `tested`: every mutant this run tested
/// (key and outcome: `caught`, `missed`, `timeout`, `unviable`);
/// `generated`: the keys of every mutant cargo-mutants generates (all
/// shards), to tell a listed mutant of another shard from one that is gone.
/// Keys are those of [`keys`], so each names one mutant, and [`parse`] has
/// refused a file that lists one twice.
pub fn compare(
    listed: &[Survivor],
    tested: &[(String, &'static str)],
    generated: &[String],
) -> Comparison {
    let outcome: BTreeMap<&str, &'static str> =
        tested.iter().map(|(k, o)| (k.as_str(), *o)).collect();
    let generated: BTreeSet<&str> = generated.iter().map(String::as_str).collect();
    let listed_keys: BTreeSet<&str> = listed.iter().map(|s| s.mutant.as_str()).collect();
    let mut c = Comparison::default();
    for s in listed {
        match outcome.get(s.mutant.as_str()) {
            Some(&"missed") if s.equivalent => c.equivalent += 1,
            Some(&"missed") => c.known_gaps += 1,
            Some(&other) => c.stale.push((s.mutant.clone(), other)),
            // Another shard's mutant.
            None if generated.contains(s.mutant.as_str()) => {}
            None => c.gone.push(s.mutant.clone()),
        }
    }
    for (k, o) in tested {
        if *o == "missed" && !listed_keys.contains(k.as_str()) {
            c.unlisted.push(k.clone());
        }
    }
    c
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn survivor(mutant: &str, equivalent: bool) -> Survivor {
        Survivor {
            mutant: mutant.to_owned(),
            equivalent,
            why: "because".to_owned(),
        }
    }

    #[test]
    fn keys_drop_line_and_column_only() {
        assert_eq!(
            key("bus/src/bus.rs:175:9: replace Bus::id -> u64 with 0"),
            "bus/src/bus.rs: replace Bus::id -> u64 with 0"
        );
        assert_eq!(
            key("bus/src/a.rs:1:2: replace x::y -> A<'_, B> with C::d(e: f)"),
            "bus/src/a.rs: replace x::y -> A<'_, B> with C::d(e: f)"
        );
        assert_eq!(key("no position"), "no position");
    }

    #[test]
    fn mutants_sharing_a_key_are_numbered_in_source_order() {
        let names = [
            "a.rs:3:1: replace && with || in f".to_owned(),
            "a.rs:9:1: replace && with || in f".to_owned(),
            "a.rs:12:1: replace f with ()".to_owned(),
        ];
        let keys = keys(&names);
        assert_eq!(keys[&names[0]], "a.rs: replace && with || in f #1");
        assert_eq!(keys[&names[1]], "a.rs: replace && with || in f #2");
        assert_eq!(keys[&names[2]], "a.rs: replace f with ()");
    }

    #[test]
    fn a_true_file_compares_clean() {
        let listed = [survivor("a.rs: m", true), survivor("a.rs: n", false)];
        let tested = [
            ("a.rs: m".to_owned(), "missed"),
            ("a.rs: n".to_owned(), "missed"),
            ("a.rs: o".to_owned(), "caught"),
        ];
        let generated: Vec<String> = tested.iter().map(|t| t.0.clone()).collect();
        let c = compare(&listed, &tested, &generated);
        assert_eq!((c.equivalent, c.known_gaps), (1, 1));
        assert!(c.unlisted.is_empty() && c.stale.is_empty() && c.gone.is_empty());
    }

    #[test]
    fn unlisted_stale_and_gone_are_each_reported() {
        let listed = [
            survivor("a.rs: caught now", true),
            survivor("a.rs: gone", true),
        ];
        let tested = [
            ("a.rs: caught now".to_owned(), "caught"),
            ("a.rs: new".to_owned(), "missed"),
        ];
        let generated = vec!["a.rs: caught now".to_owned(), "a.rs: new".to_owned()];
        let c = compare(&listed, &tested, &generated);
        assert_eq!(c.unlisted, ["a.rs: new"]);
        assert_eq!(c.stale, [("a.rs: caught now".to_owned(), "caught")]);
        assert_eq!(c.gone, ["a.rs: gone"]);
    }

    #[test]
    fn entries_of_another_shard_are_not_judged() {
        let listed = [survivor("a.rs: elsewhere", true)];
        let generated = vec!["a.rs: elsewhere".to_owned()];
        let c = compare(&listed, &[], &generated);
        assert_eq!(c, Comparison::default());
    }

    #[test]
    fn numbered_keys_are_judged_one_by_one() {
        let tested = [
            ("a.rs: f #1".to_owned(), "caught"),
            ("a.rs: f #2".to_owned(), "missed"),
        ];
        let generated: Vec<String> = tested.iter().map(|t| t.0.clone()).collect();
        let c = compare(&[survivor("a.rs: f #2", true)], &tested, &generated);
        assert_eq!(
            c,
            Comparison {
                equivalent: 1,
                ..Comparison::default()
            }
        );
        let c = compare(&[survivor("a.rs: f #1", true)], &tested, &generated);
        assert_eq!(c.stale, [("a.rs: f #1".to_owned(), "caught")]);
        assert_eq!(c.unlisted, ["a.rs: f #2"]);
    }

    #[test]
    fn the_checked_in_file_reads() {
        let path = crate::workspace().join("bus/mutants-survivors.toml");
        assert!(!read(&path).unwrap().is_empty());
    }

    #[test]
    fn malformed_files_are_refused_with_the_expected_shape() {
        const ENTRY: &str = "[[survivor]]\nmutant = \"a.rs: m\"\nequivalent = true\nwhy = \"x\"\n";
        assert!(parse("survivor = 3").unwrap_err().contains("[[survivor]]"));
        let no_reason = "[[survivor]]\nmutant = \"a.rs: m\"\nequivalent = true\nwhy = \" \"\n";
        assert!(parse(no_reason).unwrap_err().contains("without a reason"));
        let not_a_key = "[[survivor]]\nmutant = \"m\"\nequivalent = true\nwhy = \"x\"\n";
        assert!(parse(not_a_key).unwrap_err().contains("FILE: DESCRIPTION"));
        let unknown =
            "[[survivor]]\nmutant = \"a.rs: m\"\nequivalent = true\nwhy = \"x\"\nwho = 1\n";
        assert!(parse(unknown).is_err());
        let twice = format!("{}{}", ENTRY, ENTRY);
        assert!(parse(&twice).unwrap_err().contains("listed twice"));
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
