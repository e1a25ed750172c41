//! `cargo xtask matrix` as a user runs it: a matrix file with the reference
//! and a mutant whose one deviation is recorded with a ground-truth script;
//! the JSON document; the page opened in headless Chromium, which must load
//! without console errors and draw the table and a timeline; and a matrix
//! that fails because a deviation has no script, or its script does not
//! show it.
//!
//! Chromium: the distro's `chromium` (`.ci/run` installs it). Without it the
//! browser check is skipped with a message, unless `SCOPEBUS_REQUIRE_CHROMIUM`
//! is set (CI sets it), when its absence fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{text, xtask};

fn out_dir(name: &str) -> PathBuf {
    let dir = support::out_dir("matrix", name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A matrix of the reference and `mutant:lifo`, whose FIFO-1 deviation is
/// recorded (its trace made by the suite) with `ground_truth` as its script.
fn matrix_file(dir: &Path, ground_truth: Option<&str>) -> PathBuf {
    let trace = dir.join("lifo-fifo.json");
    let o = xtask(&[
        "conformance",
        "--impl",
        "mutant:lifo",
        "--seed",
        "1",
        "--trace",
        trace.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(trace.is_file(), "{}", text(&o.stderr));
    let expect = dir.join("lifo.toml");
    std::fs::write(
        &expect,
        format!(
            "implementation = \"mutant:lifo\"\n[[deviation]]\nrule = \"FIFO-1\"\nreason = \"newest first\"\nseed = 1\ntrace = \"{}\"\n",
            trace.display()
        ),
    )
    .unwrap();
    let script = ground_truth.map_or(String::new(), |g| format!("ground_truth = {g:?}\n"));
    let file = dir.join("matrix.toml");
    std::fs::write(
        &file,
        format!(
            "[[implementation]]\nname = \"reference\"\nabout = \"the reference\"\ncommand = \"reference\"\n\n\
             [[implementation]]\nname = \"lifo\"\nabout = \"a <b>planted</b> bug: newest first\"\ncommand = \"mutant:lifo\"\n\
             expect = \"{}\"\n{script}",
            expect.display()
        ),
    )
    .unwrap();
    file
}

fn run_matrix(file: &Path, out: &Path) -> Output {
    xtask(&[
        "matrix",
        "--file",
        file.to_str().unwrap(),
        "--seeds",
        "60",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn the_matrix_judges_every_implementation_and_its_page_renders() {
    let dir = out_dir("ok");
    let file = matrix_file(
        &dir,
        Some("sh -c 'echo FIFO-1: shown: a FIFO queue of one, read newest first'"),
    );
    let out = dir.join("out");
    let o = run_matrix(&file, &out);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("lifo") && stdout.contains("FIFO-1"),
        "{stdout}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("matrix.json")).unwrap()).unwrap();
    assert_eq!(doc["format"], "scopebus-matrix");
    let lifo = &doc["implementations"][1];
    assert_eq!(lifo["name"], "lifo");
    assert_eq!(lifo["problems"].as_array().unwrap().len(), 0, "{lifo}");
    assert_eq!(lifo["ground_truth"]["deviations"][0]["shown"], true);
    let timeline = &lifo["timelines"][0];
    assert_eq!(timeline["rule"], "FIFO-1");
    let first = timeline["first"].as_u64().expect("a first disagreement");
    assert!(
        timeline["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["index"] == first)
    );
    assert_eq!(
        lifo["profiles"][0]["conforming"], false,
        "a recorded must deviation does not conform"
    );
    assert_eq!(
        lifo["profiles"][0]["success"], true,
        "but it is as recorded"
    );
    browser_check(&out.join("matrix.html"));
}

#[test]
fn a_deviation_without_ground_truth_or_not_shown_fails_the_matrix() {
    let dir = out_dir("unshown");
    let out = dir.join("out");
    let o = run_matrix(&matrix_file(&dir, None), &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("no script, no recorded deviation"),
        "{}",
        text(&o.stdout)
    );
    let o = run_matrix(
        &matrix_file(&dir, Some("sh -c 'echo FIFO-1: NOT SHOWN: it kept order'")),
        &out,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("ground truth does not show FIFO-1: it kept order"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn a_bad_matrix_file_is_refused_with_what_is_wrong() {
    let dir = out_dir("bad");
    let file = dir.join("matrix.toml");
    std::fs::write(
        &file,
        "[[implementation]]\nname = \"x\"\nabout = \"\"\ncommand = \"{python} a.py\"\n",
    )
    .unwrap();
    let o = xtask(&["matrix", "--file", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("uses `{python}`, which needs `python`"),
        "{}",
        text(&o.stderr)
    );
    let o = xtask(&["matrix", "--file", file.to_str().unwrap(), "--only", "y"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Opens `page` in headless Chromium: it must load without a console
/// message (an uncaught error is one), say `data-status="ok"`, and contain
/// the table and a timeline.
fn browser_check(page: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var_os("SCOPEBUS_REQUIRE_CHROMIUM").is_none(),
            "SCOPEBUS_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("SKIPPED the browser check: no chromium (apt-get install chromium)");
        return;
    };
    let profile = page.with_file_name("chromium-profile");
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let (dom, log) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    // The body's own tag (the script's text may mention the attribute).
    let body = dom
        .find("<body")
        .map(|i| &dom[i..dom[i..].find('>').map_or(dom.len(), |j| i + j)]);
    assert_eq!(
        body,
        Some("<body data-status=\"ok\""),
        "the page did not finish drawing"
    );
    assert!(dom.contains("<table class=\"matrix\">"), "no table");
    assert!(dom.contains("<svg class=\"timeline\""), "no timeline");
    assert!(
        dom.contains("a &lt;b&gt;planted&lt;/b&gt; bug"),
        "text from the data must be text, not markup"
    );
}
