//! W3C trace context on the wire, checked by the server: aimock (`scripts/aimock.sh`,
//! `LOOPOTEL_AIMOCK_URL`) keeps every request's headers in its journal. A call whose first
//! attempt gets a 429 is retried; each attempt carried the `traceparent` of its own attempt
//! span, in the loop run's trace.

use async_openai::config::OpenAIConfig;
use loopotel::LoopTracer;
use loopotel_openai::TracedClient;
use loopotel_openai::middleware::traced_http_service;
use opentelemetry::context::FutureExt as _;
use serde_json::{Value, json};

use loopotel_test_support::aimock;

#[tokio::test]
async fn every_attempt_carries_the_traceparent_of_its_recorded_span() {
    let Some(base) = aimock() else { return };
    // Fixture sequence counts are kept per X-Test-Id: a fresh id starts at the 429.
    let test_id = format!("loopotel-{}", loopotel::SpanId::random());
    let config = OpenAIConfig::new()
        .with_api_base(format!("{base}/v1"))
        .with_api_key("sk-aimock-test-key-0123456789")
        .with_header("x-test-id", test_id.clone())
        .expect("header");
    let client = TracedClient::new(
        async_openai::Client::with_config(config)
            .with_http_service(traced_http_service(reqwest::Client::new())),
    );
    let request = serde_json::from_value(json!({
        "model": "aimock-model",
        "messages": [{"role": "user", "content": "traceparent-check"}],
    }))
    .unwrap();
    let run = LoopTracer::new().run("aimock-loop").start();
    let it = run.iteration(1);
    let reply = client
        .chat()
        .create(request)
        .with_context(it.context())
        .await
        .expect("retried past the 429");
    assert_eq!(reply.choices[0].message.content.as_deref(), Some("traced"));
    drop(it);
    let doc = run.finish(loopotel::Outcome::Success, "done");

    let journal: Vec<Value> = reqwest::Client::new()
        .get(format!("{base}/__aimock/journal"))
        .query(&[
            ("testId", test_id.as_str()),
            ("path", "/v1/chat/completions"),
        ])
        .send()
        .await
        .expect("journal")
        .json()
        .await
        .expect("journal JSON");
    let mut entries: Vec<&Value> = journal
        .iter()
        .filter(|e| e["headers"]["x-test-id"] == json!(test_id))
        .collect();
    entries.sort_by_key(|e| e["timestamp"].as_i64());
    let carried: Vec<&str> = entries
        .iter()
        .map(|e| {
            e["headers"]["traceparent"]
                .as_str()
                .expect("traceparent sent")
        })
        .collect();
    assert_eq!(carried.len(), 2, "two attempts: {journal:?}");
    assert_eq!(entries[0]["response"]["status"], json!(429));

    let call = doc
        .spans
        .iter()
        .find(|s| s.name.as_str() == "chat aimock-model")
        .expect("the GenAI span");
    let attempts: Vec<_> = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "POST" && s.parent_span_id == Some(call.span_id))
        .collect();
    assert_eq!(attempts.len(), 2);
    for (header, span) in carried.iter().zip(&attempts) {
        let want = format!("00-{}-{}-01", doc.trace_id.to_hex(), span.span_id);
        assert_eq!(*header, want, "the attempt's own span is the remote parent");
    }
}
