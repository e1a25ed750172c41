//! The reference bus against its peers, same workload, same run:
//! `scopebus`, `tokio::sync::broadcast` and `async-broadcast`, each
//! delivering `Arc<u64>` events from one sender to N subscribers.
//!
//! Groups (criterion ids `group/peer/N`):
//! - `live/…/N`: consume as they come. N subscriber tasks wait on their
//!   subscriptions while the sender sends, yielding to the runtime after
//!   every 16 sends; every subscriber receives every event.
//! - `drain/…/N`: send all, then drain. N subscriptions, every event sent,
//!   then each subscription drained in turn.
//! - `send/…/N`: the cost of `send` alone with N subscriptions that never
//!   poll (SEND-1 says it must not grow with N); per event, batches of 1,000.
//!
//! Fan-out N is 1, 8, 64 and 1,024; `live` and `drain` send
//! `$SCOPEBUS_BENCH_EVENTS` events per iteration (default 100,000), so an
//! iteration delivers N × events events. Only the sending and receiving are
//! timed: making the channel and its subscriptions, and freeing them, are
//! not. Everything runs on a tokio current-thread runtime, so the figures
//! measure the channels and their wake paths, not thread scheduling.
//! tokio's and async-broadcast's capacity is the event count rounded up to
//! a power of two, so no receiver ever lags or blocks the sender. One
//! asymmetry, in tokio's favour: its ring keeps each payload until the slot
//! is overwritten or the channel dropped, after the clock stops, while
//! scopebus and async-broadcast free each event inside the timed section,
//! when its last subscriber takes it.
//!
//! `cargo xtask bench` runs this and reads criterion's estimates from
//! `target/criterion/`; `cargo bench -p scopebus --bench bus` runs it alone.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fan-outs of the issue: 1, 8, 64 and 1,024 subscribers.
const FANOUTS: [usize; 4] = [1, 8, 64, 1024];
/// The sender yields to the runtime after this many sends in `live`.
const YIELD_EVERY: u64 = 16;
/// Sends per timed batch in `send`.
const SEND_BATCH: u64 = 1000;

fn events() -> u64 {
    std::env::var("SCOPEBUS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100_000)
}

/// One broadcast channel, as the workloads use it.
trait Peer: 'static {
    /// The name in the benchmark ids.
    const NAME: &'static str;
    type Tx: Send + Sync + 'static;
    type Rx: Send + 'static;
    /// A channel that can hold `capacity` undelivered events.
    fn channel(capacity: usize) -> Self::Tx;
    fn subscribe(tx: &Self::Tx) -> Self::Rx;
    fn send(tx: &Self::Tx, event: Arc<u64>);
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<Arc<u64>>> + Send + '_;
}

struct Scopebus;

impl Peer for Scopebus {
    const NAME: &'static str = "scopebus";
    type Tx = scopebus::Bus;
    type Rx = scopebus::Subscription<u64>;
    fn channel(_capacity: usize) -> scopebus::Bus {
        scopebus::Bus::new()
    }
    fn subscribe(tx: &scopebus::Bus) -> Self::Rx {
        tx.subscribe::<u64>()
    }
    fn send(tx: &scopebus::Bus, event: Arc<u64>) {
        let _ = tx.send_arc(event);
    }
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<Arc<u64>>> + Send + '_ {
        rx.recv()
    }
}

struct TokioBroadcast;

impl Peer for TokioBroadcast {
    const NAME: &'static str = "tokio-broadcast";
    type Tx = tokio::sync::broadcast::Sender<Arc<u64>>;
    type Rx = tokio::sync::broadcast::Receiver<Arc<u64>>;
    fn channel(capacity: usize) -> Self::Tx {
        tokio::sync::broadcast::channel(capacity).0
    }
    fn subscribe(tx: &Self::Tx) -> Self::Rx {
        tx.subscribe()
    }
    fn send(tx: &Self::Tx, event: Arc<u64>) {
        let _ = tx.send(event);
    }
    async fn recv(rx: &mut Self::Rx) -> Option<Arc<u64>> {
        rx.recv().await.ok()
    }
}

struct AsyncBroadcast;

/// The sender, and an inactive receiver that keeps the channel open.
struct AsyncTx(
    async_broadcast::Sender<Arc<u64>>,
    #[allow(dead_code)] async_broadcast::InactiveReceiver<Arc<u64>>,
);

impl Peer for AsyncBroadcast {
    const NAME: &'static str = "async-broadcast";
    type Tx = AsyncTx;
    type Rx = async_broadcast::Receiver<Arc<u64>>;
    fn channel(capacity: usize) -> AsyncTx {
        let (mut tx, rx) = async_broadcast::broadcast(capacity);
        tx.set_overflow(false);
        AsyncTx(tx, rx.deactivate())
    }
    fn subscribe(tx: &AsyncTx) -> Self::Rx {
        tx.0.new_receiver()
    }
    fn send(tx: &AsyncTx, event: Arc<u64>) {
        let _ = tx.0.try_broadcast(event);
    }
    async fn recv(rx: &mut Self::Rx) -> Option<Arc<u64>> {
        rx.recv().await.ok()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

fn capacity(events: u64) -> usize {
    usize::try_from(events)
        .unwrap_or(usize::MAX / 2)
        .next_power_of_two()
}

/// Consume as they come; returns the time from the first send to the last
/// receipt.
async fn live<P: Peer>(fanout: usize, events: u64) -> Duration {
    let tx = P::channel(capacity(events));
    let mut tasks = Vec::with_capacity(fanout);
    for _ in 0..fanout {
        let mut rx = P::subscribe(&tx);
        tasks.push(tokio::spawn(async move {
            let mut received = 0;
            while received < events {
                match P::recv(&mut rx).await {
                    Some(event) => {
                        black_box(event);
                        received += 1;
                    }
                    None => break,
                }
            }
            received
        }));
    }
    // Every subscriber starts waiting before the first send.
    tokio::task::yield_now().await;
    let started = Instant::now();
    for n in 0..events {
        P::send(&tx, Arc::new(n));
        if n % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
    }
    for task in tasks {
        let received = task.await.expect("a subscriber task");
        assert_eq!(received, events, "{} lost events", P::NAME);
    }
    started.elapsed()
}

/// Send all, then drain; returns the time from the first send to the last
/// receipt.
async fn drain<P: Peer>(fanout: usize, events: u64) -> Duration {
    let tx = P::channel(capacity(events));
    let mut subscriptions: Vec<P::Rx> = (0..fanout).map(|_| P::subscribe(&tx)).collect();
    let started = Instant::now();
    for n in 0..events {
        P::send(&tx, Arc::new(n));
    }
    for rx in &mut subscriptions {
        for _ in 0..events {
            let event = P::recv(rx).await.expect("an event");
            black_box(event);
        }
    }
    started.elapsed()
}

/// `SEND_BATCH` sends with `fanout` idle subscriptions; returns their time.
fn send_batch<P: Peer>(fanout: usize, batch: u64) -> Duration {
    let tx = P::channel(capacity(SEND_BATCH));
    let subscriptions: Vec<P::Rx> = (0..fanout).map(|_| P::subscribe(&tx)).collect();
    let payloads: Vec<Arc<u64>> = (0..batch).map(Arc::new).collect();
    let started = Instant::now();
    for event in payloads {
        P::send(&tx, event);
    }
    let elapsed = started.elapsed();
    drop(subscriptions);
    elapsed
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// `live` or `drain` of peer `P` at `fanout`, in `group`.
fn fanout_case<P: Peer>(
    group: &mut Group<'_>,
    rt: &tokio::runtime::Runtime,
    mode: &str,
    fanout: usize,
    events: u64,
) {
    group.bench_with_input(BenchmarkId::new(P::NAME, fanout), &fanout, |b, &fanout| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| match mode {
                    "live" => rt.block_on(live::<P>(fanout, events)),
                    _ => rt.block_on(drain::<P>(fanout, events)),
                })
                .sum()
        })
    });
}

/// `send` alone of peer `P` with `fanout` idle subscriptions, in `group`.
fn send_case<P: Peer>(group: &mut Group<'_>, fanout: usize) {
    group.bench_with_input(BenchmarkId::new(P::NAME, fanout), &fanout, |b, &fanout| {
        b.iter_custom(|iters| {
            let mut left = iters;
            let mut total = Duration::ZERO;
            while left > 0 {
                let batch = left.min(SEND_BATCH);
                total += send_batch::<P>(fanout, batch);
                left -= batch;
            }
            total
        })
    });
}

fn fanout_group(c: &mut Criterion, mode: &str) {
    let events = events();
    let rt = runtime();
    let mut group = c.benchmark_group(mode);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for fanout in FANOUTS {
        group.throughput(Throughput::Elements(fanout as u64 * events));
        fanout_case::<Scopebus>(&mut group, &rt, mode, fanout, events);
        fanout_case::<TokioBroadcast>(&mut group, &rt, mode, fanout, events);
        fanout_case::<AsyncBroadcast>(&mut group, &rt, mode, fanout, events);
    }
    group.finish();
}

fn bench_live(c: &mut Criterion) {
    fanout_group(c, "live");
}

fn bench_drain(c: &mut Criterion) {
    fanout_group(c, "drain");
}

fn bench_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("send");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    for fanout in FANOUTS {
        send_case::<Scopebus>(&mut group, fanout);
        send_case::<TokioBroadcast>(&mut group, fanout);
        send_case::<AsyncBroadcast>(&mut group, fanout);
    }
    group.finish();
}

criterion_group!(benches, bench_live, bench_drain, bench_send);
criterion_main!(benches);
