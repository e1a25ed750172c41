//! The entry point of the `protocol` fuzz target (`fuzz/`), so that a
//! stable `cargo test` replays its corpus and crashes through the same code.

use crate::protocol::Response;
use crate::serve::Server;
use crate::stdio::{AdapterPool, StdioImpl};
use scopebus_sim::harness::{GenConfig, generate};
use scopebus_sim::iut::Implementation;
use scopebus_sim::reference::ReferenceImpl;
use std::time::Duration;

/// Ops per workload when the input is replayed as an adapter's replies.
pub const CLIENT_OPS: usize = 24;

/// The `protocol` target. `data` is read from both ends of the wire:
///
/// - as request lines, answered by the adapter server (`cargo xtask
///   adapter`, the reference bus behind the protocol): every line must get
///   exactly one reply (blank lines none), and every reply must be a line
///   the runner reads as a [`Response`];
/// - as reply lines (after a first byte that picks the seed, `b % 16`):
///   canned replies ([`AdapterPool::scripted`]) to a generated workload of
///   [`CLIENT_OPS`] ops, which the runner must turn into verdicts or clear
///   faults, whatever they say.
///
/// Panics (and unbounded allocation) are what the fuzzer looks for.
///
/// # Errors
/// What the server got wrong, as text.
pub fn protocol(data: &[u8]) -> Result<(), String> {
    server(data)?;
    client(data);
    Ok(())
}

/// `data` as requests to the adapter server.
fn server(data: &[u8]) -> Result<(), String> {
    let mut server = Server::new(|| Box::new(ReferenceImpl::new(None)) as Box<dyn Implementation>);
    for line in data.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let blank = line.trim().is_empty();
        let response = server.answer(&line);
        let response = match (response, blank) {
            (None, true) => continue,
            (None, false) => return Err(format!("no reply to the request {line:?}")),
            (Some(r), true) => return Err(format!("a reply to a blank line: {r:?}")),
            (Some(r), false) => r,
        };
        let text = serde_json::to_string(&response)
            .map_err(|e| format!("a reply that cannot be encoded: {e}"))?;
        if text.contains('\n') {
            return Err(format!("a reply that is not one line: {text}"));
        }
        let read: Response = serde_json::from_str(&text)
            .map_err(|e| format!("a reply the runner cannot read ({e}): {text}"))?;
        if read != response {
            return Err(format!("a reply that does not read back as sent: {text}"));
        }
        if matches!(response, Response::Bye { .. }) {
            break;
        }
    }
    Ok(())
}

/// `data` (after its first byte) as an adapter's replies.
fn client(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let replies: Vec<Vec<u8>> = rest.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let pool = AdapterPool::scripted(replies, Duration::from_secs(1));
    if pool.handshake().is_err() {
        return;
    }
    let mut imp = StdioImpl::new(pool);
    let _ = generate(
        u64::from(*first % 16),
        GenConfig { ops: CLIENT_OPS },
        &mut imp,
    );
}
