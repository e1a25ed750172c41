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
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
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
    /// Everything it printed on stdout (where its verdict lines are read
    /// from), then stderr.
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
    let (status, success, stdout, stderr) = match execute(command_line, dir) {
        Ok(done) => done,
        Err(why) => (why, false, String::new(), String::new()),
    };
    // Only stdout carries the verdict lines; stderr is kept for the page.
    let deviations = rules.iter().map(|rule| line_for(*rule, &stdout)).collect();
    let output = match (
        stdout.is_empty() || stdout.ends_with('\n'),
        stderr.is_empty(),
    ) {
        (_, true) => stdout,
        (true, false) => stdout + &stderr,
        (false, false) => stdout + "\n" + &stderr,
    };
    Shown {
        command: command_line.to_owned(),
        status,
        success,
        output,
        deviations,
    }
}

/// The script's line for `rule` in `output` (its stdout); a rule with
/// several lines that do not all say `shown` is not shown.
fn line_for(rule: Rule, output: &str) -> ShownDeviation {
    let prefix = format!("{}: ", rule.id());
    let lines: Vec<&str> = output
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect();
    if lines.len() > 1 && !lines.iter().all(|l| l.starts_with("shown: ")) {
        return ShownDeviation {
            rule,
            shown: false,
            what: format!(
                "the script printed {} lines for it, not all `shown`",
                lines.len()
            ),
        };
    }
    match lines.first() {
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

/// How long the output may stay open once the script has ended (and
/// everything in its session was killed): longer means a process it
/// started outside its session holds it.
const GRACE: Duration = Duration::from_secs(2);

/// Runs the command to its end (or [`LIMIT`]); its status, whether it
/// succeeded, its stdout and its stderr. Never waits past [`LIMIT`] plus
/// [`GRACE`]: output a process the script left behind keeps open is read
/// until then, and the script counts as failed.
fn execute(
    command_line: &str,
    dir: &std::path::Path,
) -> Result<(String, bool, String, String), String> {
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
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
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
    let until = Instant::now() + GRACE;
    let (stdout, open_out) = collect(out, until);
    let (stderr, open_err) = collect(err, until);
    let held = (open_out || open_err).then_some(
        "; its output stayed open after it ended (a process it started outside its session holds it)",
    );
    Ok(match (status, held) {
        (Ok(status), None) => (status.to_string(), status.success(), stdout, stderr),
        (Ok(status), Some(held)) => (format!("{status}{held}"), false, stdout, stderr),
        (Err(why), held) => (why + held.unwrap_or_default(), false, stdout, stderr),
    })
}

/// What a reader has read by `until`, and whether its pipe was still open.
fn collect(reader: Option<Receiver<Vec<u8>>>, until: Instant) -> (String, bool) {
    let Some(chunks) = reader else {
        return (String::new(), false);
    };
    let mut bytes = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match chunks.recv_timeout(left) {
            Ok(chunk) => bytes.extend(chunk),
            Err(RecvTimeoutError::Disconnected) => break (lossy(bytes), false),
            Err(RecvTimeoutError::Timeout) => break (lossy(bytes), true),
        }
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads `pipe` on a thread, sending what it reads (its first MiB; the
/// rest is drained, so the script never blocks on a full pipe) until it
/// ends; the channel disconnects then.
fn reader<R: Read + Send + 'static>(mut pipe: R) -> Receiver<Vec<u8>> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        let mut kept = 0usize;
        let mut buffer = [0u8; 8192];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) if kept < 1 << 20 => {
                    let take = n.min((1 << 20) - kept);
                    kept += take;
                    if send.send(buffer[..take].to_vec()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
            }
        }
    });
    receive
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

    #[test]
    fn a_rule_both_shown_and_not_is_not_shown() {
        let out = "CANCEL-2: shown: yes\nCANCEL-2: NOT SHOWN: no\n";
        assert!(!line_for(Rule::Cancel2, out).shown);
        let twice = "CANCEL-2: shown: yes\nCANCEL-2: shown: again\n";
        assert!(line_for(Rule::Cancel2, twice).shown);
    }

    #[test]
    fn a_script_that_leaves_its_output_open_ends_after_the_grace() {
        // The background sleep escapes the script's session and keeps
        // stdout open; the run must not wait for it.
        let started = Instant::now();
        let shown = run(
            "sh -c 'echo CANCEL-2: shown: x; setsid sleep 4 &'",
            std::path::Path::new("."),
            &[Rule::Cancel2],
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{shown:?}");
        assert!(shown.deviations[0].shown, "{shown:?}");
        assert!(!shown.success, "{shown:?}");
        assert!(shown.status.contains("stayed open"), "{shown:?}");
    }
}
