//! # scopebus-sim
//!
//! The machinery that proves an event bus right against a model:
//!
//! - [`op`]: the vocabulary of workloads (ops on scopes, subscriptions and
//!   tasks), scheduling entries, observations;
//! - [`catalogue`]: the event types workloads use, look-alikes included;
//! - [`model`]: the pure state machine that predicts every observation and
//!   hands what it did not predict, with its evidence, to
//! - [`diagnosis`]: which SPEC.md rule ([`rules`]) a disagreement breaks,
//!   probes and counterfactual replays included;
//! - [`exec`] and [`schedule`]: a single-threaded executor whose every
//!   scheduling choice comes from a seeded policy (random or PCT);
//! - [`workload`]: swarm-testing workload generation;
//! - [`harness`]: runs a seed or replays a trace against an [`iut::Implementation`]
//!   and the model, stopping at the first disagreement;
//! - [`trace`]: trace files; [`shrink`]: minimising a failing trace;
//! - [`reference`](mod@reference): the reference bus and its mutants as implementations
//!   under test, and [`probe`], REENTER-1's probe: a waker that uses the bus
//!   from inside the bus's own callbacks;
//! - `fuzz` (feature `arbitrary`): the entry points of the coverage-guided
//!   fuzz targets in `fuzz/`, and the byte format of fuzzed workloads.
//!
//! One seed fixes everything; the same seed twice gives the same trace.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod catalogue;
pub mod diagnosis;
pub mod emulation;
pub mod exec;
#[cfg(feature = "arbitrary")]
pub mod fuzz;
pub mod harness;
pub mod input;
pub mod iut;
pub mod model;
pub mod op;
pub mod probe;
pub mod reference;
pub mod rules;
pub mod schedule;
pub mod shrink;
pub mod steps;
pub mod trace;
pub mod workload;
