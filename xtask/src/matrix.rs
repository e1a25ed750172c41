//! `cargo xtask matrix`: sets up every implementation of a matrix file
//! (`conformance/matrix.toml`), judges each
//! ([`scopebus_conformance::matrix`]), and writes `matrix.json` and
//! `matrix.html` (a static page, no server needed).
//!
//! Setup is this file's only concern: a Python virtual environment per
//! implementation that lists `python` packages (`pyenv.rs`, under
//! `<target>/matrix/<name>/venv`), an npm prefix per implementation that
//! lists `npm` packages (`<target>/matrix/<name>/`), both made once and
//! reused while the pins are unchanged; then placeholders expanded and the
//! command resolved as `--impl` would. An implementation whose setup fails
//! is still a column of the matrix, marked not judged, and fails the run.

use crate::{pyenv, resolve, target_dir, workspace};
use scopebus_conformance::expectations::Expectations;
use scopebus_conformance::matrix::file::{Listed, MatrixFile};
use scopebus_conformance::matrix::{self, Candidate, Column, Settings, page};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// `cargo xtask matrix`'s options.
#[derive(Clone, Debug)]
pub struct Options {
    /// The matrix file.
    pub file: PathBuf,
    /// Seeds per implementation.
    pub seeds: u64,
    /// Ops per seed.
    pub ops: usize,
    /// Worker threads.
    pub jobs: usize,
    /// Only these implementations (all if empty).
    pub only: Vec<String>,
    /// Where `matrix.json`, `matrix.html` and failures go.
    pub out: PathBuf,
    /// Per-request adapter timeout, ms.
    pub timeout: u64,
}

/// Runs the matrix; exits 0 if every column is as it should be, 1 if not.
///
/// # Errors
/// An unreadable matrix file, `--only` naming no listed implementation, or
/// the output that cannot be written.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let file = MatrixFile::read(&options.file)?;
    let listed = chosen(&file, &options.only)?;
    let root = workspace();
    let out = std::path::absolute(&options.out)
        .map_err(|e| format!("cannot use {}: {e}", options.out.display()))?;
    // The matrix file's commands and paths are relative to the repository's
    // root, wherever the command was started.
    std::env::set_current_dir(&root)
        .map_err(|e| format!("cannot work in {}: {e}", root.display()))?;
    let options = &Options {
        out,
        ..options.clone()
    };
    let settings = Settings {
        seeds: options.seeds,
        ops: options.ops,
        jobs: options.jobs,
        out_dir: options.out.join("runs"),
        root: root.clone(),
    };
    let mut columns = Vec::new();
    for item in listed {
        let started = Instant::now();
        eprintln!("matrix: {} ...", item.name);
        let candidate = prepare(item, &root, options.timeout);
        let column = matrix::judge(&candidate, &settings);
        eprintln!("matrix: {} {}", item.name, summary(&column, started));
        columns.push(column);
    }
    let document = matrix::document(&columns, &settings, &options.file);
    write(&options.out.join("matrix.json"), &pretty(&document)?)?;
    let html = options.out.join("matrix.html");
    write(&html, &page::render(&document))?;
    print!("{}", table(&columns));
    println!(
        "page: {} (open it in a browser; no server needed)",
        html.display()
    );
    let broken = columns.iter().filter(|c| !c.problems.is_empty()).count();
    Ok(if broken == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{broken} implementation(s) are not as their files say: see above and the page");
        ExitCode::from(1)
    })
}

fn chosen<'a>(file: &'a MatrixFile, only: &[String]) -> Result<Vec<&'a Listed>, String> {
    if let Some(unknown) = only
        .iter()
        .find(|n| !file.implementations.iter().any(|l| &l.name == *n))
    {
        let names: Vec<&str> = file
            .implementations
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        return Err(format!(
            "--only {unknown}: not in the matrix file; it lists {}",
            names.join(", ")
        ));
    }
    Ok(file
        .implementations
        .iter()
        .filter(|l| only.is_empty() || only.contains(&l.name))
        .collect())
}

/// Sets `listed` up and resolves it; a failure is kept in the candidate.
fn prepare(listed: &Listed, root: &Path, timeout: u64) -> Candidate {
    let home = target_dir().join("matrix").join(&listed.name);
    let expectations = listed
        .expect
        .as_ref()
        .map(|p| Expectations::read(&root.join(p)));
    let setup = || -> Result<_, String> {
        let python = match &listed.python {
            Some(packages) => Some(pyenv::prepare(&home.join("venv"), packages)?),
            None => None,
        };
        let prefix = match &listed.npm {
            Some(packages) => Some(npm_install(&home, packages)?),
            None => None,
        };
        if let Some(build) = &listed.build {
            let build = listed.expand(build, python.as_deref(), prefix.as_deref(), root);
            run_build(&build, root)?;
        }
        let command = listed.expand(&listed.command, python.as_deref(), prefix.as_deref(), root);
        let ground_truth = listed
            .ground_truth
            .as_ref()
            .map(|g| listed.expand(g, python.as_deref(), prefix.as_deref(), root));
        Ok((command, ground_truth))
    };
    let (target, ground_truth) = match setup() {
        Ok((command, ground_truth)) => (resolve(&command, timeout), ground_truth),
        Err(e) => (Err(format!("setup failed: {e}")), None),
    };
    let (expectations, target) = match expectations {
        Some(Err(e)) => (None, Err(e)),
        Some(Ok(e)) => (Some(e), target),
        None => (None, target),
    };
    Candidate {
        listed: listed.clone(),
        target,
        expectations,
        ground_truth,
    }
}

/// Runs an implementation's `build` command (split as a shell would, in
/// `root`), its output to the console.
fn run_build(command_line: &str, root: &Path) -> Result<(), String> {
    let words = shlex::split(command_line)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| format!("cannot split the build command `{command_line}` into words"))?;
    eprintln!("matrix: building: {command_line}");
    let status = Command::new(&words[0])
        .args(&words[1..])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run the build command `{command_line}`: {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!(
            "the build command `{command_line}` failed ({status})"
        )),
    }
}

/// Installs `packages` (pinned) under `home` once; returns the prefix.
fn npm_install(home: &Path, packages: &[String]) -> Result<PathBuf, String> {
    let marker = home.join(".scopebus-npm");
    let wanted = packages.join("\n") + "\n";
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(home.to_owned());
    }
    std::fs::create_dir_all(home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    eprintln!(
        "setting up (first use only): npm install {} in {}",
        packages.join(" "),
        home.display()
    );
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "--prefix",
        ])
        .arg(home)
        .args(packages)
        .output()
        .map_err(|e| format!("cannot run npm (is Node.js installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm install {} failed ({}): {}",
            packages.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::write(&marker, wanted)
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(home.to_owned())
}

fn summary(column: &Column, started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = &column.error {
        return format!("NOT JUDGED ({seconds:.0} s): {e}");
    }
    let verdicts: Vec<String> = column
        .profiles
        .iter()
        .map(|p| format!("{}: {}", p.profile, word(p.conforming, p.success)))
        .collect();
    format!("judged in {seconds:.0} s: {}", verdicts.join(", "))
}

fn word(conforming: bool, success: bool) -> &'static str {
    match (conforming, success) {
        (true, _) => "conforming",
        (false, true) => "as recorded",
        (false, false) => "not conforming",
    }
}

/// The console summary: one line per implementation, its failing rules
/// (`RULE?` for one no ground-truth script confirms), then a legend.
fn table(columns: &[Column]) -> String {
    let mut out = format!(
        "{:<22} {:<16} {:<16} {:>6}  failing rules\n",
        "implementation", "docs", "strict", "recorded"
    );
    for c in columns {
        let profile = |i: usize| {
            c.profiles
                .get(i)
                .map_or("not judged", |p| word(p.conforming, p.success))
        };
        let failing: Vec<String> = c
            .report
            .as_ref()
            .and_then(|r| r["rules"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                let id = r["id"].as_str().unwrap_or("?");
                match r["verdict"].as_str() {
                    Some("expected_failure") => Some(id.to_owned()),
                    Some("failed") => Some(format!("{id}?")),
                    _ => None,
                }
            })
            .collect();
        let recorded = c.ground_truth.as_ref().map_or(0, |g| g.deviations.len());
        out += &format!(
            "{:<22} {:<16} {:<16} {:>6}  {}\n",
            c.name,
            profile(0),
            profile(1),
            recorded,
            failing.join(" ")
        );
        for p in &c.problems {
            out += &format!("    problem: {p}\n");
        }
        let unreached = unreached_musts(c);
        if !unreached.is_empty() {
            out += &format!(
                "    note: {} not exercised or not tested: a must rule no run checked (see the page), \
                 so no verdict can be as recorded\n",
                unreached.join(", ")
            );
        }
    }
    out += "failing rules: recorded deviations (their ground-truth script shows them); \
            RULE?: the suite's finding, unconfirmed (no ground-truth script shows it yet)\n";
    out
}

/// The must rules (under the run's own profile) that no run checked.
fn unreached_musts(c: &Column) -> Vec<String> {
    c.report
        .as_ref()
        .and_then(|r| r["rules"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|r| r["level"] == "must")
        .filter(|r| r["verdict"] == "not_exercised" || r["verdict"] == "not_tested")
        .map(|r| r["id"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn pretty(value: &serde_json::Value) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| format!("cannot write the matrix as JSON: {e}"))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
