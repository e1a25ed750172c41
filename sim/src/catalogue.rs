//! The event catalogue: the event types every workload draws from, including
//! look-alikes that an implementation routing by anything but the exact type
//! would confuse (ROUTE-1).
//!
//! Each catalogue entry has a wire name (used in traces and by adapters of
//! other languages, which map it to a real, distinct type of their own) and,
//! here, a real Rust type.

use scopebus::ContextMissing;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The Rust types behind the catalogue, as a user of the bus would write them.
pub mod types {
    use super::EventId;

    /// Events of the catalogue carry the id the workload gave them.
    pub trait CatalogueEvent: scopebus::Event {
        /// Builds the event that carries `id`.
        fn with_id(id: EventId) -> Self;
        /// The id this event carries.
        fn id(&self) -> EventId;
    }

    /// `alpha.*`: the base event, a "subclass" of it and an alias of it.
    pub mod alpha {
        use super::{CatalogueEvent, EventId};

        /// `alpha.Ping`: the base event of the look-alike family.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Ping {
            /// The workload's id for this event.
            pub id: EventId,
        }

        /// `alpha.DerivedPing`: Rust's nearest thing to a subclass of `Ping`
        /// (it derefs to one). Python adapters map it to a real subclass.
        /// Exact-type routing must not deliver it to `Ping` subscribers.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct DerivedPing {
            /// The `Ping` it extends.
            pub base: Ping,
        }

        impl std::ops::Deref for DerivedPing {
            type Target = Ping;
            fn deref(&self) -> &Ping {
                &self.base
            }
        }

        /// `alpha.PingAlias`: another name for `Ping`; routes as `Ping`.
        pub type PingAlias = Ping;

        impl CatalogueEvent for Ping {
            fn with_id(id: EventId) -> Self {
                Ping { id }
            }
            fn id(&self) -> EventId {
                self.id
            }
        }

        impl CatalogueEvent for DerivedPing {
            fn with_id(id: EventId) -> Self {
                DerivedPing { base: Ping { id } }
            }
            fn id(&self) -> EventId {
                self.base.id
            }
        }
    }

    /// `beta.*`: a type with the same short name as `alpha.Ping`.
    pub mod beta {
        use super::{CatalogueEvent, EventId};

        /// `beta.Ping`: same name as `alpha.Ping`, different module, different
        /// type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Ping {
            /// The workload's id for this event.
            pub id: EventId,
        }

        impl CatalogueEvent for Ping {
            fn with_id(id: EventId) -> Self {
                Ping { id }
            }
            fn id(&self) -> EventId {
                self.id
            }
        }
    }

    /// `Wrapped`: a newtype around `alpha.Ping`; a different type.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Wrapped(pub alpha::Ping);

    impl CatalogueEvent for Wrapped {
        fn with_id(id: EventId) -> Self {
            Wrapped(alpha::Ping { id })
        }
        fn id(&self) -> EventId {
            self.0.id
        }
    }

    /// `Generic<u8>` and `Generic<u16>`: one generic type, two instantiations,
    /// two different event types.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Generic<T> {
        /// The workload's id for this event.
        pub id: EventId,
        _parameter: std::marker::PhantomData<fn() -> T>,
    }

    impl<T: 'static> CatalogueEvent for Generic<T> {
        fn with_id(id: EventId) -> Self {
            Generic {
                id,
                _parameter: std::marker::PhantomData,
            }
        }
        fn id(&self) -> EventId {
            self.id
        }
    }

    /// `Login`: an unrelated event, as an application would have.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Login {
        /// The workload's id for this event.
        pub id: EventId,
    }

    impl CatalogueEvent for Login {
        fn with_id(id: EventId) -> Self {
            Login { id }
        }
        fn id(&self) -> EventId {
            self.id
        }
    }
}

/// The id a workload gives each event it sends, unique within a trace.
pub type EventId = u64;

/// One entry of the catalogue. Serialized as its wire name, e.g.
/// `"alpha.Ping"` or `"Generic<u8>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// `alpha.Ping`
    AlphaPing,
    /// `beta.Ping`
    BetaPing,
    /// `alpha.DerivedPing`
    DerivedPing,
    /// `Wrapped`
    Wrapped,
    /// `Generic<u8>`
    GenericU8,
    /// `Generic<u16>`
    GenericU16,
    /// `alpha.PingAlias`, an alias of `alpha.Ping`
    PingAlias,
    /// `Login`
    Login,
}

impl EventType {
    /// Every catalogue entry, in a stable order.
    pub const ALL: [EventType; 8] = [
        EventType::AlphaPing,
        EventType::BetaPing,
        EventType::DerivedPing,
        EventType::Wrapped,
        EventType::GenericU8,
        EventType::GenericU16,
        EventType::PingAlias,
        EventType::Login,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            EventType::AlphaPing => "alpha.Ping",
            EventType::BetaPing => "beta.Ping",
            EventType::DerivedPing => "alpha.DerivedPing",
            EventType::Wrapped => "Wrapped",
            EventType::GenericU8 => "Generic<u8>",
            EventType::GenericU16 => "Generic<u16>",
            EventType::PingAlias => "alpha.PingAlias",
            EventType::Login => "Login",
        }
    }

    /// The routing key: the type itself, except an alias, which routes as
    /// its target (ROUTE-1).
    pub fn route(self) -> EventType {
        match self {
            EventType::PingAlias => EventType::AlphaPing,
            other => other,
        }
    }

    /// The look-alike family: types an implementation that routes by name,
    /// by subclass or by generic base would confuse. Two types of the same
    /// family with different routes are what ROUTE-1 is exercised on.
    pub fn family(self) -> u8 {
        match self {
            EventType::AlphaPing
            | EventType::BetaPing
            | EventType::DerivedPing
            | EventType::Wrapped
            | EventType::PingAlias => 1,
            EventType::GenericU8 | EventType::GenericU16 => 2,
            EventType::Login => 3,
        }
    }

    /// The rule that keeps this route apart from its look-alikes: ROUTE-2
    /// for the instantiations of a generic type, ROUTE-1 for every other.
    pub fn routing_rule(self) -> crate::rules::Rule {
        match self.route().family() {
            2 => crate::rules::Rule::Route2,
            _ => crate::rules::Rule::Route1,
        }
    }

    /// The Rust type's [`std::any::TypeId`].
    pub fn type_id(self) -> std::any::TypeId {
        use std::any::TypeId;
        use types::*;
        match self {
            EventType::AlphaPing | EventType::PingAlias => TypeId::of::<alpha::Ping>(),
            EventType::BetaPing => TypeId::of::<beta::Ping>(),
            EventType::DerivedPing => TypeId::of::<alpha::DerivedPing>(),
            EventType::Wrapped => TypeId::of::<Wrapped>(),
            EventType::GenericU8 => TypeId::of::<Generic<u8>>(),
            EventType::GenericU16 => TypeId::of::<Generic<u16>>(),
            EventType::Login => TypeId::of::<Login>(),
        }
    }

    /// The catalogue route whose Rust type has this [`std::any::TypeId`].
    pub fn from_type_id(id: std::any::TypeId) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|t| t.route() == *t)
            .find(|t| t.type_id() == id)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventType(pub String);

impl fmt::Display for UnknownEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        write!(
            f,
            "unknown event type `{}`; the catalogue has: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownEventType {}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Runs `$body` with `$t` bound to the Rust type of catalogue entry `$ty`
/// (an [`EventType`]) in the module `$types` (written as a path, then `;`),
/// which must define `alpha::{Ping, PingAlias, DerivedPing}`,
/// `beta::Ping`, `Wrapped`, `Generic<T>` and `Login`: the simulator's own
/// [`types`], or an implementation's own event types with the same names
/// (`conformance/src/impls/typeid_broadcast.rs`).
#[macro_export]
macro_rules! with_catalogue_type {
    ($($types:tt)::+ ; $ty:expr, $t:ident => $body:expr) => {{
        use $($types)::+::*;
        use $crate::catalogue::EventType;
        match $ty {
            EventType::AlphaPing => {
                type $t = alpha::Ping;
                $body
            }
            EventType::PingAlias => {
                type $t = alpha::PingAlias;
                $body
            }
            EventType::BetaPing => {
                type $t = beta::Ping;
                $body
            }
            EventType::DerivedPing => {
                type $t = alpha::DerivedPing;
                $body
            }
            EventType::Wrapped => {
                type $t = Wrapped;
                $body
            }
            EventType::GenericU8 => {
                type $t = Generic<u8>;
                $body
            }
            EventType::GenericU16 => {
                type $t = Generic<u16>;
                $body
            }
            EventType::Login => {
                type $t = Login;
                $body
            }
        }
    }};
}

/// Calls `$body` with `$t` bound to the simulator's Rust type of catalogue
/// entry `$ty`.
macro_rules! with_type {
    ($ty:expr, $t:ident => $body:expr) => {
        $crate::with_catalogue_type!($crate::catalogue::types; $ty, $t => $body)
    };
}

/// A type-erased subscription, shared between its holder and the receive
/// it may be waiting in: each [`ErasedSub::recv`] is a future of its own,
/// which its holder may drop before it completes (abandoning the receive,
/// CANCEL-2) while keeping the subscription.
pub type SharedSub = std::sync::Arc<dyn ErasedSub>;

/// A subscription to one catalogue type, its type erased.
pub trait ErasedSub: Send + Sync {
    /// The next event's id (`None` once the subscription ended), through the
    /// bus's `Subscription::recv`; the future may be dropped at any time.
    fn recv(self: std::sync::Arc<Self>) -> futures::future::BoxFuture<'static, Option<EventId>>;
}

/// [`ErasedSub`] for one type. The lock is never contended: one subscriber
/// task receives at a time, and an abandoned receive releases it when it
/// is dropped.
struct Shared<T: scopebus::Event>(futures::lock::Mutex<scopebus::Subscription<T>>);

impl<T: types::CatalogueEvent> ErasedSub for Shared<T> {
    fn recv(self: std::sync::Arc<Self>) -> futures::future::BoxFuture<'static, Option<EventId>> {
        Box::pin(async move {
            let mut subscription = self.0.lock().await;
            subscription.recv().await.map(|e| e.id())
        })
    }
}

/// Subscribes, through the ambient API, to catalogue type `ty`, erasing the
/// subscription's type.
///
/// # Errors
/// [`ContextMissing`] when no scope is in reach.
pub fn subscribe_ambient(ty: EventType) -> Result<SharedSub, ContextMissing> {
    with_type!(ty, T => scopebus::subscribe::<T>().map(|s| {
        std::sync::Arc::new(Shared(futures::lock::Mutex::new(s))) as SharedSub
    }))
}

/// [`ErasedSub`] for a subscription several tasks pull at once (SHARE-1):
/// the bus's [`scopebus::SharedSubscription`], whose receives may wait side
/// by side.
struct SharedPulls<T: scopebus::Event>(scopebus::SharedSubscription<T>);

impl<T: types::CatalogueEvent> ErasedSub for SharedPulls<T> {
    fn recv(self: std::sync::Arc<Self>) -> futures::future::BoxFuture<'static, Option<EventId>> {
        Box::pin(async move { self.0.recv().await.map(|e| e.id()) })
    }
}

/// Subscribes, through the ambient API, to catalogue type `ty`, and shares
/// the subscription ([`scopebus::Subscription::share`]): every clone of the
/// result pulls the one subscription.
///
/// # Errors
/// [`ContextMissing`] when no scope is in reach.
pub fn subscribe_shared_ambient(ty: EventType) -> Result<SharedSub, ContextMissing> {
    with_type!(ty, T => scopebus::subscribe::<T>().map(|s| {
        std::sync::Arc::new(SharedPulls(s.share())) as SharedSub
    }))
}

/// Sends the catalogue event `ty` carrying `id` through the ambient API.
///
/// # Errors
/// The ambient send's error, without the event.
pub fn send_ambient(ty: EventType, id: EventId) -> Result<(), SendFailure> {
    with_type!(ty, T => match scopebus::send(T::with_id(id)) {
        Ok(_) => Ok(()),
        Err(scopebus::SendError::ContextMissing(_)) => Err(SendFailure::ContextMissing),
        Err(scopebus::SendError::Closed(_)) => Err(SendFailure::Closed),
    })
}

/// Why an ambient send of a catalogue event failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// No scope in reach.
    ContextMissing,
    /// The bus in reach is closed.
    Closed,
}
