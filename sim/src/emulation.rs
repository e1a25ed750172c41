//! Features an adapter builds itself instead of taking them from the
//! library it judges, and the rules whose verdicts are then about the
//! adapter's code rather than the library's.
//!
//! Many buses have no scopes, no task groups, no `ContextMissing` error or
//! no close, and some are keyed by strings rather than types. An adapter for
//! one of them can still be judged on every rule by building the missing
//! piece itself: a bus per root or isolated scope, a task group of its own,
//! a `context_missing` answer for an op outside every scope. It says so in
//! its handshake (`"emulates": [...]`, PROTOCOL.md, "Emulated features").
//!
//! Invariants:
//! - the declaration changes no verdict: every rule is judged as for any
//!   implementation; it changes only what the verdict is a claim about, and
//!   every report shows it beside the rules it touches
//!   ([`Emulated::rules`]);
//! - the mapping from a feature to its rules is fixed here, once, and
//!   SPEC.md's rule sections and PROTOCOL.md list the same.

use crate::rules::Rule;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A feature the adapter provides itself (PROTOCOL.md, "Emulated
/// features").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Emulated {
    /// The library routes by a key of its own (a string, a channel name):
    /// the adapter maps each catalogue type to a key, so whether look-alike
    /// types stay apart is the adapter's mapping.
    Types,
    /// The library has no scopes: the adapter makes a bus per root or
    /// isolated scope, shares it with nested scopes, and keeps the handles
    /// of exited scopes.
    Scopes,
    /// The library's bus cannot be closed (or not so that subscriptions
    /// end): the adapter ends subscriptions and refuses or drops sends
    /// itself when a scope's bus closes.
    Close,
    /// The library has no task groups: the adapter's scopes wait for and
    /// cancel their tasks.
    Tasks,
    /// The library has no error for "no bus in reach": the adapter answers
    /// `context_missing` for an op outside every scope.
    ContextMissing,
}

impl Emulated {
    /// Every feature, in the order reports list them.
    pub const ALL: [Emulated; 5] = [
        Emulated::Types,
        Emulated::Scopes,
        Emulated::Close,
        Emulated::Tasks,
        Emulated::ContextMissing,
    ];

    /// The name in the handshake's `emulates` list.
    pub fn name(self) -> &'static str {
        match self {
            Emulated::Types => "types",
            Emulated::Scopes => "scopes",
            Emulated::Close => "close",
            Emulated::Tasks => "tasks",
            Emulated::ContextMissing => "context_missing",
        }
    }

    /// The rules whose verdicts judge the adapter's code for this feature,
    /// not (only) the library's.
    pub fn rules(self) -> &'static [Rule] {
        match self {
            Emulated::Types => &[Rule::Route1, Rule::Route2],
            Emulated::Scopes => &[
                Rule::Scope1,
                Rule::Scope2,
                Rule::Scope3,
                Rule::Exit1,
                Rule::Proc1,
            ],
            Emulated::Close => &[Rule::Close1, Rule::Close2, Rule::Close3],
            Emulated::Tasks => &[
                Rule::Task1,
                Rule::Task2,
                Rule::Task3,
                Rule::Proc1,
                Rule::Fail1,
            ],
            Emulated::ContextMissing => &[Rule::Missing1],
        }
    }

    /// The features among `emulated` that touch `rule`, in [`Emulated::ALL`]
    /// order.
    pub fn touching(emulated: &[Emulated], rule: Rule) -> Vec<Emulated> {
        Emulated::ALL
            .into_iter()
            .filter(|e| emulated.contains(e) && e.rules().contains(&rule))
            .collect()
    }

    /// Reads a handshake's list: known names, each once, in
    /// [`Emulated::ALL`] order.
    ///
    /// # Errors
    /// An unknown name (with the known ones), or a name given twice.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Emulated>, String> {
        let mut list = Vec::new();
        for name in names {
            let e: Emulated = name.as_ref().parse()?;
            if list.contains(&e) {
                return Err(format!("`emulates` names `{e}` twice"));
            }
            list.push(e);
        }
        list.sort();
        Ok(list)
    }
}

impl std::str::FromStr for Emulated {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Emulated::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Emulated::ALL.iter().map(|e| e.name()).collect();
                format!(
                    "unknown emulated feature `{s}`; known: {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for Emulated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lists_are_checked() {
        for e in Emulated::ALL {
            assert_eq!(e.name().parse::<Emulated>(), Ok(e));
            assert!(!e.rules().is_empty(), "{e} touches no rule");
        }
        assert_eq!(
            Emulated::parse_list(&["tasks", "scopes"]),
            Ok(vec![Emulated::Scopes, Emulated::Tasks])
        );
        let twice = Emulated::parse_list(&["tasks", "tasks"]).expect_err("twice");
        assert!(twice.contains("twice"), "{twice}");
        let unknown = Emulated::parse_list(&["loops"]).expect_err("unknown");
        assert!(unknown.contains("known: types, scopes"), "{unknown}");
        assert_eq!(
            Emulated::touching(&[Emulated::Scopes, Emulated::Tasks], Rule::Proc1),
            vec![Emulated::Scopes, Emulated::Tasks]
        );
        assert!(Emulated::touching(&[Emulated::Types], Rule::Fifo1).is_empty());
    }
}
