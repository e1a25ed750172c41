//! Loom model checks of the scopebus bus: see `tests/bus.rs`, and run them
//! with `cargo xtask loom`. This library is empty; it exists so that the
//! checks build in a crate whose only dependency is the bus.
