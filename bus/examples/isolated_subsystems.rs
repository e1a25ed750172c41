//! Isolated subsystems, as in the seed's "Scope Isolation": each
//! `isolated_scope` owns a bus of its own, invisible to its parent and
//! siblings in both directions (SCOPE-3); nested, non-isolated scopes share
//! their parent's bus (SCOPE-2); outside every scope there is no bus
//! (MISSING-1).
//!
//! Run: `cargo run -p scopebus --example isolated_subsystems`

use futures::StreamExt;

#[derive(Debug)]
struct InternalEvent {
    data: &'static str,
}

/// Runs a subsystem in its own isolated scope; returns what it saw.
async fn subsystem(name: &'static str) -> Vec<&'static str> {
    scopebus::isolated_scope(async move {
        let mut events = scopebus::subscribe::<InternalEvent>().expect("in scope");
        let seen = scopebus::spawn(async move {
            let mut seen = Vec::new();
            while let Some(event) = events.next().await {
                seen.push(event.data);
            }
            seen
        })
        .expect("in scope");
        // A nested scope inside the subsystem shares the subsystem's bus.
        scopebus::scope(async move {
            scopebus::send(InternalEvent { data: name }).expect("in scope");
        })
        .await;
        // Exit closes the subsystem's bus; the collector drains and ends.
        scopebus::current_bus().expect("in scope").close();
        seen.await.expect("ran")
    })
    .await
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() {
    scopebus::scope(async {
        let mut outer = scopebus::subscribe::<InternalEvent>().expect("in scope");
        let (a, b) = tokio::join!(subsystem("A"), subsystem("B"));
        println!("subsystem_a saw {a:?}, subsystem_b saw {b:?}");
        assert_eq!((a, b), (vec!["A"], vec!["B"]));
        assert!(
            matches!(outer.try_recv(), scopebus::TryRecv::Empty),
            "nothing leaked out of the isolated scopes"
        );
    })
    .await;
    // Outside every scope there is no bus.
    let outside = scopebus::send(InternalEvent { data: "nowhere" });
    assert!(matches!(
        outside,
        Err(scopebus::SendError::ContextMissing(_))
    ));
    println!("outside every scope: {}", outside.unwrap_err());
}

#[test]
fn runs() {
    main();
}
