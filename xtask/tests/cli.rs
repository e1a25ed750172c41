//! The commands as a user runs them: exit codes, output, reports, repro
//! commands that really reproduce, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{code, text, xtask};

fn out_dir(name: &str) -> PathBuf {
    support::out_dir("cli", name)
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
    assert_eq!(rules.len(), 29, "every rule of SPEC.md, in order");
    assert_eq!(report["profile"], "strict", "the default profile");
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
        "a trace file never starts a command by itself",
    );
    // A command line in a trace file is not run.
    let hostile = dir.join("hostile.json");
    let marker = dir.join("ran");
    std::fs::write(
        &hostile,
        format!(
            r#"{{"format":"scopebus-trace","version":1,"implementation":"touch {}","entries":[]}}"#,
            marker.display()
        ),
    )
    .unwrap();
    fails_with(&["replay", hostile.to_str().unwrap()], "--impl");
    assert!(!marker.exists(), "replay ran the command named in the file");
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

#[test]
fn the_reference_behind_the_protocol_conforms_with_the_same_checks() {
    let out = out_dir("stdio");
    let junit = out.join("r.xml");
    let args = |imp: &str| {
        vec![
            "conformance".to_owned(),
            "--impl".to_owned(),
            imp.to_owned(),
            "--seeds".to_owned(),
            "40".to_owned(),
            "--out".to_owned(),
            out.display().to_string(),
        ]
    };
    let mut stdio_args = args("reference-stdio");
    stdio_args.extend(["--junit".to_owned(), junit.display().to_string()]);
    let stdio = xtask(&stdio_args.iter().map(String::as_str).collect::<Vec<_>>());
    let inproc = xtask(
        &args("reference")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        code(&stdio),
        0,
        "{}{}",
        text(&stdio.stdout),
        text(&stdio.stderr)
    );
    // The same workloads and checks, whichever path: the rule tables agree.
    let table = |o: &Output| -> String {
        text(&o.stdout)
            .lines()
            .filter(|l| l.contains("must") || l.contains("should"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&stdio), table(&inproc));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testcase name=\"ROUTE-1\""), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
}

#[test]
fn an_adapter_that_cannot_start_cannot_be_judged() {
    fails_with(
        &[
            "conformance",
            "--impl",
            "/no/such/adapter --verbose",
            "--seeds",
            "2",
        ],
        "cannot start the adapter",
    );
}

/// Writes an expectations file for `mutant:lifo` listing `rule` with `trace`.
fn expectations(dir: &Path, rule: &str, trace: &Path) -> PathBuf {
    let path = dir.join("lifo.toml");
    std::fs::write(
        &path,
        format!(
            "implementation = \"mutant:lifo\"\n[[deviation]]\nrule = \"{rule}\"\nreason = \"newest first\"\nseed = 1\ntrace = \"{}\"\n",
            trace.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn known_deviations_keep_the_expectations_file_true() {
    let out = out_dir("expect");
    std::fs::create_dir_all(&out).unwrap();
    let lifo_trace = out.join("fifo.json");
    let o = xtask(&[
        "conformance",
        "--impl",
        "mutant:lifo",
        "--seed",
        "1",
        "--trace",
        lifo_trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(lifo_trace.exists());
    let run = |expect: &Path| {
        xtask(&[
            "conformance",
            "--impl",
            "mutant:lifo",
            "--seeds",
            // Enough for every must rule to be exercised (60 left ROUTE-2
            // out once the workload drew one more parameter).
            "100",
            "--expect",
            expect.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // FIFO-1 is the lifo mutant's one broken rule: listed, the run is as
    // expected and exits 0.
    let o = run(&expectations(&out, "FIFO-1", &lifo_trace));
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("expected failure"));
    assert!(text(&o.stdout).contains("verdict: AS EXPECTED"));
    // A listed rule that passes is an unexpected pass: exit 1.
    let o = run(&expectations(&out, "ROUTE-1", &lifo_trace));
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stdout).contains("UNEXPECTED PASS"),
        "{}",
        text(&o.stdout)
    );
    // A deviation whose trace no longer fails its rule is stale: exit 1.
    let passing = out.join("passing.json");
    std::fs::write(
        &passing,
        r#"{"format":"scopebus-trace","version":1,"implementation":"mutant:lifo","entries":[{"op":"settle"}]}"#,
    )
    .unwrap();
    let o = run(&expectations(&out, "FIFO-1", &passing));
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stdout).contains("STALE deviation of FIFO-1"),
        "{}",
        text(&o.stdout)
    );
    // A file recorded for another implementation is applied when named
    // (issue 12: any implementation, a command line included), with a note:
    // on the reference, FIFO-1 passes, so the listed deviation is an
    // unexpected pass.
    let o = xtask(&[
        "conformance",
        "--seeds",
        "100",
        "--expect",
        expectations(&out, "FIFO-1", &lifo_trace).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("UNEXPECTED PASS"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("records the deviations of `mutant:lifo`; applied to `reference`"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn transcripts_are_checked_against_the_protocol_schema() {
    let out = out_dir("transcripts");
    let o = xtask(&[
        "conformance",
        "--impl",
        &format!("{} adapter mutant:lifo", env!("CARGO_BIN_EXE_xtask")),
        "--seeds",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let transcripts: Vec<String> = walk(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".transcript.jsonl"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(!transcripts.is_empty());
    let mut args = vec!["check-transcript"];
    args.extend(transcripts.iter().map(String::as_str));
    let o = xtask(&args);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("0 problems"));
    let bad = out.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"type\":\"reset\",\"id\":1}\n{\"type\":\"ok\",\"id\":1,\"extra\":1}\n",
    )
    .unwrap();
    let o = xtask(&["check-transcript", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stdout).contains("bad.jsonl:2: this reply does not fit"),
        "{}",
        text(&o.stdout)
    );
    // A reply that is there but malformed is not also "no reply".
    assert!(
        !text(&o.stdout).contains("has no reply"),
        "{}",
        text(&o.stdout)
    );
    // A line that fits nothing says where to look, not "(at )".
    std::fs::write(&bad, "{\"type\":\"reset\"}\n").unwrap();
    let o = xtask(&["check-transcript", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let said = text(&o.stdout);
    assert!(said.contains("at the line as a whole"), "{said}");
    assert!(said.contains("$defs/request"), "{said}");
    // Each error names the shape the line names, and what that shape
    // wanted; a line naming no known shape is told which there are; a
    // last request with no reply is a problem (every request gets one).
    std::fs::write(
        &bad,
        concat!(
            "{\"type\":\"op\",\"id\":2,\"op\":{\"op\":\"consume\",\"sub\":1}}\n",
            "{\"type\":\"result\",\"id\":2,\"result\":{\"ok\":\"banana\"}}\n",
            "{\"type\":\"op\",\"id\":3,\"op\":{\"op\":\"fly\"}}\n",
            "{\"type\":\"teleport\",\"id\":3}\n",
            "{\"type\":\"op\",\"id\":4,\"op\":{\"op\":\"settle\"}}\n",
        ),
    )
    .unwrap();
    let o = xtask(&["check-transcript", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let said = text(&o.stdout);
    for needle in [
        "bad.jsonl:1: this request does not fit the protocol: at `/op`",
        "checked as the shape it names: `op` > `consume`",
        "bad.jsonl:2: this reply does not fit the protocol: `/result/ok` fits none of the 2 shapes allowed there",
        "bad.jsonl:3: this request does not fit the protocol: `/op` names its shape `fly` (by `op`), which is not one the protocol has here: expected one of \"open_scope\"",
        "bad.jsonl:4: this reply does not fit the protocol: the line names its shape `teleport`",
        "the last request, a `op` (id 4), has no reply",
        "5 problems",
    ] {
        assert!(said.contains(needle), "`{needle}` not in:\n{said}");
    }
    // An empty transcript is no pass.
    let empty = out.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = xtask(&["check-transcript", empty.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("empty.jsonl: empty"));
}

#[test]
fn a_report_path_under_a_file_says_so() {
    let o = xtask(&["conformance", "--seeds", "5", "--junit", "/dev/null/x.xml"]);
    let said = text(&o.stderr);
    assert!(said.contains("/dev/null is not a directory"), "{said}");
    assert!(!said.contains("File exists"), "{said}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn input_files_are_read_up_to_a_bound() {
    // An endless file is refused at the bound, not read until memory runs out.
    let o = xtask(&["replay", "/dev/zero"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("larger than the 64 MiB an input file may be"),
        "{}",
        text(&o.stderr)
    );
    for args in [
        &["check-transcript", "/dev/zero"][..],
        &["merge", "/dev/zero"][..],
        &["conformance", "--seeds", "2", "--expect", "/dev/zero"][..],
    ] {
        let o = xtask(args);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(text(&o.stderr).contains("--max-input-mib"), "{args:?}");
    }
    // The bound is the user's to set.
    let out = out_dir("bounded");
    std::fs::create_dir_all(&out).unwrap();
    let big = out.join("big.json");
    std::fs::write(&big, " ".repeat(2 << 20)).unwrap();
    let o = xtask(&["--max-input-mib", "1", "replay", big.to_str().unwrap()]);
    assert!(
        text(&o.stderr).contains("larger than the 1 MiB"),
        "{}",
        text(&o.stderr)
    );
    let o = xtask(&["--max-input-mib", "3", "replay", big.to_str().unwrap()]);
    assert!(
        !text(&o.stderr).contains("larger than"),
        "{}",
        text(&o.stderr)
    );
}

/// `--seeds` up to the largest count, off a terminal: a line of progress
/// every so often (every second here; 30 s by default) says how far the run
/// got and how long the rest would take, and `--deadline` ends it, not
/// judged (exit 2), saying so.
#[test]
fn an_endless_run_shows_progress_off_a_terminal_and_a_deadline_ends_it() {
    let started = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "conformance",
            "--seeds",
            "18446744073709551615",
            "--deadline",
            "3",
        ])
        .env("SCOPEBUS_PROGRESS_SECS", "1")
        .output()
        .expect("runs");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(code(&o), 2, "{}{}", text(&o.stdout), text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("conformance: ") && stderr.contains(" of 18446744073709551615 seeds in "),
        "{stderr}"
    );
    assert!(stderr.contains("years left"), "{stderr}");
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("STOPPED EARLY: the deadline (3 s) passed")
            && stdout.contains("NOT JUDGED: the run stopped after"),
        "{stdout}"
    );
}

/// One convention for traces that cannot be saved, in every command: the
/// verdict stands (its exit code), and the failure says its trace is
/// missing and why; nothing else is lost.
#[test]
fn an_unsaved_trace_is_reported_beside_its_failure_and_keeps_the_verdict() {
    let nowhere = "/dev/null/scopebus";
    let o = xtask(&[
        "conformance",
        "--impl",
        "mutant:lifo",
        "--seeds",
        "30",
        "--out",
        nowhere,
    ]);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("FIFO-1"), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("could not be saved"),
        "{}",
        text(&o.stdout)
    );
    let o = xtask(&["mutants", "--only", "lifo", "--out", nowhere]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let said = text(&o.stdout);
    assert!(
        said.contains("1 killed") && said.contains("its shrunk trace could not be saved"),
        "{said}"
    );
}

/// `--rejudge` with no report to judge says so at once: it neither looks
/// for nor installs cargo-mutants first (here there is none to find, and no
/// cargo on the PATH to install it with).
#[test]
fn mutants_rejudge_without_a_report_fails_at_once() {
    let out = out_dir("rejudge");
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["mutants", "--external", "--rejudge", "--out"])
        .arg(&out)
        .env("PATH", "")
        .env_remove("CARGO")
        .env("CARGO_TARGET_DIR", &out)
        .output()
        .expect("the xtask binary runs");
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("mutants.out/outcomes.json"),
        "{}",
        text(&o.stderr)
    );
}
