//! No adapter process outlives its session: every process an adapter
//! starts, including one that left its process group or session with
//! `setsid()`, is killed when the session ends, when a reply times out, and
//! when the runner is interrupted or terminated.
//!
//! # Mechanism (Linux)
//!
//! - **The tree, by parent links.** An adapter's descendants are found by
//!   walking `/proc/*/stat` parent links from its pid. `setsid()` and
//!   `setpgid()` change a process's session and group, never its parent, so
//!   they do not take it out of the tree (a process-group kill alone would
//!   miss it). To kill a tree, every process in it is stopped (`SIGSTOP`,
//!   so that none can fork a new child meanwhile), the walk repeated until
//!   it finds no new process, and then every one is killed (`SIGKILL`).
//! - **Orphans come back.** A descendant whose parent exits is re-parented
//!   to the nearest *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`), and
//!   without one to init, out of reach. [`install`] makes the runner a
//!   subreaper, so a double-forked grandchild becomes the runner's own
//!   child. Every adapter is started with `SCOPEBUS_ADAPTER_OF=<runner pid>`
//!   in its environment; a child of the runner that is not a live adapter
//!   and carries that marker is an orphan of some session, and is killed
//!   (with its tree) and reaped at the next session's end.
//! - **Signals.** [`install`] also handles SIGINT, SIGTERM and SIGHUP (with
//!   the `signal-hook` crate): the handler thread kills every live adapter's
//!   tree and every remaining child of the runner, says so on stderr, and
//!   exits with 128 + the signal's number, as a shell would report it.
//!   A child registered as graceful ([`spawn_graceful`]: one that cleans up
//!   after itself, as cargo-mutants does) is first sent SIGINT and given
//!   its grace period to exit (see [`grace`]).
//!
//! # Invariants
//!
//! - An adapter is registered (its pid in [`LIVE`]) from its spawn until its
//!   session ends, and spawning holds the registry's lock: the signal handler
//!   sees every adapter that exists, and once it has begun, no new adapter
//!   starts ([`spawn_registered`] refuses).
//! - Only pids this module reaps (`waitpid` on one pid, never on "any
//!   child") are orphans the runner never spawned itself: a `Child` the
//!   standard library owns keeps its exit status.
//!
//! Elsewhere than Linux, the tree is the adapter's process group only.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

mod grace;
pub use grace::{Graceful, spawn_graceful, wait_if_closing};

/// The environment variable every adapter is started with: its value is
/// the runner's pid, so that the runner can tell its sessions' orphans from
/// other children.
pub const MARKER: &str = "SCOPEBUS_ADAPTER_OF";

/// The pids of the adapters whose sessions are open, and whether the runner
/// is shutting down (no adapter may start then).
static LIVE: Mutex<Registry> = Mutex::new(Registry {
    pids: BTreeSet::new(),
    graceful: BTreeMap::new(),
    closing: false,
});

/// Whether [`install`] made this process a subreaper.
static INSTALLED: OnceLock<bool> = OnceLock::new();

struct Registry {
    pids: BTreeSet<u32>,
    /// Graceful children ([`spawn_graceful`]): grace period, and what may
    /// be left if it is killed.
    graceful: BTreeMap<u32, (Duration, &'static str)>,
    closing: bool,
}

fn live() -> std::sync::MutexGuard<'static, Registry> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes this process a child subreaper and installs the SIGINT, SIGTERM and
/// SIGHUP handlers (once; later calls do nothing). Meant for the runner's
/// binary, whose only children are adapters: after it, orphans of adapter
/// sessions are re-parented to this process and killed, and a signal kills
/// every child this process has before it exits.
///
/// # Errors
/// If the signal handlers cannot be installed (the subreaper is best effort:
/// where it is unavailable, orphans that escape while their parent lives
/// are still found by the tree walk).
pub fn install() -> Result<(), String> {
    let mut result = Ok(());
    INSTALLED.get_or_init(|| {
        result = start_signal_thread();
        subreaper()
    });
    result
}

#[cfg(target_os = "linux")]
fn subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn subreaper() -> bool {
    false
}

/// Set inside the signal handler itself (not by the signal thread, which
/// may run later): a thread that sees a child die of the same signal (the
/// terminal's Ctrl-C reaches the whole process group) sees this set, and
/// [`wait_if_closing`] keeps it from reporting that death as a failure.
static SIGNALLED: OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> = OnceLock::new();

fn start_signal_thread() -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = SIGNALLED.get_or_init(Default::default);
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("scopebus-signals".to_owned())
        .spawn(move || {
            let first = signals.forever().next();
            if let Some(signal) = first {
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                grace::give_grace(name, || signals.pending().next().is_some());
                let killed = shut_down();
                // Not `eprintln!`, which panics when stderr is gone (a
                // closed pipe), and the runner must exit all the same.
                let _ = writeln!(
                    std::io::stderr(),
                    "\ninterrupted by {name}: {killed} process{} killed; no report written",
                    if killed == 1 { "" } else { "es" }
                );
                std::process::exit(128 + signal);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Kills every live adapter's tree and, if this process is a subreaper,
/// every child it still has; no adapter starts after it. Returns how many
/// processes were killed.
pub fn shut_down() -> usize {
    let mut registry = live();
    registry.closing = true;
    let mut killed = 0;
    for pid in std::mem::take(&mut registry.pids) {
        killed += kill_tree(pid);
    }
    drop(registry);
    killed + sweep()
}

/// Spawns `command` (an adapter, with its own stdin, stdout and stderr as
/// the caller set them) with [`MARKER`] in its environment, and registers
/// it; `spawn` is how (e.g. `command_group`'s group spawn).
///
/// # Errors
/// If the runner is shutting down, or `spawn` fails.
pub fn spawn_registered<C>(
    command: &mut Command,
    spawn: impl FnOnce(&mut Command) -> std::io::Result<C>,
    pid_of: impl FnOnce(&C) -> u32,
) -> Result<C, String> {
    let mut registry = live();
    if registry.closing {
        return Err("the runner is shutting down".to_owned());
    }
    command.env(MARKER, std::process::id().to_string());
    let child = spawn(command).map_err(|e| e.to_string())?;
    registry.pids.insert(pid_of(&child));
    Ok(child)
}

/// Ends the session of the adapter `pid`: kills it and every process it
/// started (see the module doc), unregisters it, and kills and reaps the
/// orphans of any session. Returns how many processes were killed. Its exit
/// status is left for whoever owns its `Child`.
pub fn end_session(pid: u32) -> usize {
    live().pids.remove(&pid);
    kill_tree(pid) + reap_orphans()
}

/// The adapter `pid` exited by itself and was reaped: unregisters it, and
/// kills and reaps the orphans of any session (what it left behind, if this
/// process is a subreaper). Returns how many were killed.
pub fn exited(pid: u32) -> usize {
    live().pids.remove(&pid);
    reap_orphans()
}

/// A session's processes as they are now (pid and start time, so that a
/// reused pid is never mistaken for one of them), for [`Snapshot::kill`]
/// once the adapter has exited by itself.
pub struct Snapshot(Vec<(u32, u64)>);

impl Snapshot {
    /// The processes under `pid` (not `pid` itself).
    pub fn of(pid: u32) -> Snapshot {
        let table = Table::read();
        Snapshot(
            table
                .descendants(pid)
                .into_iter()
                .filter_map(|p| table.start.get(&p).map(|&s| (p, s)))
                .collect(),
        )
    }

    /// Kills those of the processes that are still running (the adapter
    /// `pid` exited and left them behind), unregisters `pid`, and reaps
    /// orphans. Returns how many were killed.
    pub fn kill(self, pid: u32) -> usize {
        live().pids.remove(&pid);
        let table = Table::read();
        let mut killed = 0;
        for (p, start) in self.0 {
            if table.start.get(&p) == Some(&start) {
                killed += kill_tree(p);
            }
        }
        killed + reap_orphans()
    }
}

/// Kills every remaining child of this process (and its tree), and reaps
/// them; only when this process is a subreaper ([`install`]), whose children
/// are all adapters or their orphans. For the runner's exit. Returns how
/// many were killed.
pub fn sweep() -> usize {
    if INSTALLED.get() != Some(&true) {
        return 0;
    }
    let me = std::process::id();
    let mut killed = 0;
    for pid in Table::read().children(me) {
        killed += kill_tree(pid);
        reap(pid);
    }
    killed
}

/// Kills and reaps the children of this process that carry [`MARKER`] and
/// are not live adapters: orphans of sessions, re-parented here.
fn reap_orphans() -> usize {
    if INSTALLED.get() != Some(&true) {
        return 0;
    }
    let me = std::process::id();
    let marker = format!("{MARKER}={me}");
    let live = live().pids.clone();
    let mut killed = 0;
    for pid in Table::read().children(me) {
        if !live.contains(&pid) && has_env(pid, &marker) {
            killed += kill_tree(pid);
            reap(pid);
        }
    }
    killed
}

fn has_env(pid: u32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
        .unwrap_or(false)
}

/// Stops, then kills, `pid` and every process under it (see the module
/// doc). Returns how many processes were signalled.
pub fn kill_tree(pid: u32) -> usize {
    let mut seen = BTreeSet::new();
    // Each round stops what the last walk found; a process stopped cannot
    // fork, so the walk ends (bounded, against a pid table that changes
    // under it for other reasons).
    for _ in 0..64 {
        let table = Table::read();
        let mut tree = table.descendants(pid);
        if table.start.contains_key(&pid) {
            tree.push(pid);
        }
        let new: Vec<u32> = tree.into_iter().filter(|p| seen.insert(*p)).collect();
        if new.is_empty() {
            break;
        }
        for p in new {
            signal(p, Sig::Stop);
        }
    }
    signal_group(pid);
    for &p in &seen {
        signal(p, Sig::Kill);
    }
    seen.len()
}

/// Reaps `pid` if it is this process's child (an orphan it adopted), waiting
/// at most a second for it to die.
#[cfg(unix)]
fn reap(pid: u32) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(raw);
    for _ in 0..100 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(10)),
            _ => return,
        }
    }
}

#[cfg(not(unix))]
fn reap(_pid: u32) {}

enum Sig {
    Int,
    Stop,
    Kill,
}

#[cfg(unix)]
fn signal(pid: u32, sig: Sig) {
    use nix::sys::signal::{Signal, kill};
    if let Ok(raw) = i32::try_from(pid) {
        let sig = match sig {
            Sig::Int => Signal::SIGINT,
            Sig::Stop => Signal::SIGSTOP,
            Sig::Kill => Signal::SIGKILL,
        };
        let _ = kill(nix::unistd::Pid::from_raw(raw), sig);
    }
}

/// Kills the process group `pid` leads (what the tree walk cannot see
/// elsewhere than Linux).
#[cfg(unix)]
fn signal_group(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    if let Ok(raw) = i32::try_from(pid) {
        let _ = killpg(nix::unistd::Pid::from_raw(raw), Signal::SIGKILL);
    }
}

#[cfg(not(unix))]
fn signal(_pid: u32, _sig: Sig) {}

#[cfg(not(unix))]
fn signal_group(_pid: u32) {}

/// The process table: each process's parent and start time.
struct Table {
    parent: BTreeMap<u32, u32>,
    start: BTreeMap<u32, u64>,
}

impl Table {
    /// Reads `/proc` (empty elsewhere than Linux, or where it is not
    /// mounted). Processes that vanish while it is read are left out.
    fn read() -> Table {
        let mut table = Table {
            parent: BTreeMap::new(),
            start: BTreeMap::new(),
        };
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return table;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some((ppid, start)) = stat(pid) {
                table.parent.insert(pid, ppid);
                table.start.insert(pid, start);
            }
        }
        table
    }

    fn children(&self, pid: u32) -> Vec<u32> {
        self.parent
            .iter()
            .filter(|(_, parent)| **parent == pid)
            .map(|(child, _)| *child)
            .collect()
    }

    /// Every process under `pid`, breadth first (not `pid` itself).
    fn descendants(&self, pid: u32) -> Vec<u32> {
        let mut found = Vec::new();
        let mut frontier = vec![pid];
        while let Some(p) = frontier.pop() {
            for child in self.children(p) {
                if child != pid && !found.contains(&child) {
                    found.push(child);
                    frontier.push(child);
                }
            }
        }
        found
    }
}

/// A process's parent and start time (in clock ticks since boot), from
/// `/proc/PID/stat`: the fields after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (0), ppid (1), ..., starttime (19).
    if fields.first() == Some(&"Z") {
        // A zombie is dead already: nothing to kill, and it is reaped by
        // its parent.
        return None;
    }
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}
