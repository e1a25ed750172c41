//! `scopebus-broken-adapter MODE`: the reference bus behind the adapter
//! protocol, broken on purpose at its first `op` request, so the runner's
//! tests can show what it does with each kind of broken adapter (the
//! runner's own mutants). Not a tool for users.
//!
//! Modes: `garbage` (a line that is not JSON), `wrong-id` (a reply to
//! another request), `extra-field` (a reply the schema does not allow),
//! `long-line` (a reply longer than the limit), `stdout-noise` (a log line on
//! stdout), `crash` (exits with status 3, saying why on stderr), `hang`
//! (never answers), `wrong-protocol` (claims protocol 2 in `hello`),
//! `no-hello` (answers `hello` with `ok`), `idle-poll` (answers every
//! `poll` and `preempt` with "nothing ran", though it lists the task as
//! runnable: a lie that would hide the races those requests test),
//! `latin1-stderr` (a well-behaved adapter whose stderr is not UTF-8),
//! `hang-runnable` (never answers its fifth `runnable`), `flaky` (in a
//! random fraction of runs, `SCOPEBUS_FLAKY_PERCENT` percent, 15 by
//! default, it loses the first event a subscriber receives: a bus that is
//! not deterministic), `shared-isolated` (opens isolated scopes as plain
//! nested ones: a bus without isolation, judged through the protocol),
//! `lose-after-drop` (after a subscription is dropped or cancelled, the
//! next event a subscriber of its type in its scope receives is lost: a
//! drop that disturbs its siblings), `hang-settle` (never answers a
//! `settle`), `setsid-child` (well behaved, but starts a child that leaves
//! its session and process group with `setsid()` and sleeps for ever,
//! holding the adapter's stdout open), `double-fork` (the same, through a
//! parent that exits at once, so the sleeper is an orphan before the
//! session ends), `slow` (answers every op `SCOPEBUS_SLOW_MS` late, 1,000
//! by default), `trickle` (writes each op's reply a byte at a time, the
//! whole taking longer than that), `stderr-flood` (writes 200 MB on stderr
//! at its first op, then behaves), `well` (no misbehaviour). With `SCOPEBUS_ALSO_ORPHAN`
//! set, any mode also starts the `setsid-child` sleeper.

use scopebus_conformance::protocol::Response;
use scopebus_conformance::serve::Server;
use scopebus_sim::iut::Implementation;
use scopebus_sim::reference::ReferenceImpl;
use std::io::{BufRead, Write};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "well".to_owned());
    match mode.as_str() {
        "orphan" => {
            // Out of the adapter's session and process group; stdout (the
            // runner's pipe) stays open as long as this sleeps.
            let _ = nix::unistd::setsid();
            hang();
        }
        "fork-orphan" => {
            let _ = start("orphan");
            return;
        }
        "setsid-child" => {
            let _ = start("orphan");
        }
        "double-fork" => {
            if let Ok(mut parent) = start("fork-orphan") {
                let _ = parent.wait();
            }
        }
        _ if std::env::var_os("SCOPEBUS_ALSO_ORPHAN").is_some() => {
            let _ = start("orphan");
        }
        _ => {}
    }
    let mut server = Server::new(|| Box::new(ReferenceImpl::new(None)) as Box<dyn Implementation>);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut broken = Broken::new(mode);
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let line = broken.request(line);
        if let Some(reply) = broken.answer_instead(&line) {
            let _ = writeln!(out, "{reply}");
            let _ = out.flush();
            continue;
        }
        let Some(response) = server.answer(&line) else {
            continue;
        };
        let text = serde_json::to_string(&response).unwrap_or_default();
        let text = broken.reply(&line, &response, text, &mut out);
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        if matches!(response, Response::Bye { .. }) {
            return;
        }
    }
}

/// The adapter's misbehaviour, and what it needs to remember.
struct Broken {
    mode: String,
    runnables: u32,
    flaky: Flaky,
    /// `lose-after-drop`: each subscription's scope and type, and the ones
    /// whose next receipt is lost.
    types: std::collections::HashMap<u64, String>,
    lose_after_drop: std::collections::HashSet<String>,
    /// `stderr-flood`: whether the flood was written.
    flooded: bool,
}

impl Broken {
    fn new(mode: String) -> Broken {
        Broken {
            flaky: Flaky::new(&mode),
            mode,
            runnables: 0,
            types: std::collections::HashMap::new(),
            lose_after_drop: std::collections::HashSet::new(),
            flooded: false,
        }
    }

    /// A request, as the broken adapter takes it in.
    fn request(&mut self, mut line: String) -> String {
        if self.mode == "shared-isolated" {
            line = line.replace(",\"isolated\":true", "");
        }
        if line.contains("\"type\":\"hello\"") || line.contains("\"type\":\"reset\"") {
            self.flaky.new_run();
            self.types.clear();
            self.lose_after_drop.clear();
        }
        if self.mode == "lose-after-drop" {
            self.note_drop(&line);
        }
        if self.mode == "latin1-stderr"
            && std::io::stderr()
                .write_all(b"caf\xe9: a log line in Latin-1\n")
                .is_err()
        {
            // As a Python adapter would die of BrokenPipeError.
            std::process::exit(1);
        }
        if line.contains("\"type\":\"runnable\"") {
            self.runnables += 1;
            if self.mode == "hang-runnable" && self.runnables == 5 {
                hang();
            }
        }
        line
    }

    /// `lose-after-drop`: remembers each subscription's scope and type, and,
    /// at a drop or cancel, that the next receipt of its siblings (same
    /// scope and type) is to be lost.
    fn note_drop(&mut self, line: &str) {
        let Ok(request) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        let op = &request["op"];
        let sub = op["sub"].as_u64();
        match (op["op"].as_str(), sub) {
            (Some("subscribe"), Some(sub)) => {
                if let Some(ty) = op["ty"].as_str() {
                    self.types.insert(sub, format!("{} {ty}", op["scope"]));
                }
            }
            (Some("drop_subscription" | "cancel_subscriber"), Some(sub)) => {
                if let Some(key) = self.types.get(&sub) {
                    self.lose_after_drop.insert(key.clone());
                }
            }
            _ => {}
        }
    }

    /// A reply the broken adapter gives without asking the bus.
    fn answer_instead(&self, line: &str) -> Option<String> {
        if self.mode != "idle-poll" {
            return None;
        }
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["id"].as_u64())
            .unwrap_or(0);
        if line.contains("\"type\":\"poll\"") {
            return Some(format!(
                "{{\"type\":\"stepped\",\"id\":{id},\"ran\":false,\"observations\":[]}}"
            ));
        }
        line.contains("\"type\":\"preempt\"")
            .then(|| format!("{{\"type\":\"preempted\",\"id\":{id},\"ran\":false}}"))
    }

    /// The bus's reply (`text`) to `line`, as the broken adapter gives it.
    fn reply(
        &mut self,
        line: &str,
        response: &Response,
        mut text: String,
        out: &mut impl Write,
    ) -> String {
        self.flaky.lose(&mut text);
        while !self.lose_after_drop.is_empty() {
            let (types, pending) = (&self.types, &self.lose_after_drop);
            let key =
                |o: &serde_json::Value| o["sub"].as_u64().and_then(|s| types.get(&s)).cloned();
            let Some(lost) =
                lose_first_receipt(&mut text, |o| key(o).is_some_and(|k| pending.contains(&k)))
            else {
                break;
            };
            if let Some(k) = key(&lost) {
                self.lose_after_drop.remove(&k);
            }
        }
        let id = response.id();
        let is_hello = line.contains("\"type\":\"hello\"");
        let is_op = line.contains("\"type\":\"op\"");
        match self.mode.as_str() {
            "wrong-protocol" if is_hello => text.replace("\"protocol\":1", "\"protocol\":2"),
            "no-hello" if is_hello => format!("{{\"type\":\"ok\",\"id\":{id}}}"),
            "garbage" if is_op => "this is not JSON".to_owned(),
            "wrong-id" if is_op => {
                text.replacen(&format!("\"id\":{id}"), &format!("\"id\":{}", id + 1), 1)
            }
            "extra-field" if is_op => text.replacen('{', "{\"surprise\":true,", 1),
            "long-line" if is_op => format!(
                "{{\"type\":\"ok\",\"id\":{id},\"pad\":\"{}\"}}",
                "x".repeat(2 << 20)
            ),
            "stdout-noise" if is_op => {
                let _ = writeln!(out, "INFO: a log line that belongs on stderr");
                text
            }
            "crash" if is_op => {
                eprintln!("boom: simulated crash in the adapter");
                std::process::exit(3);
            }
            // Crashes in a poll of a subscriber the runner chose, after it
            // ran (its observations are lost with it).
            "crash-on-poll" if line.contains("\"type\":\"poll\"") && line.contains("\"sub#") => {
                eprintln!("boom: simulated crash in a poll");
                std::process::exit(3);
            }
            "hang" if is_op => hang(),
            "hang-settle" if is_op && line.contains("\"op\":\"settle\"") => hang(),
            "slow" | "trickle" | "stderr-flood" if is_op => self.late(text, out),
            _ => text,
        }
    }

    /// The reply to an op of the modes that answer late or noisily: `slow`,
    /// `trickle`, `stderr-flood`.
    fn late(&mut self, text: String, out: &mut impl Write) -> String {
        let late = std::time::Duration::from_millis(env_ms("SCOPEBUS_SLOW_MS"));
        match self.mode.as_str() {
            // Just over the runner's timeout.
            "slow" => {
                std::thread::sleep(late);
                text
            }
            // The reply a byte at a time, each well within the timeout, the
            // whole line not.
            "trickle" => {
                for byte in text.bytes().take(12) {
                    let _ = out.write_all(&[byte]);
                    let _ = out.flush();
                    std::thread::sleep(late / 8);
                }
                text.chars().skip(12).collect()
            }
            // 200 MB on stderr, once, then a good reply.
            _ if !self.flooded => {
                self.flooded = true;
                let chunk = vec![b'x'; 1 << 20];
                let mut err = std::io::stderr().lock();
                for _ in 0..200 {
                    let _ = err.write_all(&chunk);
                }
                let _ = err.write_all(b"\n");
                text
            }
            _ => text,
        }
    }
}

/// Starts this program again in `mode`, sharing its standard streams.
fn start(mode: &str) -> std::io::Result<std::process::Child> {
    std::process::Command::new(std::env::current_exe()?)
        .arg(mode)
        .spawn()
}

/// Milliseconds from the environment variable `name` (1,000 if unset).
fn env_ms(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn hang() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// The `flaky` mode: in some runs, chosen at random (not by anything in the
/// requests), the first `received` observation is dropped, as a bus that
/// loses an event now and then would.
struct Flaky {
    on: bool,
    percent: u64,
    random: std::collections::hash_map::RandomState,
    runs: u64,
    lose_next: bool,
}

impl Flaky {
    fn new(mode: &str) -> Flaky {
        let percent = std::env::var("SCOPEBUS_FLAKY_PERCENT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(15);
        Flaky {
            on: mode == "flaky",
            percent,
            random: std::collections::hash_map::RandomState::new(),
            runs: 0,
            lose_next: false,
        }
    }

    /// A run starts: decide, at random, whether it loses an event.
    fn new_run(&mut self) {
        use std::hash::BuildHasher;
        self.runs += 1;
        self.lose_next = self.on && self.random.hash_one(self.runs) % 100 < self.percent;
    }

    /// Drops the first `received` observation of `reply`, if this run is
    /// to lose one and has not yet.
    fn lose(&mut self, reply: &mut String) {
        if self.lose_next && lose_first_receipt(reply, |_| true).is_some() {
            self.lose_next = false;
        }
    }
}

/// Drops the first `received` observation of `reply` that `pick` picks,
/// and gives it back.
fn lose_first_receipt(
    reply: &mut String,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let mut value = serde_json::from_str::<serde_json::Value>(reply).ok()?;
    let list = value
        .get_mut("observations")
        .and_then(serde_json::Value::as_array_mut)?;
    let at = list
        .iter()
        .position(|o| o["kind"] == "received" && pick(o))?;
    let lost = list.remove(at);
    *reply = value.to_string();
    Some(lost)
}
