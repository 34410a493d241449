//! Trace context crossing a message queue and a process boundary.

use loopotel::propagation::{
    JsonCarrier, JsonExtractor, TraceParent, extract_traceparent, inject_current,
};
use loopotel::validate::validate_document;
use loopotel::{IterationRecord, LoopTracer, Outcome, SpanKind, start_span};

#[test]
fn a_consumer_continues_the_producers_trace_through_a_json_message() {
    let tracer = LoopTracer::new();
    let producer = tracer.run("producer-loop").start();
    let it = producer.iteration(1);
    let mut message = serde_json::json!({"task": "summarize"});
    let tool_span_id = {
        let _cx = it.enter();
        let mut tool = start_span("execute_tool enqueue", SpanKind::Worker);
        let _tool_cx = tool.context().attach();
        inject_current(&mut JsonCarrier(&mut message));
        tool.span_id()
    };
    drop(it);

    // The message crosses a queue as text.
    let wire = serde_json::to_string(&message).unwrap();
    let received: serde_json::Value = serde_json::from_str(&wire).unwrap();
    let parent: TraceParent = extract_traceparent(&JsonExtractor(&received)).expect("traceparent");
    assert_eq!(parent.trace_id, producer.trace_id());
    assert_eq!(Some(parent.span_id), tool_span_id);

    let consumer = tracer.run("consumer-loop").continue_trace(parent).start();
    consumer.emit_iteration(IterationRecord::new(1, 0.9));
    let consumer_doc = consumer.finish(Outcome::Success, "done");
    let producer_doc = producer.finish(Outcome::Success, "done");
    assert_eq!(consumer_doc.trace_id, producer_doc.trace_id);
    let root = consumer_doc.root().unwrap();
    assert_eq!(
        root.attributes
            .get("loop.parent_span_id")
            .and_then(|v| v.as_str()),
        Some(parent.span_id.to_string().as_str())
    );
    assert!(validate_document(&consumer_doc).is_empty());
}

#[test]
fn hostile_headers_start_a_new_root() {
    let tracer = LoopTracer::new();
    for bad in [
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "",
        "00-\u{0}",
    ] {
        let msg = serde_json::json!({"_trace_context": {"traceparent": bad, "tracestate": "x".repeat(100_000)}});
        assert!(
            extract_traceparent(&JsonExtractor(&msg)).is_none(),
            "{bad:?}"
        );
        // With nothing to continue, a run simply starts its own trace.
        let doc = tracer
            .run("consumer-loop")
            .start()
            .finish(Outcome::Unknown, "x");
        assert!(
            doc.root()
                .unwrap()
                .attributes
                .get("loop.parent_span_id")
                .is_none()
        );
    }
}
