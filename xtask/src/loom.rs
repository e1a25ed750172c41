//! `cargo xtask loom`: the loom model checks of the bus
//! (`loom/tests/bus.rs`, crate `scopebus-loom`), in a build of their own.
//!
//! The bus's atomics and locks come from `bus/src/sync.rs`, which swaps in
//! loom's under `cfg(loom)`; the build sets `RUSTFLAGS="--cfg loom"` and its
//! own target directory (`target/loom`), so that it neither rebuilds nor
//! disturbs the normal build. Loom explores every interleaving up to
//! `LOOM_MAX_PREEMPTIONS` preemptions per execution (`--preemptions`, 3 by
//! default: the bound tokio's CI uses for its broadcast channel), which
//! keeps the run to a few minutes on two cores.

use crate::target_dir;
use std::process::{Command, ExitCode};

/// What `cargo xtask loom` was asked.
pub struct Options {
    /// `LOOM_MAX_PREEMPTIONS`: preemptions per explored execution.
    pub preemptions: u32,
    /// Only the tests whose name contains this.
    pub filter: Option<String>,
}

/// Builds the bus with `--cfg loom` and runs its loom tests.
///
/// # Errors
/// If cargo cannot be started. A failing model check is exit 1, with
/// loom's own report of the interleaving on the console.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg loom");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args([
            "test",
            "--locked",
            "--release",
            "-p",
            "scopebus-loom",
            "--test",
            "bus",
        ])
        .env("RUSTFLAGS", rustflags.trim())
        .env("CARGO_TARGET_DIR", target_dir().join("loom"))
        .env("LOOM_MAX_PREEMPTIONS", options.preemptions.to_string())
        // The chain's `debug_assert!`s (invariant 4) hold under loom too.
        .env("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "true");
    if let Some(filter) = &options.filter {
        command.arg("--").arg(filter);
    }
    eprintln!(
        "loom: RUSTFLAGS=\"--cfg loom\" LOOM_MAX_PREEMPTIONS={} cargo test -p scopebus-loom --release --test bus (target/loom)",
        options.preemptions
    );
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
