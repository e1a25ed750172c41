//! The rules of SPEC.md, as data: stable IDs, levels, the capability each
//! needs. The text of each rule, its source sentence and how it is checked are
//! in SPEC.md; this is the machine-readable index that every check cites.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How binding a rule is (RFC 2119 words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Required: a failure makes the implementation non-conforming.
    Must,
    /// Recommended: a failure is reported, but the implementation conforms.
    Should,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "must",
            Level::Should => "should",
        })
    }
}

/// Which promises a run holds an implementation to. A rule's level depends
/// on the profile and on what the rule rests on ([`Grounding`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// What the seed and Haiway's own documentation promise: a rule they are
    /// silent on (an extension) is a `should`.
    Docs,
    /// The reference bus's full guarantees: every rule is a `must`, except
    /// SHARE-1, a `should` under both profiles (it holds only where the
    /// language lets two tasks pull one subscription). The
    /// default.
    #[default]
    Strict,
}

impl Profile {
    /// Both profiles, the default last.
    pub const ALL: [Profile; 2] = [Profile::Docs, Profile::Strict];

    /// The profile's name, as `--profile` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Docs => "docs",
            Profile::Strict => "strict",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile `{s}`; known: docs, strict"))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule rests on (SPEC.md quotes it under **Source**).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grounding {
    /// A sentence of the seed, or of Haiway's own docs where they resolve
    /// the seed.
    Promised,
    /// Not said in so many words, but the promised sentences cannot hold
    /// without it (SPEC.md gives the derivation).
    Derived,
    /// The docs are silent (or say otherwise); SPEC.md says why a user would
    /// expect it anyway.
    Extension,
}

/// Something an implementation may or may not be able to do. A rule that
/// needs a capability the implementation lacks is "not tested", never passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Isolated scopes (`open_scope` with `isolated`).
    Isolated,
    /// Cancelling subscriber tasks and scopes.
    Cancel,
    /// Bus statistics: live subscriptions and retained events (`observe`).
    Stats,
    /// Tasks spawned into scopes (`spawn`, `release`).
    Tasks,
    /// One scheduling step of the implementation's own choice (`poll any`).
    Step,
    /// Fine-grained scheduling: the runner picks which task to poll.
    Schedule,
    /// Injected spurious wakeups (`wake`).
    Wake,
    /// Running a `send`, a `spawn` or a poll of another task at a yield
    /// point inside a task's poll (`preempt`), as another thread could at
    /// that moment.
    Preempt,
    /// Moving a task to a new waker (`migrate`), as when a future is moved
    /// into another task.
    Migrate,
    /// Reporting `task_started` when a worker task first runs, which tells
    /// a task that had started (and was waiting) from one whose first step
    /// was only scheduled (TASK-3).
    Started,
    /// Abandoning a subscriber's pending pull (`abandon`), as a timeout or
    /// a `select` around the receive would (CANCEL-2).
    Abandon,
    /// Processors: subscriptions pulled by a task of a scope's task group
    /// until they end (`spawn_processor`), the seed's background pattern
    /// (PROC-1).
    Processors,
    /// Making a root scope's body fail (`fail_scope`, FAIL-1) and a
    /// subscriber task fail (`fail_subscriber`, FAIL-2), as an exception
    /// raised in them would.
    Failures,
    /// Acting through the handle of a scope that has exited or been
    /// cancelled (`send` and `subscribe` naming it), as code holding a
    /// captured context does (EXIT-1).
    ExitedScopes,
    /// One subscription pulled by two subscriber tasks at once
    /// (`subscribe_shared`), where the language lets two tasks pull one
    /// subscription (SHARE-1).
    Share,
    /// Arming a probe that acts on the bus from inside the callbacks the
    /// bus makes into user code, a waker's `wake` and `drop` (`reenter`,
    /// REENTER-1).
    Reenter,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 16] = [
        Capability::Isolated,
        Capability::Cancel,
        Capability::Stats,
        Capability::Tasks,
        Capability::Step,
        Capability::Schedule,
        Capability::Wake,
        Capability::Preempt,
        Capability::Migrate,
        Capability::Started,
        Capability::Abandon,
        Capability::Processors,
        Capability::Failures,
        Capability::ExitedScopes,
        Capability::Share,
        Capability::Reenter,
    ];

    /// The capability's name, as in the protocol's handshake.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Isolated => "isolated",
            Capability::Cancel => "cancel",
            Capability::Stats => "stats",
            Capability::Tasks => "tasks",
            Capability::Step => "step",
            Capability::Schedule => "schedule",
            Capability::Wake => "wake",
            Capability::Preempt => "preempt",
            Capability::Migrate => "migrate",
            Capability::Started => "started",
            Capability::Abandon => "abandon",
            Capability::Processors => "processors",
            Capability::Failures => "failures",
            Capability::ExitedScopes => "exited_scopes",
            Capability::Share => "share",
            Capability::Reenter => "reenter",
        }
    }
}

impl std::str::FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
                format!("unknown capability `{s}`; known: {}", names.join(", "))
            })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Capability {
    /// Whether the capability is a feature of the language or runtime
    /// rather than work an adapter may skip: two tasks pulling one
    /// subscription (`share`), a bus that calls user code synchronously
    /// (`reenter`). An implementation without it is not one the rule can
    /// apply to: the rules that need it are *not applicable* to it, and
    /// do not count against conformance (any other missing capability
    /// leaves its rules *not tested*, which does).
    pub fn language_feature(self) -> bool {
        matches!(self, Capability::Share | Capability::Reenter)
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    /// Every capability.
    pub fn all() -> Capabilities {
        Capabilities::from_iter(Capability::ALL)
    }

    /// No capability.
    pub fn none() -> Capabilities {
        Capabilities(0)
    }

    /// Whether `c` is in the set.
    pub fn has(self, c: Capability) -> bool {
        self.0 & (1 << c as u8) != 0
    }

    /// The set with `c` added.
    pub fn with(self, c: Capability) -> Capabilities {
        Capabilities(self.0 | (1 << c as u8))
    }

    /// Both sets together.
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The set without `c`.
    pub fn without(self, c: Capability) -> Capabilities {
        Capabilities(self.0 & !(1 << c as u8))
    }

    /// The capabilities in the set, in a stable order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Capabilities::none(), |set, c| set.with(c))
    }
}

/// A rule of SPEC.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// ROUTE-1: exact-type routing.
    Route1,
    /// ROUTE-2: instantiations of a generic type are different types.
    Route2,
    /// VIS-1: only events sent after the subscription.
    Vis1,
    /// FANOUT-1: every subscription gets every event of its type.
    Fanout1,
    /// FIFO-1: send order, each event once.
    Fifo1,
    /// DROP-1: events without subscribers are dropped.
    Drop1,
    /// RECLAIM-1: retained events are what live cursors still need.
    Reclaim1,
    /// RECLAIM-2: a dropped subscription holds nothing.
    Reclaim2,
    /// SCOPE-1: a root scope has a bus of its own.
    Scope1,
    /// SCOPE-2: a nested scope shares its parent's bus.
    Scope2,
    /// SCOPE-3: an isolated scope's bus is separate both ways.
    Scope3,
    /// MISSING-1: no bus in reach gives `ContextMissing`.
    Missing1,
    /// CLOSE-1: subscriptions drain, then end, once the bus closes.
    Close1,
    /// CLOSE-2: send after close delivers nothing and does not hang.
    Close2,
    /// CLOSE-3: subscribe after close delivers nothing and does not hang.
    Close3,
    /// CANCEL-1: dropping or cancelling a subscriber disturbs no other.
    Cancel1,
    /// CANCEL-2: receiving is cancel-safe: abandoning a pending receive
    /// loses, duplicates and disturbs nothing.
    Cancel2,
    /// SEND-1: send succeeds synchronously while the bus is open.
    Send1,
    /// WAKE-1: a waiting subscriber is woken by a send; the bus settles.
    Wake1,
    /// TASK-1: a task group's owner waits for its tasks at exit, then
    /// completes; nested scopes share their owner's group.
    Task1,
    /// TASK-2: a cancelled task group's owner cancels its tasks.
    Task2,
    /// TASK-3: cancellation is cooperative, and prompt: a started task woken
    /// after the cancellation was requested does not run.
    Task3,
    /// PROC-1: a scope closes the bus it owns before it waits for its
    /// tasks, so processors that read until their bus closes end, and the
    /// scope exits without an explicit cancel.
    Proc1,
    /// FAIL-1: a root scope whose body fails cancels the tasks of its
    /// group, closes its bus and raises the body's error.
    Fail1,
    /// FAIL-2: a subscriber task that fails disturbs nothing, and a send
    /// from its cleanup behaves as any send.
    Fail2,
    /// EXIT-1: a handle that outlives its scope keeps the scope's bus: send
    /// and subscribe through it act on that bus, open or closed, without
    /// `ContextMissing`, another error or a hang.
    Exit1,
    /// SHARE-1: a subscription pulled by two tasks gives each event to one
    /// of them: none is received twice.
    Share1,
    /// REENTER-1: no user code runs under the bus's locks: a waker's
    /// `wake` or `drop` may use the same bus.
    Reenter1,
    /// ROBUST-1: no operation panics, crashes or errs unexpectedly.
    Robust1,
}

impl Rule {
    /// Every rule, in SPEC.md order.
    pub const ALL: [Rule; 29] = [
        Rule::Route1,
        Rule::Route2,
        Rule::Vis1,
        Rule::Fanout1,
        Rule::Fifo1,
        Rule::Drop1,
        Rule::Reclaim1,
        Rule::Reclaim2,
        Rule::Scope1,
        Rule::Scope2,
        Rule::Scope3,
        Rule::Missing1,
        Rule::Close1,
        Rule::Close2,
        Rule::Close3,
        Rule::Cancel1,
        Rule::Cancel2,
        Rule::Send1,
        Rule::Wake1,
        Rule::Task1,
        Rule::Task2,
        Rule::Task3,
        Rule::Proc1,
        Rule::Fail1,
        Rule::Fail2,
        Rule::Exit1,
        Rule::Share1,
        Rule::Reenter1,
        Rule::Robust1,
    ];

    /// The number of rules.
    pub const COUNT: usize = Rule::ALL.len();

    /// The stable ID, e.g. `"ROUTE-1"`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Route1 => "ROUTE-1",
            Rule::Route2 => "ROUTE-2",
            Rule::Vis1 => "VIS-1",
            Rule::Fanout1 => "FANOUT-1",
            Rule::Fifo1 => "FIFO-1",
            Rule::Drop1 => "DROP-1",
            Rule::Reclaim1 => "RECLAIM-1",
            Rule::Reclaim2 => "RECLAIM-2",
            Rule::Scope1 => "SCOPE-1",
            Rule::Scope2 => "SCOPE-2",
            Rule::Scope3 => "SCOPE-3",
            Rule::Missing1 => "MISSING-1",
            Rule::Close1 => "CLOSE-1",
            Rule::Close2 => "CLOSE-2",
            Rule::Close3 => "CLOSE-3",
            Rule::Cancel1 => "CANCEL-1",
            Rule::Cancel2 => "CANCEL-2",
            Rule::Send1 => "SEND-1",
            Rule::Wake1 => "WAKE-1",
            Rule::Task1 => "TASK-1",
            Rule::Task2 => "TASK-2",
            Rule::Task3 => "TASK-3",
            Rule::Proc1 => "PROC-1",
            Rule::Fail1 => "FAIL-1",
            Rule::Fail2 => "FAIL-2",
            Rule::Exit1 => "EXIT-1",
            Rule::Share1 => "SHARE-1",
            Rule::Reenter1 => "REENTER-1",
            Rule::Robust1 => "ROBUST-1",
        }
    }

    /// The rule with this ID.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Its index in [`Rule::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// What it rests on (SPEC.md's **Source**).
    pub fn grounding(self) -> Grounding {
        match self {
            Rule::Route2
            | Rule::Reclaim2
            | Rule::Close2
            | Rule::Close3
            | Rule::Task3
            | Rule::Share1
            | Rule::Reenter1 => Grounding::Extension,
            Rule::Close1
            | Rule::Cancel2
            | Rule::Wake1
            | Rule::Send1
            | Rule::Proc1
            | Rule::Fail2
            | Rule::Exit1
            | Rule::Robust1 => Grounding::Derived,
            _ => Grounding::Promised,
        }
    }

    /// Whether some of its checks can be made only in part (RECLAIM-1 and
    /// RECLAIM-2 without live-subscription counts).
    pub fn can_be_partial(self) -> bool {
        matches!(self, Rule::Reclaim1 | Rule::Reclaim2)
    }

    /// How binding it is under `profile` (SPEC.md's **Level**): a `must`,
    /// except an extension under [`Profile::Docs`], which is a `should`,
    /// and SHARE-1, a `should` under both (a language may not let two tasks
    /// pull one subscription at all).
    pub fn level_in(self, profile: Profile) -> Level {
        match (profile, self.grounding()) {
            _ if self == Rule::Share1 => Level::Should,
            (Profile::Docs, Grounding::Extension) => Level::Should,
            _ => Level::Must,
        }
    }

    /// The capabilities an implementation needs for the rule to be tested.
    pub fn needs(self) -> Capabilities {
        let c = Capabilities::none();
        match self {
            Rule::Reclaim1 | Rule::Reclaim2 => c.with(Capability::Stats),
            Rule::Scope3 => c.with(Capability::Isolated),
            Rule::Cancel2 => c.with(Capability::Abandon),
            Rule::Task1 | Rule::Proc1 => c.with(Capability::Tasks),
            Rule::Task2 => c.with(Capability::Tasks).with(Capability::Cancel),
            Rule::Fail1 => c.with(Capability::Tasks).with(Capability::Failures),
            Rule::Fail2 => c.with(Capability::Failures),
            Rule::Exit1 => c.with(Capability::ExitedScopes),
            Rule::Share1 => c.with(Capability::Share),
            Rule::Reenter1 => c.with(Capability::Reenter),
            Rule::Task3 => c
                .with(Capability::Tasks)
                .with(Capability::Cancel)
                .with(Capability::Started),
            _ => c,
        }
    }

    /// One line: what the rule says.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::Route1 => {
                "an event reaches only subscriptions of its exact type; an alias is the same type"
            }
            Rule::Route2 => "two instantiations of one generic type are different event types",
            Rule::Vis1 => "a subscription sees no event sent before it was created",
            Rule::Fanout1 => {
                "every subscription receives every event of its type sent on its bus after it was created"
            }
            Rule::Fifo1 => "per type and bus, events arrive in send order, each exactly once",
            Rule::Drop1 => {
                "an event sent with no live subscription of its type is dropped: never stored, never delivered later"
            }
            Rule::Reclaim1 => {
                "the bus retains exactly the events some live subscription has yet to receive (dropped ones are RECLAIM-2's)"
            }
            Rule::Reclaim2 => "a dropped subscription, even one never polled, holds no event",
            Rule::Scope1 => "a root scope has a bus; separate roots have separate buses",
            Rule::Scope2 => "a nested, non-isolated scope uses its parent's bus",
            Rule::Scope3 => "an isolated scope has its own bus, invisible in both directions",
            Rule::Missing1 => "send and subscribe with no bus in reach fail with ContextMissing",
            Rule::Close1 => {
                "when its bus closes, a subscription yields what was sent before, then ends"
            }
            Rule::Close2 => "a send after close neither hangs nor delivers",
            Rule::Close3 => "a subscribe after close neither hangs nor delivers",
            Rule::Cancel1 => {
                "dropping or cancelling a subscriber, even mid-wait, disturbs no other subscriber or sender"
            }
            Rule::Cancel2 => {
                "abandoning a pending receive (a timeout, a select, cancelling the code that awaits it) loses, duplicates and disturbs nothing"
            }
            Rule::Send1 => "send returns at once and succeeds while the bus in reach is open",
            Rule::Wake1 => {
                "a waiting subscriber is woken by the send it waits for; the bus settles"
            }
            Rule::Task1 => {
                "a root or isolated scope's exit waits for every task of its task group (nested scopes share it), then completes"
            }
            Rule::Task2 => "a cancelled root or isolated scope cancels the tasks of its task group",
            Rule::Task3 => {
                "a started task woken after its group's cancellation was requested does not run"
            }
            Rule::Proc1 => {
                "a scope's bus closes when its body returns, before the scope waits for its tasks, so processors reading it end and the scope exits"
            }
            Rule::Fail1 => {
                "a root scope whose body fails cancels its tasks, closes its bus and raises the body's error, not a cancellation"
            }
            Rule::Fail2 => {
                "a subscriber task that fails lets go of its subscription and disturbs no other; a send from its cleanup behaves as any send"
            }
            Rule::Exit1 => {
                "send and subscribe through an exited scope's handle act on the bus it had, open or closed, with no ContextMissing, other error or hang"
            }
            Rule::Share1 => {
                "a subscription pulled by two tasks at once gives each event to one of them, never to both"
            }
            Rule::Reenter1 => {
                "no user code runs under the bus's locks: a waker's wake or drop may use the same bus and returns"
            }
            Rule::Robust1 => "no valid operation panics, crashes, or fails unexpectedly",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Rule::from_id(&id).ok_or_else(|| serde::de::Error::custom(format!("unknown rule `{id}`")))
    }
}

/// How many times each rule was actually checked on a situation that could
/// break it. A rule checked zero times has not been tested, whatever else
/// passed. Some checks can only be made in part (RECLAIM-1 and RECLAIM-2
/// compare live-subscription counts only if the implementation reports
/// them); those are counted among the checks and, separately, as partial.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Coverage {
    checks: [u64; Rule::COUNT],
    partial: [u64; Rule::COUNT],
}

impl Coverage {
    /// Counts one check of `rule`.
    pub fn hit(&mut self, rule: Rule) {
        self.checks[rule.index()] += 1;
    }

    /// Counts one check of `rule` that could be made only in part.
    pub fn hit_partly(&mut self, rule: Rule) {
        self.checks[rule.index()] += 1;
        self.partial[rule.index()] += 1;
    }

    /// The checks of `rule`.
    pub fn get(&self, rule: Rule) -> u64 {
        self.checks[rule.index()]
    }

    /// Of those, the checks made only in part.
    pub fn partial(&self, rule: Rule) -> u64 {
        self.partial[rule.index()]
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Coverage) {
        for (a, b) in self.checks.iter_mut().zip(other.checks.iter()) {
            *a += b;
        }
        for (a, b) in self.partial.iter_mut().zip(other.partial.iter()) {
            *a += b;
        }
    }
}
