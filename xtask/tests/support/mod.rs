//! What the command tests share: a fresh output directory per test and
//! process, running the `xtask` binary, and reading its output.

#![allow(dead_code)] // each test crate uses its own part

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh directory for test `name` of this process (`prefix` names the
/// test crate), removed first if a run left it, not created.
pub fn out_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopebus-{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `cargo xtask ARGS` (the built binary) to its end.
pub fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit code (the process was not killed).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}
