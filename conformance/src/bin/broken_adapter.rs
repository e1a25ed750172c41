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
//! `hang-runnable` (never answers its fifth `runnable`), `well` (no
//! misbehaviour).

use scopebus_conformance::protocol::Response;
use scopebus_conformance::serve::Server;
use scopebus_sim::iut::Implementation;
use scopebus_sim::reference::ReferenceImpl;
use std::io::{BufRead, Write};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "well".to_owned());
    let mut server = Server::new(|| Box::new(ReferenceImpl::new(None)) as Box<dyn Implementation>);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut runnables = 0;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let is_hello = line.contains("\"type\":\"hello\"");
        let is_op = line.contains("\"type\":\"op\"");
        if mode == "latin1-stderr"
            && std::io::stderr()
                .write_all(b"caf\xe9: a log line in Latin-1\n")
                .is_err()
        {
            // As a Python adapter would die of BrokenPipeError.
            std::process::exit(1);
        }
        if line.contains("\"type\":\"runnable\"") {
            runnables += 1;
            if mode == "hang-runnable" && runnables == 5 {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
        }
        let id = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["id"].as_u64())
            .unwrap_or(0);
        if mode == "idle-poll" && line.contains("\"type\":\"poll\"") {
            let _ = writeln!(
                out,
                "{{\"type\":\"stepped\",\"id\":{id},\"ran\":false,\"observations\":[]}}"
            );
            let _ = out.flush();
            continue;
        }
        if mode == "idle-poll" && line.contains("\"type\":\"preempt\"") {
            let _ = writeln!(out, "{{\"type\":\"preempted\",\"id\":{id},\"ran\":false}}");
            let _ = out.flush();
            continue;
        }
        let Some(response) = server.answer(&line) else {
            continue;
        };
        let mut text = serde_json::to_string(&response).unwrap_or_default();
        match mode.as_str() {
            "wrong-protocol" if is_hello => text = text.replace("\"protocol\":1", "\"protocol\":2"),
            "no-hello" if is_hello => {
                text = format!("{{\"type\":\"ok\",\"id\":{}}}", response.id())
            }
            "garbage" if is_op => text = "this is not JSON".to_owned(),
            "wrong-id" if is_op => {
                text = text.replacen(
                    &format!("\"id\":{}", response.id()),
                    &format!("\"id\":{}", response.id() + 1),
                    1,
                )
            }
            "extra-field" if is_op => text = text.replacen('{', "{\"surprise\":true,", 1),
            "long-line" if is_op => {
                text = format!(
                    "{{\"type\":\"ok\",\"id\":{},\"pad\":\"{}\"}}",
                    response.id(),
                    "x".repeat(2 << 20)
                )
            }
            "stdout-noise" if is_op => {
                let _ = writeln!(out, "INFO: a log line that belongs on stderr");
            }
            "crash" if is_op => {
                eprintln!("boom: simulated crash in the adapter");
                std::process::exit(3);
            }
            "hang" if is_op => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            _ => {}
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        if matches!(response, Response::Bye { .. }) {
            return;
        }
    }
}
