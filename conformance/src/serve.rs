//! The protocol's adapter side, for any in-process implementation: reads
//! requests from a reader, answers on a writer. `cargo xtask adapter
//! reference` serves the reference bus this way (`--impl reference-stdio`),
//! which proves the protocol path against a known-good implementation; any
//! Rust bus wrapped in an [`Implementation`] can be served the same way.
//!
//! It never panics on input: a line that is not a request is answered with a
//! `malformed` error, and the session goes on.

use crate::protocol::{
    ErrorCode, PROTOCOL_VERSION, Request, Response, WireError, WireObservation, WireResult,
};
use scopebus_sim::catalogue::EventType;
use scopebus_sim::iut::{Fault, Implementation};
use scopebus_sim::op::TaskRef;
use std::io::{BufRead, Write};

/// Serves requests from `input` until `bye` or end of input, building a
/// fresh implementation with `make` at the start and at every `reset`.
///
/// # Errors
/// Only I/O errors on `input` or `output`.
pub fn serve<F: Fn() -> Box<dyn Implementation>>(
    make: F,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    let mut server = Server::new(make);
    let mut input = input;
    while let Some(line) = next_line(&mut input)? {
        let response = match line {
            Ok(line) => server.answer(&line),
            Err(why) => Some(Response::Error {
                id: 0,
                error: WireError::new(ErrorCode::Malformed, why),
            }),
        };
        let Some(response) = response else {
            continue;
        };
        let text =
            serde_json::to_string(&response).map_err(|e| std::io::Error::other(e.to_string()))?;
        writeln!(output, "{text}")?;
        output.flush()?;
        if matches!(response, Response::Bye { .. }) {
            break;
        }
    }
    Ok(())
}

/// The longest request line read, in bytes: requests are a few hundred
/// bytes; a longer line is answered `malformed` and skipped, never
/// buffered whole.
pub const MAX_REQUEST_LINE: usize = 1 << 20;

/// The next line of `input` without its newline: `Ok(text)`, or `Err(why)`
/// for a line over [`MAX_REQUEST_LINE`] (the rest of it is skipped) or not
/// UTF-8; `None` at the end of input.
///
/// # Errors
/// I/O errors of `input`.
fn next_line(input: &mut impl BufRead) -> std::io::Result<Option<Result<String, String>>> {
    let mut bytes = Vec::new();
    let limit = MAX_REQUEST_LINE as u64 + 1;
    let read = std::io::Read::take(&mut *input, limit).read_until(b'\n', &mut bytes)?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.last() != Some(&b'\n') && bytes.len() as u64 == limit {
        // Skip to the end of the line, a buffer at a time.
        loop {
            let buffer = input.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            match buffer.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    input.consume(i + 1);
                    break;
                }
                None => {
                    let n = buffer.len();
                    input.consume(n);
                }
            }
        }
        let why = format!(
            "a request line longer than {MAX_REQUEST_LINE} bytes; requests are one short JSON object per line"
        );
        return Ok(Some(Err(why)));
    }
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(Some(String::from_utf8(bytes).map_err(|e| {
        format!(
            "a request line that is not UTF-8 (byte {}); requests are JSON text",
            e.utf8_error().valid_up_to()
        )
    })))
}

/// The adapter's side of a session, one request line at a time.
pub struct Server<F: Fn() -> Box<dyn Implementation>> {
    make: F,
    imp: Box<dyn Implementation>,
}

impl<F: Fn() -> Box<dyn Implementation>> Server<F> {
    /// A session on a fresh implementation from `make` (and a fresh one at
    /// every `reset`).
    pub fn new(make: F) -> Self {
        let imp = make();
        Server { make, imp }
    }

    /// The reply to one request line; `None` for a blank line.
    pub fn answer(&mut self, line: &str) -> Option<Response> {
        if line.trim().is_empty() {
            return None;
        }
        Some(match serde_json::from_str::<Request>(line) {
            Ok(request) => handle(&mut self.imp, &self.make, request),
            Err(e) => Response::Error {
                id: id_of(line),
                error: WireError::new(ErrorCode::Malformed, format!("not a request: {e}")),
            },
        })
    }
}

/// The `id` of a line that is not a valid request, if it has one.
fn id_of(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_u64()))
        .unwrap_or(0)
}

fn observations(imp: &mut Box<dyn Implementation>) -> Vec<WireObservation> {
    imp.take_observations()
        .iter()
        .map(WireObservation::from)
        .collect()
}

fn fault_error(fault: Fault) -> WireError {
    match fault {
        Fault::DidNotSettle { .. } => WireError::new(ErrorCode::DidNotSettle, fault.to_string()),
        Fault::Protocol(m) => WireError::new(ErrorCode::UnknownHandle, m),
        other => WireError::new(ErrorCode::Internal, other.to_string()),
    }
}

fn handle(
    imp: &mut Box<dyn Implementation>,
    make: &impl Fn() -> Box<dyn Implementation>,
    request: Request,
) -> Response {
    let id = request.id();
    let error = |fault| Response::Error {
        id,
        error: fault_error(fault),
    };
    match request {
        Request::Hello {
            protocol,
            catalogue,
            ..
        } => hello(imp, id, protocol, &catalogue),
        Request::Reset { .. } => {
            *imp = make();
            Response::Ok {
                id,
                observations: Vec::new(),
            }
        }
        Request::Op { op, .. } => match imp.apply(&op) {
            Ok(reply) => Response::Result {
                id,
                result: WireResult::from_reply(&reply),
                observations: observations(imp),
            },
            Err(fault) => error(fault),
        },
        Request::Step { .. } => stepped(imp, id, TaskRef::Any),
        Request::Poll { task, .. } => stepped(imp, id, task),
        Request::Runnable { .. } => Response::Runnable {
            id,
            tasks: imp.runnable(),
        },
        Request::Wake { task, .. } => match imp.wake(task) {
            Ok(existed) => Response::Woken { id, existed },
            Err(fault) => error(fault),
        },
        Request::Preempt { task, with, .. } => match imp.poll_preempted(task, &with) {
            Ok(preempted) => preempted_reply(imp, id, preempted),
            Err(fault) => error(fault),
        },
        Request::Migrate { task, .. } => match imp.migrate(task) {
            Ok(existed) => Response::Woken { id, existed },
            Err(fault) => error(fault),
        },
        Request::Bye { .. } => Response::Bye { id },
    }
}

/// The handshake: the protocol must be this adapter's, and every
/// catalogue type known.
fn hello(
    imp: &mut Box<dyn Implementation>,
    id: u64,
    protocol: u32,
    catalogue: &[String],
) -> Response {
    if protocol != PROTOCOL_VERSION {
        return Response::Error {
            id,
            error: WireError::new(
                ErrorCode::UnsupportedProtocol,
                format!("this adapter speaks protocol {PROTOCOL_VERSION}, the runner {protocol}"),
            ),
        };
    }
    if let Some(unknown) = catalogue.iter().find(|n| n.parse::<EventType>().is_err()) {
        return Response::Error {
            id,
            error: WireError::new(
                ErrorCode::NotSupported,
                format!("the catalogue type `{unknown}` is not known to this adapter"),
            ),
        };
    }
    let info = imp.info();
    Response::Hello {
        id,
        protocol: PROTOCOL_VERSION,
        name: info.name,
        language: info.language,
        version: info.version,
        runtime: info.runtime,
        capabilities: info
            .capabilities
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        emulates: info.emulates.iter().map(|e| e.name().to_owned()).collect(),
    }
}

/// The reply to a preempted poll: the observations before the interjected
/// op, its result, and those after.
fn preempted_reply(
    imp: &mut Box<dyn Implementation>,
    id: u64,
    preempted: Option<scopebus_sim::iut::Preempted>,
) -> Response {
    let Some(p) = preempted else {
        return Response::Preempted {
            id,
            ran: false,
            result: None,
            before: Vec::new(),
            observations: Vec::new(),
            at_yield_point: false,
        };
    };
    let mut all = observations(imp);
    let after = all.split_off(p.observations_before.min(all.len()));
    Response::Preempted {
        id,
        ran: true,
        result: p.reply.as_ref().map(WireResult::from_reply),
        before: all,
        observations: after,
        at_yield_point: p.at_yield_point,
    }
}

fn stepped(imp: &mut Box<dyn Implementation>, id: u64, task: TaskRef) -> Response {
    match imp.poll(task) {
        Ok(ran) => Response::Stepped {
            id,
            ran,
            observations: observations(imp),
        },
        Err(fault) => Response::Error {
            id,
            error: fault_error(fault),
        },
    }
}
