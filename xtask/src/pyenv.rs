//! Python virtual environments under the target directory, for adapters
//! written in Python (`--impl haiway`, the matrix's Python implementations).
//!
//! Invariants: an environment is made once per directory and set of pinned
//! packages (a marker file inside it names them, so a different pin makes
//! it again, from scratch); nothing is installed at run time after that; the
//! interpreter is Python 3.13, found as `$SCOPEBUS_PYTHON`, then
//! `python3.13` on the `PATH`, then pyenv's and the usual system locations.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes (once) a virtual environment at `venv` with exactly `packages`
/// installed (pip requirement strings, pinned: `haiway==0.48.0`), and returns
/// its interpreter.
///
/// # Errors
/// No Python 3.13, or pip failed (its output included).
pub fn prepare(venv: &Path, packages: &[String]) -> Result<PathBuf, String> {
    let python = venv.join("bin").join("python3");
    let marker = venv.join(".scopebus-packages");
    let wanted = packages.join("\n") + "\n";
    let ready = std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted);
    if ready && python.is_file() {
        return Ok(python);
    }
    let base = find_python()?;
    eprintln!(
        "setting up (first use only): a Python 3.13 virtual environment in {} with {}",
        venv.display(),
        packages.join(" ")
    );
    run(
        Command::new(&base)
            .args(["-m", "venv", "--clear"])
            .arg(venv),
        "create the virtual environment",
    )?;
    if !packages.is_empty() {
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .args(packages),
            &format!(
                "install {} (it needs the PyPI registry)",
                packages.join(" ")
            ),
        )?;
    }
    std::fs::write(&marker, wanted)
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(python)
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "cannot {what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// A Python 3.13 interpreter.
pub fn find_python() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("SCOPEBUS_PYTHON") {
        candidates.push(p.into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("python3.13")));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pyenv")));
    if let Some(pyenv) = pyenv
        && let Ok(versions) = std::fs::read_dir(pyenv.join("versions"))
    {
        let mut found: Vec<PathBuf> = versions
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("3.13"))
            })
            .map(|p| p.join("bin").join("python3"))
            .collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    candidates.extend(["/usr/local/bin/python3.13", "/usr/bin/python3.13"].map(PathBuf::from));
    for candidate in &candidates {
        let Ok(output) = Command::new(candidate).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if output.status.success() && version.trim().starts_with("Python 3.13") {
            return Ok(candidate.clone());
        }
    }
    Err(format!(
        "Python 3.13 is needed (Haiway 0.30 to 0.48 support it; newer Haiway needs 3.14), \
         and none was found. Set SCOPEBUS_PYTHON to a python3.13 interpreter. Looked at: {}",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
