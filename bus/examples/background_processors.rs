//! Background event processing: processors spawned as scoped tasks, as in the
//! seed's "Background Event Processing" and "Error Handling".
//!
//! `scopebus::spawn` ties each processor to the scope. When the scope's body
//! is done, the scope closes its bus: each processor drains what was already
//! sent, its stream ends, and the scope waits for it to finish (CLOSE-1,
//! TASK-1). No explicit cancel is needed for open-ended `while let` loops,
//! though `TaskHandle::cancel` is there for processors that must stop early.
//!
//! Run: `cargo run -p scopebus --example background_processors`

use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
struct UserLoggedIn {
    user_id: String,
    ip_address: String,
}

#[derive(Debug)]
struct OrderCreated {
    order_id: u32,
    total_amount: f64,
}

async fn monitor_logins(mut logins: scopebus::Subscription<UserLoggedIn>, seen: Arc<AtomicUsize>) {
    while let Some(event) = logins.next().await {
        println!("login: {} from {}", event.user_id, event.ip_address);
        seen.fetch_add(1, Ordering::Relaxed);
    }
}

async fn process_orders(
    mut orders: scopebus::Subscription<OrderCreated>,
    processed: Arc<AtomicUsize>,
) {
    while let Some(order) = orders.next().await {
        // Handle failures per event, so one bad event does not stop the
        // processor (the seed's "Error Handling").
        match charge(&order) {
            Ok(()) => {
                processed.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => eprintln!("order {} failed: {reason}; continuing", order.order_id),
        }
    }
}

fn charge(order: &OrderCreated) -> Result<(), String> {
    if order.total_amount < 0.0 {
        return Err(format!("negative total {}", order.total_amount));
    }
    println!(
        "charged order {}: {:.2}",
        order.order_id, order.total_amount
    );
    Ok(())
}

async fn run_application() -> Result<(), scopebus::SendError<UserLoggedIn>> {
    for (user, ip) in [("ada", "10.0.0.1"), ("grace", "10.0.0.2")] {
        scopebus::send(UserLoggedIn {
            user_id: user.into(),
            ip_address: ip.into(),
        })?;
    }
    for (order_id, total_amount) in [(1, 12.5), (2, -1.0), (3, 99.0)] {
        // Never blocks, whatever the processors are doing (SEND-1).
        let _ = scopebus::send(OrderCreated {
            order_id,
            total_amount,
        });
    }
    Ok(())
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() {
    let logins_seen = Arc::new(AtomicUsize::new(0));
    let orders_done = Arc::new(AtomicUsize::new(0));
    let (logins, orders) = (logins_seen.clone(), orders_done.clone());
    scopebus::scope(async move {
        // Subscribe before anything is sent: a subscription sees only later
        // events (VIS-1).
        let login_sub = scopebus::subscribe::<UserLoggedIn>().expect("inside a scope");
        let order_sub = scopebus::subscribe::<OrderCreated>().expect("inside a scope");
        let _login_monitor = scopebus::spawn(monitor_logins(login_sub, logins));
        let _order_processor = scopebus::spawn(process_orders(order_sub, orders));
        run_application().await.expect("a bus is in reach");
    })
    .await;
    // The scope returned only after both processors drained and finished.
    assert_eq!(logins_seen.load(Ordering::Relaxed), 2);
    assert_eq!(orders_done.load(Ordering::Relaxed), 2);
    println!("all processors finished");
}

#[test]
fn runs() {
    main();
}
