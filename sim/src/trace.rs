//! Trace files: a run's entries as JSON, which `cargo xtask replay` reruns.
//!
//! ```json
//! {
//!   "format": "scopebus-trace",
//!   "version": 1,
//!   "implementation": "mutant:lifo",
//!   "seed": 17,
//!   "ops": 200,
//!   "failure": {"rule": "FIFO-1", "entry": 9, "message": "..."},
//!   "entries": [
//!     {"op": "open_scope", "scope": 1},
//!     {"op": "subscribe", "sub": 1, "scope": 1, "ty": "alpha.Ping"},
//!     {"poll": "sub#1"}
//!   ]
//! }
//! ```
//!
//! A file is checked before anything runs: format and version, every entry's
//! shape, and that every handle an entry names was created by an earlier
//! entry. Each problem is reported with the entry's index and what was
//! expected.

use crate::harness::Failure;
use crate::model::Mode;
use crate::op::{Entry, Interjection, Op, ScopeId, SubId, TaskId, TaskRef};
use crate::rules::Rule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The `format` field of every trace file.
pub const FORMAT: &str = "scopebus-trace";
/// The version of the format this build reads and writes.
pub const VERSION: u32 = 1;

/// The failure a trace was saved for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    /// The rule broken.
    pub rule: Rule,
    /// Index of the entry during which it showed.
    pub entry: usize,
    /// The first observation where implementation and model differ.
    pub message: String,
    /// The failure's shape (absent in traces written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl From<&Failure> for FailureRecord {
    fn from(f: &Failure) -> Self {
        FailureRecord {
            rule: f.rule,
            entry: f.entry,
            message: f.message.clone(),
            mode: Some(f.mode),
        }
    }
}

/// A trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// The implementation it ran on (`reference`, `mutant:NAME`, ...).
    pub implementation: String,
    /// The seed that generated it, if it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The `--ops` setting it was generated with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<usize>,
    /// The failure it shows, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureRecord>,
    /// The entries, in order.
    pub entries: Vec<Entry>,
}

/// Why a trace file could not be used.
#[derive(Debug)]
pub enum TraceError {
    /// It could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// It is not valid JSON, or not of the trace's shape.
    Json {
        /// The file.
        path: PathBuf,
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem, from 1.
        column: usize,
        /// What was wrong, and what was expected.
        message: String,
    },
    /// It is JSON of the right shape but not a usable trace.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was wrong, and what was expected.
        message: String,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TraceError::Json {
                path,
                line,
                column,
                message,
            } => write!(
                f,
                "{}:{line}:{column}: not a trace file: {message}",
                path.display()
            ),
            TraceError::Invalid { path, message } => {
                write!(f, "{}: not a usable trace: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for TraceError {}

impl TraceFile {
    /// A trace of `entries` run on `implementation`.
    pub fn new(implementation: impl Into<String>, entries: Vec<Entry>) -> TraceFile {
        TraceFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            implementation: implementation.into(),
            seed: None,
            ops: None,
            failure: None,
            entries,
        }
    }

    /// Reads and checks a trace file.
    ///
    /// # Errors
    /// [`TraceError`] saying what is wrong, where.
    pub fn read(path: &Path) -> Result<TraceFile, TraceError> {
        let text = crate::input::read_text(path).map_err(|source| TraceError::Io {
            path: path.to_owned(),
            source,
        })?;
        TraceFile::parse(&text, path)
    }

    /// Parses and checks trace text; `path` is only for messages.
    ///
    /// # Errors
    /// [`TraceError`] saying what is wrong, where.
    pub fn parse(text: &str, path: &Path) -> Result<TraceFile, TraceError> {
        let invalid = |message: String| TraceError::Invalid {
            path: path.to_owned(),
            message,
        };
        // Look at the header first, so a file of another format or version
        // gets that said rather than a complaint about some field.
        let header: serde_json::Value = serde_json::from_str(text).map_err(|e| json(path, &e))?;
        match header.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "its format is `{other}`; expected `{FORMAT}`"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "it has no `format` field; a trace file starts with {{\"format\": \"{FORMAT}\", \"version\": {VERSION}, ...}}"
                )));
            }
        }
        match header.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "it is version {v} of the format; this build reads version {VERSION}"
                )));
            }
            None => return Err(invalid("it has no numeric `version` field".to_owned())),
        }
        let trace: TraceFile = serde_json::from_str(text).map_err(|e| json(path, &e))?;
        trace.check_references().map_err(invalid)?;
        Ok(trace)
    }

    /// The trace as pretty JSON, one entry per line.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        out.push_str("{\n");
        let field = |name: &str, value: String| format!("  \"{name}\": {value},\n");
        let text = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
        out.push_str(&field("format", text(&self.format)));
        out.push_str(&field("version", self.version.to_string()));
        out.push_str(&field("implementation", text(&self.implementation)));
        if let Some(seed) = self.seed {
            out.push_str(&field("seed", seed.to_string()));
        }
        if let Some(ops) = self.ops {
            out.push_str(&field("ops", ops.to_string()));
        }
        if let Some(failure) = &self.failure {
            let failure = serde_json::to_string(failure).unwrap_or_default();
            out.push_str(&field("failure", failure));
        }
        out.push_str("  \"entries\": [\n");
        for (i, entry) in self.entries.iter().enumerate() {
            let line = serde_json::to_string(entry).unwrap_or_default();
            let comma = if i + 1 < self.entries.len() { "," } else { "" };
            out.push_str(&format!("    {line}{comma}\n"));
        }
        out.push_str("  ]\n}\n");
        out
    }

    /// Writes the trace to `path`, creating its directory.
    ///
    /// # Errors
    /// [`TraceError::Io`].
    pub fn write(&self, path: &Path) -> Result<(), TraceError> {
        let io = |source| TraceError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, self.to_json()).map_err(io)
    }

    /// A short, stable hash of the entries (hex), to compare runs by eye.
    pub fn hash(&self) -> String {
        hash_entries(&self.entries)
    }

    /// Checks that every handle an entry names was created by an earlier
    /// entry, and that no handle or event id is created twice.
    ///
    /// # Errors
    /// The first problem, with the entry's index.
    pub fn check_references(&self) -> Result<(), String> {
        let mut known = References::default();
        for (i, entry) in self.entries.iter().enumerate() {
            known
                .admit(entry)
                .map_err(|what| format!("entry {i} (`{entry}`): {what}"))?;
        }
        Ok(())
    }
}

/// The handles and event ids that earlier entries of a trace created, to
/// check each next entry against (what [`TraceFile::check_references`] and
/// the fuzz targets' decoder use).
#[derive(Clone, Debug, Default)]
pub struct References {
    scopes: BTreeSet<ScopeId>,
    depth: std::collections::BTreeMap<ScopeId, usize>,
    subs: BTreeSet<SubId>,
    tasks: BTreeSet<TaskId>,
    events: BTreeSet<u64>,
}

impl References {
    /// Takes `entry` in if every handle it names exists and nothing it
    /// creates exists yet; it is then known to later entries.
    ///
    /// # Errors
    /// What is wrong with `entry`; then nothing is taken in.
    pub fn admit(&mut self, entry: &Entry) -> Result<(), String> {
        let (named, op) = match entry {
            Entry::Op(op) => ([None, None], Some(op)),
            Entry::Poll(t) | Entry::Wake(t) | Entry::Migrate(t) => ([Some(*t), None], None),
            Entry::Preempt(t, Interjection::Op(op)) => ([Some(*t), None], Some(op)),
            Entry::Preempt(t, Interjection::Poll(other)) => ([Some(*t), Some(*other)], None),
        };
        for t in named.into_iter().flatten() {
            match t {
                TaskRef::Scope(s) => self.need_scope(&s)?,
                TaskRef::Sub(s) => self.need_sub(&s)?,
                TaskRef::Any => {}
            }
        }
        match op {
            Some(op) => self.admit_op(op),
            None => Ok(()),
        }
    }

    fn admit_op(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::OpenScope { scope, parent, .. } => self.admit_scope(*scope, *parent)?,
            Op::CloseScope { scope }
            | Op::CancelScope { scope }
            | Op::FailScope { scope }
            | Op::Observe { scope } => {
                self.need_scope(scope)?;
            }
            Op::SpawnProcessor { sub, scope, .. } => {
                self.need_scope(scope)?;
                if !self.subs.insert(*sub) {
                    return Err(format!("{sub} is created twice"));
                }
            }
            Op::Subscribe { sub, scope, .. } => {
                if let Some(s) = scope {
                    self.need_scope(s)?;
                }
                if !self.subs.insert(*sub) {
                    return Err(format!("{sub} is created twice"));
                }
            }
            Op::SubscribeShared {
                sub, puller, scope, ..
            } => {
                self.need_scope(scope)?;
                if sub == puller || self.subs.contains(sub) || self.subs.contains(puller) {
                    return Err(format!("{sub} or {puller} is created twice"));
                }
                self.subs.extend([*sub, *puller]);
            }
            Op::Send { scope, event, .. } => {
                if let Some(s) = scope {
                    self.need_scope(s)?;
                }
                self.fresh_event(*event)?;
            }
            Op::Consume { sub, .. }
            | Op::DropSubscription { sub }
            | Op::CancelSubscriber { sub }
            | Op::Abandon { sub }
            | Op::Reenter { sub, .. } => self.need_sub(sub)?,
            Op::FailSubscriber { sub, send } => {
                self.need_sub(sub)?;
                if let Some(s) = send {
                    self.fresh_event(s.event)?;
                }
            }
            Op::Spawn { task, scope } => {
                self.need_scope(scope)?;
                if !self.tasks.insert(*task) {
                    return Err(format!("{task} is spawned twice"));
                }
            }
            Op::Release { task, send } => {
                if !self.tasks.contains(task) {
                    return Err(format!("{task} is not created by any earlier `spawn`"));
                }
                if let Some(s) = send {
                    self.fresh_event(s.event)?;
                }
            }
            Op::Settle => {}
        }
        Ok(())
    }

    fn admit_scope(&mut self, scope: ScopeId, parent: Option<ScopeId>) -> Result<(), String> {
        let mut level = 0;
        if let Some(p) = parent {
            self.need_scope(&p)?;
            level = self.depth.get(&p).copied().unwrap_or(0) + 1;
            if level > crate::model::MAX_NESTING {
                return Err(format!(
                    "{scope} would be nested {level} scopes deep; traces allow at most {}",
                    crate::model::MAX_NESTING
                ));
            }
        }
        if self.scopes.contains(&scope) {
            return Err(format!("{scope} is opened twice"));
        }
        self.scopes.insert(scope);
        self.depth.insert(scope, level);
        Ok(())
    }

    fn need_scope(&self, s: &ScopeId) -> Result<(), String> {
        match self.scopes.contains(s) {
            true => Ok(()),
            false => Err(format!("{s} is not opened by any earlier entry")),
        }
    }

    fn need_sub(&self, s: &SubId) -> Result<(), String> {
        match self.subs.contains(s) {
            true => Ok(()),
            false => Err(format!("{s} is not created by any earlier `subscribe`")),
        }
    }

    /// An event id not used before; it is then taken.
    fn fresh_event(&mut self, e: u64) -> Result<(), String> {
        match self.events.insert(e) {
            true => Ok(()),
            false => Err(format!("event#{e} is sent twice; event ids must be unique")),
        }
    }
}

fn json(path: &Path, e: &serde_json::Error) -> TraceError {
    TraceError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

/// A short, stable hash (16 hex digits of BLAKE3) of `entries`' canonical
/// JSON.
pub fn hash_entries(entries: &[Entry]) -> String {
    let mut hasher = blake3::Hasher::new();
    for entry in entries {
        hasher.update(serde_json::to_string(entry).unwrap_or_default().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex()[..16].to_owned()
}
