//! `cargo xtask`: the project's commands.
//!
//! - `conformance`: every rule of SPEC.md against an implementation, over
//!   many seeds; exit 0 only if every `must` rule passed.
//! - `replay TRACE`: rerun a trace file exactly.
//! - `mutants`: prove the suite catches every planted bug; `mutants
//!   --external`: cargo-mutants over the bus, every survivor explained.
//! - `adapter`, `check-transcript`: the reference behind the adapter
//!   protocol; checking sessions against the protocol's schema.
//! - `fuzz`: coverage-guided fuzzing of the `fuzz/` targets (nightly).
//! - `bench`: every speed and memory figure, each against a peer measured
//!   in the same run; `merge`: the reports of `conformance --shard K/N`.
//! - `loom`: the bus's synchronization model-checked with loom.
//!
//! Exit codes: 0 success (conforming, reproduced as expected, all mutants
//! killed), 1 a verdict against the implementation (not conforming, a replay
//! that fails, a surviving mutant), 2 nothing could be judged (bad arguments,
//! unreadable trace, unwritable report).

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

use clap::{Parser, Subcommand};
use scopebus::mutants::Mutant;
use scopebus_conformance::expectations::Expectations;
use scopebus_conformance::mutants::{Hunt, hunt};
use scopebus_conformance::report;
use scopebus_conformance::runner::{self, Campaign, Seeds};
use scopebus_conformance::serve::serve;
use scopebus_conformance::stdio::{AdapterCommand, AdapterPool};
use scopebus_conformance::target::Target;
use std::time::Duration;

mod bench;
mod external;
mod fuzz;
mod haiway;
mod insns;
mod loom;
mod matrix;
mod pyenv;
mod transcript;
use scopebus_sim::harness::{GenConfig, generate};
use scopebus_sim::rules::Profile;
use scopebus_sim::shrink::Budget;
use scopebus_sim::trace::{FailureRecord, TraceFile};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "scopebus: the conformance suite and its tools",
    after_help = "Exit codes: 0 success; 1 a verdict against the implementation; 2 could not be judged."
)]
struct Cli {
    /// The largest input file (trace, expectations, report, transcript)
    /// any command reads, in MiB; a larger one is refused with an error.
    #[arg(long, global = true, value_name = "MIB", default_value_t = scopebus_sim::input::DEFAULT_LIMIT >> 20)]
    max_input_mib: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every rule of SPEC.md against an implementation over many seeds.
    ///
    /// Prints a table of rules and verdicts on stdout (identical for
    /// identical arguments) and the timing on stderr. Exits 0 if every `must`
    /// rule was checked and passed (or fails only as the implementation's
    /// known-deviations file says; with `--seed`, if none failed), 1 if not,
    /// 2 if no verdict could be reached.
    Conformance(ConformanceArgs),
    /// Rerun a trace file exactly, and say whether it fails and how.
    Replay(ReplayArgs),
    /// Run the suite on every mutant (a reference bus with one planted bug);
    /// fails if any survives.
    ///
    /// With `--external`: cargo-mutants (installed under target/tools if
    /// missing) mutates the bus's source, and the bus's tests and the
    /// default conformance run are the killer. Prints caught, missed,
    /// timeout and unviable and the kill rate; exits 1 on a survivor
    /// bus/mutants-survivors.toml does not list, on a listed one that was
    /// caught or is no longer generated, or (whole run) below a 90% kill
    /// rate of the compiling, non-equivalent mutants. `--seeds`, `--ops`, `--only` and
    /// `--list` are for the planted mutants only. About an hour on two
    /// cores left to it (`--shard K/N` spreads it).
    Mutants(MutantsArgs),
    /// Serve the reference bus (or a mutant) over the adapter protocol on
    /// stdin and stdout (PROTOCOL.md); `--impl reference-stdio` runs this.
    Adapter(AdapterArgs),
    /// Check adapter session transcripts (`*.transcript.jsonl`: requests and
    /// replies, alternating) against the protocol's JSON Schema.
    CheckTranscript(CheckTranscriptArgs),
    /// Benchmark the bus against tokio::sync::broadcast, async-broadcast and
    /// Haiway, and the suite against its targets; print one table.
    ///
    /// Each figure comes with a peer measured in the same run and the ratio
    /// (above 1 is better for scopebus), and the project's target where it
    /// has one (README.md, "Benchmarks"). Takes about 6 minutes once built
    /// (`--quick`: about one); a first run also compiles the benches for a
    /// few minutes. Exits 0 once everything was measured, whether or not
    /// each target was met.
    Bench(BenchArgs),
    /// Merge the `--json` reports of the N shards of one run (`conformance
    /// --shard K/N`) into the report of the whole range: the same, field for
    /// field apart from `seconds`, as one unsharded run's.
    ///
    /// Prints the merged table; exits like `conformance` would have.
    Merge(MergeArgs),
    /// Coverage-guided fuzzing of the `ops`, `protocol` and `trace` targets
    /// (cargo-fuzz, libFuzzer, nightly; cargo-fuzz is installed if missing).
    ///
    /// Prints executions/s, coverage and corpus size per target. A crash is
    /// minimised and saved under `fuzz/regressions/<target>/` (for `ops`, as
    /// a trace file `cargo xtask replay` reruns on stable); exits 1.
    Fuzz(FuzzArgs),
    /// Judge every implementation a matrix file lists (Haiway releases,
    /// node:events, a Rust broadcast map, broadcaster, the reference...),
    /// setting each up first (a virtual environment or npm prefix under
    /// target/), and write matrix.json and a static matrix.html.
    ///
    /// Prints one line per implementation. Exits 0 if every one could be
    /// set up and run, deterministically, and fails only as its
    /// expectations file records, with every recorded deviation shown by its
    /// ground-truth script (a must rule no seed reached is said, in the
    /// table and on the page, and does not fail the matrix); 1 otherwise; 2
    /// if the matrix file cannot be used.
    Matrix(MatrixArgs),
    /// Model-check the bus's synchronization with loom (loom/tests/bus.rs):
    /// send against receive, close, subscribe, drop and waker registration,
    /// in every interleaving up to the preemption bound.
    ///
    /// Builds the bus with `--cfg loom` in target/loom. Exits 0 if every
    /// model check passed, 1 if one failed (loom prints the interleaving).
    Loom(LoomArgs),
}

#[derive(clap::Args, Debug)]
struct LoomArgs {
    /// Preemptions per explored execution (`LOOM_MAX_PREEMPTIONS`).
    #[arg(long, default_value_t = 3)]
    preemptions: u32,
    /// Only the model checks whose name contains this.
    filter: Option<String>,
}

#[derive(clap::Args, Debug)]
struct MatrixArgs {
    /// The matrix file.
    #[arg(long, value_name = "FILE", default_value = "conformance/matrix.toml")]
    file: PathBuf,
    /// Seeds per implementation (from 0).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Workload ops per seed.
    #[arg(long, value_name = "N", default_value_t = 200)]
    ops: u32,
    /// Worker threads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    jobs: u16,
    /// Only this implementation (repeatable).
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    /// Where matrix.json, matrix.html and the runs' failures go.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Per-request deadline for adapters, ms (settle gets ten times this).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout: u64,
}

#[derive(clap::Args, Debug)]
struct FuzzArgs {
    /// Only this target (repeatable): ops, protocol, trace. Default: all.
    #[arg(long, value_name = "T")]
    target: Vec<String>,
    /// Seconds of fuzzing per target.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    time: u64,
    /// Fuzzing processes per target (libFuzzer's fork mode above 1).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Fuzz `ops` on this mutant, from an empty corpus, and report how long
    /// finding it takes (exits 1 if it is not found in time).
    #[arg(long, value_name = "NAME", value_parser = parse_mutant, requires = "target")]
    mutant: Option<Mutant>,
    /// Also write the figures as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Only seed the empty corpora from simulator traces (no nightly
    /// toolchain needed), and exit.
    #[arg(long, conflicts_with_all = ["mutant", "json"])]
    seed_only: bool,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Fewer events and samples (10,000 events per run, criterion's quick
    /// mode, fewer seeds): rougher figures in about a minute. With
    /// --insns: a quarter of the events per workload.
    #[arg(long)]
    quick: bool,
    /// Also write the table as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Leave out the Haiway rows (which set up Python 3.13 and haiway on
    /// first use, as `--impl haiway` does).
    #[arg(long)]
    no_haiway: bool,
    /// Count instructions instead of timing: the bus against tokio
    /// broadcast and async-broadcast under valgrind's callgrind
    /// (installed with apt-get when missing), instructions per delivery
    /// and per send, side by side, the ratio scopebus over tokio (below 1:
    /// fewer for scopebus) and issue 13's targets. Only this table is made
    /// (about 3 minutes once built; with --quick, a quarter of the events).
    #[arg(long)]
    insns: bool,
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// The shards' JSON reports, in any order.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Also write the merged report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct CheckTranscriptArgs {
    /// Transcript files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct AdapterArgs {
    /// `reference`, `mutant:NAME` or `typeid-broadcast`.
    #[arg(default_value = "reference")]
    implementation: String,
}

#[derive(clap::Args, Debug)]
struct ConformanceArgs {
    /// The implementation under test: `reference` (in-process),
    /// `reference-stdio` (the reference behind the adapter protocol),
    /// `haiway` (the real Haiway, set up on first use), `typeid-broadcast`
    /// (a TypeId map of tokio broadcast channels, in-process), `mutant:NAME`
    /// (see `cargo xtask mutants --list`), or the command line of any adapter
    /// that speaks PROTOCOL.md, e.g. `--impl "python3 my_adapter.py"`.
    #[arg(
        long = "impl",
        value_name = "NAME|COMMAND",
        default_value = "reference"
    )]
    target: String,
    /// Milliseconds an adapter may take to answer one request before it
    /// counts as hung (`settle` gets ten times as long).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout: u64,
    /// How many seeds to run.
    #[arg(long, value_name = "N", default_value_t = runner::DEFAULT_SEEDS, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "seed")]
    seeds: u64,
    /// The first seed of the range (decimal or 0x-hex).
    #[arg(long, value_name = "S", default_value = "0", value_parser = parse_seed, conflicts_with = "seed", allow_hyphen_values = true)]
    start: u64,
    /// Rerun exactly this seed (decimal or 0x-hex), e.g. to reproduce a
    /// failure. Exits 0 if no must rule fails on it: one seed exercises too
    /// little to judge conformance.
    #[arg(long, value_name = "S", value_parser = parse_seed, allow_hyphen_values = true)]
    seed: Option<u64>,
    /// Run only the K-th of N contiguous, disjoint slices of the seed range
    /// (e.g. `--shard 2/4`), to spread one run over N machines; `cargo
    /// xtask merge` joins their `--json` reports into the whole range's.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "seed")]
    shard: Option<(u64, u64)>,
    /// Workload ops per seed (each run then closes with a short wind-down:
    /// settle, observe, release, close, drain).
    #[arg(long, value_name = "N", default_value_t = runner::DEFAULT_OPS, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    ops: u64,
    /// Worker threads; 0 uses every core. Results do not depend on it.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    jobs: u16,
    /// Also write the report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// With `--seed`: also write that seed's trace to PATH, pass or fail
    /// (for `replay -v`).
    #[arg(long, value_name = "PATH", requires = "seed")]
    trace: Option<PathBuf>,
    /// Also write the report as JUnit XML to PATH (one test case per rule).
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// The implementation's known deviations (TOML). Default, if it exists:
    /// `conformance/expectations/<impl>.toml`.
    #[arg(long, value_name = "FILE", conflicts_with = "no_expect")]
    expect: Option<PathBuf>,
    /// Ignore any known-deviations file.
    #[arg(long)]
    no_expect: bool,
    /// Which promises to hold the implementation to (SPEC.md, "Profiles"):
    /// `strict`, the reference's full guarantees, every rule a must but
    /// SHARE-1 (a should everywhere); or
    /// `docs`, what the seed and Haiway's docs promise, the rules they are
    /// silent on (extensions) a should.
    #[arg(long, value_name = "docs|strict", default_value = "strict", value_parser = clap::value_parser!(Profile))]
    profile: Profile,
    /// Where failing traces are written (under `failures/`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Stop the whole run (seeds, shrinking, reruns) after this many
    /// seconds: no seed starts after it, waits for an adapter are cut at it,
    /// and the report says how many seeds ran. Without it, a run stops early
    /// only when the adapter hung, crashed or broke the protocol in several
    /// seeds in a row.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    deadline: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The trace file (JSON, as written by `conformance` or `mutants`).
    trace: PathBuf,
    /// Run it on this implementation instead of the one the file names
    /// (same forms as `conformance --impl`).
    #[arg(long = "impl", value_name = "NAME|COMMAND")]
    target: Option<String>,
    /// Milliseconds an adapter may take to answer one request.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout: u64,
    /// Print every entry as it runs, with the implementation's replies and
    /// observations.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(clap::Args, Debug)]
struct MutantsArgs {
    /// Mutants made by cargo-mutants from the bus's source instead of the
    /// planted ones (see the command's help above).
    #[arg(long, conflicts_with_all = ["seeds", "ops", "only", "list"])]
    external: bool,
    /// With `--external`: only the K-th of N round-robin slices of the
    /// mutants (1 <= K <= N); listed survivors of other slices are not
    /// judged, and the kill-rate target only applies to a whole run.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, requires = "external")]
    shard: Option<(u64, u64)>,
    /// With `--external`: the survivors file (default
    /// bus/mutants-survivors.toml).
    #[arg(long, value_name = "FILE", requires = "external")]
    survivors: Option<PathBuf>,
    /// With `--external`: judge the last run's outcomes (under `--out`)
    /// again against the survivors file as it is now, without testing any
    /// mutant (cargo-mutants only lists them; give the same `--shard` as
    /// that run).
    #[arg(long, requires = "external")]
    rejudge: bool,
    /// Seeds tried per mutant before it counts as a survivor.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Workload ops per seed.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    ops: u64,
    /// Only these mutants (comma-separated names).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = parse_mutant)]
    only: Vec<Mutant>,
    /// List the mutants and the rule each is designed to break, and exit.
    #[arg(long)]
    list: bool,
    /// Worker threads; 0 uses every core (with `--external`: mutants built
    /// and tested at once, each in its own copy of the tree; 0 is one per
    /// two cores).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    jobs: u16,
    /// Also write the results as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Where the shrunk traces are written (under `failures/`); with
    /// `--external`, where cargo-mutants writes `mutants.out/` (default
    /// target/scopebus/cargo-mutants).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The workspace this binary was built from.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// `$CARGO_TARGET_DIR`, else `<workspace>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Resolves `--impl`: a known name, or an adapter's command line.
fn resolve(name: &str, timeout: u64) -> Result<Target, String> {
    let stdio = |label: &str, command: AdapterCommand| Target::Stdio {
        name: label.to_owned(),
        pool: AdapterPool::new(command, Duration::from_millis(timeout)),
    };
    if let Ok(target) = name.parse::<Target>() {
        return Ok(target);
    }
    match name {
        "reference-stdio" => {
            let me = std::env::current_exe()
                .map_err(|e| format!("cannot find this program to serve the reference: {e}"))?;
            Ok(stdio(
                name,
                AdapterCommand {
                    program: me,
                    args: vec!["adapter".to_owned(), "reference".to_owned()],
                    env: Vec::new(),
                },
            ))
        }
        "haiway" => Ok(stdio(name, haiway::prepare(&workspace(), &target_dir())?)),
        line if line.starts_with("mutant:") => {
            let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
            Err(format!(
                "unknown mutant `{}`; known: {}",
                &line["mutant:".len()..],
                names.join(", ")
            ))
        }
        line if line.trim().is_empty()
            || !line.contains([' ', '/', '.']) && !Path::new(line).exists() =>
        {
            Err(format!(
                "unknown implementation `{line}`: --impl takes reference, reference-stdio, haiway, \
                 {}, mutant:NAME, or the command line of an adapter (e.g. \"python3 my_adapter.py\")",
                scopebus_conformance::impls::NAMES.join(", ")
            ))
        }
        line => Ok(stdio(line, AdapterCommand::parse(line)?)),
    }
}

fn parse_mutant(s: &str) -> Result<Mutant, String> {
    Mutant::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
        format!("unknown mutant `{s}`; known: {}", names.join(", "))
    })
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{s}` is not a shard: expected K/N with 1 <= K <= N, e.g. 2/4");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (
        k.trim().parse::<u64>().map_err(|_| bad())?,
        n.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| {
        format!(
            "`{s}` is not a seed: expected a whole number from 0 to {} (decimal, or hex with 0x)",
            u64::MAX
        )
    })
}

/// `$CARGO_TARGET_DIR/scopebus`, else `<workspace>/target/scopebus`.
fn default_out() -> PathBuf {
    target_dir().join("scopebus")
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    write_text(path, &text)
}

fn write_text(path: &Path, text: &str) -> Result<(), String> {
    let text = text.trim_end().to_owned();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| not_a_directory(path, dir, e))?;
    }
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Why the folder `dir` of `path` could not be made: one of its parts that
/// exists and is a file is named as such, not as "File exists".
fn not_a_directory(path: &Path, dir: &Path, e: std::io::Error) -> String {
    let file = dir
        .ancestors()
        .find(|a| a.exists() && !a.is_dir() && !a.as_os_str().is_empty());
    match file {
        Some(file) => format!(
            "cannot write {}: {} is not a directory, so nothing can be written under it",
            path.display(),
            file.display()
        ),
        None => format!(
            "cannot write {}: cannot create the directory {}: {e}",
            path.display(),
            dir.display()
        ),
    }
}

/// The known deviations a run uses: `--expect FILE` for any implementation
/// (a note on stderr when the file was recorded for another name), else
/// `conformance/expectations/<slug>.toml` if it exists and is about this
/// implementation, else none.
fn expectations_for(
    target: &Target,
    args: &ConformanceArgs,
) -> Result<Option<Expectations>, String> {
    if args.no_expect {
        return Ok(None);
    }
    if let Some(path) = &args.expect {
        let file = Expectations::read(path)?;
        if file.implementation != target.to_string() {
            eprintln!(
                "note: {} records the deviations of `{}`; applied to `{target}`, as --expect asks",
                path.display(),
                file.implementation
            );
        }
        return Ok(Some(file));
    }
    let default = workspace()
        .join("conformance/expectations")
        .join(format!("{}.toml", target.slug()));
    if !default.is_file() {
        return Ok(None);
    }
    let file = Expectations::read(&default)?;
    if file.implementation != target.to_string() {
        return Err(format!(
            "{} lists the deviations of `{}`, but this run is about `{target}`: \
             name the file with --expect to apply it anyway, or --no-expect",
            default.display(),
            file.implementation
        ));
    }
    Ok(Some(file))
}

fn conformance(args: ConformanceArgs) -> Result<ExitCode, String> {
    let seeds = match args.seed {
        Some(seed) => Seeds::One(seed),
        None => match args.shard {
            Some((index, of)) => Seeds::shard(args.start, args.seeds, index, of)?,
            None => Seeds::range(args.start, args.seeds)?,
        },
    };
    let target = resolve(&args.target, args.timeout)?;
    let expectations = expectations_for(&target, &args)?;
    let campaign = Campaign {
        target,
        expectations,
        profile: args.profile,
        seeds,
        ops: args.ops as usize,
        jobs: usize::from(args.jobs),
        out_dir: args.out.unwrap_or_else(default_out),
        shrink: Budget::default(),
        progress: std::io::stderr().is_terminal(),
        deadline: args.deadline.map(Duration::from_secs),
    };
    if let (Some(path), Seeds::One(seed)) = (&args.trace, seeds) {
        let mut imp = campaign.target.instantiate();
        let run = generate(seed, GenConfig { ops: campaign.ops }, &mut *imp);
        let run = campaign.target.diagnosis_probed().attribute(run);
        let mut file = TraceFile::new(campaign.target.to_string(), run.trace);
        file.seed = Some(seed);
        file.ops = Some(campaign.ops);
        file.failure = run.failure.as_ref().map(FailureRecord::from);
        file.write(path).map_err(|e| e.to_string())?;
        eprintln!("trace of seed {seed} written to {}", path.display());
    }
    let report = runner::run(&campaign)?;
    print!("{}", report::render(&report));
    eprintln!("{}", report::timing_line(&report));
    // Both reports are attempted; a report that cannot be written makes the
    // run exit 2 (its consumer gets nothing), after the verdict is printed.
    let mut unwritten = Vec::new();
    if let Some(path) = &args.json
        && let Err(e) = write_json(path, &report::to_json(&report))
    {
        unwritten.push(e);
    }
    if let Some(path) = &args.junit
        && let Err(e) = report::to_junit(&report).and_then(|xml| write_text(path, &xml))
    {
        unwritten.push(e);
    }
    if !unwritten.is_empty() {
        return Err(unwritten.join("\n"));
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn replay(args: ReplayArgs) -> Result<ExitCode, String> {
    let file = TraceFile::read(&args.trace).map_err(|e| e.to_string())?;
    let target = replay_target(&args, &file)?;
    target.check()?;
    println!(
        "replaying {} ({} entries) on {target}",
        runner::display_path(&args.trace),
        file.entries.len()
    );
    let replayed = scopebus_conformance::replay::replay(&target, &file.entries, |line| {
        if args.verbose {
            println!("{line}");
        }
    });
    let run = &replayed.run;
    if run.counts.skipped > 0 {
        println!(
            "note: {} entries were skipped (not valid or not runnable when their turn came)",
            run.counts.skipped
        );
    }
    let recorded = file.failure.as_ref().map(|f| f.rule);
    let Some(f) = &run.failure else {
        println!(
            "passed: {}, {}, {} checked, no disagreement with the model",
            report::plural(run.counts.ops, "op"),
            report::plural(run.counts.polls, "poll"),
            report::plural(run.counts.observations, "observation")
        );
        if let Some(r) = recorded {
            println!("note: the trace records a {r} failure, which did not occur on {target}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    if f.unjudgeable {
        println!("NOT JUDGED: the implementation could not be driven: {f}");
        return Ok(ExitCode::from(2));
    }
    explain_replay(&replayed, recorded);
    Ok(ExitCode::from(1))
}

/// The implementation a trace replays on: `--impl`, else the one the file
/// names (never a command line from the file).
fn replay_target(args: &ReplayArgs, file: &TraceFile) -> Result<Target, String> {
    let named = |n: &str| n.parse::<Target>().is_ok() || ["reference-stdio", "haiway"].contains(&n);
    let name = match &args.target {
        Some(name) => name.clone(),
        None if named(&file.implementation) => file.implementation.clone(),
        // A file never runs a command line by itself.
        None => {
            return Err(format!(
                "{} was recorded on the adapter `{}`; a trace file never starts a command by itself: \
                 pass it with --impl to replay there (or --impl reference)",
                args.trace.display(),
                file.implementation
            ));
        }
    };
    resolve(&name, args.timeout)
        .map_err(|e| format!("{}: {e} (use --impl to pick one)", args.trace.display()))
}

/// Prints a replay's failure: as attributed, how diagnosis got there when
/// that differs from the first reading, and whether it is the recorded one.
fn explain_replay(
    replayed: &scopebus_conformance::replay::Replayed,
    recorded: Option<scopebus_sim::rules::Rule>,
) {
    let Some(f) = &replayed.run.failure else {
        return;
    };
    println!("FAILED {f}");
    if let Some(first) = replayed.first_reading.as_ref().filter(|r| r.rule != f.rule) {
        println!(
            "diagnosis: the first disagreement reads as {} ({}); replaying it with parts taken out names {} (the message says why)",
            first.rule, first.mode, f.rule
        );
    }
    if replayed.on_other_trace {
        println!(
            "note: it shows on this trace without its drops and cancellations of subscribers ({} entries), which diagnosis replayed",
            replayed.run.trace.len()
        );
    }
    match recorded {
        Some(r) if r == f.rule => println!("reproduced: the trace records this failure ({r})"),
        Some(r) => println!(
            "note: the trace records a {r} failure; this run failed {} instead",
            f.rule
        ),
        None => {}
    }
}

fn mutants(args: MutantsArgs) -> Result<ExitCode, String> {
    if args.external {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        return external::run(&external::Options {
            shard: args.shard,
            jobs: match args.jobs {
                0 => (cores / 2).max(1),
                n => usize::from(n),
            },
            survivors: args
                .survivors
                .unwrap_or_else(|| workspace().join("bus/mutants-survivors.toml")),
            // Absolute: cargo-mutants runs in the workspace, xtask here.
            out: std::path::absolute(
                args.out
                    .unwrap_or_else(|| default_out().join("cargo-mutants")),
            )
            .map_err(|e| format!("--out: {e}"))?,
            json: args.json,
            rejudge: args.rejudge,
        });
    }
    if args.list {
        for m in Mutant::ALL {
            println!("{:<28} {}", m.name(), m.target_rule());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let plan = Hunt {
        mutants: if args.only.is_empty() {
            Mutant::ALL.to_vec()
        } else {
            let mut only = args.only;
            let mut seen = std::collections::BTreeSet::new();
            only.retain(|m| seen.insert(m.name()));
            only
        },
        max_seeds: args.seeds,
        ops: args.ops as usize,
        jobs: usize::from(args.jobs),
        out_dir: args.out.unwrap_or_else(default_out),
        shrink: Budget::default(),
    };
    let started = std::time::Instant::now();
    let results = hunt(&plan)?;
    print!("{}", report::render_mutants(&results, plan.max_seeds));
    eprintln!("time: {:.2} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        write_json(path, &report::mutants_to_json(&results))?;
    }
    Ok(if results.iter().all(|r| r.killed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn adapter(args: AdapterArgs) -> Result<ExitCode, String> {
    let target: Target = args
        .implementation
        .parse()
        .map_err(|e: scopebus_conformance::target::UnknownTarget| e.to_string())?;
    // `Custom` targets that parse by name are the in-process buses of
    // `scopebus_conformance::impls` (e.g. `typeid-broadcast`).
    if !matches!(
        target,
        Target::Reference | Target::Mutant(_) | Target::Custom { .. }
    ) {
        return Err(format!(
            "the adapter serves `reference`, `mutant:NAME` or one of: {}",
            scopebus_conformance::impls::NAMES.join(", ")
        ));
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    serve(|| target.instantiate(), stdin, stdout).map_err(|e| format!("adapter I/O: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn merge(args: MergeArgs) -> Result<ExitCode, String> {
    let mut reports = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        let text = scopebus_sim::input::read_text(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a JSON report (from `conformance --json`): {e}",
                path.display()
            )
        })?;
        let report = report::from_json(&value).map_err(|e| {
            format!(
                "{} is not a report `conformance --json` wrote: {e}",
                path.display()
            )
        })?;
        reports.push(report);
    }
    let merged = scopebus_conformance::merge::merge(&reports)?;
    print!("{}", report::render(&merged));
    if let Some(path) = &args.json {
        write_json(path, &report::to_json(&merged))?;
    }
    Ok(ExitCode::from(merged.exit_code()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    scopebus_sim::input::set_limit(cli.max_input_mib.saturating_mul(1 << 20));
    // The commands that start adapters (or other programs) own every process
    // those start: orphans come back to this process, and an interrupt or a
    // termination kills them all before it exits.
    if !matches!(
        cli.command,
        Command::Adapter(_) | Command::CheckTranscript(_)
    ) && let Err(e) = scopebus_conformance::reaper::install()
    {
        eprintln!("warning: {e}; an interrupted run may leave adapter processes behind");
    }
    let result = match cli.command {
        Command::Conformance(args) => conformance(args),
        Command::Replay(args) => replay(args),
        Command::Mutants(args) => mutants(args),
        Command::Adapter(args) => adapter(args),
        Command::CheckTranscript(args) => transcript::check(&args.files),
        Command::Merge(args) => merge(args),
        Command::Bench(args) if args.insns => insns::run(args.quick, args.json.as_deref()),
        Command::Bench(args) => bench::run(&bench::Options {
            quick: args.quick,
            json: args.json,
            no_haiway: args.no_haiway,
        }),
        Command::Loom(args) => loom::run(&loom::Options {
            preemptions: args.preemptions,
            filter: args.filter,
        }),
        Command::Matrix(args) => matrix::run(&matrix::Options {
            file: args.file,
            seeds: args.seeds,
            ops: args.ops as usize,
            jobs: usize::from(args.jobs),
            only: args.only,
            out: args.out.unwrap_or_else(|| default_out().join("matrix")),
            timeout: args.timeout,
        }),
        Command::Fuzz(args) => fuzz::run(
            &workspace(),
            &target_dir().join("scopebus").join("fuzz"),
            &fuzz::Options {
                targets: if args.target.is_empty() {
                    fuzz::TARGETS.iter().map(|t| (*t).to_owned()).collect()
                } else {
                    args.target
                },
                time: args.time,
                jobs: args.jobs,
                mutant: args.mutant,
                json: args.json,
                seed_only: args.seed_only,
            },
        ),
    };
    let code = result.unwrap_or_else(|message| {
        // An error a signal caused (a child it killed) is not reported:
        // the signal handler says what happened and exits.
        scopebus_conformance::reaper::wait_if_closing();
        eprintln!("error: {message}");
        ExitCode::from(2)
    });
    scopebus_conformance::reaper::sweep();
    code
}
