//! No adapter process outlives the runner: hostile adapters whose children
//! leave their session and process group (`setsid`), or are orphaned before
//! the session ends (a double fork), are cleaned up at the end of a run, on
//! a timeout, and when the runner is interrupted (SIGINT), terminated
//! (SIGTERM) or hung up on (SIGHUP). Every test marks the processes it
//! starts with an environment variable of its own, and checks that none is
//! left (killing any it finds, so that a failing test leaks nothing either).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An adapter command (a shell line, as `--impl` takes it) that starts two
/// sleepers outside its process group, one of them orphaned at once, then
/// becomes `tail` (`exec`).
fn hostile(tail: &str) -> String {
    format!(
        "sh -c 'setsid sleep 3600 & (setsid sleep 3601 &); exec {tail}' {}",
        env!("CARGO_BIN_EXE_xtask")
    )
}

/// The processes alive with `MARK=token` in their environment.
fn marked(token: &str) -> Vec<u32> {
    let entry = format!("SCOPEBUS_TEST_MARK={token}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Asserts that no process marked `token` is left (after a moment for the
/// last kills to land), killing any that is.
fn assert_nothing_left(token: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = marked(token);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = marked(token);
    }
    for pid in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(left.is_empty(), "{token}: processes left behind: {left:?}");
}

fn xtask(token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(args)
        .env("SCOPEBUS_TEST_MARK", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn token(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn descendants_that_left_the_process_group_do_not_outlive_the_run() {
    let token = token("end");
    let adapter = hostile("\"$0\" adapter");
    let o = xtask(
        &token,
        &[
            "conformance",
            "--impl",
            &adapter,
            "--seeds",
            "4",
            "--ops",
            "20",
            "--jobs",
            "2",
        ],
    )
    .output()
    .expect("runs");
    // Four seeds exercise too little to judge: the point is what is left.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_nothing_left(&token);
}

#[test]
fn descendants_of_an_adapter_that_hangs_are_killed_with_it() {
    let token = token("hang");
    let adapter = hostile("sleep 3602");
    let started = Instant::now();
    let o = xtask(
        &token,
        &["conformance", "--impl", &adapter, "--timeout", "300"],
    )
    .output()
    .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("failed the handshake"), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_nothing_left(&token);
}

/// Starts a long run on the hostile adapter, waits until its adapters and
/// their sleepers run, sends `signal`, and checks the exit code and that
/// nothing is left.
fn interrupted_by(signal: &str, number: i32) {
    let token = token(signal);
    let adapter = hostile("\"$0\" adapter");
    let mut child: Child = xtask(
        &token,
        &[
            "conformance",
            "--impl",
            &adapter,
            "--seeds",
            "1000000",
            "--jobs",
            "2",
        ],
    )
    .spawn()
    .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    // The runner itself, at least one adapter and its two sleepers.
    while marked(&token).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        marked(&token).len() >= 4,
        "the run did not start its adapters"
    );
    let pid = child.id().to_string();
    let _ = Command::new("kill")
        .args([&format!("-{}", signal.trim_start_matches("SIG")), &pid])
        .status();
    let waited = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if waited.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            break child.wait().expect("waits");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr_of(&mut child);
    assert_nothing_left(&token);
    assert_eq!(status.code(), Some(128 + number), "{signal}: {stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {signal}")),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_runner_leaves_nothing_behind() {
    interrupted_by("SIGINT", 2);
}

#[test]
fn a_terminated_runner_leaves_nothing_behind() {
    interrupted_by("SIGTERM", 15);
}

#[test]
fn a_runner_hung_up_on_leaves_nothing_behind() {
    interrupted_by("SIGHUP", 1);
}

/// A runner whose stderr is gone (a closed pipe: the test or CI step that
/// started it died) still stops on SIGTERM: nothing it says on the way out
/// may stop it from exiting.
#[test]
fn a_runner_whose_stderr_is_gone_still_stops_on_a_signal() {
    let token = token("no-stderr");
    let mut child = xtask(&token, &["conformance", "--seeds", "100000000"])
        .spawn()
        .expect("starts");
    drop(child.stdout.take());
    drop(child.stderr.take());
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let waited = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break Some(status);
        }
        if waited.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.and_then(|s| s.code()), Some(143), "{status:?}");
    assert_nothing_left(&token);
}

/// Fakes of cargo (for `CARGO`) and cargo-mutants (first on the `PATH`) in
/// `dir`, enough for `mutants --external` to reach its cargo-mutants run:
/// cargo lists the two packages the killer needs and passes every test;
/// cargo-mutants is release 27.1.0 and generates nothing, and its run
/// writes `started` and waits. Sent SIGINT, a `tidy` one writes `cleaned`
/// and exits, as the real one removes its scratch copies; another ignores
/// it. With `SLOW_KILLER` in the environment, cargo's `test` (the killer's
/// unmutated run) writes `killer` and waits instead.
fn fake_tools(dir: &std::path::Path, tidy: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("makes the fakes' directory");
    let on_int = if tidy {
        format!("touch '{}/cleaned'; exit 130", dir.display())
    } else {
        String::new()
    };
    let mutants = format!(
        "#!/bin/sh\ncase \"$2\" in\n  --version) echo 'cargo-mutants 27.1.0'; exit 0;;\n  --list) echo '[]'; exit 0;;\nesac\ntrap \"{on_int}\" INT\ntouch '{}/started'\nsleep 3600 &\nwhile :; do wait; done\n",
        dir.display()
    );
    let cargo = format!(
        "#!/bin/sh\n[ \"$1\" = metadata ] && echo '{{\"packages\":[{{\"name\":\"scopebus\",\"targets\":[]}},{{\"name\":\"scopebus-conformance\",\"targets\":[{{\"name\":\"default_run\",\"kind\":[\"test\"]}}]}}]}}'\nif [ \"$1 $2\" != 'test --no-run' ] && [ \"$1\" = test ] && [ -n \"$SLOW_KILLER\" ]; then touch '{}/killer'; sleep 3600 & wait; fi\nexit 0\n",
        dir.display()
    );
    for (name, text) in [
        ("cargo-mutants", mutants.as_str()),
        ("cargo", cargo.as_str()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("writes a fake");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("makes it executable");
    }
}

/// `mutants --external` on the fakes in `dir`, started, once the fake
/// cargo-mutants runs (or, with `slow_killer`, once the killer's unmutated
/// run does, which then waits).
fn external_on_fakes(token: &str, dir: &std::path::Path, slow_killer: bool) -> Child {
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = xtask(token, &["mutants", "--external", "--jobs", "1"]);
    command
        .env("PATH", path)
        .env("CARGO", dir.join("cargo"))
        .env("CARGO_TARGET_DIR", dir.join("target"));
    if slow_killer {
        command.env("SLOW_KILLER", "1");
    }
    let child = command.spawn().expect("starts");
    let ready = dir.join(if slow_killer { "killer" } else { "started" });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready.exists(), "the fake never wrote {}", ready.display());
    child
}

/// A fresh directory for test `name`'s fakes, with them in it, and the
/// token marking its processes.
fn fakes(name: &str, tidy: bool) -> (String, std::path::PathBuf) {
    let token = token(name);
    let dir = std::env::temp_dir().join(&token);
    let _ = std::fs::remove_dir_all(&dir);
    fake_tools(&dir, tidy);
    (token, dir)
}

/// What `child` (exited) wrote to its piped stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    stderr
}

/// Sends `signal` (`TERM`, `INT`) to `pid` alone.
fn send(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// Waits at most `limit` for `child`; kills it past that. The exit code,
/// or `None` if it had to be killed.
fn exit_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let waited = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status.code();
        }
        if waited.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Interrupted, `mutants --external` passes the interrupt on to
/// cargo-mutants and lets it clean up (remove its scratch copies) before
/// anything is killed: nothing is left, and no scratch copy either.
#[test]
fn an_interrupted_mutants_run_lets_cargo_mutants_clean_up() {
    let (token, dir) = fakes("grace", true);
    let mut child = external_on_fakes(&token, &dir, false);
    send("INT", child.id());
    let code = exit_within(&mut child, Duration::from_secs(20));
    let stderr = stderr_of(&mut child);
    assert_nothing_left(&token);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        dir.join("cleaned").exists(),
        "cargo-mutants was killed before it could clean up: {stderr}"
    );
    assert!(stderr.contains("letting 1 process clean up"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cargo-mutants that does not stop when interrupted is killed once its
/// grace is over, or at once when the run is signalled a second time.
#[test]
fn a_second_signal_cuts_the_grace_short() {
    let (token, dir) = fakes("grace-cut", false);
    let mut child = external_on_fakes(&token, &dir, false);
    send("TERM", child.id());
    std::thread::sleep(Duration::from_secs(1));
    let in_grace = child.try_wait().expect("waits").is_none();
    send("TERM", child.id());
    let code = exit_within(&mut child, Duration::from_secs(10));
    assert_nothing_left(&token);
    let stderr = stderr_of(&mut child);
    assert!(in_grace, "killed at once: cargo-mutants was given no grace");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("killed before it finished: cargo-mutants"),
        "the user is not told what may be left: {stderr}"
    );
    assert!(!dir.join("cleaned").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Interrupted before cargo-mutants starts (the killer's unmutated run is
/// going), the run exits as interrupted: the killer's death is the
/// signal's doing, not reported as the killer failing.
#[test]
fn an_interrupt_during_the_unmutated_killer_is_not_a_failure() {
    let (token, dir) = fakes("grace-killer", true);
    let mut child = external_on_fakes(&token, &dir, true);
    send("INT", child.id());
    let code = exit_within(&mut child, Duration::from_secs(20));
    let stderr = stderr_of(&mut child);
    assert_nothing_left(&token);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
