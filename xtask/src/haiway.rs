//! `--impl haiway`: the real Haiway event bus, behind the Python adapter in
//! `conformance/adapters/haiway/adapter.py`.
//!
//! On first use this makes a virtual environment under the target directory
//! with Python 3.13 and installs `haiway==0.48.0` into it from the package
//! registry (newer Haiway needs Python 3.14). Later runs reuse it. Python is
//! looked for as `$SCOPEBUS_PYTHON`, then `python3.13` on the `PATH`, then
//! pyenv's and the usual system locations.

use scopebus_conformance::stdio::AdapterCommand;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Haiway version the adapter is written and checked against.
pub const HAIWAY_VERSION: &str = "0.48.0";

/// Prepares the environment (once) and returns the adapter's command.
///
/// # Errors
/// What is missing, and how to provide it.
pub fn prepare(workspace: &Path, target_dir: &Path) -> Result<AdapterCommand, String> {
    let adapter = workspace.join("conformance/adapters/haiway/adapter.py");
    if !adapter.is_file() {
        return Err(format!(
            "the Haiway adapter is missing: {}",
            adapter.display()
        ));
    }
    let venv = target_dir.join("haiway-venv");
    let python = venv.join("bin").join("python3");
    let ready = venv.join(format!(".scopebus-haiway-{HAIWAY_VERSION}"));
    if !ready.is_file() || !python.is_file() {
        let base = find_python()?;
        eprintln!(
            "setting up Haiway (first use only): a Python 3.13 virtual environment in {} with haiway=={HAIWAY_VERSION}",
            venv.display()
        );
        run(
            Command::new(&base)
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
            "create the virtual environment",
        )?;
        run(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                &format!("haiway=={HAIWAY_VERSION}"),
            ]),
            &format!("install haiway=={HAIWAY_VERSION} (it needs the PyPI registry)"),
        )?;
        std::fs::write(&ready, format!("haiway=={HAIWAY_VERSION}\n"))
            .map_err(|e| format!("cannot write {}: {e}", ready.display()))?;
    }
    Ok(AdapterCommand {
        program: python,
        args: vec![adapter.display().to_string()],
        env: vec![
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("PYTHONHASHSEED".into(), "0".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ],
    })
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
fn find_python() -> Result<PathBuf, String> {
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
        "--impl haiway needs Python 3.13 (haiway=={HAIWAY_VERSION} supports it; newer Haiway needs 3.14), \
         and none was found. Set SCOPEBUS_PYTHON to a python3.13 interpreter. Looked at: {}",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
