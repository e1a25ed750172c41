//! `cargo xtask mutants --external`: cargo-mutants, a tool nobody here
//! tuned, mutates the bus (`bus/src/`, `.cargo/mutants.toml`) and the
//! killer runs against each mutant; every survivor must be listed, with its
//! reason, in `bus/mutants-survivors.toml`.
//!
//! Data flow: cargo-mutants is found (or installed, pinned to
//! [`CARGO_MUTANTS`], under `target/tools/`, so that mutant names do not
//! change under the survivors file) → the killer's test targets are read
//! from `cargo metadata` ([`killer`]) → the killer runs once on the
//! unmutated tree (a failure there is an error, not a run) and its time sets
//! the per-mutant timeout → cargo-mutants runs (`--baseline=skip`: its own
//! baseline would test only the mutated package) → its `outcomes.json` and
//! `--list --json` are compared with the survivors file ([`survivors`]).
//!
//! # Invariants
//!
//! - The killer is exactly the bus's tests (every test target of the
//!   `scopebus` package, every example it runs as a test, and `--lib`;
//!   not its doctests) and the default conformance run
//!   (`conformance/tests/default_run.rs`); `--lib` also selects the
//!   conformance crate's unit tests, which run the reference bus too.
//! - The run fails (exit 1) on a survivor the file does not list, on a
//!   listed mutant that no longer survives or exists, and, over the whole
//!   set (no `--shard`), when fewer than [`TARGET_KILL_RATE`] of the
//!   compiling, non-equivalent mutants are caught. Nothing is judged from a
//!   partial run: fewer outcomes than the run's slice holds (every
//!   generated mutant, or every `n`-th from `k - 1` for `--shard k/n`) is
//!   exit 1 and says so. Anything that stops the run from judging (the
//!   tool, the killer failing unmutated, an unreadable file) is exit 2.
//! - `--rejudge` reads the last run's outcomes again, against the survivors
//!   file as it is now, without testing any mutant; it reads them first,
//!   so that a missing report is said before cargo-mutants is looked for
//!   (or installed) to list the mutants.

mod killer;
pub mod outcomes;
pub mod survivors;

use crate::{target_dir, workspace};
use scopebus_conformance::reaper;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The cargo-mutants release the survivors file's names come from.
pub const CARGO_MUTANTS: &str = "27.1.0";

/// How long cargo-mutants is given to stop its test and remove its scratch
/// copies when this run is interrupted or terminated, before it is killed.
const CLEAN_UP_GRACE: Duration = Duration::from_secs(30);

/// The share of compiling, non-equivalent mutants the killer must catch
/// (timeouts count as caught: a hang fails the killer).
pub const TARGET_KILL_RATE: f64 = 0.90;

/// What `cargo xtask mutants --external` was asked.
pub struct Options {
    /// The K-th (1-based) of N round-robin slices of the mutants.
    pub shard: Option<(u64, u64)>,
    /// Mutants built and tested at once (each in its own copy of the tree).
    pub jobs: usize,
    /// The survivors file.
    pub survivors: PathBuf,
    /// cargo-mutants writes `mutants.out/` under this directory.
    pub out: PathBuf,
    /// Also write the summary as JSON here.
    pub json: Option<PathBuf>,
    /// Judge the outcomes of the last run under `out` again (the survivors
    /// file as it is now), without running anything.
    pub rejudge: bool,
}

/// Runs cargo-mutants over the bus and judges its survivors.
///
/// # Errors
/// cargo-mutants cannot be found or installed, the killer fails on the
/// unmutated bus, or a file cargo-mutants wrote (or the survivors file)
/// cannot be read.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let started = Instant::now();
    let listed = survivors::read(&options.survivors)?;
    if let Some(path) = &options.json {
        // Found unwritable now, not after an hour of mutants.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write the --json report {}: {e}", path.display()))?;
    }
    let report = options.out.join("mutants.out");
    // Rejudging: no outcomes, no need for cargo-mutants (or its install).
    let earlier = if options.rejudge {
        Some(outcomes::read(&report)?)
    } else {
        None
    };
    let tool = tool()?;
    let killer = killer::targets()?;
    let generated = generated(&tool)?;
    let (tested, exit) = match earlier {
        Some(tested) => (tested, None),
        None => {
            let unmutated = killer::run_unmutated(&killer)?;
            // Watchdogs in the tests fire first; this only cuts what they miss.
            let timeout = (unmutated.as_secs_f64() * 5.0).max(90.0).ceil() as u64;
            let exit = invoke(&tool, &killer, options, timeout)?;
            (outcomes::read(&report)?, Some(exit))
        }
    };
    let keys = survivors::keys(&generated);
    let keyed: Vec<(String, &'static str)> = tested
        .iter()
        .map(|o| {
            (
                keys.get(&o.name)
                    .cloned()
                    .unwrap_or_else(|| survivors::key(&o.name)),
                o.outcome,
            )
        })
        .collect();
    let summary = Summary::new(&tested, generated.len(), options.shard);
    if let Some(code) = exit {
        summary.agrees_with(code)?;
    }
    let generated: Vec<String> = generated.iter().map(|n| keys[n].clone()).collect();
    let comparison = survivors::compare(&listed, &keyed, &generated);
    print!(
        "{}",
        summary.render(&tested, &keyed, &comparison, &options.out)
    );
    eprintln!("time: {:.0} s", started.elapsed().as_secs_f64());
    if let Some(path) = &options.json {
        let json = summary.to_json(&comparison, started.elapsed());
        crate::write_json(path, &json)?;
    }
    Ok(if summary.passes(&comparison) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The pinned cargo-mutants: `target/tools/bin/cargo-mutants`, or the one on
/// the PATH if it is that release, else installed under `target/tools`.
fn tool() -> Result<PathBuf, String> {
    let root = target_dir().join("tools");
    let private = root.join("bin").join("cargo-mutants");
    for candidate in [private.clone(), PathBuf::from("cargo-mutants")] {
        if version(&candidate).as_deref() == Some(CARGO_MUTANTS) {
            return Ok(candidate);
        }
    }
    eprintln!(
        "installing cargo-mutants {CARGO_MUTANTS} under {} (first use only; a few minutes)",
        root.display()
    );
    let status = Command::new(cargo())
        .args([
            "install",
            "cargo-mutants",
            "--locked",
            "--version",
            CARGO_MUTANTS,
            "--root",
        ])
        .arg(&root)
        .status()
        .map_err(|e| format!("cannot run `cargo install cargo-mutants`: {e}"))?;
    if !status.success() || version(&private).as_deref() != Some(CARGO_MUTANTS) {
        return Err(format!(
            "`cargo install cargo-mutants --locked --version {CARGO_MUTANTS}` failed ({status}); it needs the crates.io registry"
        ));
    }
    Ok(private)
}

/// The release `program mutants --version` reports, if it runs (the
/// binary expects cargo's subcommand name first, as `cargo mutants` runs it).
fn version(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(["mutants", "--version"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1).map(str::to_owned)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Every mutant cargo-mutants generates (all shards), by name.
fn generated(tool: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(tool)
        .args(["mutants", "--list", "--json"])
        .current_dir(workspace())
        .output()
        .map_err(|e| format!("cannot run cargo-mutants: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo mutants --list` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    outcomes::parse_list(&String::from_utf8_lossy(&out.stdout))
}

/// Runs cargo-mutants with the killer; its exit status says only what the
/// outcomes say too (2 survivors, 3 timeouts), so any other is an error.
fn invoke(tool: &Path, killer: &[String], options: &Options, timeout: u64) -> Result<i32, String> {
    std::fs::create_dir_all(&options.out)
        .map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    // A report left by an earlier run must never be read as this one's.
    let stale = options.out.join("mutants.out").join("outcomes.json");
    if let Err(e) = std::fs::remove_file(&stale)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(format!(
            "cannot remove the earlier run's {}: {e}",
            stale.display()
        ));
    }
    let mut command = Command::new(tool);
    command
        .current_dir(workspace())
        .args([
            "mutants",
            "--baseline=skip",
            "--no-shuffle",
            "--colors=never",
        ])
        .arg(format!("--timeout={timeout}"))
        .arg("--build-timeout=1800")
        .arg(format!("--jobs={}", options.jobs.max(1)))
        .arg("--output")
        .arg(&options.out)
        .arg("--cargo-arg=--locked")
        .args(killer.iter().map(|a| format!("--cargo-arg={a}")));
    if let Some((k, n)) = options.shard {
        command.args(["--sharding=round-robin", &format!("--shard={}/{n}", k - 1)]);
    }
    eprintln!(
        "cargo-mutants {CARGO_MUTANTS}: test timeout {timeout} s, {} job(s), output {}",
        options.jobs.max(1),
        options.out.join("mutants.out").display()
    );
    // Interrupted, cargo-mutants removes its scratch copies of the
    // workspace (gigabytes under $TMPDIR) if it is given the time to.
    let leftover = "cargo-mutants; its scratch copies of the workspace may be left in $TMPDIR (cargo-mutants-*.tmp)";
    let (mut child, _graceful) = reaper::spawn_graceful(&mut command, CLEAN_UP_GRACE, leftover)
        .map_err(|e| format!("cannot run cargo-mutants: {e}"))?;
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for cargo-mutants: {e}"))?;
    reaper::wait_if_closing();
    match status.code() {
        Some(code @ (0 | 2 | 3)) => Ok(code),
        _ => Err(format!(
            "cargo-mutants failed ({status}); its log is under {}",
            options.out.join("mutants.out").display()
        )),
    }
}

/// The counts a run is judged by.
struct Summary {
    caught: usize,
    timeout: usize,
    missed: usize,
    unviable: usize,
    generated: usize,
    /// Mutants the run's slice holds; `tested` must reach it.
    expected: usize,
    tested: usize,
    shard: Option<(u64, u64)>,
}

impl Summary {
    /// The counts of `tested`, which should be every mutant of the run's
    /// slice: all `generated`, or (round-robin) those whose index is
    /// `k - 1` modulo `n`.
    fn new(tested: &[outcomes::Outcome], generated: usize, shard: Option<(u64, u64)>) -> Summary {
        let count = |o: &str| tested.iter().filter(|t| t.outcome == o).count();
        let expected = match shard {
            None => generated,
            Some((k, n)) => (0..generated as u64).filter(|i| i % n == k - 1).count(),
        };
        Summary {
            caught: count("caught"),
            timeout: count("timeout"),
            missed: count("missed"),
            unviable: count("unviable"),
            generated,
            expected,
            tested: tested.len(),
            shard,
        }
    }

    /// Caught (or hung) over compiling; the same over compiling and not
    /// listed as equivalent.
    fn rates(&self, c: &survivors::Comparison) -> (f64, f64) {
        let killed = (self.caught + self.timeout) as f64;
        let viable = killed + self.missed as f64;
        let ratio = |d: f64| if d > 0.0 { killed / d } else { 1.0 };
        (ratio(viable), ratio(viable - c.equivalent as f64))
    }

    /// Whether the run covers every mutant (no `--shard`, or `--shard 1/1`).
    fn whole(&self) -> bool {
        self.shard.is_none_or(|(_, n)| n == 1)
    }

    fn viable(&self) -> usize {
        self.caught + self.timeout + self.missed
    }

    fn passes(&self, c: &survivors::Comparison) -> bool {
        let clean = c.unlisted.is_empty() && c.stale.is_empty() && c.gone.is_empty();
        clean
            && self.tested == self.expected
            && self.viable() > 0
            && (!self.whole() || self.rates(c).1 >= TARGET_KILL_RATE)
    }

    /// cargo-mutants' exit code must say what its outcomes say (0: nothing
    /// missed or timed out; 2: something missed; 3: something timed out).
    fn agrees_with(&self, code: i32) -> Result<(), String> {
        let agrees = match code {
            0 => self.missed == 0 && self.timeout == 0,
            2 => self.missed > 0,
            3 => self.timeout > 0,
            _ => false,
        };
        if agrees {
            Ok(())
        } else {
            Err(format!(
                "cargo-mutants exited {code} but its outcomes say {} missed, {} timed out: not this run's report?",
                self.missed, self.timeout
            ))
        }
    }

    /// The report: counts, rates, and every unlisted, stale or gone entry
    /// (`keyed`: each tested mutant's key, in `tested`'s order).
    fn render(
        &self,
        tested: &[outcomes::Outcome],
        keyed: &[(String, &'static str)],
        c: &survivors::Comparison,
        out: &Path,
    ) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let (all, non_equivalent) = self.rates(c);
        let scope = match self.shard {
            Some((k, n)) => format!(
                "shard {k}/{n}: {} of {} mutants",
                tested.len(),
                self.generated
            ),
            None => format!("all {} mutants", self.generated),
        };
        let _ = writeln!(
            s,
            "cargo-mutants {CARGO_MUTANTS} over the bus ({scope}); killer: the bus's tests and the default conformance run"
        );
        let _ = writeln!(s, "  caught    {:>4}", self.caught);
        let _ = writeln!(
            s,
            "  timeout   {:>4}  (a hang: counted as caught)",
            self.timeout
        );
        let _ = writeln!(
            s,
            "  missed    {:>4}  ({} equivalent, {} known gaps, {} unlisted)",
            self.missed,
            c.equivalent,
            c.known_gaps,
            c.unlisted.len()
        );
        let _ = writeln!(s, "  unviable  {:>4}  (do not compile)", self.unviable);
        let killed = self.caught + self.timeout;
        let _ = writeln!(
            s,
            "kill rate: {:.1}% of compiling mutants ({killed}/{}); {:.1}% of compiling, non-equivalent ones (target {:.0}%{})",
            all * 100.0,
            killed + self.missed,
            non_equivalent * 100.0,
            TARGET_KILL_RATE * 100.0,
            if self.whole() {
                ""
            } else {
                ", judged on a whole run only"
            }
        );
        render_entries(&mut s, tested, keyed, c, out);
        self.render_verdict(&mut s, non_equivalent);
        s
    }

    /// Why a run that judged nothing, or too little, fails.
    fn render_verdict(&self, s: &mut String, non_equivalent: f64) {
        use std::fmt::Write;
        if self.tested != self.expected {
            let _ = writeln!(
                s,
                "INCOMPLETE: {} of the {} mutants of this run were tested (cargo-mutants stopped early?); nothing is judged from a partial run",
                self.tested, self.expected
            );
        } else if self.viable() == 0 {
            let _ = writeln!(
                s,
                "NOTHING COMPILED: no mutant built, so nothing was tested (check .cargo/mutants.toml)"
            );
        } else if self.whole() && non_equivalent < TARGET_KILL_RATE {
            let _ = writeln!(
                s,
                "BELOW TARGET: {:.1}% of the compiling, non-equivalent mutants caught, {:.0}% needed",
                non_equivalent * 100.0,
                TARGET_KILL_RATE * 100.0
            );
        }
    }

    fn to_json(&self, c: &survivors::Comparison, elapsed: Duration) -> serde_json::Value {
        let (all, non_equivalent) = self.rates(c);
        serde_json::json!({
            "cargo_mutants": CARGO_MUTANTS,
            "shard": self.shard.map(|(k, n)| format!("{k}/{n}")),
            "generated": self.generated,
            "expected": self.expected,
            "tested": self.tested,
            "caught": self.caught,
            "timeout": self.timeout,
            "missed": self.missed,
            "unviable": self.unviable,
            "equivalent": c.equivalent,
            "known_gaps": c.known_gaps,
            "kill_rate": all,
            "non_equivalent_kill_rate": non_equivalent,
            "unlisted": c.unlisted,
            "stale": c.stale.iter().map(|(k, what)| serde_json::json!({"mutant": k, "now": what})).collect::<Vec<_>>(),
            "gone": c.gone,
            "seconds": elapsed.as_secs_f64(),
            "passed": self.passes(c),
        })
    }
}

/// Every unlisted survivor (with its diff), stale entry and gone entry.
fn render_entries(
    s: &mut String,
    tested: &[outcomes::Outcome],
    keyed: &[(String, &'static str)],
    c: &survivors::Comparison,
    out: &Path,
) {
    use std::fmt::Write;
    let diff = |key: &str| {
        tested
            .iter()
            .zip(keyed)
            .find(|(_, (k, outcome))| k == key && *outcome == "missed")
            .and_then(|(t, _)| t.diff.clone())
            .map(|d| out.join("mutants.out").join(d).display().to_string())
            .unwrap_or_default()
    };
    for k in &c.unlisted {
        let _ = writeln!(
            s,
            "UNLISTED survivor (list it with its reason, or catch it): {k}\n    {}",
            diff(k)
        );
    }
    for (k, what) in &c.stale {
        let _ = writeln!(
            s,
            "STALE entry ({what} now; remove it from the survivors file): {k}"
        );
    }
    for k in &c.gone {
        let _ = writeln!(
            s,
            "GONE entry (cargo-mutants no longer makes it; remove it): {k}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(outcome: &'static str) -> outcomes::Outcome {
        outcomes::Outcome {
            name: format!("a.rs:1:1: {outcome}"),
            outcome,
            diff: None,
        }
    }

    #[test]
    fn shards_expect_their_round_robin_slice() {
        let sizes: Vec<usize> = (1..=4)
            .map(|k| Summary::new(&[], 10, Some((k, 4))).expected)
            .collect();
        assert_eq!(sizes, [3, 3, 2, 2]);
        assert_eq!(Summary::new(&[], 10, None).expected, 10);
    }

    #[test]
    fn a_partial_or_weak_run_never_passes() {
        let clean = survivors::Comparison::default();
        let caught = vec![outcome("caught"); 9];
        assert!(Summary::new(&caught, 9, None).passes(&clean));
        assert!(
            !Summary::new(&caught, 10, None).passes(&clean),
            "one mutant untested"
        );
        let mut weak = caught.clone();
        weak.push(outcome("missed"));
        weak.push(outcome("missed"));
        let listed_gaps = survivors::Comparison {
            known_gaps: 2,
            ..Default::default()
        };
        assert!(
            !Summary::new(&weak, 11, None).passes(&listed_gaps),
            "9/11 < 90%"
        );
        let listed_equivalent = survivors::Comparison {
            equivalent: 2,
            ..Default::default()
        };
        assert!(Summary::new(&weak, 11, None).passes(&listed_equivalent));
    }
}
