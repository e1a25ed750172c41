//! Events with shared state, as in the seed's "With State Management": a
//! health monitor reacts to failures by updating shared state and sending a
//! follow-up event, which another subscriber handles. Events are delivered
//! as `Arc<T>`, so large payloads are shared, never copied, and freed once
//! every subscriber is done with them (RECLAIM-1).
//!
//! Run: `cargo run -p scopebus --example shared_state`

use futures::StreamExt;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq)]
struct SystemStatus {
    healthy: bool,
    last_check: u64,
}

#[derive(Debug)]
struct HealthCheckFailed {
    reason: String,
    /// A large diagnostic payload, shared by every subscriber.
    dump: Vec<u8>,
}

#[derive(Debug)]
struct SystemUnhealthy {
    reason: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn health_monitor(
    mut failures: scopebus::Subscription<HealthCheckFailed>,
    status: Arc<RwLock<SystemStatus>>,
) {
    while let Some(event) = failures.next().await {
        {
            let mut current = status.write().expect("not poisoned");
            *current = SystemStatus {
                healthy: false,
                last_check: now(),
            };
        }
        // Trigger recovery via another event.
        let _ = scopebus::send(SystemUnhealthy {
            reason: format!(
                "{} ({} bytes of diagnostics)",
                event.reason,
                event.dump.len()
            ),
        });
    }
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() {
    let status = Arc::new(RwLock::new(SystemStatus {
        healthy: true,
        last_check: 0,
    }));
    let state = status.clone();
    let recoveries = scopebus::scope(async move {
        let failures = scopebus::subscribe::<HealthCheckFailed>().expect("in scope");
        let mut unhealthy = scopebus::subscribe::<SystemUnhealthy>().expect("in scope");
        let _monitor = scopebus::spawn(health_monitor(failures, state));
        let bus = scopebus::current_bus().expect("in scope");
        scopebus::send(HealthCheckFailed {
            reason: "database unreachable".into(),
            dump: vec![0; 1 << 20],
        })
        .expect("in scope");
        let alert = unhealthy.next().await.expect("the monitor reacts");
        println!("recovery triggered: {}", alert.reason);
        // The 1 MiB failure event was freed as soon as the monitor took it.
        assert_eq!(bus.stats_of::<HealthCheckFailed>().retained, 0);
        1
    })
    .await;
    let final_status = status.read().expect("not poisoned").clone();
    println!("final status: {final_status:?}");
    assert!(!final_status.healthy);
    assert_eq!(recoveries, 1);
}

#[test]
fn runs() {
    main();
}
