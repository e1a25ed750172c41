//! # scopebus
//!
//! A scoped, typed, in-process event bus with the semantics of Haiway's
//! `ctx.send` / `ctx.subscribe`, specified rule by rule in the repository's
//! SPEC.md and checked against a model by the `scopebus-sim` simulator and the
//! `scopebus-conformance` suite.
//!
//! - [`send`] publishes an event to the bus in reach; [`subscribe`] gives a
//!   [`Subscription`], a `Stream` of `Arc<T>`.
//! - Routing is by the exact type (ROUTE-1); delivery is FIFO per type
//!   (FIFO-1); a subscription sees exactly the events sent after it was
//!   created (VIS-1), each subscription the whole stream (FANOUT-1).
//! - A root scope owns a bus (SCOPE-1); nested scopes share their parent's
//!   (SCOPE-2); an isolated scope owns a separate one (SCOPE-3); with no scope
//!   in reach, calls fail with [`ContextMissing`] (MISSING-1).
//! - Events nobody subscribed to are never stored (DROP-1); an event is freed
//!   as soon as every live subscription received it (RECLAIM-1), and dropping
//!   a subscription, even one never polled, frees what only it held
//!   (RECLAIM-2), which Haiway's own documentation admits it does not do.
//! - The bus is `Send + Sync` and runtime-agnostic: scopes are futures that
//!   poll their own tasks, so they run on tokio, on `futures::executor`, or on
//!   the simulator's seeded executor alike.
//!
//! ```
//! use futures::StreamExt;
//!
//! #[derive(Debug)]
//! struct UserLoggedIn { user_id: String }
//!
//! # futures::executor::block_on(async {
//! scopebus::scope(async {
//!     // Subscribe before sending: a subscription sees only later events.
//!     let mut logins = scopebus::subscribe::<UserLoggedIn>()?;
//!     scopebus::spawn(async move {
//!         while let Some(event) = logins.next().await {
//!             println!("{} logged in", event.user_id);
//!         }
//!     })
//!     .expect("inside a scope");
//!     scopebus::send(UserLoggedIn { user_id: "ada".into() }).expect("bus in reach");
//!     Ok::<_, scopebus::ContextMissing>(())
//!     // At exit the scope closes its bus: the processor drains and ends,
//!     // and the scope waits for it.
//! })
//! .await
//! # .unwrap();
//! # });
//! ```
// `unsafe` lives in one module, `chain`, which allows it and states its
// invariants; every other module forbids it.
#![deny(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod bus;
mod chain;
mod channel;
mod error;
#[cfg(feature = "mutants")]
pub mod mutants;
// Without the feature the switch is private and inert: every check is the
// constant `false`.
#[cfg(not(feature = "mutants"))]
#[allow(dead_code)]
mod mutants;
mod scope;
mod shared;
mod subscription;
mod sync;
mod task;
mod waiters;

pub use bus::{Bus, BusStats, Event, TypeStats};
pub use error::{Closed, ContextMissing, ScopeExited, SendError, SpawnError, TaskError};
pub use scope::{
    InScope, Scope, ScopeBuilder, ScopeFuture, current_bus, isolated_scope, scope, send, spawn,
    subscribe,
};
pub use shared::SharedSubscription;
pub use subscription::{Subscription, TryRecv};
pub use task::TaskHandle;
