//! Several subscribers, each receiving the whole stream independently, as in
//! the seed's "Multiple Subscribers" (FANOUT-1). Every subscriber receives the
//! same `Arc` of each event: nothing is copied per subscriber.
//!
//! Run: `cargo run -p scopebus --example multiple_subscribers`

use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug)]
struct UserLoggedIn {
    user_id: String,
    ip_address: String,
}

fn is_suspicious_ip(ip: &str) -> bool {
    ip.starts_with("203.0.113.")
}

async fn alert_security_team(mut logins: scopebus::Subscription<UserLoggedIn>) -> Vec<String> {
    let mut alerts = Vec::new();
    while let Some(event) = logins.next().await {
        if is_suspicious_ip(&event.ip_address) {
            alerts.push(format!(
                "suspicious login of {} from {}",
                event.user_id, event.ip_address
            ));
        }
    }
    alerts
}

async fn update_user_stats(
    mut logins: scopebus::Subscription<UserLoggedIn>,
) -> HashMap<String, u32> {
    let mut counts = HashMap::new();
    while let Some(event) = logins.next().await {
        *counts.entry(event.user_id.clone()).or_insert(0) += 1;
    }
    counts
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() {
    let (alerts, counts) = scopebus::scope(async {
        let security = scopebus::spawn(alert_security_team(
            scopebus::subscribe().expect("in scope"),
        ))
        .expect("in scope");
        let stats = scopebus::spawn(update_user_stats(scopebus::subscribe().expect("in scope")))
            .expect("in scope");
        let logins = [
            ("ada", "10.0.0.1"),
            ("grace", "203.0.113.9"),
            ("ada", "10.0.0.1"),
        ];
        for (user, ip) in logins {
            let receivers = scopebus::send(UserLoggedIn {
                user_id: user.into(),
                ip_address: ip.into(),
            })
            .expect("in scope");
            assert_eq!(receivers, 2, "both subscribers get every event");
        }
        // Close explicitly to let the subscribers finish, then collect their
        // results (the scope would do both at exit anyway).
        scopebus::current_bus().expect("in scope").close();
        (security.await.expect("ran"), stats.await.expect("ran"))
    })
    .await;
    println!("alerts: {alerts:?}");
    println!("logins per user: {counts:?}");
    assert_eq!(alerts.len(), 1);
    assert_eq!(counts["ada"], 2);

    // Zero-copy fan-out: both subscriptions see the very same allocation.
    let bus = scopebus::Bus::new();
    let (mut a, mut b) = (
        bus.subscribe::<UserLoggedIn>(),
        bus.subscribe::<UserLoggedIn>(),
    );
    bus.send(UserLoggedIn {
        user_id: "linus".into(),
        ip_address: "10.0.0.3".into(),
    })
    .expect("open bus");
    let (x, y) = (a.next().await.expect("sent"), b.next().await.expect("sent"));
    assert!(Arc::ptr_eq(&x, &y));
}

#[test]
fn runs() {
    main();
}
