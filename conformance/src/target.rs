//! Which implementation a run is about: the in-process reference bus, or one
//! of its mutants. Each target builds a fresh implementation per run, so runs
//! share nothing.

use crate::stdio::{AdapterPool, StdioImpl};
use scopebus::mutants::Mutant;
use scopebus_sim::diagnosis::Diagnosis;
use scopebus_sim::iut::{ImplInfo, Implementation};
use scopebus_sim::model::Layout;
use scopebus_sim::reference::ReferenceImpl;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Builds a fresh implementation for one run.
pub type Factory = Arc<dyn Fn() -> Box<dyn Implementation> + Send + Sync>;

/// An implementation under test, by name.
#[derive(Clone)]
pub enum Target {
    /// The reference bus, in-process (`reference`).
    Reference,
    /// The reference bus with one planted bug (`mutant:NAME`).
    Mutant(Mutant),
    /// An implementation in another process, behind the adapter protocol
    /// (PROTOCOL.md): `reference-stdio`, `haiway`, or any command.
    Stdio {
        /// Its `--impl` name (or the command line).
        name: String,
        /// The adapter processes.
        pool: Arc<AdapterPool>,
    },
    /// Any other in-process implementation (another Rust bus, a wrapper),
    /// built by `factory` for each run. Used from Rust code; the command
    /// line does not know it, so its repro is the seed and the trace.
    Custom {
        /// Its name, for reports and trace files.
        name: String,
        /// Builds a fresh instance.
        factory: Factory,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Target {
    /// A fresh instance, for one run.
    pub fn instantiate(&self) -> Box<dyn Implementation> {
        match self {
            Target::Reference => Box::new(ReferenceImpl::new(None)),
            Target::Mutant(m) => Box::new(ReferenceImpl::new(Some(*m))),
            Target::Custom { factory, .. } => factory(),
            Target::Stdio { pool, .. } => Box::new(StdioImpl::new(pool.clone())),
        }
    }

    /// Diagnosis of this implementation's failures, its bus layout already
    /// known (see [`Target::diagnosis_probed`]); reruns use fresh instances.
    pub fn diagnosis(&self, layout: Layout) -> Diagnosis<'_> {
        Diagnosis::with_layout(layout, || self.instantiate())
    }

    /// Diagnosis of this implementation's failures, after probing its bus
    /// layout (one short run).
    pub fn diagnosis_probed(&self) -> Diagnosis<'_> {
        Diagnosis::new(|| self.instantiate())
    }

    /// A name safe as one directory name: `reference`, `mutant-lifo`,
    /// `haiway`, or, for an adapter command line, its program's name and a
    /// short hash of the whole line.
    pub fn slug(&self) -> String {
        let name = self.to_string();
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        match self {
            Target::Stdio { name, .. } if name.contains([' ', '/']) => {
                let program = name
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.rsplit('/').next())
                    .unwrap_or("adapter");
                let hash = blake3::hash(name.as_bytes()).to_hex();
                format!("{}-{}", clean(program), &hash[..8])
            }
            _ => clean(&name),
        }
    }

    /// The `--impl` value, quoted for a shell when it needs to be.
    pub fn quoted(&self) -> String {
        let name = self.to_string();
        shlex::try_quote(&name).map_or(name.clone(), |q| q.into_owned())
    }

    /// The flags a printed command needs besides `--impl` to reach this
    /// implementation the same way: `--timeout MS` for an adapter run with a
    /// deadline other than the default (10,000 ms). Starts with a space, or
    /// is empty.
    pub fn timeout_flag(&self) -> String {
        match self {
            Target::Stdio { pool, .. } if pool.timeout() != Duration::from_secs(10) => {
                format!(" --timeout {}", pool.timeout().as_millis())
            }
            _ => String::new(),
        }
    }

    /// The flags `cargo xtask replay TRACE` needs to rerun a trace of this
    /// implementation: an adapter's command line (a trace file never starts
    /// a command by itself) and its deadline. Starts with a space, or is
    /// empty.
    pub fn replay_flags(&self) -> String {
        let named =
            |n: &str| n.parse::<Target>().is_ok() || ["reference-stdio", "haiway"].contains(&n);
        let name = self.to_string();
        let impl_flag = if named(&name) {
            String::new()
        } else {
            format!(" --impl {}", self.quoted())
        };
        format!("{impl_flag}{}", self.timeout_flag())
    }

    /// Checks that the implementation can be used at all (for an adapter:
    /// it starts and passes the handshake), before any seed runs.
    ///
    /// # Errors
    /// Why it cannot be judged.
    pub fn check(&self) -> Result<ImplInfo, String> {
        match self {
            Target::Stdio { pool, .. } => pool.handshake(),
            other => Ok(other.info()),
        }
    }

    /// Who it is and what it can do.
    pub fn info(&self) -> ImplInfo {
        self.instantiate().info()
    }

    /// Every name `--impl` accepts, for error messages.
    pub fn known_names() -> Vec<String> {
        let mut names = vec!["reference".to_owned()];
        names.extend(Mutant::ALL.iter().map(|m| format!("mutant:{}", m.name())));
        names.extend(crate::impls::NAMES.iter().map(|n| (*n).to_owned()));
        names
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Reference => f.write_str("reference"),
            Target::Mutant(m) => write!(f, "mutant:{}", m.name()),
            Target::Custom { name, .. } | Target::Stdio { name, .. } => f.write_str(name),
        }
    }
}

/// A name `--impl` does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTarget(pub String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown implementation `{}`; known: {}",
            self.0,
            Target::known_names().join(", ")
        )
    }
}

impl std::error::Error for UnknownTarget {}

impl FromStr for Target {
    type Err = UnknownTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "reference" {
            return Ok(Target::Reference);
        }
        if let Some(target) = crate::impls::target(s) {
            return Ok(target);
        }
        s.strip_prefix("mutant:")
            .and_then(Mutant::from_name)
            .map(Target::Mutant)
            .ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}
