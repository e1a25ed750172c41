//! Ground truth for `conformance/expectations/typeid-broadcast.toml`: each
//! deviation the suite records for the TypeId map of tokio broadcast
//! channels (`scopebus_conformance::impls::typeid_broadcast::Bus`), shown in
//! plain Rust against that bus's public API and tokio's, no adapter, no
//! emulated scopes (PROTOCOL.md, "Ground truth").
//!
//! `cargo run -q --release -p scopebus-conformance --example typeid_broadcast_ground_truth -- conformance/expectations/typeid-broadcast.toml`
//! (an example of the conformance crate, kept beside the expectations file).
//!
//! Prints `RULE: shown: ...` or `RULE: NOT SHOWN: ...` per listed deviation;
//! exits 0 if every one is shown, 1 if one is not, 2 if one has no check
//! here (or the file cannot be read).

use scopebus_conformance::expectations::Expectations;
use scopebus_conformance::impls::typeid_broadcast::{Bus, CAPACITY};
use scopebus_sim::rules::Rule;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;

#[derive(Clone)]
struct Ping(Arc<u64>);

#[derive(Clone)]
struct Other;

/// REENTER-1: a receiver waits; the waker tokio wakes on `send` subscribes
/// to another type on the same bus. `send` holds the bus's lock while tokio
/// wakes the waiting receivers, so that subscribe never returns.
fn reenter_1() -> (bool, String) {
    struct Probe {
        bus: Arc<Bus>,
        returned: mpsc::Sender<()>,
    }
    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            let _other = self.bus.subscribe::<Other>();
            let _ = self.returned.send(());
        }
    }
    let bus = Arc::new(Bus::new());
    let mut receiver = bus.subscribe::<Ping>();
    let (returned, probe_returned) = mpsc::channel();
    let waker = Waker::from(Arc::new(Probe {
        bus: bus.clone(),
        returned,
    }));
    let mut pending = Box::pin(receiver.recv());
    if pending
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return (
            false,
            "the receive completed though nothing was sent".into(),
        );
    }
    // The send runs on a thread of its own: if the waker deadlocks, that
    // thread stays blocked (the process exits anyway).
    let sender = bus.clone();
    std::thread::spawn(move || sender.send(Ping(Arc::new(1))));
    match probe_returned.recv_timeout(Duration::from_millis(500)) {
        Ok(()) => (false, "the waker's subscribe on the same bus returned".into()),
        Err(_) => (
            true,
            "a send woke the waiting receiver's waker while holding the bus's lock; the waker's \
             subscribe on the same bus did not return within 500 ms (it waits for that lock for ever)"
                .into(),
        ),
    }
}

/// RECLAIM-1: a subscriber that has not pulled yet, and CAPACITY + 1 sends:
/// the first event is freed (overwritten in tokio's ring) though that live
/// subscription never received it; its next receive reports the loss.
fn reclaim_1() -> (bool, String) {
    let bus = Bus::new();
    let mut receiver = bus.subscribe::<Ping>();
    let sent: Vec<Weak<u64>> = (0..=CAPACITY as u64)
        .map(|n| {
            let event = Arc::new(n);
            let weak = Arc::downgrade(&event);
            let _ = bus.send(Ping(event));
            weak
        })
        .collect();
    let first_freed = sent[0].upgrade().is_none();
    let next = match receiver.try_recv() {
        Err(TryRecvError::Lagged(n)) => format!("Lagged({n})"),
        Ok(event) => format!("event {}", event.0),
        Err(e) => format!("{e:?}"),
    };
    (
        first_freed && next.starts_with("Lagged"),
        format!(
            "{} events sent to a subscriber that had not pulled yet: the first was {} before it was received; the subscriber's next receive gave {next}",
            CAPACITY + 1,
            if first_freed { "freed" } else { "still held" }
        ),
    )
}

fn main() -> ExitCode {
    let path = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from("conformance/expectations/typeid-broadcast.toml"),
        PathBuf::from,
    );
    let expectations = match Expectations::read(&path) {
        Ok(e) => e,
        Err(e) => {
            println!("{e}");
            return ExitCode::from(2);
        }
    };
    let check = |rule: Rule| -> Option<fn() -> (bool, String)> {
        match rule {
            Rule::Reenter1 => Some(reenter_1),
            Rule::Reclaim1 => Some(reclaim_1),
            _ => None,
        }
    };
    let mut failed = false;
    for deviation in &expectations.deviations {
        let Some(show) = check(deviation.rule) else {
            println!("no ground truth here for: {}", deviation.rule);
            return ExitCode::from(2);
        };
        let (shown, what) = show();
        let word = if shown { "shown" } else { "NOT SHOWN" };
        println!("{}: {word}: {what}", deviation.rule);
        failed |= !shown;
    }
    ExitCode::from(u8::from(failed))
}
