//! Request-response over events, as in the seed's "Request-Response
//! Pattern": the caller subscribes to responses *before* sending its request,
//! so the response cannot slip past it (VIS-1).
//!
//! Run: `cargo run -p scopebus --example request_response`

use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug)]
struct DataRequest {
    request_id: u64,
    query: String,
}

#[derive(Debug)]
struct DataResponse {
    request_id: u64,
    result: usize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

async fn execute_query(query: &str) -> usize {
    tokio::time::sleep(Duration::from_millis(2)).await;
    query.split_whitespace().count()
}

/// Serves requests until the scope closes the bus.
async fn data_service(mut requests: scopebus::Subscription<DataRequest>) {
    while let Some(request) = requests.next().await {
        let result = execute_query(&request.query).await;
        // The service runs inside the scope, so the bus is in reach; during
        // scope exit the send may find it closed, which is fine to ignore.
        let _ = scopebus::send(DataResponse {
            request_id: request.request_id,
            result,
        });
    }
}

async fn make_request(query: &str) -> Option<usize> {
    let request_id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // Subscribe before sending to avoid the race.
    let mut responses = scopebus::subscribe::<DataResponse>().ok()?;
    scopebus::send(DataRequest {
        request_id,
        query: query.to_owned(),
    })
    .ok()?;
    while let Some(response) = responses.next().await {
        if response.request_id == request_id {
            return Some(response.result);
        }
    }
    None
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() {
    scopebus::scope(async {
        let requests = scopebus::subscribe::<DataRequest>().expect("in scope");
        let _service = scopebus::spawn(data_service(requests));
        // Concurrent callers: each gets its own answer.
        let (a, b) = tokio::join!(
            make_request("select one two three"),
            make_request("select four"),
        );
        println!("answers: {a:?} {b:?}");
        assert_eq!((a, b), (Some(4), Some(2)));
    })
    .await;
}

#[test]
fn runs() {
    main();
}
