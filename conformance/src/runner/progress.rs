//! Progress of a run on stderr: a bar on a terminal; elsewhere (a CI log, a
//! file) a line every [`HEARTBEAT`] (`SCOPEBUS_PROGRESS_SECS` seconds, if
//! set), so that a long run (`--seeds` in the
//! millions, or more) shows that it moves and when it should end. stdout is
//! never touched: the report there stays identical for identical arguments.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a run off a terminal says how far it got.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// A run's progress: see the module documentation.
pub struct Progress {
    bar: ProgressBar,
    /// Off a terminal: when the run began, and when a line was last written.
    lines: Option<(Instant, Mutex<Instant>)>,
    done: AtomicU64,
    len: u64,
    what: &'static str,
    every: Duration,
}

impl Progress {
    /// Progress over `len` seeds: a bar if `terminal`, lines otherwise.
    pub fn new(terminal: bool, len: u64, what: &'static str) -> Progress {
        let bar = if terminal {
            let bar = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(&format!(
                "{what} {{bar:40}} {{pos}}/{{len}} seeds [{{elapsed}}, eta {{eta}}]"
            )) {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        let now = Instant::now();
        let every = std::env::var("SCOPEBUS_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(HEARTBEAT, Duration::from_secs);
        Progress {
            every,
            bar,
            lines: (!terminal).then(|| (now, Mutex::new(now))),
            done: AtomicU64::new(0),
            len,
            what,
        }
    }

    /// One more seed done.
    pub fn inc(&self) {
        self.bar.inc(1);
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let Some((began, last)) = &self.lines else {
            return;
        };
        let Ok(mut last) = last.try_lock() else {
            return;
        };
        if last.elapsed() < self.every {
            return;
        }
        *last = Instant::now();
        let elapsed = began.elapsed();
        let left = self.len - done.min(self.len);
        let eta = elapsed.as_secs_f64() / done as f64 * left as f64;
        // Not `eprintln!`, which panics when stderr is gone.
        let _ = writeln!(
            std::io::stderr(),
            "{}: {done} of {} seeds in {}, about {} left",
            self.what,
            self.len,
            words(elapsed.as_secs_f64()),
            words(eta)
        );
    }

    /// The run is over: the bar goes.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A duration in seconds, in the largest unit that keeps it readable
/// (`45 s`, `12 min`, `3.2 h`, `41 days`, `9.8e12 years`).
fn words(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s if s < 3.0e7 => format!("{:.0} days", s / 86_400.0),
        s => format!("{:.2e} years", s / 3.156e7),
    }
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn durations_read_in_a_sensible_unit() {
        assert_eq!(words(45.0), "45 s");
        assert_eq!(words(720.0), "12 min");
        assert_eq!(words(3.2 * 3600.0), "3.2 h");
        assert_eq!(words(41.0 * 86_400.0), "41 days");
        assert!(words(3.0e20).ends_with("years"));
    }
}
