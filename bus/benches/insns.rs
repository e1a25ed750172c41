//! Instructions, not time: the workloads `cargo xtask bench --insns` runs
//! under valgrind's callgrind, which counts the instructions executed and
//! so is not disturbed by a shared, noisy machine.
//!
//! Usage: `insns PEER WORKLOAD N EVENTS`, with PEER one of `scopebus`,
//! `tokio-broadcast`, `async-broadcast`. Only what runs inside a function
//! whose name starts with `measured_` is meant to be counted (callgrind's
//! `--toggle-collect=*measured_*`): making the channel and its N
//! subscriptions is not.
//!
//! - `deliver`: the whole life of EVENTS events through a channel with N
//!   subscriptions: each made (`Arc::new`), sent, received by every
//!   subscription in turn (`try_recv`, after all were sent) and freed,
//!   the channel and subscriptions dropped at the end (so that a ring
//!   that keeps payloads until it is dropped pays for freeing them too).
//!   Divided by N × EVENTS: instructions per delivery.
//! - `send`: EVENTS sends (each event made by `Arc::new`) to N
//!   subscriptions that never receive. Divided by EVENTS: instructions
//!   per send.
//!
//! Every peer gets the same `Arc<u64>` events and its synchronous API
//! (`try_recv`), so no runtime's instructions are counted. Run by `cargo
//! bench` with no arguments (as `cargo bench -p scopebus` does), it prints
//! its usage and exits.

use std::hint::black_box;
use std::sync::Arc;

type Event = Arc<u64>;

/// One peer's channel, as the workloads use it.
trait Peer {
    type Tx;
    type Rx;
    fn channel(capacity: usize) -> Self::Tx;
    fn subscribe(tx: &Self::Tx) -> Self::Rx;
    fn send(tx: &Self::Tx, event: Event);
    fn try_recv(rx: &mut Self::Rx) -> Option<Event>;
}

struct Scopebus;

impl Peer for Scopebus {
    type Tx = scopebus::Bus;
    type Rx = scopebus::Subscription<u64>;
    fn channel(_capacity: usize) -> Self::Tx {
        scopebus::Bus::new()
    }
    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.subscribe::<u64>()
    }
    fn send(tx: &Self::Tx, event: Event) {
        let _ = tx.send_arc(event);
    }
    fn try_recv(rx: &mut Self::Rx) -> Option<Event> {
        match rx.try_recv() {
            scopebus::TryRecv::Event(event) => Some(event),
            _ => None,
        }
    }
}

struct Tokio;

impl Peer for Tokio {
    type Tx = tokio::sync::broadcast::Sender<Event>;
    type Rx = tokio::sync::broadcast::Receiver<Event>;
    fn channel(capacity: usize) -> Self::Tx {
        tokio::sync::broadcast::channel(capacity).0
    }
    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.subscribe()
    }
    fn send(tx: &Self::Tx, event: Event) {
        let _ = tx.send(event);
    }
    fn try_recv(rx: &mut Self::Rx) -> Option<Event> {
        rx.try_recv().ok()
    }
}

struct AsyncBroadcast;

impl Peer for AsyncBroadcast {
    type Tx = (
        async_broadcast::Sender<Event>,
        async_broadcast::InactiveReceiver<Event>,
    );
    type Rx = async_broadcast::Receiver<Event>;
    fn channel(capacity: usize) -> Self::Tx {
        let (tx, rx) = async_broadcast::broadcast(capacity);
        (tx, rx.deactivate())
    }
    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.0.new_receiver()
    }
    fn send(tx: &Self::Tx, event: Event) {
        let _ = tx.0.try_broadcast(event);
    }
    fn try_recv(rx: &mut Self::Rx) -> Option<Event> {
        rx.try_recv().ok()
    }
}

/// Ring peers get room for every event, so none lags or blocks.
fn setup<P: Peer>(subscribers: usize, events: usize) -> (P::Tx, Vec<P::Rx>) {
    let tx = P::channel(events.next_power_of_two());
    let rxs = (0..subscribers).map(|_| P::subscribe(&tx)).collect();
    (tx, rxs)
}

#[inline(never)]
fn measured_deliver<P: Peer>(tx: P::Tx, mut rxs: Vec<P::Rx>, events: usize) -> u64 {
    for n in 0..events {
        P::send(&tx, Arc::new(n as u64));
    }
    let mut received = 0;
    for rx in &mut rxs {
        while let Some(event) = P::try_recv(rx) {
            received += *event;
            drop(event);
        }
    }
    drop((rxs, tx));
    received
}

#[inline(never)]
fn measured_send<P: Peer>(tx: &P::Tx, events: usize) {
    for n in 0..events {
        P::send(tx, Arc::new(n as u64));
    }
}

fn run<P: Peer>(workload: &str, subscribers: usize, events: usize) -> Result<(), String> {
    let (tx, rxs) = setup::<P>(subscribers, events);
    match workload {
        "deliver" => {
            let sum = black_box(measured_deliver::<P>(tx, rxs, events));
            let expected =
                (events as u64 * (events as u64).saturating_sub(1) / 2) * subscribers as u64;
            if sum != expected {
                return Err(format!("delivered a sum of {sum}, expected {expected}"));
            }
        }
        "send" => {
            measured_send::<P>(&tx, events);
            drop(black_box((rxs, tx)));
        }
        other => return Err(format!("unknown workload {other:?} (deliver, send)")),
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [peer, workload, subscribers, events] = args.as_slice() else {
        eprintln!(
            "usage: insns PEER WORKLOAD N EVENTS (run by `cargo xtask bench --insns` under callgrind)"
        );
        return;
    };
    let (Ok(subscribers), Ok(events)) = (subscribers.parse::<usize>(), events.parse::<usize>())
    else {
        eprintln!("insns: N and EVENTS must be whole numbers, got {subscribers:?} and {events:?}");
        std::process::exit(2);
    };
    let result = match peer.as_str() {
        "scopebus" => run::<Scopebus>(workload, subscribers, events),
        "tokio-broadcast" => run::<Tokio>(workload, subscribers, events),
        "async-broadcast" => run::<AsyncBroadcast>(workload, subscribers, events),
        other => Err(format!(
            "unknown peer {other:?} (scopebus, tokio-broadcast, async-broadcast)"
        )),
    };
    if let Err(e) = result {
        eprintln!("insns: {e}");
        std::process::exit(2);
    }
}
