//! How an implementation lays out its buses: which scopes own one, and
//! whether (and when) a bus closes when the scope that owns it exits. The spec's
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
    /// SPEC.md's: when the scope that owns it exits (its body returns,
    /// before the scope waits for its tasks: PROC-1) or is cancelled
    /// (CLOSE-1).
    #[default]
    AtExit,
    /// When the scope that owns it has finished waiting for its tasks, not
    /// when its body returns: a task that reads the bus until it closes
    /// (the seed's processor) then keeps its scope open for ever. Breaks
    /// PROC-1.
    AfterTasks,
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

    /// Every layout the first layout probe tells apart, the spec's first,
    /// then those that differ in one part, then in both. Whether a bus
    /// closes only after its scope's tasks is a second probe's question
    /// (it needs tasks), asked of the layouts that close at exit.
    pub const ALL: [Layout; 6] = [
        Layout::SPEC,
        Layout::of(Owners::IsolatedShared, Closing::AtExit),
        Layout::of(Owners::NestedOwned, Closing::AtExit),
        Layout::of(Owners::Spec, Closing::Never),
        Layout::of(Owners::IsolatedShared, Closing::Never),
        Layout::of(Owners::NestedOwned, Closing::Never),
    ];

    /// Every layout diagnosis knows: [`Layout::ALL`], and those of them that
    /// close at exit with [`Closing::AfterTasks`] instead.
    pub fn known() -> impl Iterator<Item = Layout> {
        let after_tasks = Layout::ALL
            .into_iter()
            .filter(|l| l.closing == Closing::AtExit)
            .map(|l| Layout::of(l.owners, Closing::AfterTasks));
        Layout::ALL.into_iter().chain(after_tasks)
    }

    /// This layout's owners, with buses closing as `closing` says.
    pub const fn of(owners: Owners, closing: Closing) -> Layout {
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

    /// Whether a bus closes at all when its owner exits or is cancelled.
    pub fn closes(self) -> bool {
        self.closing != Closing::Never
    }

    /// Whether a bus closes when its owner's body returns (the spec's), not
    /// only once the owner has also finished waiting for its tasks.
    pub fn closes_when_body_returns(self) -> bool {
        self.closing == Closing::AtExit
    }

    /// The parts in which this layout differs from the spec's, each as the
    /// spec's layout with only that part changed, with the rule it breaks:
    /// the owners (SCOPE-3 for shared isolated scopes, SCOPE-2 for nested
    /// scopes with buses of their own), then the closing (CLOSE-1 if buses
    /// never close, PROC-1 if they close only after their scope's tasks).
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
        match self.closing {
            Closing::AtExit => {}
            Closing::Never => parts.push((Layout::of(Owners::Spec, Closing::Never), Rule::Close1)),
            Closing::AfterTasks => {
                parts.push((Layout::of(Owners::Spec, Closing::AfterTasks), Rule::Proc1))
            }
        }
        parts
    }

    /// A short name, as reports write it: `spec`, `isolated-shared`,
    /// `nested-owned`, `never-closes`, `closes-after-tasks`, or two of them
    /// joined by `+`.
    pub fn name(self) -> String {
        let owners = match self.owners {
            Owners::Spec => None,
            Owners::IsolatedShared => Some("isolated-shared"),
            Owners::NestedOwned => Some("nested-owned"),
        };
        let closing = match self.closing {
            Closing::AtExit => None,
            Closing::Never => Some("never-closes"),
            Closing::AfterTasks => Some("closes-after-tasks"),
        };
        match (owners, closing) {
            (None, None) => "spec".to_owned(),
            (Some(a), Some(b)) => format!("{a}+{b}"),
            (Some(a), None) | (None, Some(a)) => a.to_owned(),
        }
    }

    /// The layout with this [`name`](Layout::name).
    pub fn from_name(name: &str) -> Option<Layout> {
        Layout::known().find(|l| l.name() == name)
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
            Closing::AfterTasks if self.owners == Owners::Spec => f.write_str(
                "a bus closes only once its scope has finished waiting for its tasks, not when its body returns",
            ),
            Closing::AfterTasks => write!(
                f,
                "{owners}, and a bus closes only once its scope has finished waiting for its tasks"
            ),
        }
    }
}
