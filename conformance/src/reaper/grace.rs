//! Children that clean up after themselves when interrupted get a grace
//! period before the reaper kills them. cargo-mutants is one: interrupted,
//! it stops its test and removes its scratch copies of the workspace
//! (gigabytes of build output under `$TMPDIR`); killed, it leaves them.
//!
//! # Invariants
//!
//! - A graceful child is registered from its spawn until its [`Graceful`]
//!   guard is dropped. It is spawned under the registry's lock, so that a
//!   signal handler that has begun sees it, or it never starts.
//! - On SIGINT, SIGTERM or SIGHUP, the handler sends each registered child
//!   that is still running SIGINT once, then waits until each has exited
//!   or had its grace, or until a second signal arrives (the user's "stop
//!   now"), whichever comes first. Then it kills what is left, as for any
//!   other child ([`super::shut_down`]), and says of each graceful child it
//!   killed what it may have left behind.
//! - A thread that sees a child exit, or an error, while a signal is being
//!   handled calls [`wait_if_closing`], which never returns then: the
//!   handler alone ends the process (exit code 128 + the signal), and
//!   nothing reports an interrupted child's exit as a result or a failure.
//!   The signal is recorded in the signal handler itself, so a child that
//!   died of the same signal (Ctrl-C reaches the whole process group) is
//!   never seen before it is.

use super::{SIGNALLED, Sig, live, signal, stat};
use std::io::Write;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How often the handler looks whether the graceful children have exited.
const POLL: Duration = Duration::from_millis(50);

/// Keeps a child registered as graceful; dropping it unregisters the child
/// (after it has been waited for).
#[derive(Debug)]
pub struct Graceful(u32);

impl Drop for Graceful {
    fn drop(&mut self) {
        live().graceful.remove(&self.0);
    }
}

/// Spawns `command` and registers the child as one that, when the runner
/// is interrupted or terminated, is sent SIGINT and given up to `grace` to
/// exit before its tree is killed; if it has to be killed, `leftover` (what
/// it may leave behind) is said on stderr. Wait for the child, then call
/// [`wait_if_closing`] before acting on how it exited.
///
/// # Errors
/// The runner is shutting down, or `command` cannot be spawned.
pub fn spawn_graceful(
    command: &mut Command,
    grace: Duration,
    leftover: &'static str,
) -> Result<(Child, Graceful), String> {
    let mut registry = live();
    if registry.closing {
        return Err("the runner is shutting down".to_owned());
    }
    let child = command.spawn().map_err(|e| e.to_string())?;
    registry.graceful.insert(child.id(), (grace, leftover));
    let pid = child.id();
    Ok((child, Graceful(pid)))
}

/// Returns at once, unless a signal is shutting the runner down (or has
/// just arrived): then it never returns, and the signal handler exits the
/// process. Call it before acting on a child's exit, or reporting an error,
/// that the signal may have caused.
pub fn wait_if_closing() {
    let signalled = SIGNALLED
        .get()
        .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
    if signalled || live().closing {
        loop {
            std::thread::park();
        }
    }
}

/// For the signal handler, before [`super::shut_down`]: marks the runner
/// closing, sends every running graceful child SIGINT, and waits as the
/// module doc says (`interrupted_again` is polled for a second signal).
pub(super) fn give_grace(name: &str, mut interrupted_again: impl FnMut() -> bool) {
    let children: Vec<(u32, u64, Duration, &str)> = {
        let mut registry = live();
        registry.closing = true;
        registry
            .graceful
            .iter()
            .filter_map(|(&pid, &(grace, leftover))| {
                stat(pid).map(|(_, start)| (pid, start, grace, leftover))
            })
            .collect()
    };
    if children.is_empty() {
        return;
    }
    let longest = children.iter().map(|c| c.2).max().unwrap_or_default();
    // Not `eprintln!`: stderr may be gone, and the handler must go on.
    let _ = writeln!(
        std::io::stderr(),
        "\ninterrupted by {name}: letting {} process{} clean up (up to {} s; interrupt again to stop at once)",
        children.len(),
        if children.len() == 1 { "" } else { "es" },
        longest.as_secs()
    );
    for &(pid, ..) in &children {
        signal(pid, Sig::Int);
    }
    let began = Instant::now();
    let running = |pid: u32, start: u64| stat(pid).is_some_and(|(_, now)| now == start);
    loop {
        let waiting = children
            .iter()
            .any(|&(pid, start, grace, _)| began.elapsed() < grace && running(pid, start));
        if !waiting || interrupted_again() {
            break;
        }
        std::thread::sleep(POLL);
    }
    for &(pid, start, _, leftover) in &children {
        if running(pid, start) {
            let _ = writeln!(std::io::stderr(), "killed before it finished: {leftover}");
        }
    }
}
