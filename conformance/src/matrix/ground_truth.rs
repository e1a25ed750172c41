//! Running a ground-truth script: the recorded deviations of an
//! implementation, each shown in a few lines of plain code against its
//! public API, no adapter (PROTOCOL.md, "Ground truth").
//!
//! The convention every script follows: it takes the expectations file as
//! its argument, prints one line per deviation it lists,
//! `RULE: shown: what happened` or `RULE: NOT SHOWN: what happened`, and
//! exits 0 only if every one was shown.
//!
//! Invariants: a deviation the script printed no line for is not shown (no
//! script, no recorded deviation); a script that exits non-zero, hangs past
//! its time limit (killed, with everything it started) or cannot start
//! shows nothing; its whole output is kept for the page.

use crate::reaper;
use scopebus_sim::rules::Rule;
use serde::Serialize;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a ground-truth script may run.
pub const LIMIT: Duration = Duration::from_secs(120);

/// What a script showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// The command line run.
    pub command: String,
    /// Its exit status, as text (`exit status: 0`), or why it did not end.
    pub status: String,
    /// Whether it exited 0.
    pub success: bool,
    /// Everything it printed on stdout, then stderr.
    pub output: String,
    /// Per rule of the expectations file: the script's line for it, and
    /// whether it says `shown`.
    pub deviations: Vec<ShownDeviation>,
}

/// One deviation's line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShownDeviation {
    /// The rule.
    pub rule: Rule,
    /// Whether the script showed it.
    pub shown: bool,
    /// Its line (without the rule), or why there is none.
    pub what: String,
}

impl Shown {
    /// Whether the script ran cleanly and showed every deviation.
    pub fn all_shown(&self) -> bool {
        self.success && self.deviations.iter().all(|d| d.shown)
    }
}

/// Runs `command_line` (split as a shell would, run without one, in `dir`)
/// and reads its lines for `rules`.
pub fn run(command_line: &str, dir: &std::path::Path, rules: &[Rule]) -> Shown {
    let (status, success, output) = match execute(command_line, dir) {
        Ok(done) => done,
        Err(why) => (why, false, String::new()),
    };
    let deviations = rules.iter().map(|rule| line_for(*rule, &output)).collect();
    Shown {
        command: command_line.to_owned(),
        status,
        success,
        output,
        deviations,
    }
}

fn line_for(rule: Rule, output: &str) -> ShownDeviation {
    let prefix = format!("{}: ", rule.id());
    let line = output.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
    match line {
        Some(rest) => match rest.strip_prefix("shown: ") {
            Some(what) => ShownDeviation {
                rule,
                shown: true,
                what: what.to_owned(),
            },
            None => ShownDeviation {
                rule,
                shown: false,
                what: rest.strip_prefix("NOT SHOWN: ").unwrap_or(rest).to_owned(),
            },
        },
        None => ShownDeviation {
            rule,
            shown: false,
            what: format!("the script printed no `{prefix}shown: ...` line"),
        },
    }
}

/// Runs the command to its end (or [`LIMIT`]); its status, whether it
/// succeeded, and its output.
fn execute(command_line: &str, dir: &std::path::Path) -> Result<(String, bool, String), String> {
    let words = shlex::split(command_line)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| format!("cannot split `{command_line}` into words"))?;
    let mut command = Command::new(&words[0]);
    command
        .args(&words[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = reaper::spawn_registered(&mut command, |c| c.spawn(), |c| c.id())
        .map_err(|e| format!("cannot start `{command_line}`: {e}"))?;
    let pid = child.id();
    let mut out = child.stdout.take().map(reader);
    let mut err = child.stderr.take().map(reader);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() > LIMIT => {
                break Err(format!("killed after {} s", LIMIT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for it: {e}")),
        }
    };
    reaper::end_session(pid);
    let _ = child.wait();
    let text = |r: Option<std::thread::JoinHandle<String>>| {
        r.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let output = text(out.take()) + &text(err.take());
    Ok(match status {
        Ok(status) => (status.to_string(), status.success(), output),
        Err(why) => (why, false, output),
    })
}

fn reader<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.by_ref().take(1 << 20).read_to_end(&mut bytes);
        // Drain the rest so the script never blocks on a full pipe.
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deviation_without_its_line_is_not_shown() {
        let out = "CANCEL-2: shown: the next send raised\nCLOSE-3: NOT SHOWN: it ended\n";
        let shown = |r| line_for(r, out);
        assert!(shown(Rule::Cancel2).shown);
        assert_eq!(shown(Rule::Close3).what, "it ended");
        assert!(!shown(Rule::Close3).shown);
        let missing = shown(Rule::Task3);
        assert!(
            !missing.shown && missing.what.contains("no `TASK-3: shown"),
            "{missing:?}"
        );
    }

    #[test]
    fn a_script_that_fails_or_cannot_start_shows_nothing() {
        let dir = std::env::temp_dir();
        let ran = run(
            "sh -c 'echo CANCEL-2: shown: yes; exit 3'",
            &dir,
            &[Rule::Cancel2],
        );
        assert!(
            ran.deviations[0].shown && !ran.success && !ran.all_shown(),
            "{ran:?}"
        );
        let none = run("/no/such/script", &dir, &[Rule::Cancel2]);
        assert!(
            none.status.contains("cannot start") && !none.all_shown(),
            "{none:?}"
        );
        let good = run("sh -c 'echo CANCEL-2: shown: yes'", &dir, &[Rule::Cancel2]);
        assert!(good.all_shown(), "{good:?}");
    }
}
