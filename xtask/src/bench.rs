//! `cargo xtask bench`: every speed and memory figure of the project, each
//! next to a peer measured in the same run, as one table.
//!
//! - the bus (`cargo bench -p scopebus`): delivered events/s of `scopebus`
//!   against `tokio::sync::broadcast` and `async-broadcast` (criterion,
//!   `bus/benches/bus.rs`), the cost of `send` as subscribers grow, and
//!   memory (`bus/benches/memory.rs`, a counting allocator);
//! - Haiway for scale (`bench/haiway_fanout.py` on the interpreter that
//!   `--impl haiway` sets up), against scopebus's figure for the same
//!   workload;
//! - the suite: simulated ops/s on one core, the default conformance run,
//!   ops/s through the stdio protocol, proptest state machine cases/s.
//!
//! Ratios are always "ours over the peer's" for rates, "peer over ours" for
//! costs, so that above 1 is better for scopebus; a target, where the issue
//! sets one, is checked against the ratio or the figure itself.

use crate::{haiway, target_dir, workspace, write_json};
use scopebus_conformance::report;
use scopebus_conformance::runner::{self, Campaign, Seeds};
use scopebus_conformance::target::Target;
use scopebus_sim::shrink::Budget;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `cargo xtask bench` was asked.
pub struct Options {
    /// Fewer events and samples: a minute instead of several.
    pub quick: bool,
    /// Also write the table as JSON here.
    pub json: Option<PathBuf>,
    /// Skip the Haiway rows.
    pub no_haiway: bool,
}

/// One line of the table.
#[derive(Clone, Debug)]
struct Row {
    /// What is measured.
    figure: String,
    /// Ours.
    value: f64,
    /// How to print `value` and `peer_value`.
    unit: Unit,
    /// Who it is compared with.
    peer: String,
    peer_value: Option<f64>,
    /// Better for us above 1.
    ratio: Option<f64>,
    /// The target, in words, and whether it is met.
    target: Option<(String, bool)>,
}

#[derive(Clone, Copy, Debug)]
enum Unit {
    PerSecond,
    Nanoseconds,
    Seconds,
    Bytes,
    Count,
    /// A count per something, to three places.
    Ratio,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::PerSecond if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
            Unit::PerSecond if v >= 1e3 => format!("{:.1} k/s", v / 1e3),
            Unit::PerSecond => format!("{v:.0} /s"),
            Unit::Nanoseconds => format!("{v:.1} ns"),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::Bytes => format!("{v:.1} B"),
            Unit::Count => format!("{v:.0}"),
            Unit::Ratio => format!("{v:.3}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Unit::PerSecond => "per_second",
            Unit::Nanoseconds => "nanoseconds",
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
            Unit::Count => "count",
            Unit::Ratio => "per_unit",
        }
    }
}

const FANOUTS: [u64; 4] = [1, 8, 64, 1024];
/// The cargo command that builds and runs the proptest measurement
/// (`proptest_throughput` in sim/tests/state_machine.rs).
const PROPTEST: &[&str] = &[
    "test",
    "--locked",
    "--release",
    "-p",
    "scopebus-sim",
    "--test",
    "state_machine",
];

/// The cargo that runs this command (`$CARGO`), else `cargo` on the PATH.
fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}
const PEERS: [&str; 2] = ["tokio-broadcast", "async-broadcast"];

/// Runs every benchmark and prints the table.
///
/// # Errors
/// If a benchmark cannot be built or run, or its figures cannot be read.
/// (Haiway missing is not an error: its rows say why they are absent.)
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let workspace = workspace();
    let out = target_dir().join("scopebus").join("bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // A report that could not be written would waste the whole run: try
    // the path first.
    if let Some(path) = &options.json {
        write_json(path, &json!({"incomplete": "cargo xtask bench is running"}))?;
    }
    let started = Instant::now();
    let events: u64 = if options.quick { 10_000 } else { 100_000 };
    build(
        &workspace,
        &["bench", "--locked", "-p", "scopebus", "--no-run"],
        "the bus benches",
    )?;
    build(
        &workspace,
        &[PROPTEST, &["--no-run"]].concat(),
        "the proptest state machine",
    )?;

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let estimates = bus_benches(&workspace, &out, options.quick, events)?;
    rows.extend(bus_rows(&estimates, events)?);
    rows.extend(memory_rows(&workspace, &out)?);
    if options.no_haiway {
        notes.push("Haiway rows skipped (--no-haiway)".to_owned());
    } else {
        match haiway_rows(&workspace, &estimates, events, options.quick) {
            Ok(r) => rows.extend(r),
            Err(e) => notes.push(format!("Haiway rows skipped: {e}")),
        }
    }
    rows.extend(suite_rows(options.quick)?);
    rows.extend(proptest_rows(&workspace, &out, options.quick, &rows)?);

    let machine = machine();
    let table = render(&rows, &machine, events, options.quick, &notes);
    print!("{table}");
    eprintln!("bench took {:.0} s", started.elapsed().as_secs_f64());
    std::fs::write(out.join("table.txt"), &table)
        .map_err(|e| format!("cannot write {}: {e}", out.join("table.txt").display()))?;
    if let Some(path) = &options.json {
        write_json(
            path,
            &to_json(&rows, &machine, events, options.quick, &notes),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds what a later step runs, with cargo's progress on the terminal (a
/// first run compiles for a few minutes), so that the timed steps only run.
fn build(workspace: &Path, args: &[&str], what: &str) -> Result<(), String> {
    eprintln!("building {what} (cargo {})...", args.join(" "));
    let status = cargo()
        .current_dir(workspace)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "building {what} failed ({status}); cargo's messages are above"
        ))
    }
}

/// Runs `cargo bench -p scopebus --bench bus` and reads criterion's mean
/// time per iteration (ns) of every `group/peer/N`.
fn bus_benches(
    workspace: &Path,
    out: &Path,
    quick: bool,
    events: u64,
) -> Result<std::collections::BTreeMap<String, f64>, String> {
    let criterion = target_dir().join("criterion");
    // No figure from an earlier run may stand in for a missing one.
    for group in ["live", "drain", "send"] {
        let _ = std::fs::remove_dir_all(criterion.join(group));
    }
    let log_path = out.join("bus.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    eprintln!(
        "running the bus benchmarks (criterion; {} events per run; log: {})...",
        events,
        log_path.display()
    );
    let mut command = cargo();
    command
        .current_dir(workspace)
        .args([
            "bench", "--locked", "-p", "scopebus", "--bench", "bus", "--",
        ])
        .env("SCOPEBUS_BENCH_EVENTS", events.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if quick {
        command.arg("--quick");
    }
    run_criterion(command, log)?;
    read_estimates(&criterion)
}

/// Runs criterion, logging its output to `log` and showing one line per
/// finished benchmark on stderr.
fn run_criterion(mut command: Command, mut log: std::fs::File) -> Result<(), String> {
    use std::io::Write;
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    if let Some(stdout) = child.stdout.take() {
        let mut pending = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            // One line per finished benchmark, to show progress; criterion
            // puts a long id on a line of its own, before its time.
            if let Some((id, rest)) = line.split_once("time:") {
                let id = match id.trim() {
                    "" => std::mem::take(&mut pending),
                    id => id.to_owned(),
                };
                if !id.is_empty() && !rest.contains('%') {
                    eprintln!("  {id:<28} {}", rest.trim());
                }
            } else if line.contains('/') && !line.starts_with(' ') && !line.contains(':') {
                pending = line.trim().to_owned();
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cargo bench did not finish: {e}"))?;
    let errors = err_thread.join().unwrap_or_default();
    let _ = write!(log, "{errors}");
    if status.success() {
        return Ok(());
    }
    let tail: Vec<&str> = errors.lines().rev().take(20).collect();
    Err(format!(
        "cargo bench -p scopebus --bench bus failed ({status}); last lines:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

/// Criterion's figure (ns per iteration) of every `group/peer/N`: the slope
/// of time against iterations when it sampled linearly, else the mean.
fn read_estimates(criterion: &Path) -> Result<std::collections::BTreeMap<String, f64>, String> {
    let mut estimates = std::collections::BTreeMap::new();
    for group in ["live", "drain", "send"] {
        for peer in ["scopebus", PEERS[0], PEERS[1]] {
            for n in FANOUTS {
                let path = criterion
                    .join(group)
                    .join(peer)
                    .join(n.to_string())
                    .join("new")
                    .join("estimates.json");
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "criterion wrote no estimate for {group}/{peer}/{n} ({}: {e})",
                        path.display()
                    )
                })?;
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not criterion's JSON: {e}", path.display()))?;
                let ns = value
                    .pointer("/slope/point_estimate")
                    .or_else(|| value.pointer("/mean/point_estimate"))
                    .and_then(Value::as_f64)
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| format!("{}: no mean.point_estimate", path.display()))?;
                estimates.insert(format!("{group}/{peer}/{n}"), ns);
            }
        }
    }
    Ok(estimates)
}

fn estimate(estimates: &std::collections::BTreeMap<String, f64>, id: &str) -> Result<f64, String> {
    estimates
        .get(id)
        .copied()
        .ok_or_else(|| format!("no estimate for {id}"))
}

/// Delivered events/s of `group/peer/n`.
fn delivered(
    estimates: &std::collections::BTreeMap<String, f64>,
    group: &str,
    peer: &str,
    n: u64,
    events: u64,
) -> Result<f64, String> {
    let ns = estimate(estimates, &format!("{group}/{peer}/{n}"))?;
    Ok((n * events) as f64 / (ns / 1e9))
}

fn bus_rows(
    estimates: &std::collections::BTreeMap<String, f64>,
    events: u64,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (group, words) in [
        ("live", "consume as they come"),
        ("drain", "send all, then drain"),
    ] {
        for n in FANOUTS {
            let ours = delivered(estimates, group, "scopebus", n, events)?;
            for peer in PEERS {
                let theirs = delivered(estimates, group, peer, n, events)?;
                let ratio = ours / theirs;
                // Issue 13: at least 1.5× tokio broadcast at every fan-out.
                let target =
                    (peer == "tokio-broadcast").then(|| ("≥ 1.5×".to_owned(), ratio >= 1.5));
                rows.push(Row {
                    figure: format!("bus {words}, fan-out {n}: delivered events/s"),
                    value: ours,
                    unit: Unit::PerSecond,
                    peer: peer.to_owned(),
                    peer_value: Some(theirs),
                    ratio: Some(ratio),
                    target,
                });
            }
        }
    }
    let at_one = estimate(estimates, "send/scopebus/1")?;
    for n in FANOUTS {
        let ours = estimate(estimates, &format!("send/scopebus/{n}"))?;
        for peer in PEERS {
            let theirs = estimate(estimates, &format!("send/{peer}/{n}"))?;
            // Issue 13: a send no slower than tokio broadcast's, at any fan-out.
            let target = (peer == "tokio-broadcast")
                .then(|| ("≥ 1× (no slower)".to_owned(), ours <= theirs));
            rows.push(Row {
                figure: format!(
                    "send alone, {}: time per send",
                    report::plural(n, "idle subscription")
                ),
                value: ours,
                unit: Unit::Nanoseconds,
                peer: peer.to_owned(),
                peer_value: Some(theirs),
                ratio: Some(theirs / ours),
                target,
            });
        }
    }
    let at_1024 = estimate(estimates, "send/scopebus/1024")?;
    rows.push(Row {
        figure: "send alone, 1024 subscriptions against 1 (SEND-1)".to_owned(),
        value: at_1024,
        unit: Unit::Nanoseconds,
        peer: "scopebus at 1".to_owned(),
        peer_value: Some(at_one),
        ratio: Some(at_one / at_1024),
        // The ratio is the cost at 1 over the cost at 1,024, like every cost
        // row; the cost may grow by 1.2× at most, so the ratio may fall to
        // 1/1.2.
        target: Some((
            "≥ 0.833× (cost at most 1.2× at 1)".to_owned(),
            at_1024 <= 1.2 * at_one,
        )),
    });
    Ok(rows)
}

/// Runs `cargo bench -p scopebus --bench memory` and reads its JSON.
fn memory_rows(workspace: &Path, out: &Path) -> Result<Vec<Row>, String> {
    let json_path = out.join("memory.json");
    let _ = std::fs::remove_file(&json_path);
    eprintln!("running the memory benchmark (a counting allocator)...");
    let output = cargo()
        .current_dir(workspace)
        .args(["bench", "--locked", "-p", "scopebus", "--bench", "memory"])
        .env("SCOPEBUS_BENCH_JSON", &json_path)
        .output()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo bench -p scopebus --bench memory failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = std::fs::read_to_string(&json_path)
        .map_err(|e| format!("the memory benchmark wrote no {}: {e}", json_path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not JSON: {e}", json_path.display()))?;
    let mut rows = retained_rows(&v)?;
    rows.extend(per_send_rows(&v)?);
    rows.extend(unreceived_rows(&v)?);
    rows.extend(left_rows(&v)?);
    Ok(rows)
}

fn memory_number(r: Option<&Value>, k: &str) -> Result<f64, String> {
    r.and_then(|r| r.get(k))
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("memory.json: no `{k}`"))
}

/// Overhead per retained event, against each peer.
fn retained_rows(v: &Value) -> Result<Vec<Row>, String> {
    let retained = v
        .get("retained")
        .and_then(Value::as_array)
        .ok_or("memory.json has no `retained`")?;
    let find = |peer: &str, subs: u64| {
        retained.iter().find(|r| {
            r.get("peer").and_then(Value::as_str) == Some(peer)
                && r.get("subscribers").and_then(Value::as_u64) == Some(subs)
        })
    };
    let mut rows = Vec::new();
    for subs in [1, 64] {
        let ours = memory_number(find("scopebus", subs), "overhead_per_event")?;
        for peer in PEERS {
            let theirs = memory_number(find(peer, subs), "overhead_per_event")?;
            rows.push(Row {
                figure: format!(
                    "memory: overhead per retained event, {}",
                    report::plural(subs, "subscription")
                ),
                value: ours,
                unit: Unit::Bytes,
                peer: peer.to_owned(),
                peer_value: Some(theirs),
                ratio: Some(theirs / ours),
                target: Some(("≤ 32 B".to_owned(), ours <= 32.0)),
            });
        }
    }
    Ok(rows)
}

/// Allocations per send, subscriptions keeping up (issue 13: at most one,
/// the event's own `Arc`).
fn per_send_rows(v: &Value) -> Result<Vec<Row>, String> {
    let per_send = v
        .get("per_send")
        .and_then(Value::as_array)
        .ok_or("memory.json has no `per_send`")?;
    let find = |peer: &str, subs: u64| {
        per_send.iter().find(|r| {
            r.get("peer").and_then(Value::as_str) == Some(peer)
                && r.get("subscribers").and_then(Value::as_u64) == Some(subs)
        })
    };
    let mut rows = Vec::new();
    for subs in [1, 8, 64] {
        let ours = memory_number(find("scopebus", subs), "allocations")?;
        let theirs = memory_number(find("tokio-broadcast", subs), "allocations")?;
        rows.push(Row {
            figure: format!(
                "memory: allocations per send, {} keeping up",
                report::plural(subs, "subscription")
            ),
            value: ours,
            unit: Unit::Ratio,
            peer: "tokio-broadcast".to_owned(),
            peer_value: Some(theirs),
            ratio: Some(theirs / ours),
            target: Some(("≤ 1".to_owned(), ours <= 1.0)),
        });
    }
    Ok(rows)
}

/// Allocations per send nobody receives.
fn unreceived_rows(v: &Value) -> Result<Vec<Row>, String> {
    let unreceived = v
        .get("unreceived")
        .and_then(Value::as_array)
        .ok_or("memory.json has no `unreceived`")?;
    let case = |name: &str| {
        unreceived
            .iter()
            .find(|u| u.get("case").and_then(Value::as_str) == Some(name))
    };
    let tokio = case("tokio-broadcast, no receiver");
    let mut rows = Vec::new();
    for (name, words) in [
        ("scopebus, never subscribed", "never subscribed"),
        ("scopebus, subscription dropped", "subscription dropped"),
    ] {
        let u = case(name);
        let sends = memory_number(u, "sends")?;
        let allocations = memory_number(u, "allocations")?;
        let left = memory_number(u, "bytes_left")?;
        rows.push(Row {
            figure: format!("memory: allocations per unreceived send, {words}"),
            value: allocations / sends,
            unit: Unit::Count,
            peer: "tokio-broadcast".to_owned(),
            peer_value: Some(memory_number(tokio, "allocations")? / memory_number(tokio, "sends")?),
            ratio: None,
            target: Some((
                "nothing survives the call".to_owned(),
                left == 0.0 && allocations == 0.0,
            )),
        });
    }
    Ok(rows)
}

/// Bytes left once everything was consumed, dropped or ended: at most the
/// channel's one pooled block (a freed block kept for the next send; 784
/// bytes), whatever the number of events.
fn left_rows(v: &Value) -> Result<Vec<Row>, String> {
    let cases = [
        (
            "reclaimed_bytes_left",
            "memory: bytes left once 64 subscriptions consumed all",
        ),
        (
            "dropped_unpolled_bytes_left",
            "memory: bytes left once 64 unpolled subscriptions dropped",
        ),
        (
            "dropped_waiting_bytes_left",
            "memory: bytes left once 64 waiting subscriptions dropped",
        ),
        (
            "closed_drained_bytes_left",
            "memory: bytes left once a closed bus's 64 subscriptions ended",
        ),
    ];
    cases
        .into_iter()
        .map(|(key, words)| {
            let left = memory_number(Some(v), key)?;
            Ok(Row {
                figure: words.to_owned(),
                value: left,
                unit: Unit::Bytes,
                peer: "-".to_owned(),
                peer_value: None,
                ratio: None,
                target: Some(("≤ 1 KiB (one pooled block)".to_owned(), left <= 1024.0)),
            })
        })
        .collect()
}

/// Runs `bench/haiway_fanout.py` on the interpreter `--impl haiway` uses.
fn haiway_rows(
    workspace: &Path,
    estimates: &std::collections::BTreeMap<String, f64>,
    events: u64,
    quick: bool,
) -> Result<Vec<Row>, String> {
    let adapter = haiway::prepare(workspace, &target_dir())?;
    eprintln!("running the Haiway fan-out workload (bench/haiway_fanout.py)...");
    let script = workspace.join("bench").join("haiway_fanout.py");
    let output = Command::new(&adapter.program)
        .arg(&script)
        .args(["--events", if quick { "5000" } else { "20000" }])
        .args(["--repeat", "3"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", adapter.program.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let v: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{} printed no JSON document: {e}", script.display()))?;
    let version = v
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let mut rows = Vec::new();
    for r in v
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(mode), Some(n), Some(rate), Some(sent)) = (
            r.get("mode").and_then(Value::as_str),
            r.get("subscribers").and_then(Value::as_u64),
            r.get("delivered_per_s").and_then(Value::as_f64),
            r.get("events").and_then(Value::as_u64),
        ) else {
            return Err(format!(
                "{}: a result without mode, subscribers, events or rate: {r}",
                script.display()
            ));
        };
        let ours = delivered(estimates, mode, "scopebus", n, events)?;
        rows.push(Row {
            figure: format!(
                "haiway {version} {}, fan-out {n} ({sent} events): delivered events/s",
                if mode == "live" {
                    "consume as they come"
                } else {
                    "send all, then drain"
                }
            ),
            value: ours,
            unit: Unit::PerSecond,
            peer: "haiway".to_owned(),
            peer_value: Some(rate),
            ratio: Some(ours / rate),
            target: None,
        });
    }
    Ok(rows)
}

fn campaign(target: Target, seeds: u64, jobs: usize, out: &Path) -> Result<Campaign, String> {
    Ok(Campaign {
        target,
        expectations: None,
        profile: Default::default(),
        deadline: None,
        seeds: Seeds::range(0, seeds)?,
        ops: 200,
        jobs,
        out_dir: out.to_path_buf(),
        shrink: Budget::default(),
        progress: false,
    })
}

fn suite_rows(quick: bool) -> Result<Vec<Row>, String> {
    eprintln!("running the suite's own figures...");
    let out = target_dir().join("scopebus").join("bench");
    // Simulated ops as `cargo xtask conformance` counts them: workload ops
    // and the executor's polls (each a step of the simulation).
    let ops_rate = |r: &runner::Report| {
        (r.counts.ops + r.counts.polls) as f64 / r.run_time.as_secs_f64().max(1e-9)
    };
    let seeds = 1000;

    // One core, in-process.
    let one = runner::run(&campaign(Target::Reference, seeds, 1, &out)?)?;
    // The default run, as `cargo xtask conformance` makes it, timed whole.
    let started = Instant::now();
    let default = runner::run(&campaign(Target::Reference, seeds, 0, &out)?)?;
    let default_seconds = started.elapsed().as_secs_f64();
    // The same seeds on one thread and on every core: the same report.
    let same = report::render(&one) == report::render(&default);
    let stdio_target = crate::resolve("reference-stdio", 10_000)?;
    let stdio = runner::run(&campaign(
        stdio_target,
        if quick { 50 } else { 200 },
        0,
        &out,
    )?)?;
    if !(one.conforming() && default.conforming() && stdio.conforming()) {
        return Err("the reference bus did not conform while being timed".to_owned());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default_rate = ops_rate(&default);
    Ok(vec![
        Row {
            figure: format!("suite: simulated ops/s (ops + polls), one core, {seeds} seeds"),
            value: ops_rate(&one),
            unit: Unit::PerSecond,
            peer: "target".to_owned(),
            peer_value: Some(1e6),
            ratio: Some(ops_rate(&one) / 1e6),
            target: Some(("≥ 1,000,000/s".to_owned(), ops_rate(&one) >= 1e6)),
        },
        Row {
            figure: format!("suite: default conformance run, 1,000 seeds, {cores} cores"),
            value: default_seconds,
            unit: Unit::Seconds,
            peer: "target".to_owned(),
            peer_value: Some(10.0),
            ratio: Some(10.0 / default_seconds),
            target: Some(("< 10 s".to_owned(), default_seconds < 10.0)),
        },
        Row {
            figure: format!("suite: seeds/s, default run, {cores} cores"),
            value: 1000.0 / default.run_time.as_secs_f64(),
            unit: Unit::PerSecond,
            peer: "one core".to_owned(),
            peer_value: Some(seeds as f64 / one.run_time.as_secs_f64()),
            ratio: Some(
                (1000.0 / default.run_time.as_secs_f64())
                    / (seeds as f64 / one.run_time.as_secs_f64()),
            ),
            target: Some(("--jobs gives identical results".to_owned(), same)),
        },
        Row {
            figure: format!(
                "suite: ops/s through the stdio protocol, {} seeds",
                stdio.seed_count()
            ),
            value: ops_rate(&stdio),
            unit: Unit::PerSecond,
            peer: "in-process".to_owned(),
            peer_value: Some(default_rate),
            ratio: Some(ops_rate(&stdio) / default_rate),
            target: None,
        },
    ])
}

/// Runs the proptest state machine's throughput measurement
/// (`sim/tests/state_machine.rs`, `proptest_throughput`).
fn proptest_rows(
    workspace: &Path,
    out: &Path,
    quick: bool,
    rows: &[Row],
) -> Result<Vec<Row>, String> {
    eprintln!("running the proptest state machine...");
    let cases = if quick { 300 } else { 1000 };
    let output = cargo()
        .current_dir(workspace)
        .args(PROPTEST)
        .args([
            "--",
            "--ignored",
            "--exact",
            "proptest_throughput",
            "--nocapture",
        ])
        .env("SCOPEBUS_PROPTEST_CASES", cases.to_string())
        .output()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let _ = std::fs::write(out.join("proptest.log"), &output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("proptest-throughput "))
        .ok_or_else(|| {
            format!(
                "the proptest measurement printed no figure ({}); see {}",
                output.status,
                out.join("proptest.log").display()
            )
        })?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("proptest figure: {e}"))?;
    let seconds = v
        .get("seconds")
        .and_then(Value::as_f64)
        .ok_or("proptest figure: no seconds")?;
    let entries = v
        .get("entries")
        .and_then(Value::as_f64)
        .ok_or("proptest figure: no entries")?;
    let sim = rows
        .iter()
        .find(|r| r.figure.starts_with("suite: simulated ops/s"))
        .map(|r| r.value)
        .ok_or("no simulator figure to compare with")?;
    Ok(vec![
        Row {
            figure: format!("suite: proptest state machine cases/s, one core, {cases} cases"),
            value: f64::from(cases) / seconds,
            unit: Unit::PerSecond,
            peer: "-".to_owned(),
            peer_value: None,
            ratio: None,
            target: None,
        },
        Row {
            figure: "suite: proptest state machine entries/s, one core".to_owned(),
            value: entries / seconds,
            unit: Unit::PerSecond,
            peer: "seeded simulator".to_owned(),
            peer_value: Some(sim),
            ratio: Some(entries / seconds / sim),
            target: None,
        },
    ])
}

/// (date, machine): today's UTC date and the CPU, core count and rustc.
fn machine() -> (String, String) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        / 86_400;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    (
        civil_date(days as i64),
        format!("{cpu}, {cores} cores, {rustc}"),
    )
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn render(
    rows: &[Row],
    machine: &(String, String),
    events: u64,
    quick: bool,
    notes: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scopebus bench, {}, {}", machine.0, machine.1);
    if quick {
        let _ = writeln!(
            out,
            "QUICK: criterion's quick mode and fewer events; rough figures, and targets judged on them are only indicative"
        );
    }
    let _ = writeln!(
        out,
        "bus workloads: {events} events per run (Haiway: as its rows say), one sender, Arc<u64> events, tokio current-thread runtime\n"
    );
    out.push_str(&markdown_table(rows));
    for note in notes {
        let _ = writeln!(out, "\nnote: {note}");
    }
    let missed = rows
        .iter()
        .filter(|r| matches!(r.target, Some((_, false))))
        .count();
    let _ = writeln!(
        out,
        "\nratio: above 1 is better for scopebus (rates: ours / peer; costs: peer / ours). \
         Targets missed: {missed}."
    );
    out
}

/// The rows as a Markdown table (text left, figures right), so that it
/// pastes into README.md.
fn markdown_table(rows: &[Row]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.unit.show(r.value),
                r.peer.clone(),
                r.peer_value
                    .map_or_else(|| "-".to_owned(), |v| r.unit.show(v)),
                r.ratio
                    // Rounded down, so that a ratio just under a target
                    // never prints as the target itself.
                    .map_or_else(
                        || "-".to_owned(),
                        |x| format!("{:.3}×", (x * 1000.0).floor() / 1000.0),
                    ),
                match &r.target {
                    Some((t, true)) => format!("{t}: met"),
                    Some((t, false)) => format!("{t}: NOT MET"),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let head = ["figure", "scopebus", "peer", "peer's", "ratio", "target"].map(str::to_owned);
    let mut width = head.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = [false, true, false, true, true, false];
    let line = |row: &[String; 6]| {
        let mut text = String::from("|");
        for ((c, w), r) in row.iter().zip(width).zip(right) {
            let pad = " ".repeat(w - c.chars().count());
            if r {
                let _ = write!(text, " {pad}{c} |");
            } else {
                let _ = write!(text, " {c}{pad} |");
            }
        }
        text
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(&head));
    let mut rule = String::from("|");
    for (w, r) in width.iter().zip(right) {
        let _ = write!(rule, "{}{}|", "-".repeat(w + 1), if r { ":" } else { "-" });
    }
    let _ = writeln!(out, "{rule}");
    for row in &cells {
        let _ = writeln!(out, "{}", line(row));
    }
    out
}

fn to_json(
    rows: &[Row],
    machine: &(String, String),
    events: u64,
    quick: bool,
    notes: &[String],
) -> Value {
    json!({
        "date": machine.0,
        "machine": machine.1,
        "quick": quick,
        "events_per_run": events,
        "notes": notes,
        "rows": rows.iter().map(|r| json!({
            "figure": r.figure,
            "unit": r.unit.name(),
            "value": r.value,
            "peer": r.peer,
            "peer_value": r.peer_value,
            "ratio": r.ratio,
            "target": r.target.as_ref().map(|t| &t.0),
            "met": r.target.as_ref().map(|t| t.1),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_date(0), "1970-01-01");
        assert_eq!(super::civil_date(20_786), "2026-11-29");
        assert_eq!(super::civil_date(11_016), "2000-02-29");
    }
}
