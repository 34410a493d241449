//! Attribute safety in both views: long values cut, too many attributes evicted lowest
//! priority first (usage, cost and outcome never), control characters in names replaced —
//! and the document stays valid.

use loopotel::limits::{DROPPED_ATTRIBUTES, TRUNCATED_ATTRIBUTES};
use loopotel::{AttributeLimits, LoopTracer, Outcome, SpanKind};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

fn otel_attr<'a>(span: &'a opentelemetry_sdk::trace::SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// A hostile span: 300 user attributes, a huge value, control characters in its name and
/// keys, and its usage and cost set last (what an SDK limit would drop first).
fn hostile_run(tracer: &LoopTracer) -> loopotel::LtfDocument {
    let run = tracer.run("limits-loop").start();
    for i in 0..300 {
        run.set_attribute(format!("run.user.{i}"), i as i64);
    }
    {
        let it = run.iteration(1);
        let mut span = it.span(
            format!("tool\r\n[ERROR] forged {}", "\u{1b}[31m"),
            SpanKind::Worker,
        );
        for i in 0..300 {
            span.set_attribute(format!("user.{i}"), format!("value {i}"));
        }
        span.set_attribute("gen_ai.operation.name", "execute_tool");
        span.set_attribute("huge", "x".repeat(1_000_000));
        span.set_attribute("bad\nkey\u{0}", "v".to_owned());
        span.record_error("tool_error", "é".repeat(50_000));
        span.set_attribute("gen_ai.usage.input_tokens", 1234_i64);
        span.add_tokens(1234);
        span.add_cost_usd(0.5);
    }
    run.finish(Outcome::Failure, "tool_error")
}

/// The hostile run's tool span.
fn tool_span(doc: &loopotel::LtfDocument) -> &loopotel::LtfSpan {
    doc.spans
        .iter()
        .find(|s| s.kind == SpanKind::Worker)
        .expect("the tool span")
}

/// [`hostile_run`] with `limits`, bridged to an SDK provider (its default limits): the
/// document and the spans the SDK exported.
fn hostile_run_bridged(
    limits: AttributeLimits,
) -> (
    loopotel::LtfDocument,
    Vec<opentelemetry_sdk::trace::SpanData>,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .attribute_limits(limits)
        .build();
    let doc = hostile_run(&tracer);
    (doc, exporter.get_finished_spans().unwrap())
}

#[test]
fn both_views_keep_usage_cost_and_outcome_and_respect_the_limits() {
    let limits = AttributeLimits::default()
        .max_attributes(64)
        .max_value_len(1000);
    let (doc, spans) = hostile_run_bridged(limits);
    assert!(loopotel::validate::validate_document(&doc).is_empty());
    let tool = tool_span(&doc);
    // The name: no control characters left, the text kept.
    assert!(
        !tool.name.as_str().chars().any(char::is_control),
        "{:?}",
        tool.name
    );
    assert!(tool.name.as_str().starts_with("tool__[ERROR] forged"));
    // Count: at the limit plus the two counters; essentials kept.
    assert!(tool.attributes.len() <= 64 + 2, "{}", tool.attributes.len());
    for key in [
        "gen_ai.usage.input_tokens",
        "loop.tokens_delta",
        "loop.cost_usd",
        "error.type",
        "gen_ai.operation.name",
    ] {
        assert!(tool.attributes.get(key).is_some(), "{key} evicted");
    }
    let dropped = tool
        .attributes
        .get(DROPPED_ATTRIBUTES)
        .and_then(|v| v.as_i64());
    // 302 user attributes (300, `huge`, the bad key) and 5 essential ones.
    assert_eq!(dropped, Some(302 + 5 - 64), "{:?}", tool.attributes.len());
    // Eviction takes the newest user attributes first: the first ones stay.
    assert!(tool.attributes.get("user.0").is_some());
    assert!(tool.attributes.get("user.299").is_none());
    // Length: the huge value and the exception message cut (characters, not bytes).
    let exception = &tool.events.iter().find(|e| e.name == "exception").unwrap();
    let message = exception.attributes.get("exception.message").unwrap();
    assert_eq!(message.as_str().unwrap().chars().count(), 1000);
    assert!(tool.attributes.get(TRUNCATED_ATTRIBUTES).is_some());
    // The root keeps its outcome among 300 run attributes.
    let root = doc.root().unwrap();
    assert_eq!(
        root.attributes.get("loop.outcome").and_then(|v| v.as_str()),
        Some("failure")
    );
    assert!(root.attributes.get("loop.tokens_total").is_some());

    // The OpenTelemetry view carries the same, within the SDK's own 128-attribute limit.
    let otel_tool = spans
        .iter()
        .find(|s| s.span_context.span_id().to_bytes() == tool.span_id.to_bytes())
        .unwrap();
    assert_eq!(otel_tool.name, tool.name.as_str());
    assert_eq!(
        otel_tool.dropped_attributes_count, 0,
        "the SDK dropped nothing"
    );
    assert_eq!(
        otel_attr(otel_tool, "gen_ai.usage.input_tokens"),
        Some(&Value::I64(1234))
    );
    assert!(otel_attr(otel_tool, "loop.cost_usd").is_some());
    assert!(
        otel_tool
            .attributes
            .iter()
            .all(|kv| !kv.key.as_str().chars().any(char::is_control))
    );
    let otel_root = spans.iter().find(|s| s.name == "loop.run").unwrap();
    assert_eq!(
        otel_attr(otel_root, "loop.outcome"),
        Some(&Value::from("failure"))
    );
}

#[test]
fn without_loopotel_limits_the_sdk_would_drop_the_usage() {
    // Why the limits exist: unlimited, the span reaches the SDK with 300+ attributes and the
    // SDK's default limit (128) keeps the first ones — the usage set last is lost there.
    let (doc, spans) = hostile_run_bridged(AttributeLimits::unlimited());
    let tool = tool_span(&doc);
    assert!(
        tool.attributes.get("gen_ai.usage.input_tokens").is_some(),
        "LTF keeps all"
    );
    let otel_tool = spans
        .iter()
        .find(|s| s.span_context.span_id().to_bytes() == tool.span_id.to_bytes())
        .unwrap();
    assert!(otel_tool.dropped_attributes_count > 0);
    assert!(otel_attr(otel_tool, "gen_ai.usage.input_tokens").is_none());
}

#[test]
fn the_default_limits_leave_ordinary_spans_untouched() {
    let tracer = LoopTracer::new();
    let run = tracer.run("plain").start();
    {
        let it = run.iteration(1);
        let mut span = it.span("tool search", SpanKind::Worker);
        span.set_attribute("query", "weather in Paris".to_owned());
        span.add_tokens(3);
    }
    let doc = run.finish(Outcome::Success, "done");
    for span in &doc.spans {
        assert!(span.attributes.get(DROPPED_ATTRIBUTES).is_none());
        assert!(span.attributes.get(TRUNCATED_ATTRIBUTES).is_none());
    }
    let tool = tool_span(&doc);
    assert_eq!(
        tool.attributes.get("query").and_then(|v| v.as_str()),
        Some("weather in Paris")
    );
}
