//! Known deviations: the rules an implementation is known to break, each
//! with the reason and the shrunk repro the suite found it with.
//!
//! ```toml
//! implementation = "haiway"
//!
//! [[deviation]]
//! rule = "CANCEL-1"
//! reason = "Cancelling a subscriber that waits for an event breaks later sends of its type."
//! seed = 1
//! trace = "haiway/CANCEL-1-seed-1.json"
//! levels = { docs = "must", strict = "must" }
//! ```
//!
//! With the file, a rule it lists that fails is an *expected failure* and
//! does not make the run non-conforming; a rule it lists that passes is an
//! *unexpected pass*, and a failure it does not list is a new failure: both
//! make the run fail, so the file stays true. Each deviation's trace (a path
//! relative to the file) is replayed too, and must still fail its rule.
//! A deviation may say how much it weighs under each profile (`levels`);
//! if it does, that must be the rule's level under each (SPEC.md,
//! "Profiles"), so a reader of the file sees it and the file stays true
//! when a rule's grounding changes.

use scopebus_sim::rules::{Level, Profile, Rule};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One known deviation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// The rule broken.
    pub rule: Rule,
    /// Why: what the implementation does instead, for humans.
    pub reason: String,
    /// A seed that shows it (with the default `--ops`).
    pub seed: u64,
    /// The shrunk trace that shows it, relative to the expectations file.
    pub trace: PathBuf,
    /// Its rule's level under each profile, if the file states it.
    #[serde(default)]
    pub levels: Option<ProfileLevels>,
}

/// A rule's level under each profile, as an expectations file states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileLevels {
    /// Under `--profile docs`.
    pub docs: Level,
    /// Under `--profile strict`.
    pub strict: Level,
}

/// An expectations file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The implementation it is about (its `--impl` name).
    pub implementation: String,
    /// The deviations.
    #[serde(default, rename = "deviation")]
    pub deviations: Vec<Deviation>,
    /// Where it was read from (traces are relative to its directory).
    #[serde(skip)]
    pub path: PathBuf,
}

impl Expectations {
    /// Reads and checks an expectations file.
    ///
    /// # Errors
    /// What is wrong with it, where.
    pub fn read(path: &Path) -> Result<Expectations, String> {
        let text = scopebus_sim::input::read_text(path)
            .map_err(|e| format!("cannot read the expectations file {}: {e}", path.display()))?;
        let mut expectations: Expectations = toml::from_str(&text)
            .map_err(|e| format!("{}: not an expectations file: {e}", path.display()))?;
        expectations.path = path.to_owned();
        let mut seen = std::collections::BTreeSet::new();
        for d in &expectations.deviations {
            if !seen.insert(d.rule) {
                return Err(format!(
                    "{}: {} is listed twice; list each rule once",
                    path.display(),
                    d.rule
                ));
            }
            if let Some(levels) = d.levels {
                for (profile, stated) in [
                    (Profile::Docs, levels.docs),
                    (Profile::Strict, levels.strict),
                ] {
                    let level = d.rule.level_in(profile);
                    if stated != level {
                        return Err(format!(
                            "{}: the deviation of {} says it is a {stated} under the {profile} profile; SPEC.md makes it a {level}: update the file",
                            path.display(),
                            d.rule
                        ));
                    }
                }
            }
            if d.reason.trim().is_empty() {
                return Err(format!(
                    "{}: the deviation of {} gives no reason",
                    path.display(),
                    d.rule
                ));
            }
        }
        // Every recorded trace must be there and readable: a deviation
        // without its evidence is a broken file, not a verdict.
        for d in &expectations.deviations {
            let trace = expectations.trace_path(d);
            scopebus_sim::trace::TraceFile::read(&trace).map_err(|e| {
                format!(
                    "{}: the trace of the {} deviation cannot be used: {e}",
                    path.display(),
                    d.rule
                )
            })?;
        }
        Ok(expectations)
    }

    /// The deviation of `rule`, if listed.
    pub fn get(&self, rule: Rule) -> Option<&Deviation> {
        self.deviations.iter().find(|d| d.rule == rule)
    }

    /// The trace file of a deviation, resolved against the file's directory.
    pub fn trace_path(&self, deviation: &Deviation) -> PathBuf {
        self.path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&deviation.trace)
    }
}
