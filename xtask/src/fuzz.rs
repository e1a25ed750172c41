//! `cargo xtask fuzz`: coverage-guided fuzzing of the three targets in
//! `fuzz/` with cargo-fuzz (libFuzzer), on the nightly toolchain.
//!
//! It installs cargo-fuzz if it is missing, seeds each target's corpus
//! (`fuzz/corpus/<target>/`) from simulator traces when it is empty, runs
//! each target for the time given, and prints executions/s, coverage and
//! corpus size. A crash is minimised (`cargo fuzz tmin`) and turned into a
//! regression file under `fuzz/regressions/<target>/`: for `ops`, a trace
//! file that `cargo xtask replay` reruns on the stable toolchain; for the
//! others, the minimised input. `cargo test` replays every corpus entry and
//! every regression through the same target functions.
//!
//! Targets are built without a sanitizer (`--sanitizer none`): the code is
//! safe Rust (`forbid(unsafe_code)`), so AddressSanitizer would add cost and
//! find nothing the panics and the model do not.

use scopebus::mutants::Mutant;
use scopebus_conformance::fuzz::CLIENT_OPS;
use scopebus_conformance::stdio::{AdapterCommand, AdapterPool, StdioImpl};
use scopebus_sim::fuzz::{Workload, compact, encode, normalize, run_entries};
use scopebus_sim::harness::{GenConfig, generate};
use scopebus_sim::iut::Implementation;
use scopebus_sim::reference::ReferenceImpl;
use scopebus_sim::trace::{FailureRecord, TraceFile};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The fuzz targets, in the order they run.
pub const TARGETS: [&str; 3] = ["ops", "protocol", "trace"];

/// What to fuzz, and how long.
#[derive(Debug)]
pub struct Options {
    /// The targets to run.
    pub targets: Vec<String>,
    /// Seconds per target.
    pub time: u64,
    /// Parallel fuzzing processes per target (libFuzzer's fork mode).
    pub jobs: u16,
    /// Fuzz the `ops` target on this mutant instead, from an empty corpus,
    /// and report how long it takes to find it.
    pub mutant: Option<Mutant>,
    /// Also write the results as JSON here.
    pub json: Option<PathBuf>,
    /// Only seed the empty corpora, and stop.
    pub seed_only: bool,
}

/// One target's run.
#[derive(Debug, Default)]
struct Stats {
    target: String,
    seconds: f64,
    executions: u64,
    per_second: u64,
    coverage: u64,
    features: u64,
    corpus: usize,
    crash: Option<String>,
}

fn fuzz_dir(workspace: &Path) -> PathBuf {
    workspace.join("fuzz")
}

/// `cargo +nightly ...` in `fuzz/`, without the outer cargo's environment
/// (which would pin the stable toolchain or another target directory).
fn nightly_cargo(workspace: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .current_dir(fuzz_dir(workspace))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    command
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure the nightly toolchain and cargo-fuzz are there, installing
/// cargo-fuzz from the registry if not.
fn ensure_tools(workspace: &Path) -> Result<(), String> {
    if !succeeds(nightly_cargo(workspace).arg("--version")) {
        return Err(
            "fuzzing needs a nightly toolchain (libFuzzer's instrumentation): \
             `rustup toolchain install nightly`"
                .to_owned(),
        );
    }
    if succeeds(nightly_cargo(workspace).args(["fuzz", "--version"])) {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz (first use only): cargo install cargo-fuzz --locked");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cannot run `cargo install cargo-fuzz`: {e}"))?;
    if !status.success() || !succeeds(nightly_cargo(workspace).args(["fuzz", "--version"])) {
        return Err(format!(
            "`cargo install cargo-fuzz --locked` failed ({status}); it needs the crates.io registry"
        ));
    }
    Ok(())
}

fn files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A short content hash, for file names.
fn short_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_owned()
}

/// Seeds `target`'s corpus from simulator traces, if it has no entry yet.
/// Returns how many entries were written.
pub fn seed_corpus(workspace: &Path, target: &str) -> Result<usize, String> {
    let dir = fuzz_dir(workspace).join("corpus").join(target);
    if !files(&dir).is_empty() {
        return Ok(0);
    }
    match target {
        "ops" => seed_ops(&dir),
        "trace" => seed_traces(&dir),
        "protocol" => seed_protocol(&dir),
        other => Err(format!("unknown fuzz target `{other}`")),
    }
}

/// `ops`: simulator workloads, encoded in the fuzz format.
fn seed_ops(dir: &Path) -> Result<usize, String> {
    let mut written = 0;
    for seed in 0..64 {
        let mut imp = ReferenceImpl::new(None);
        let run = generate(seed, GenConfig { ops: 40 }, &mut imp);
        let Some(bytes) = encode(&compact(&run.trace)) else {
            continue;
        };
        // Only what decodes back to the same workload is a seed.
        if normalize(&Workload::decode(&bytes).0) != normalize(&compact(&run.trace)) {
            return Err(format!(
                "the fuzz format does not round-trip seed {seed}'s trace (a bug in scopebus_sim::fuzz)"
            ));
        }
        write(&dir.join(format!("sim-seed-{seed}")), &bytes)?;
        written += 1;
    }
    Ok(written)
}

/// `trace`: simulator traces, as trace files.
fn seed_traces(dir: &Path) -> Result<usize, String> {
    for seed in 0..16 {
        let mut imp = ReferenceImpl::new(None);
        let run = generate(seed, GenConfig { ops: 16 }, &mut imp);
        let mut file = TraceFile::new("reference", run.trace);
        file.seed = Some(seed);
        write(
            &dir.join(format!("sim-seed-{seed}.json")),
            file.to_json().as_bytes(),
        )?;
    }
    Ok(16)
}

/// `protocol`: real sessions with the reference behind the protocol: the
/// requests (as the server reads them) and, after a byte that names the
/// seed, the replies (as the runner reads them).
fn seed_protocol(dir: &Path) -> Result<usize, String> {
    let me = std::env::current_exe()
        .map_err(|e| format!("cannot find this program to serve the reference: {e}"))?;
    for seed in 0..16u8 {
        let pool = AdapterPool::new(
            AdapterCommand {
                program: me.clone(),
                args: vec!["adapter".to_owned(), "reference".to_owned()],
                env: Vec::new(),
            },
            Duration::from_secs(10),
        );
        let mut imp = StdioImpl::new(pool);
        let run = generate(u64::from(seed), GenConfig { ops: CLIENT_OPS }, &mut imp);
        if let Some(f) = run.failure {
            return Err(format!(
                "the reference failed seed {seed} behind the protocol: {f}"
            ));
        }
        let transcript = imp.transcript().unwrap_or_default();
        let requests: Vec<&str> = transcript.iter().step_by(2).map(String::as_str).collect();
        let replies: Vec<&str> = transcript
            .iter()
            .skip(1)
            .step_by(2)
            .map(String::as_str)
            .collect();
        write(
            &dir.join(format!("requests-seed-{seed}")),
            requests.join("\n").as_bytes(),
        )?;
        let mut bytes = vec![seed];
        bytes.extend_from_slice(replies.join("\n").as_bytes());
        write(&dir.join(format!("replies-seed-{seed}")), &bytes)?;
    }
    Ok(32)
}

/// Reads libFuzzer's output for the figures.
fn parse_output(log: &str, stats: &mut Stats) {
    let number_after = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    for line in log.lines() {
        if line.contains("cov: ") {
            if let Some(c) = number_after(line, "cov: ") {
                stats.coverage = stats.coverage.max(c);
            }
            if let Some(f) = number_after(line, "ft: ") {
                stats.features = stats.features.max(f);
            }
            if let Some(n) = line
                .strip_prefix('#')
                .and_then(|rest| number_after(rest, ""))
            {
                stats.executions = stats.executions.max(n);
            }
        }
        if let Some(n) = number_after(line, "stat::number_of_executed_units:") {
            stats.executions = stats.executions.max(n);
        }
        if let Some(n) = number_after(line, "stat::average_exec_per_sec:") {
            stats.per_second = n;
        }
    }
}

/// Runs one target for `time` seconds.
fn run_target(
    workspace: &Path,
    log_dir: &Path,
    target: &str,
    corpus: &Path,
    options: &Options,
) -> Result<(Stats, Option<PathBuf>), String> {
    let artifacts = fuzz_dir(workspace).join("artifacts").join(target);
    let before = files(&artifacts);
    std::fs::create_dir_all(corpus)
        .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let log_path = log_dir.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let mut command = nightly_cargo(workspace);
    command
        .args(["fuzz", "run", "--sanitizer", "none", "-O", target])
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={}", options.time))
        .arg("-print_final_stats=1")
        .arg("-max_len=4096")
        .arg("-timeout=20")
        .arg("-rss_limit_mb=4096");
    if options.jobs > 1 {
        command.arg(format!("-fork={}", options.jobs));
    }
    if let Some(m) = options.mutant {
        command.env("SCOPEBUS_FUZZ_MUTANT", m.name());
    }
    let started = Instant::now();
    let status = command
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let mut stats = Stats {
        target: target.to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        corpus: files(corpus).len(),
        ..Stats::default()
    };
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    parse_output(&text, &mut stats);
    if stats.per_second == 0 && stats.seconds > 0.0 {
        stats.per_second = (stats.executions as f64 / stats.seconds) as u64;
    }
    let new: Vec<PathBuf> = files(&artifacts).difference(&before).cloned().collect();
    let crash = new.into_iter().find(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            ["crash-", "oom-", "timeout-", "leak-"]
                .iter()
                .any(|k| n.starts_with(k))
        })
    });
    if crash.is_none() && !status.success() {
        return Err(format!(
            "cargo fuzz run {target} failed ({status}) without a crash file; see {}",
            log_path.display()
        ));
    }
    Ok((stats, crash))
}

/// Minimises a crash input; returns the minimised file (or the original).
fn minimise(workspace: &Path, target: &str, crash: &Path, mutant: Option<Mutant>) -> PathBuf {
    let artifacts = fuzz_dir(workspace).join("artifacts").join(target);
    let before = files(&artifacts);
    let mut command = nightly_cargo(workspace);
    command
        .args(["fuzz", "tmin", "--sanitizer", "none", "-O", target])
        .arg(crash)
        .args(["--", "-max_total_time=60"]);
    if let Some(m) = mutant {
        command.env("SCOPEBUS_FUZZ_MUTANT", m.name());
    }
    let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
    files(&artifacts)
        .difference(&before)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("minimized-from-"))
        })
        .cloned()
        .unwrap_or_else(|| crash.to_owned())
}

/// Turns a (minimised) crash input into a regression file. Returns what to
/// tell the user.
fn save_regression(
    workspace: &Path,
    target: &str,
    input: &Path,
    mutant: Option<Mutant>,
) -> Result<String, String> {
    let bytes =
        std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let dir = fuzz_dir(workspace).join("regressions").join(target);
    let hash = short_hash(&bytes);
    if target == "ops" {
        let entries = scopebus_sim::fuzz::entries(&bytes);
        let implementation = match mutant {
            Some(m) => format!("mutant:{}", m.name()),
            None => "reference".to_owned(),
        };
        if let Err(crash) = run_entries(&entries, mutant) {
            let mut file = TraceFile::new(implementation.clone(), crash.trace.clone());
            file.failure = Some(FailureRecord::from(&crash.failure));
            let slug = implementation.replace(':', "-");
            let path = dir.join(format!("{slug}-{hash}.json"));
            file.write(&path).map_err(|e| e.to_string())?;
            let shown = path
                .strip_prefix(workspace)
                .unwrap_or(&path)
                .display()
                .to_string();
            return Ok(format!(
                "{}\n  trace ({} entries): {shown}\n  replay: cargo xtask replay {shown}",
                crash.failure,
                crash.trace.len()
            ));
        }
    }
    // Not an `ops` disagreement (or one stable does not reproduce): keep
    // the input itself; the regression test replays it.
    let readable = std::str::from_utf8(&bytes)
        .ok()
        .is_some_and(|t| TraceFile::parse(t, Path::new("-")).is_ok());
    let path = dir.join(format!(
        "{hash}.{}",
        if target == "trace" && readable {
            "json"
        } else {
            "bin"
        }
    ));
    write(&path, &bytes)?;
    let shown = path
        .strip_prefix(workspace)
        .unwrap_or(&path)
        .display()
        .to_string();
    Ok(format!("input kept: {shown}"))
}

fn render(stats: &[Stats]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:>12} {:>10} {:>10} {:>10} {:>8}  result\n",
        "target", "seconds", "executions", "exec/s", "coverage", "features", "corpus"
    );
    for s in stats {
        out.push_str(&format!(
            "{:<10} {:>8.1} {:>12} {:>10} {:>10} {:>10} {:>8}  {}\n",
            s.target,
            s.seconds,
            s.executions,
            s.per_second,
            s.coverage,
            s.features,
            s.corpus,
            if s.crash.is_some() { "CRASH" } else { "ok" }
        ));
    }
    out
}

fn to_json(stats: &[Stats], mutant: Option<Mutant>) -> serde_json::Value {
    serde_json::json!({
        "mutant": mutant.map(|m| m.name()),
        "targets": stats.iter().map(|s| serde_json::json!({
            "target": s.target,
            "seconds": s.seconds,
            "executions": s.executions,
            "executions_per_second": s.per_second,
            "coverage": s.coverage,
            "features": s.features,
            "corpus": s.corpus,
            "crash": s.crash,
        })).collect::<Vec<_>>(),
    })
}

/// Runs `cargo xtask fuzz`.
///
/// # Errors
/// What prevented fuzzing (no nightly toolchain, cargo-fuzz not
/// installable, a build failure).
pub fn run(workspace: &Path, log_dir: &Path, options: &Options) -> Result<ExitCode, String> {
    for t in &options.targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(format!(
                "unknown fuzz target `{t}`; known: {}",
                TARGETS.join(", ")
            ));
        }
    }
    if options.mutant.is_some() && options.targets != ["ops"] {
        return Err("--mutant fuzzes the `ops` target only (--target ops)".to_owned());
    }
    if options.seed_only {
        for target in &options.targets {
            let seeded = seed_corpus(workspace, target)?;
            println!("fuzz/corpus/{target}/: {seeded} entries seeded from simulator traces");
        }
        return Ok(ExitCode::SUCCESS);
    }
    ensure_tools(workspace)?;
    build_targets(workspace, log_dir)?;
    let mut all = Vec::new();
    let mut crashed = false;
    for target in &options.targets {
        let corpus = corpus_for(workspace, log_dir, target, options)?;
        eprintln!("fuzzing `{target}` for {} s...", options.time);
        let (mut stats, crash) = run_target(workspace, log_dir, target, &corpus, options)?;
        if let Some(crash) = crash {
            crashed = true;
            eprintln!(
                "`{target}` crashed after {:.1} s; minimising...",
                stats.seconds
            );
            let minimised = minimise(workspace, target, &crash, options.mutant);
            let told = save_regression(workspace, target, &minimised, options.mutant)?;
            println!("CRASH in `{target}` after {:.1} s: {told}", stats.seconds);
            stats.crash = Some(told);
        }
        all.push(stats);
    }
    print!("{}", render(&all));
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&to_json(&all, options.mutant))
            .map_err(|e| e.to_string())?;
        write(path, format!("{text}\n").as_bytes())?;
    }
    Ok(outcome(options, &all, crashed))
}

/// Builds the fuzz targets (nightly, libFuzzer), logging to `log_dir`.
fn build_targets(workspace: &Path, log_dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    eprintln!("building the fuzz targets (nightly, libFuzzer)...");
    let build_log = log_dir.join("build.log");
    let log = std::fs::File::create(&build_log)
        .map_err(|e| format!("cannot write {}: {e}", build_log.display()))?;
    let built = nightly_cargo(workspace)
        .args(["fuzz", "build", "--sanitizer", "none", "-O"])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot run cargo fuzz build: {e}"))?;
    match built.success() {
        true => Ok(()),
        false => Err(format!(
            "building the fuzz targets failed; see {}",
            build_log.display()
        )),
    }
}

/// The corpus `target` is fuzzed from: for a mutant hunt, an empty one (so
/// the time to find the mutant is the fuzzer's); else the project's,
/// seeded from simulator traces.
fn corpus_for(
    workspace: &Path,
    log_dir: &Path,
    target: &str,
    options: &Options,
) -> Result<PathBuf, String> {
    if let Some(m) = options.mutant {
        let dir = log_dir.join("mutant-corpus").join(m.name());
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(dir);
    }
    let seeded = seed_corpus(workspace, target)?;
    if seeded > 0 {
        eprintln!("seeded fuzz/corpus/{target}/ with {seeded} entries from simulator traces");
    }
    Ok(fuzz_dir(workspace).join("corpus").join(target))
}

/// The exit code: a crash fails a run (exit 1); a mutant hunt succeeds
/// when the mutant is found.
fn outcome(options: &Options, all: &[Stats], crashed: bool) -> ExitCode {
    match (options.mutant, crashed) {
        (Some(m), true) => {
            println!(
                "mutant {} found by fuzzing in {:.1} s",
                m.name(),
                all.first().map_or(0.0, |s| s.seconds)
            );
            ExitCode::SUCCESS
        }
        (Some(m), false) => {
            println!(
                "mutant {} NOT found by fuzzing within {} s",
                m.name(),
                options.time
            );
            ExitCode::from(1)
        }
        (None, true) => ExitCode::from(1),
        (None, false) => ExitCode::SUCCESS,
    }
}
