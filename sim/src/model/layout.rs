//! Which scopes own a bus: the spec's layout, and the other layouts real
//! buses have been seen to use.
//!
//! The model runs with the spec's layout to judge an implementation. Diagnosis
//! runs it with another layout when the implementation was shown (by a probe
//! of its own) to lay its buses out that way: what that model then accepts
//! follows from the layout, and is reported once, under the layout's rule.

use crate::rules::Rule;
use std::fmt;

/// How buses are assigned to scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// SPEC.md's: a root scope owns a bus (SCOPE-1), an isolated scope owns
    /// one (SCOPE-3), a nested scope that is not isolated uses its parent's
    /// (SCOPE-2).
    #[default]
    Spec,
    /// Isolated scopes use their parent's bus, like nested ones, so every
    /// scope of a tree uses its root's (Haiway 0.30 to 0.40). Breaks SCOPE-3.
    IsolatedShared,
    /// Every nested scope owns a bus, isolated or not. Breaks SCOPE-2.
    NestedOwned,
}

impl Layout {
    /// The layouts other than the spec's that diagnosis knows.
    pub const VARIANTS: [Layout; 2] = [Layout::IsolatedShared, Layout::NestedOwned];

    /// Whether a scope gets a bus of its own (and closes it when it exits):
    /// a root scope (`root`), or a nested one, isolated or not.
    pub fn owns_bus(self, root: bool, isolated: bool) -> bool {
        match self {
            _ if root => true,
            Layout::Spec => isolated,
            Layout::IsolatedShared => false,
            Layout::NestedOwned => true,
        }
    }

    /// A short name, as reports write it: `spec`, `isolated-shared`,
    /// `nested-owned`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Spec => "spec",
            Layout::IsolatedShared => "isolated-shared",
            Layout::NestedOwned => "nested-owned",
        }
    }

    /// The layout with this [`name`](Layout::name).
    pub fn from_name(name: &str) -> Option<Layout> {
        std::iter::once(Layout::Spec)
            .chain(Layout::VARIANTS)
            .find(|l| l.name() == name)
    }

    /// The rule a bus laid out this way breaks (SCOPE-3 for shared isolated
    /// scopes, SCOPE-2 for nested scopes with buses of their own); `None`
    /// for the spec's layout.
    pub fn rule(self) -> Option<Rule> {
        match self {
            Layout::Spec => None,
            Layout::IsolatedShared => Some(Rule::Scope3),
            Layout::NestedOwned => Some(Rule::Scope2),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Spec => {
                "roots and isolated scopes own a bus, nested scopes share their parent's"
            }
            Layout::IsolatedShared => {
                "isolated scopes share their parent's bus (every scope of a tree uses its root's)"
            }
            Layout::NestedOwned => "every nested scope has a bus of its own, isolated or not",
        })
    }
}
