//! Every fuzz corpus entry and every saved fuzz crash, replayed on the
//! stable toolchain through the same functions the fuzz targets call
//! (`fuzz/fuzz_targets/*.rs` are one-line wrappers around them).
//!
//! - `fuzz/corpus/<target>/*`: each must pass (the corpus is what the
//!   fuzzer found interesting, not what failed);
//! - `fuzz/regressions/ops/*.json`: trace files of crashes found by
//!   `cargo xtask fuzz`; each must pass on the reference bus, and one found
//!   on a mutant (`"implementation": "mutant:NAME"`) must still fail on it;
//! - `fuzz/regressions/<target>/*` otherwise: minimised inputs, which must
//!   now pass.

use scopebus::mutants::Mutant;
use scopebus_conformance::fuzz::protocol;
use scopebus_sim::fuzz::{ops, run_entries, trace};
use scopebus_sim::trace::TraceFile;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("fuzz")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every entry of `fuzz/corpus/<target>/` passes `check`, the target's
/// function; the corpus must not be empty.
fn corpus_passes(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) {
    let files = entries(&fuzz_dir().join("corpus").join(target));
    assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
    for path in files {
        if let Err(e) = check(&read(&path)) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn the_ops_corpus_passes_on_the_reference_bus() {
    corpus_passes("ops", |data| {
        ops(data, None).map_err(|crash| crash.failure.to_string())
    });
}

#[test]
fn the_protocol_corpus_passes() {
    corpus_passes("protocol", protocol);
}

#[test]
fn the_trace_corpus_passes() {
    corpus_passes("trace", trace);
}

#[test]
fn saved_fuzz_crashes_stay_fixed_and_mutants_stay_caught() {
    for path in entries(&fuzz_dir().join("regressions/ops")) {
        let bytes = read(&path);
        if path.extension().is_some_and(|e| e == "json") {
            let file = TraceFile::parse(
                std::str::from_utf8(&bytes).expect("a trace file is UTF-8"),
                &path,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            if let Err(crash) = run_entries(&file.entries, None) {
                panic!(
                    "{}: the reference bus fails it: {}",
                    path.display(),
                    crash.failure
                );
            }
            if let Some(name) = file.implementation.strip_prefix("mutant:") {
                let mutant = Mutant::from_name(name)
                    .unwrap_or_else(|| panic!("{}: no mutant `{name}`", path.display()));
                let caught = run_entries(&file.entries, Some(mutant));
                assert!(
                    caught.is_err(),
                    "{}: mutant {name} is no longer caught by it",
                    path.display()
                );
            }
        } else if let Err(crash) = ops(&bytes, None) {
            panic!("{}: {}", path.display(), crash.failure);
        }
    }
    for path in entries(&fuzz_dir().join("regressions/protocol")) {
        if let Err(e) = protocol(&read(&path)) {
            panic!("{}: {e}", path.display());
        }
    }
    for path in entries(&fuzz_dir().join("regressions/trace")) {
        if let Err(e) = trace(&read(&path)) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// Whatever bytes the `ops` target gets, what it runs is a trace `cargo
/// xtask replay` accepts (every handle created before it is named), so a
/// crash always converts into a usable regression trace.
#[test]
fn decoded_workloads_are_valid_traces() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let corpus = entries(&fuzz_dir().join("corpus/ops"));
    for round in 0..2000 {
        let mut data = if round % 2 == 0 && !corpus.is_empty() {
            read(&corpus[round % corpus.len()])
        } else {
            Vec::new()
        };
        let extra = rng.random_range(0..400);
        for _ in 0..extra {
            data.push(rng.random());
        }
        if !data.is_empty() {
            // Flip some bytes, as a fuzzer would.
            for _ in 0..rng.random_range(0..8) {
                let i = rng.random_range(0..data.len());
                data[i] = rng.random();
            }
        }
        let file = TraceFile::new("reference".to_owned(), scopebus_sim::fuzz::entries(&data));
        if let Err(e) = file.check_references() {
            panic!("round {round}: {e}");
        }
    }
}
