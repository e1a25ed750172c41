//! `--impl haiway`: the real Haiway event bus, behind the Python adapter in
//! `conformance/adapters/haiway/adapter.py`.
//!
//! On first use this makes a virtual environment under the target directory
//! with Python 3.13 and installs `haiway==0.48.0` into it from the package
//! registry (newer Haiway needs Python 3.14); later runs reuse it
//! (`pyenv.rs`).

use crate::pyenv;
use scopebus_conformance::stdio::AdapterCommand;
use std::path::Path;

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
    let python = pyenv::prepare(
        &target_dir.join("haiway-venv"),
        &[format!("haiway=={HAIWAY_VERSION}")],
    )?;
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
