//! In-process buses nobody here wrote, judged as they are: each is a plain
//! bus plugged into the emulated world of scopes and tasks
//! ([`emulated`]), and known to `--impl` by name ([`NAMES`], [`target`]).
//!
//! - [`typeid_broadcast`]: a map from `TypeId` to `tokio::sync::broadcast`
//!   channels, as most Rust users would write it (`typeid-broadcast`).

pub mod emulated;
pub mod typeid_broadcast;

use crate::target::Target;
use std::sync::Arc;

/// Every name `--impl` (and `xtask adapter`) accepts for them.
pub const NAMES: [&str; 1] = [typeid_broadcast::NAME];

/// The target named `name`, if it is one of them: a fresh world per run.
pub fn target(name: &str) -> Option<Target> {
    match name {
        typeid_broadcast::NAME => Some(Target::Custom {
            name: name.to_owned(),
            factory: Arc::new(|| Box::new(typeid_broadcast::implementation())),
        }),
        _ => None,
    }
}
