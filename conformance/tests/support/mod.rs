//! What the conformance tests share: the deliberately broken adapters
//! (`src/bin/broken_adapter.rs`) as implementations under test.

use scopebus_conformance::stdio::{AdapterCommand, AdapterPool};
use scopebus_conformance::target::Target;
use std::path::PathBuf;
use std::time::Duration;

/// `scopebus-broken-adapter MODE` as an implementation, each reply due
/// within `timeout`.
pub fn broken_adapter(mode: &str, timeout: Duration) -> Target {
    broken_adapter_with(mode, timeout, &[])
}

/// `scopebus-broken-adapter MODE` with extra environment variables.
pub fn broken_adapter_with(mode: &str, timeout: Duration, env: &[(&str, &str)]) -> Target {
    Target::Stdio {
        name: format!("broken-{mode}"),
        pool: AdapterPool::new(
            AdapterCommand {
                program: PathBuf::from(env!("CARGO_BIN_EXE_scopebus-broken-adapter")),
                args: vec![mode.to_owned()],
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            },
            timeout,
        ),
    }
}
