//! # scopebus-conformance
//!
//! The conformance suite: it runs the simulator's seeded workloads against an
//! implementation under test, checks every rule of SPEC.md against the model,
//! and gives each rule a verdict: passed, failed (with the lowest failing
//! seed, a shrunk trace and the commands that reproduce it), not tested (the
//! implementation lacks a capability the rule needs), or not exercised (no
//! seed checked it). Neither of the last two ever counts as passed.
//!
//! - [`target`]: implementations by name (`reference`, `mutant:NAME`);
//! - [`runner`]: the run over many seeds, in parallel, deterministic;
//! - [`replay`]: a trace replayed and attributed as `cargo xtask replay`
//!   does (the same attribution `runner` gives);
//! - [`mutants`]: the hunt that proves the suite catches planted bugs;
//! - [`report`]: the console table and the JSON documents; [`merge`]: the
//!   reports of the shards of one run, merged into the whole range's;
//! - [`protocol`], [`serve`], [`stdio`]: the adapter protocol, both ends;
//! - [`expectations`]: known deviations; [`fuzz`]: the `protocol` fuzz
//!   target's entry point.
//!
//! The implementation-under-test interface and the rule index live in
//! `scopebus-sim` (the simulator and shrinker drive implementations through
//! them) and are re-exported here.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod deadline;
pub mod expectations;
pub mod fuzz;
pub mod impls;
pub mod matrix;
pub mod merge;
pub mod mutants;
pub mod protocol;
pub mod reaper;
pub mod replay;
pub mod report;
pub mod runner;
pub mod serve;
pub mod stdio;
pub mod target;

pub use scopebus_sim::iut;
pub use scopebus_sim::rules;
