//! The commands as a user runs them: exit codes, output, reports, repro
//! commands that really reproduce, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopebus-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

#[test]
fn conformance_passes_on_the_reference() {
    let out = out_dir("ok");
    let json = out.join("report.json");
    let o = xtask(&[
        "conformance",
        "--seeds",
        "60",
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("verdict: CONFORMING"), "{stdout}");
    assert!(stdout.contains("ROUTE-1"));
    assert!(text(&o.stderr).contains("seeds/s"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["implementation"], "reference");
    assert_eq!(report["seeds"], 60);
    assert!(report["ops"].as_u64().unwrap() > 0);
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 20);
    for rule in rules {
        for key in ["id", "level", "verdict", "seed", "repro"] {
            assert!(rule.get(key).is_some(), "{key} in {rule}");
        }
    }
}

#[test]
fn the_same_seed_prints_the_same_results() {
    let out = out_dir("same");
    let args = [
        "conformance",
        "--seed",
        "42",
        "--out",
        out.to_str().unwrap(),
    ];
    let (a, b) = (xtask(&args), xtask(&args));
    assert_eq!(text(&a.stdout), text(&b.stdout));
    assert!(text(&a.stdout).contains("seed 42,"));
    // A single-seed rerun on a correct bus exits 0: nothing failed.
    assert_eq!(code(&a), 0, "{}", text(&a.stdout));
    assert!(text(&a.stdout).contains("no must rule failed on this seed"));
}

/// Runs a printed command (`cargo xtask ...`) with the binary under test.
fn run_printed(line: &str, prefix: &str) -> Output {
    let command = line.trim().strip_prefix(prefix).expect("a printed command");
    let args: Vec<&str> = command
        .strip_prefix("cargo xtask ")
        .expect("starts with cargo xtask")
        .split_whitespace()
        .collect();
    xtask(&args)
}

#[test]
fn a_failing_run_prints_commands_that_reproduce_it() {
    let out = out_dir("fail");
    let o = xtask(&[
        "conformance",
        "--impl",
        "mutant:lifo",
        "--seeds",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("FIFO-1") && stdout.contains("FAILED"),
        "{stdout}"
    );
    let replay_line = stdout
        .lines()
        .find(|l| l.trim().starts_with("replay: "))
        .unwrap();
    let rerun_line = stdout
        .lines()
        .find(|l| l.trim().starts_with("rerun:  "))
        .unwrap();

    let replayed = run_printed(replay_line, "replay: ");
    assert_eq!(code(&replayed), 1);
    assert!(text(&replayed.stdout).contains("reproduced: the trace records this failure (FIFO-1)"));

    // The rerun command writes to the default place; point it at ours.
    let mut rerun = rerun_line
        .trim()
        .strip_prefix("rerun:  ")
        .unwrap()
        .to_owned();
    rerun.push_str(&format!(" --out {}", out.join("again").display()));
    let rerun = run_printed(&rerun, "");
    assert_eq!(code(&rerun), 1);
    assert!(text(&rerun.stdout).contains("FIFO-1"));
}

#[test]
fn replay_of_a_shrunk_trace_on_the_reference_passes() {
    let out = out_dir("replay");
    let o = xtask(&["mutants", "--only", "lifo", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    let trace = std::fs::read_dir(out.join("failures/mutant-lifo"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let o = xtask(&[
        "replay",
        "--impl",
        "reference",
        "-v",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    let stdout = text(&o.stdout);
    assert!(stdout.contains("passed:"), "{stdout}");
    assert!(
        stdout.contains("-> sub#"),
        "verbose shows observations: {stdout}"
    );
    assert!(stdout.contains("=> ok"), "verbose shows replies: {stdout}");
}

#[test]
fn mutants_report_as_json() {
    let out = out_dir("mutants");
    let json = out.join("m.json");
    let o = xtask(&[
        "mutants",
        "--only",
        "wake-one,leak-on-drop",
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mutants = v["mutants"].as_array().unwrap();
    assert_eq!(mutants.len(), 2);
    assert_eq!(mutants[0]["name"], "wake-one");
    assert_eq!(mutants[0]["killed"], true);
    let list = xtask(&["mutants", "--list"]);
    assert!(text(&list.stdout).contains("drop-clears-waiters"));
}

fn fails_with(args: &[&str], message: &str) {
    let o = xtask(args);
    assert_eq!(code(&o), 2, "{args:?}: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(message),
        "{args:?}: {}",
        text(&o.stderr)
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code_2() {
    fails_with(&["conformance", "--seed", "abc"], "is not a seed");
    fails_with(&["conformance", "--seed", "-1"], "is not a seed");
    fails_with(
        &["conformance", "--impl", "nope"],
        "unknown implementation `nope`",
    );
    fails_with(&["conformance", "--ops", "0"], "--ops");
    fails_with(&["conformance", "--seeds", "0"], "--seeds");
    fails_with(
        &["conformance", "--seed", "1", "--start", "5"],
        "cannot be used with",
    );
    fails_with(
        &["conformance", "--seed", "1", "--seeds", "5"],
        "cannot be used with",
    );
    fails_with(
        &[
            "conformance",
            "--start",
            "18446744073709551615",
            "--seeds",
            "2",
        ],
        "run past the largest seed",
    );
    fails_with(&["conformance", "--frobnicate"], "unexpected argument");
    fails_with(&["mutants", "--only", "nope"], "unknown mutant `nope`");
    fails_with(&["conformance", "--jobs", "100000"], "--jobs");
    fails_with(&["replay", "/no/such/trace.json"], "/no/such/trace.json");
    let dir = out_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(
        &garbage,
        "{\"format\": \"scopebus-trace\", \"version\": 1, \"entries\": [",
    )
    .unwrap();
    fails_with(&["replay", garbage.to_str().unwrap()], "garbage.json:1:");
    let dangling = dir.join("dangling.json");
    std::fs::write(
        &dangling,
        r#"{"format":"scopebus-trace","version":1,"implementation":"reference","entries":[{"op":"close_scope","scope":3}]}"#,
    )
    .unwrap();
    fails_with(
        &["replay", dangling.to_str().unwrap()],
        "scope#3 is not opened by any earlier entry",
    );
    let unknown = dir.join("unknown.json");
    std::fs::write(
        &unknown,
        r#"{"format":"scopebus-trace","version":1,"implementation":"somebus","entries":[]}"#,
    )
    .unwrap();
    fails_with(
        &["replay", unknown.to_str().unwrap()],
        "unknown implementation `somebus`",
    );
    let unwritable = Path::new("/proc/scopebus-cannot-write/report.json");
    fails_with(
        &[
            "conformance",
            "--seeds",
            "5",
            "--json",
            unwritable.to_str().unwrap(),
        ],
        "cannot",
    );
}

#[test]
fn seeds_accept_hex() {
    let out = out_dir("hex");
    let a = xtask(&[
        "conformance",
        "--seed",
        "0x2a",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text(&a.stdout).contains("seed 42,"), "{}", text(&a.stdout));
}
