//! How an implementation lays out its buses: which scopes own one, and
//! whether a bus closes when the scope that owns it exits. The spec's
//! layout, and the other layouts real buses have been seen to use.
//!
//! The model runs with the spec's layout to judge an implementation.
//! Diagnosis runs it with another layout when the implementation was shown
//! (by a probe of its own) to lay its buses out that way: what that model
//! then accepts follows from the layout, and is reported once, under the
//! rule of the part of the layout that differs.

use crate::rules::Rule;
use std::fmt;

/// Which scopes own a bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Owners {
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

/// When a bus closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Closing {
    /// SPEC.md's: when the scope that owns it exits or is cancelled
    /// (CLOSE-1).
    #[default]
    AtExit,
    /// Never: subscriptions never end, sends and subscribes after the exit
    /// work as before it (Haiway 0.30 to 0.40). Breaks CLOSE-1.
    Never,
}

/// How buses are laid out; see the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Which scopes own a bus.
    pub owners: Owners,
    /// When a bus closes.
    pub closing: Closing,
}

impl Layout {
    /// SPEC.md's layout.
    pub const SPEC: Layout = Layout {
        owners: Owners::Spec,
        closing: Closing::AtExit,
    };

    /// Every layout diagnosis knows, the spec's first, then those that
    /// differ in one part, then in both.
    pub const ALL: [Layout; 6] = [
        Layout::SPEC,
        Layout::of(Owners::IsolatedShared, Closing::AtExit),
        Layout::of(Owners::NestedOwned, Closing::AtExit),
        Layout::of(Owners::Spec, Closing::Never),
        Layout::of(Owners::IsolatedShared, Closing::Never),
        Layout::of(Owners::NestedOwned, Closing::Never),
    ];

    const fn of(owners: Owners, closing: Closing) -> Layout {
        Layout { owners, closing }
    }

    /// Whether a scope gets a bus of its own (and closes it when it exits):
    /// a root scope (`root`), or a nested one, isolated or not.
    pub fn owns_bus(self, root: bool, isolated: bool) -> bool {
        match self.owners {
            _ if root => true,
            Owners::Spec => isolated,
            Owners::IsolatedShared => false,
            Owners::NestedOwned => true,
        }
    }

    /// Whether a bus closes when its owner exits or is cancelled.
    pub fn closes(self) -> bool {
        self.closing == Closing::AtExit
    }

    /// The parts in which this layout differs from the spec's, each as the
    /// spec's layout with only that part changed, with the rule it breaks:
    /// the owners (SCOPE-3 for shared isolated scopes, SCOPE-2 for nested
    /// scopes with buses of their own), then the closing (CLOSE-1).
    pub fn differences(self) -> Vec<(Layout, Rule)> {
        let mut parts = Vec::new();
        match self.owners {
            Owners::Spec => {}
            Owners::IsolatedShared => {
                parts.push((Layout::of(self.owners, Closing::AtExit), Rule::Scope3))
            }
            Owners::NestedOwned => {
                parts.push((Layout::of(self.owners, Closing::AtExit), Rule::Scope2))
            }
        }
        if self.closing == Closing::Never {
            parts.push((Layout::of(Owners::Spec, Closing::Never), Rule::Close1));
        }
        parts
    }

    /// A short name, as reports write it: `spec`, `isolated-shared`,
    /// `nested-owned`, `never-closes`, or two of them joined by `+`.
    pub fn name(self) -> String {
        let owners = match self.owners {
            Owners::Spec => None,
            Owners::IsolatedShared => Some("isolated-shared"),
            Owners::NestedOwned => Some("nested-owned"),
        };
        let closing = (self.closing == Closing::Never).then_some("never-closes");
        match (owners, closing) {
            (None, None) => "spec".to_owned(),
            (Some(a), Some(b)) => format!("{a}+{b}"),
            (Some(a), None) | (None, Some(a)) => a.to_owned(),
        }
    }

    /// The layout with this [`name`](Layout::name).
    pub fn from_name(name: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owners = match self.owners {
            Owners::Spec => {
                "roots and isolated scopes own a bus, nested scopes share their parent's"
            }
            Owners::IsolatedShared => {
                "isolated scopes share their parent's bus (every scope of a tree uses its root's)"
            }
            Owners::NestedOwned => "every nested scope has a bus of its own, isolated or not",
        };
        match self.closing {
            Closing::AtExit => f.write_str(owners),
            Closing::Never if self.owners == Owners::Spec => {
                f.write_str("buses never close (a subscription does not end when its scope exits)")
            }
            Closing::Never => write!(f, "{owners}, and buses never close"),
        }
    }
}
