//! The runner's side of the adapter protocol: implementations in other
//! processes, in any language, driven over their stdin and stdout
//! (PROTOCOL.md).
//!
//! Adapter processes are pooled: one per worker thread at most, each `reset`
//! between runs, so that a slow-starting adapter (Python importing its
//! package) starts once, not once per seed. A process that broke (crashed,
//! hung, spoke garbage) is killed and never reused.
//!
//! Every failure mode of a foreign process becomes a [`Fault`] that says what
//! was expected and what came instead, with the tail of the adapter's stderr:
//! nothing hangs the runner (every reply has a deadline), nothing panics it,
//! and nothing is passed by default.

use crate::protocol::{
    ErrorCode, MAX_LINE, PROTOCOL_VERSION, Request, Response, WireObservation, WireResult,
    catalogue,
};
use crate::{deadline, reaper};
use command_group::{CommandGroup, GroupChild};
use scopebus_sim::emulation::Emulated;
use scopebus_sim::iut::{Fault, ImplInfo, Implementation, Preempted};
use scopebus_sim::op::{Interjection, Observation, Op, OpError, Reply, TaskRef};
use scopebus_sim::rules::{Capabilities, Capability};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Lines of the adapter's stderr kept for reports.
const STDERR_TAIL: usize = 40;

/// What a report says of an adapter that wrote nothing on stderr.
const NO_STDERR: &str = "(nothing on stderr)";

/// Longer stderr lines are kept in pieces of this many bytes.
const STDERR_LINE: usize = 4096;

/// How to start an adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
}

impl AdapterCommand {
    /// A command from a shell-style line, e.g. `python3 adapter.py --fast`.
    ///
    /// # Errors
    /// If the line is empty or its quoting is unbalanced.
    pub fn parse(line: &str) -> Result<AdapterCommand, String> {
        let words = shlex::split(line)
            .ok_or_else(|| format!("cannot split `{line}` into words: unbalanced quotes"))?;
        let mut words = words.into_iter();
        let program = words
            .next()
            .ok_or_else(|| "the adapter command is empty".to_owned())?;
        Ok(AdapterCommand {
            program: program.into(),
            args: words.collect(),
            env: Vec::new(),
        })
    }

    /// The command as one shell-quoted line, for messages and repros.
    pub fn display(&self) -> String {
        let mut words = vec![self.program.display().to_string()];
        words.extend(self.args.iter().cloned());
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
    }
}

/// One line of the adapter's stdout, as the reader thread saw it.
enum Line {
    Text(String),
    TooLong,
    NotUtf8,
    Eof,
    Failed(String),
}

/// Splits one raw line (up to and including its newline, if any) as the
/// reader does: too long, not UTF-8, or text without its line ending.
fn classify(mut buf: Vec<u8>) -> Line {
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
        return Line::TooLong;
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    match String::from_utf8(buf) {
        Ok(text) => Line::Text(text),
        Err(_) => Line::NotUtf8,
    }
}

/// Where an adapter's replies come from.
enum Io {
    /// A child process, leader of its own process group (so that killing
    /// it also kills what a wrapper script started): requests go to its
    /// stdin.
    Child {
        child: GroupChild,
        stdin: ChildStdin,
        /// Whether its session is open: it is registered with the
        /// [`reaper`], and not yet reaped (so its pid is still its own).
        open: bool,
    },
    /// Canned replies, in order, whatever the requests (for fuzzing the
    /// runner's reply handling, and for tests): see [`AdapterPool::scripted`].
    Script,
}

/// A running adapter process.
struct Process {
    io: Io,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    next_id: u64,
    transcript: Vec<String>,
    /// The handshake's request and reply, which begin every transcript.
    handshake: Vec<String>,
    command: String,
}

impl Process {
    fn spawn(command: &AdapterCommand) -> Result<Process, String> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args)
            .envs(command.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = reaper::spawn_registered(&mut cmd, |c| c.group_spawn(), |c| c.id())
            .map_err(|e| format!("cannot start the adapter `{}`: {e}", command.display()))?;
        let inner = child.inner();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (inner.stdin.take(), inner.stdout.take(), inner.stderr.take())
        else {
            reaper::end_session(child.id());
            let _ = child.kill();
            let _ = child.wait();
            return Err("the adapter's standard streams could not be captured".to_owned());
        };
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                let read = (&mut reader)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut buf);
                let line = match read {
                    Ok(0) => Line::Eof,
                    Ok(_) => classify(buf),
                    Err(e) => Line::Failed(e.to_string()),
                };
                let last = !matches!(line, Line::Text(_));
                if tx.send(line).is_err() || last {
                    return;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let keep = tail.clone();
        std::thread::spawn(move || {
            // Read to the end, whatever comes: an adapter whose stderr is
            // not UTF-8, or has no newlines, must not be cut off (it would
            // die of a broken pipe) nor grow the runner's memory.
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match (&mut reader)
                    .take(STDERR_LINE as u64)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                let mut tail = keep.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Ok(Process {
            io: Io::Child {
                child,
                stdin,
                open: true,
            },
            lines,
            stderr: tail,
            next_id: 0,
            transcript: Vec::new(),
            handshake: Vec::new(),
            command: command.display(),
        })
    }

    /// A process that answers with `replies`, one per request, in order,
    /// then is gone (as if it had exited).
    fn scripted(replies: &[Vec<u8>], name: &str) -> Process {
        let (tx, lines) = channel();
        for reply in replies {
            let line = classify(reply.clone());
            let last = !matches!(line, Line::Text(_));
            let _ = tx.send(line);
            if last {
                break;
            }
        }
        Process {
            io: Io::Script,
            lines,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
            next_id: 0,
            transcript: Vec::new(),
            handshake: Vec::new(),
            command: name.to_owned(),
        }
    }

    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.is_empty() {
            NO_STDERR.to_owned()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }

    /// The adapter died: wait a little for its exit status.
    fn crashed(&mut self, doing: &str) -> Fault {
        let Io::Child { child, .. } = &mut self.io else {
            return Fault::Crashed {
                status: format!("the canned replies ran out, while {doing}"),
                stderr_tail: self.stderr_tail(),
            };
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped();
                    break status.to_string();
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    self.kill();
                    break "it closed its stdout but kept running; killed".to_owned();
                }
                Err(e) => {
                    self.kill();
                    break format!("unknown ({e})");
                }
            }
        };
        // Give the stderr reader a moment to collect the last words.
        std::thread::sleep(Duration::from_millis(50));
        Fault::Crashed {
            status: format!("{status}, while {doing}"),
            stderr_tail: self.stderr_tail(),
        }
    }

    /// Ends the session: the adapter and every process it started are
    /// killed ([`reaper`]), and the adapter is reaped. Does nothing the
    /// second time (its pid may belong to another process by then).
    fn kill(&mut self) {
        if let Io::Child { child, open, .. } = &mut self.io
            && *open
        {
            *open = false;
            reaper::end_session(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The adapter exited by itself and was reaped: its session is over,
    /// and what it left behind is killed if it can still be found.
    fn reaped(&mut self) {
        if let Io::Child { child, open, .. } = &mut self.io
            && *open
        {
            *open = false;
            reaper::exited(child.id());
        }
    }

    /// Whether the process has exited (a scripted one always may go).
    fn exited(&mut self) -> bool {
        let gone = match &mut self.io {
            Io::Child { child, .. } => matches!(child.try_wait(), Ok(Some(_))),
            Io::Script => true,
        };
        if gone {
            self.reaped();
        }
        gone
    }

    /// The adapter's pid, while its session is open.
    fn pid(&self) -> Option<u32> {
        match &self.io {
            Io::Child { child, open, .. } if *open => Some(child.id()),
            _ => None,
        }
    }

    /// Sends one request and waits for its reply.
    fn call(
        &mut self,
        request: impl FnOnce(u64) -> Request,
        timeout: Duration,
    ) -> Result<Response, Fault> {
        let id = self.next_id;
        self.next_id += 1;
        let request = request(id);
        let text = serde_json::to_string(&request)
            .map_err(|e| Fault::Protocol(format!("cannot encode a request: {e}")))?;
        let summary = summarize(&text);
        self.transcript.push(text.clone());
        let written = match &mut self.io {
            Io::Child { stdin, .. } => writeln!(stdin, "{text}").and_then(|()| stdin.flush()),
            Io::Script => Ok(()),
        };
        if written.is_err() {
            return Err(self.crashed(&format!("receiving {summary}")));
        }
        let line = self.reply_line(&summary, timeout)?;
        self.transcript.push(line.clone());
        let response: Response = match serde_json::from_str(&line) {
            Ok(response) => response,
            Err(e) => {
                return Err(self.broke_protocol(
                    &summary,
                    format!(
                        "a reply that does not fit the protocol ({e}): {}",
                        summarize(&line)
                    ),
                ));
            }
        };
        if response.id() != id {
            return Err(self.broke_protocol(
                &summary,
                format!(
                    "a reply with id {} where id {id} was expected: {}",
                    response.id(),
                    summarize(&line)
                ),
            ));
        }
        Ok(response)
    }

    /// The next line the adapter writes, within `timeout`, in reply to the
    /// request `summary` describes.
    fn reply_line(&mut self, summary: &str, timeout: Duration) -> Result<String, Fault> {
        let line = match deadline::recv(&self.lines, timeout) {
            deadline::Waited::Got(line) => line,
            deadline::Waited::Cut => {
                self.kill();
                return Err(Fault::OutOfTime {
                    request: summary.to_owned(),
                });
            }
            deadline::Waited::TimedOut => {
                self.kill();
                return Err(Fault::Hung {
                    request: summary.to_owned(),
                    waited_ms: timeout.as_millis() as u64,
                });
            }
            deadline::Waited::Gone => Line::Eof,
        };
        let what = match line {
            Line::Text(line) => return Ok(line),
            Line::Eof => return Err(self.crashed(&format!("answering {summary}"))),
            Line::TooLong => format!("a reply line longer than {MAX_LINE} bytes"),
            Line::NotUtf8 => "a reply line that is not UTF-8".to_owned(),
            Line::Failed(e) => format!("reading its stdout failed: {e}"),
        };
        Err(self.broke_protocol(summary, what))
    }

    /// The adapter broke the protocol answering `summary`: it is killed, and
    /// the fault says what it did and what it wrote on stderr last (which
    /// may explain it).
    fn broke_protocol(&mut self, summary: &str, what: String) -> Fault {
        self.kill();
        let tail = self.stderr_tail();
        let tail = if tail == NO_STDERR {
            String::new()
        } else {
            format!("\nits stderr ends with:\n{tail}")
        };
        Fault::Protocol(format!(
            "{what} (in reply to {summary}; adapter `{}`){tail}",
            self.command
        ))
    }
}

/// At most 300 characters of a line, for messages.
fn summarize(line: &str) -> String {
    if line.chars().count() <= 300 {
        format!("`{line}`")
    } else {
        let head: String = line.chars().take(300).collect();
        format!("`{head}...` ({} bytes)", line.len())
    }
}

/// A reply of an unexpected `type`.
fn unexpected(expected: &str, got: &Response) -> Fault {
    match got {
        Response::Error { error, .. }
            if matches!(
                error.code,
                ErrorCode::UnknownHandle | ErrorCode::Malformed | ErrorCode::UnsupportedProtocol
            ) =>
        {
            Fault::Protocol(format!("the adapter refused the request: {error}"))
        }
        Response::Error { error, .. } if error.code == ErrorCode::DidNotSettle => {
            Fault::DidNotSettle { polls: 0 }
        }
        Response::Error { error, .. } => Fault::Panicked(format!("the adapter failed: {error}")),
        other => Fault::Protocol(format!(
            "a `{}` reply where `{expected}` was expected",
            other.kind()
        )),
    }
}

/// A pool of adapter processes for one command.
pub struct AdapterPool {
    command: AdapterCommand,
    /// Canned replies instead of a process ([`AdapterPool::scripted`]).
    script: Option<Vec<Vec<u8>>>,
    timeout: Duration,
    idle: Mutex<Vec<Process>>,
    info: OnceLock<Result<ImplInfo, String>>,
}

impl AdapterPool {
    /// A pool for `command`; each reply must come within `timeout` (`settle`
    /// gets ten times as long).
    pub fn new(command: AdapterCommand, timeout: Duration) -> Arc<AdapterPool> {
        Arc::new(AdapterPool {
            command,
            script: None,
            timeout,
            idle: Mutex::new(Vec::new()),
            info: OnceLock::new(),
        })
    }

    /// A pool whose "adapter" answers every request with the next of
    /// `replies` (raw lines, without their newline), whatever the request,
    /// and is gone when they run out: the runner's reply handling, driven
    /// without a process. Every new adapter of the pool starts the replies
    /// over. For fuzzing and tests.
    pub fn scripted(replies: Vec<Vec<u8>>, timeout: Duration) -> Arc<AdapterPool> {
        Arc::new(AdapterPool {
            command: AdapterCommand {
                program: PathBuf::from("(canned replies)"),
                args: Vec::new(),
                env: Vec::new(),
            },
            script: Some(replies),
            timeout,
            idle: Mutex::new(Vec::new()),
            info: OnceLock::new(),
        })
    }

    /// How long each reply may take (`settle`: ten times as long).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The command, as a line.
    pub fn command(&self) -> String {
        self.command.display()
    }

    /// Starts an adapter and shakes hands (once; the result is kept).
    ///
    /// # Errors
    /// Why the adapter cannot be used: it does not start, crashes, hangs,
    /// speaks another protocol version, or answers nonsense.
    pub fn handshake(&self) -> Result<ImplInfo, String> {
        self.info
            .get_or_init(|| {
                let (process, info) = self.start()?;
                self.checkin(process);
                Ok(info)
            })
            .clone()
    }

    fn start(&self) -> Result<(Process, ImplInfo), String> {
        let mut process = match &self.script {
            Some(replies) => Process::scripted(replies, &self.command.display()),
            None => Process::spawn(&self.command)?,
        };
        let hello = process.call(
            |id| Request::Hello {
                id,
                protocol: PROTOCOL_VERSION,
                catalogue: catalogue(),
            },
            self.timeout,
        );
        let failed = |why: String, process: &Process| {
            format!(
                "the adapter `{}` failed the handshake: {why}\nits stderr ends with:\n{}",
                self.command.display(),
                process.stderr_tail()
            )
        };
        let info = match hello {
            Ok(hello @ Response::Hello { .. }) => match info_of(hello) {
                Ok(info) => info,
                Err(why) => {
                    process.kill();
                    return Err(failed(why, &process));
                }
            },
            Ok(other) => {
                process.kill();
                let why = match &other {
                    Response::Error { error, .. } => format!("it refused: {error}"),
                    _ => format!("it answered `{}` to `hello`", other.kind()),
                };
                return Err(failed(why, &process));
            }
            Err(fault @ Fault::Crashed { .. }) => {
                // Its message carries the stderr tail already.
                return Err(format!(
                    "the adapter `{}` failed the handshake: {fault}",
                    self.command.display()
                ));
            }
            Err(fault) => {
                process.kill();
                return Err(failed(fault.to_string(), &process));
            }
        };
        process.handshake = std::mem::take(&mut process.transcript);
        Ok((process, info))
    }

    fn checkout(&self) -> Result<Process, Fault> {
        if deadline::passed() {
            // No process is started (or reset) for a run that could only
            // be cut short.
            return Err(Fault::OutOfTime {
                request: "`reset`".to_owned(),
            });
        }
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut process = match idle {
            Some(process) => process,
            None => self.start().map(|(p, _)| p).map_err(Fault::Protocol)?,
        };
        process.transcript = process.handshake.clone();
        match process.call(|id| Request::Reset { id }, self.timeout)? {
            Response::Ok { .. } => Ok(process),
            other => {
                process.kill();
                Err(unexpected("ok", &other))
            }
        }
    }

    fn checkin(&self, process: Process) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(process);
    }
}

impl Drop for AdapterPool {
    /// Says goodbye to every idle adapter (and kills those that linger),
    /// then kills what each left behind.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for mut process in idle {
            let left = process.pid().map(|pid| (pid, reaper::Snapshot::of(pid)));
            let _ = process.call(|id| Request::Bye { id }, Duration::from_secs(2));
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if process.exited() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            process.kill();
            if let Some((pid, left)) = left {
                left.kill(pid);
            }
        }
    }
}

impl Drop for Process {
    /// A process dropped with its session open (a pool's idle adapters end
    /// theirs first) is killed with everything it started.
    fn drop(&mut self) {
        self.kill();
    }
}

/// One run on an adapter process from a pool.
pub struct StdioImpl {
    pool: Arc<AdapterPool>,
    info: ImplInfo,
    process: RefCell<Option<Process>>,
    /// Why there is no process (it failed to start or broke).
    broken: RefCell<Option<Fault>>,
    pending: Vec<Observation>,
    /// The transcript of a process that broke (its own is gone with it).
    transcript: RefCell<Vec<String>>,
}

impl StdioImpl {
    /// A fresh run: a pooled adapter, reset.
    pub fn new(pool: Arc<AdapterPool>) -> StdioImpl {
        let info = pool.handshake().unwrap_or_else(|_| ImplInfo {
            name: pool.command(),
            language: "?".to_owned(),
            version: "?".to_owned(),
            runtime: None,
            capabilities: Capabilities::none(),
            emulates: Vec::new(),
        });
        let (process, broken) = match pool.checkout() {
            Ok(process) => (Some(process), None),
            Err(fault) => (
                None,
                Some(Fault::Earlier {
                    during: "starting or resetting the adapter for this run".to_owned(),
                    fault: Box::new(fault),
                }),
            ),
        };
        StdioImpl {
            pool,
            info,
            process: RefCell::new(process),
            broken: RefCell::new(broken),
            pending: Vec::new(),
            transcript: RefCell::new(Vec::new()),
        }
    }

    fn call(&self, request: impl FnOnce(u64) -> Request, settle: bool) -> Result<Response, Fault> {
        if let Some(fault) = self.broken.borrow().clone() {
            return Err(fault);
        }
        let mut slot = self.process.borrow_mut();
        let Some(process) = slot.as_mut() else {
            return Err(Fault::Protocol("the adapter is gone".to_owned()));
        };
        let timeout = if settle {
            self.pool.timeout * 10
        } else {
            self.pool.timeout
        };
        let result = process.call(request, timeout);
        if let Err(fault) = &result {
            // A process that broke is never reused.
            if let Some(mut process) = slot.take() {
                process.kill();
                *self.transcript.borrow_mut() = std::mem::take(&mut process.transcript);
            }
            *self.broken.borrow_mut() = Some(fault.clone());
        }
        result
    }

    fn keep(&mut self, observations: &[WireObservation]) {
        self.pending
            .extend(observations.iter().map(Observation::from));
    }
}

impl Implementation for StdioImpl {
    fn info(&self) -> ImplInfo {
        self.info.clone()
    }

    fn apply(&mut self, op: &Op) -> Result<Reply, Fault> {
        let settle = matches!(op, Op::Settle);
        let op = op.clone();
        match self.call(|id| Request::Op { id, op }, settle)? {
            Response::Result {
                result: WireResult::Error(error),
                ..
            } if matches!(
                error.code,
                ErrorCode::UnknownHandle | ErrorCode::Malformed | ErrorCode::UnsupportedProtocol
            ) =>
            {
                // These codes say the request was wrong, not the bus: the
                // runner and the adapter disagree, and nothing can be judged.
                Err(Fault::Protocol(format!(
                    "the adapter refused the op as a bad request: {error}"
                )))
            }
            Response::Result {
                result,
                observations,
                ..
            } => {
                self.keep(&observations);
                Ok(result.to_reply())
            }
            Response::Error { error, .. } if error.code == ErrorCode::NotSupported => {
                Ok(Err(OpError::NotSupported(error.to_string())))
            }
            other => Err(unexpected("result", &other)),
        }
    }

    fn runnable(&self) -> Vec<TaskRef> {
        if self.info.capabilities.has(Capability::Schedule) {
            // A fault here cannot be returned: it is kept, and the next
            // request reports it as an earlier one.
            let earlier = |fault| Fault::Earlier {
                during: "listing the runnable tasks".to_owned(),
                fault: Box::new(fault),
            };
            match self.call(|id| Request::Runnable { id }, false) {
                Ok(Response::Runnable { tasks, .. }) => tasks,
                Ok(other) => {
                    *self.broken.borrow_mut() = Some(earlier(unexpected("runnable", &other)));
                    Vec::new()
                }
                Err(fault) => {
                    *self.broken.borrow_mut() = Some(earlier(fault));
                    Vec::new()
                }
            }
        } else if self.info.capabilities.has(Capability::Step) {
            vec![TaskRef::Any]
        } else {
            Vec::new()
        }
    }

    fn poll(&mut self, task: TaskRef) -> Result<bool, Fault> {
        let response = match task {
            TaskRef::Any => self.call(|id| Request::Step { id }, false)?,
            task => self.call(|id| Request::Poll { id, task }, false)?,
        };
        match response {
            Response::Stepped {
                ran, observations, ..
            } => {
                self.keep(&observations);
                Ok(ran)
            }
            other => Err(unexpected("stepped", &other)),
        }
    }

    fn wake(&mut self, task: TaskRef) -> Result<bool, Fault> {
        match self.call(|id| Request::Wake { id, task }, false)? {
            Response::Woken { existed, .. } => Ok(existed),
            other => Err(unexpected("woken", &other)),
        }
    }

    fn take_observations(&mut self) -> Vec<Observation> {
        // A fault seen by `runnable` (which cannot return it) surfaces here.
        std::mem::take(&mut self.pending)
    }

    fn poll_preempted(
        &mut self,
        task: TaskRef,
        with: &Interjection,
    ) -> Result<Option<Preempted>, Fault> {
        let is_op = matches!(with, Interjection::Op(_));
        let sent = with.clone();
        match self.call(
            |id| Request::Preempt {
                id,
                task,
                with: sent,
            },
            false,
        )? {
            Response::Preempted { ran: false, .. } => Ok(None),
            Response::Preempted {
                result,
                before,
                observations,
                at_yield_point,
                ..
            } => {
                let reply = match (is_op, result) {
                    (true, Some(result)) => Some(result.to_reply()),
                    (false, None) => None,
                    (true, None) => {
                        return Err(Fault::Protocol(format!(
                            "a `preempted` reply that ran `{with}` but has no `result`"
                        )));
                    }
                    (false, Some(_)) => {
                        return Err(Fault::Protocol(format!(
                            "a `preempted` reply with a `result`, but `{with}` is a poll, not an op"
                        )));
                    }
                };
                let observations_before = before.len();
                self.keep(&before);
                self.keep(&observations);
                Ok(Some(Preempted {
                    reply,
                    observations_before,
                    at_yield_point,
                }))
            }
            other => Err(unexpected("preempted", &other)),
        }
    }

    fn migrate(&mut self, task: TaskRef) -> Result<bool, Fault> {
        match self.call(|id| Request::Migrate { id, task }, false)? {
            Response::Woken { existed, .. } => Ok(existed),
            other => Err(unexpected("woken", &other)),
        }
    }

    fn transcript(&self) -> Option<Vec<String>> {
        let process = self.process.borrow();
        let mut lines = self.transcript.borrow().clone();
        if let Some(p) = process.as_ref() {
            lines.extend(p.transcript.iter().cloned());
        }
        Some(lines)
    }
}

impl Drop for StdioImpl {
    fn drop(&mut self) {
        if let Some(process) = self.process.get_mut().take()
            && self.broken.get_mut().is_none()
        {
            self.pool.checkin(process);
        }
    }
}

/// Who the adapter says it is (its `hello` reply): the protocol version
/// checked, capability and emulated-feature names read (PROTOCOL.md,
/// "Handshake").
///
/// # Errors
/// Another protocol version, an unknown capability or feature name, or a
/// feature named twice.
fn info_of(hello: Response) -> Result<ImplInfo, String> {
    let Response::Hello {
        protocol,
        name,
        language,
        version,
        runtime,
        capabilities,
        emulates,
        ..
    } = hello
    else {
        return Err(format!("it answered `{}` to `hello`", hello.kind()));
    };
    if protocol != PROTOCOL_VERSION {
        return Err(format!(
            "it speaks protocol {protocol}; this runner speaks {PROTOCOL_VERSION}"
        ));
    }
    let capabilities = capabilities
        .iter()
        .map(|c| c.parse::<Capability>())
        .collect::<Result<Capabilities, _>>()?;
    Ok(ImplInfo {
        name,
        language,
        version,
        runtime: runtime.filter(|r| !r.trim().is_empty()),
        capabilities,
        emulates: Emulated::parse_list(&emulates)?,
    })
}
