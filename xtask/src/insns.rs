//! `cargo xtask bench --insns`: instructions per delivery and per send of
//! scopebus, `tokio::sync::broadcast` and `async-broadcast`, counted by
//! valgrind's callgrind, side by side.
//!
//! A shared machine can make a wall-clock ratio wobble; an instruction
//! count does not. Each figure is one run of `bus/benches/insns.rs` under
//! `valgrind --tool=callgrind --toggle-collect=*measured_*`, so only the
//! workload itself is counted (not making the channel and its
//! subscriptions, not the process's start). valgrind is installed from the
//! distribution's packages (`apt-get install valgrind`) if it is missing.
//!
//! Targets (issue 13): per delivery at most 0.8× tokio's at N = 1 and 0.6×
//! at N ≥ 8; per send at most tokio's.

use crate::{target_dir, workspace, write_json};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const PEERS: [&str; 3] = ["scopebus", "tokio-broadcast", "async-broadcast"];
const FANOUTS: [u64; 4] = [1, 8, 64, 1024];

/// One workload at one fan-out: instructions per unit for each peer.
struct Row {
    workload: &'static str,
    subscribers: u64,
    events: u64,
    /// Instructions per delivery (`deliver`) or per send (`send`), by peer
    /// in the order of [`PEERS`].
    per_unit: [f64; 3],
}

impl Row {
    /// scopebus over tokio: below 1 is fewer instructions for scopebus.
    fn ratio(&self) -> f64 {
        self.per_unit[0] / self.per_unit[1]
    }

    /// The bound on [`ratio`](Row::ratio).
    fn target(&self) -> f64 {
        match (self.workload, self.subscribers) {
            ("deliver", 1) => 0.8,
            ("deliver", _) => 0.6,
            _ => 1.0,
        }
    }
}

/// Events per run: enough that per-event figures settle, few enough that
/// callgrind (some 50× slower than the machine) takes seconds.
fn events(workload: &str, subscribers: u64, quick: bool) -> u64 {
    let full = match (workload, subscribers) {
        ("send", _) => 20_000,
        (_, 1) => 100_000,
        (_, 8) => 20_000,
        (_, 64) => 4_000,
        _ => 500,
    };
    if quick { full / 4 } else { full }
}

/// Counts, prints and saves the instruction table.
///
/// # Errors
/// If valgrind is missing and cannot be installed, the workload cannot be
/// built, or a run fails or leaves no count.
pub fn run(quick: bool, json: Option<&Path>) -> Result<ExitCode, String> {
    let out = target_dir()
        .join("scopebus")
        .join("bench")
        .join("callgrind");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    ensure_valgrind()?;
    let exe = build()?;
    let mut rows = Vec::new();
    for workload in ["deliver", "send"] {
        for subscribers in FANOUTS {
            let events = events(workload, subscribers, quick);
            let mut per_unit = [0.0; 3];
            for (slot, peer) in per_unit.iter_mut().zip(PEERS) {
                let total = count(&exe, &out, peer, workload, subscribers, events)?;
                let units = if workload == "deliver" {
                    subscribers * events
                } else {
                    events
                };
                *slot = total as f64 / units as f64;
            }
            let row = Row {
                workload,
                subscribers,
                events,
                per_unit,
            };
            eprintln!(
                "  {workload:<8} N={subscribers:<5} scopebus {:>7.1}  tokio {:>7.1}  async-broadcast {:>7.1}",
                row.per_unit[0], row.per_unit[1], row.per_unit[2]
            );
            rows.push(row);
        }
    }
    let table = render(&rows);
    print!("{table}");
    let path = out.join("insns.txt");
    std::fs::write(&path, &table).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if let Some(json_path) = json {
        write_json(json_path, &to_json(&rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// valgrind on the PATH, installed with apt-get (through sudo when not
/// root) if it is not.
fn ensure_valgrind() -> Result<(), String> {
    let works = |_: ()| {
        Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(()) {
        return Ok(());
    }
    eprintln!(
        "valgrind is missing; installing it from the distribution's packages (apt-get install valgrind)..."
    );
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !root {
            command.args(["-n", "apt-get"]);
        }
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "valgrind"]);
    if installed && works(()) {
        Ok(())
    } else {
        Err("valgrind is not installed and `apt-get install valgrind` did not work; install valgrind (it provides callgrind) and run again".to_owned())
    }
}

/// Builds `bus/benches/insns.rs` in the bench profile and returns its path.
fn build() -> Result<PathBuf, String> {
    eprintln!(
        "building the instruction-count workloads (cargo bench -p scopebus --bench insns --no-run)..."
    );
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace())
        .args([
            "bench",
            "--locked",
            "-p",
            "scopebus",
            "--bench",
            "insns",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the insns bench failed ({}); cargo's messages are above",
            output.status
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m.pointer("/target/name").and_then(Value::as_str) == Some("insns"))
        .find_map(|m| {
            m.get("executable")
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .ok_or_else(|| "cargo built the insns bench but named no executable".to_owned())
}

/// Instructions callgrind counted inside `measured_*` for one run.
fn count(
    exe: &Path,
    out: &Path,
    peer: &str,
    workload: &str,
    n: u64,
    events: u64,
) -> Result<u64, String> {
    let file = out.join(format!("callgrind.{workload}.{peer}.{n}.out"));
    let _ = std::fs::remove_file(&file);
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg("--toggle-collect=*measured_*")
        .arg(exe)
        .args([peer, workload, &n.to_string(), &events.to_string()])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let what = format!("{workload} {peer} N={n}");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        return Err(format!(
            "callgrind run {what} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "callgrind run {what} left no output ({}: {e})",
            file.display()
        )
    })?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| {
            format!(
                "{}: no `totals:` line (expected callgrind's output)",
                file.display()
            )
        })?;
    if total == 0 {
        return Err(format!(
            "callgrind run {what} counted nothing inside measured_*: the workload's functions were not found"
        ));
    }
    Ok(total)
}

fn render(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\ninstructions (callgrind): deliver, per delivery (each event made, sent, received by each of N subscriptions, freed); send, per send (N idle subscriptions)\n"
    );
    let _ = writeln!(
        t,
        "{:<9} {:>5} {:>8} {:>10} {:>10} {:>10} {:>8} {:>14}",
        "workload", "N", "events", "scopebus", "tokio", "async-b", "ratio", "target"
    );
    for r in rows {
        let met = if r.ratio() <= r.target() {
            "met"
        } else {
            "missed"
        };
        let _ = writeln!(
            t,
            "{:<9} {:>5} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>7.2}x {:>7} {:<6}",
            r.workload,
            r.subscribers,
            r.events,
            r.per_unit[0],
            r.per_unit[1],
            r.per_unit[2],
            r.ratio(),
            format!("<={:.1}x", r.target()),
            met
        );
    }
    let _ = writeln!(
        t,
        "\nratio: scopebus's instructions over tokio's (below 1: fewer for scopebus)"
    );
    t
}

fn to_json(rows: &[Row]) -> Value {
    json!({
        "instructions": rows.iter().map(|r| json!({
            "workload": r.workload,
            "subscribers": r.subscribers,
            "events": r.events,
            "per_unit": {
                "scopebus": r.per_unit[0],
                "tokio-broadcast": r.per_unit[1],
                "async-broadcast": r.per_unit[2],
            },
            "ratio_to_tokio": r.ratio(),
            "target": r.target(),
            "met": r.ratio() <= r.target(),
        })).collect::<Vec<_>>(),
    })
}
