//! Runs `examples/http_propagation.rs` for real: a hyper client and server on 127.0.0.1, the
//! same trace id on both sides, and the server run's remote parent is the client's span.

#[path = "../examples/http_propagation.rs"]
mod example;

#[tokio::test]
async fn the_trace_crosses_a_real_http_hop() {
    let trip = example::round_trip().await.expect("round trip");
    assert_eq!(trip.server_trace_id, trip.client.trace_id.to_string());
    let tool = trip
        .client
        .spans
        .iter()
        .find(|s| s.name.as_str() == "execute_tool remote_search")
        .expect("the client recorded the call");
    assert_eq!(trip.server_parent_span_id, tool.span_id.to_string());
    assert!(tool.attributes.get("error.type").is_none());
}
