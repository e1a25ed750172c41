//! Which implementation a run is about: the in-process reference bus, or one
//! of its mutants. Each target builds a fresh implementation per run, so runs
//! share nothing.

use scopebus::mutants::Mutant;
use scopebus_sim::iut::{ImplInfo, Implementation};
use scopebus_sim::reference::ReferenceImpl;
use std::fmt;
use std::str::FromStr;

/// An implementation under test, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The reference bus, in-process (`reference`).
    Reference,
    /// The reference bus with one planted bug (`mutant:NAME`).
    Mutant(Mutant),
}

impl Target {
    /// A fresh instance, for one run.
    pub fn instantiate(&self) -> Box<dyn Implementation> {
        match self {
            Target::Reference => Box::new(ReferenceImpl::new(None)),
            Target::Mutant(m) => Box::new(ReferenceImpl::new(Some(*m))),
        }
    }

    /// Who it is and what it can do.
    pub fn info(&self) -> ImplInfo {
        self.instantiate().info()
    }

    /// Every name `--impl` accepts, for error messages.
    pub fn known_names() -> Vec<String> {
        let mut names = vec!["reference".to_owned()];
        names.extend(Mutant::ALL.iter().map(|m| format!("mutant:{}", m.name())));
        names
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Reference => f.write_str("reference"),
            Target::Mutant(m) => write!(f, "mutant:{}", m.name()),
        }
    }
}

/// A name `--impl` does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTarget(pub String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown implementation `{}`; known: {}",
            self.0,
            Target::known_names().join(", ")
        )
    }
}

impl std::error::Error for UnknownTarget {}

impl FromStr for Target {
    type Err = UnknownTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "reference" {
            return Ok(Target::Reference);
        }
        s.strip_prefix("mutant:")
            .and_then(Mutant::from_name)
            .map(Target::Mutant)
            .ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}
