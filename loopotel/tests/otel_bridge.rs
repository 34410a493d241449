//! One recording, two views: every LTF span is also an OpenTelemetry span with the same ids,
//! parentage, timestamps, attributes and events (SDK in-memory exporter).

use std::collections::HashMap;

use loopotel::otel::to_otel_value;
use loopotel::propagation::{TraceParent, inject_current};
use loopotel::validate::validate_document;
use loopotel::{IterationRecord, LoopTracer, LtfDocument, LtfSpan, Outcome, SpanKind, start_span};
use opentelemetry::Value;
use opentelemetry::trace::{
    Span as _, SpanKind as OtelKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

use loopotel_test_support::sampler::SeenAtCreation;

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

fn by_id(spans: &[SpanData]) -> HashMap<[u8; 8], &SpanData> {
    spans
        .iter()
        .map(|s| (s.span_context.span_id().to_bytes(), s))
        .collect()
}

fn otel_attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// Asserts the OpenTelemetry span shows exactly the LTF span.
fn assert_same(ltf: &LtfSpan, otel: &SpanData, doc: &LtfDocument) {
    let what = ltf.name.as_str();
    assert_eq!(
        otel.span_context.trace_id().to_bytes(),
        doc.trace_id.to_bytes(),
        "{what}: trace id"
    );
    assert_eq!(otel.name, ltf.name.as_str(), "{what}: name");
    match ltf.parent_span_id {
        Some(p) => assert_eq!(
            otel.parent_span_id.to_bytes(),
            p.to_bytes(),
            "{what}: parent"
        ),
        None => assert_eq!(
            otel.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "{what}: root"
        ),
    }
    assert_eq!(
        otel.start_time,
        ltf.start_time.to_system_time(),
        "{what}: start"
    );
    assert_eq!(
        Some(otel.end_time),
        ltf.end_time.map(|t| t.to_system_time()),
        "{what}: end"
    );
    // Every LTF attribute, once, with the same value.
    for (k, v) in ltf.attributes.iter() {
        let n = otel
            .attributes
            .iter()
            .filter(|kv| kv.key.as_str() == k)
            .count();
        assert_eq!(n, 1, "{what}: attribute {k} appears {n} times");
        assert_eq!(otel_attr(otel, k), Some(&to_otel_value(v)), "{what}: {k}");
    }
    let otel_events: Vec<_> = otel
        .events
        .iter()
        .map(|e| (e.name.to_string(), e.timestamp))
        .collect();
    let ltf_events: Vec<_> = ltf
        .events
        .iter()
        .map(|e| (e.name.to_string(), e.timestamp.to_system_time()))
        .collect();
    assert_eq!(otel_events, ltf_events, "{what}: events");
    for (oe, le) in otel.events.iter().zip(&ltf.events) {
        for (k, v) in le.attributes.iter() {
            let found = oe
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| &kv.value);
            assert_eq!(
                found,
                Some(&to_otel_value(v)),
                "{what}: event {} {k}",
                le.name
            );
        }
    }
}

#[test]
fn every_ltf_span_is_an_otel_span_with_the_same_ids_times_and_attributes() {
    let (provider, exporter) = provider();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let run = tracer
        .run("bridged-loop")
        .env_id("bridge/env-v1")
        .metadata("team", "agents")
        .start();
    {
        let mut it = run.iteration(1);
        {
            let mut llm = it.span("chat gpt-4o", SpanKind::Worker.client());
            llm.set_attribute("gen_ai.request.model", "gpt-4o");
            llm.add_tokens(321);
        }
        {
            let mut tool = it.span("execute_tool search", SpanKind::Worker);
            tool.record_error("timeout", "search took too long");
        }
        it.worker_complete("writer");
        it.evaluator_complete("critic", 0.5);
    }
    run.emit_iteration(
        IterationRecord::new(2, 0.9)
            .latency_ms(12.0)
            .worker("writer")
            .evaluator("critic"),
    );
    let doc = run.finish(Outcome::Success, "quality_threshold");
    assert!(validate_document(&doc).is_empty());

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), doc.spans.len());
    let otel = by_id(&spans);
    for ltf in &doc.spans {
        let o = otel
            .get(&ltf.span_id.to_bytes())
            .unwrap_or_else(|| panic!("no OTel span for {}", ltf.name));
        assert_same(ltf, o, &doc);
    }
    let root = otel[&doc.root().unwrap().span_id.to_bytes()];
    assert_eq!(
        otel_attr(root, "ltf.spec_pins.ltf"),
        Some(&Value::from("ltf@0.1.0"))
    );
    assert_eq!(
        otel_attr(root, "ltf.metadata"),
        Some(&Value::from(r#"{"team":"agents"}"#))
    );
    let llm = spans.iter().find(|s| s.name == "chat gpt-4o").unwrap();
    assert_eq!(llm.span_kind, OtelKind::Client);
    let tool = spans
        .iter()
        .find(|s| s.name == "execute_tool search")
        .unwrap();
    assert_eq!(tool.span_kind, OtelKind::Internal);
    assert_eq!(tool.status, Status::error("search took too long"));
    assert!(tool.events.iter().any(|e| e.name == "exception"));
}

#[test]
fn a_run_inside_an_otel_span_joins_its_trace_and_other_instrumentation_nests_inside() {
    let (provider, exporter) = provider();
    let app = provider.tracer("app");
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let request = app.start("http request");
    let request_sc = request.span_context().clone();
    let cx = opentelemetry::Context::current_with_span(request);
    let iteration_id;
    let doc = {
        let _g = cx.clone().attach();
        let run = tracer.run("nested-loop").start();
        let it = run.iteration(1);
        let headers = {
            let _ic = it.enter();
            // Instrumentation that knows nothing of loopotel parents itself to the iteration.
            drop(app.start("db query"));
            let mut headers = HashMap::new();
            inject_current(&mut headers);
            let tool = start_span("execute_tool fetch", SpanKind::Worker);
            assert!(tool.is_recording());
            headers
        };
        let tp: TraceParent = headers["traceparent"].parse().unwrap();
        assert_eq!(Some(tp.span_id), it.span_id());
        iteration_id = it.span_id();
        drop(it);
        run.finish(Outcome::Success, "done")
    };
    drop(cx);
    assert_eq!(doc.trace_id.to_bytes(), request_sc.trace_id().to_bytes());
    let root = doc.root().unwrap();
    assert_eq!(
        root.attributes
            .get("loop.parent_span_id")
            .and_then(|v| v.as_str()),
        Some(request_sc.span_id().to_string().as_str())
    );
    let spans = exporter.get_finished_spans().unwrap();
    let otel_root = spans.iter().find(|s| s.name == "loop.run").unwrap();
    assert_eq!(otel_root.parent_span_id, request_sc.span_id());
    let db = spans.iter().find(|s| s.name == "db query").unwrap();
    assert_eq!(
        Some(loopotel::SpanId::from_bytes(db.parent_span_id.to_bytes())),
        iteration_id
    );
    let tool = spans
        .iter()
        .find(|s| s.name == "execute_tool fetch")
        .unwrap();
    assert_eq!(
        Some(loopotel::SpanId::from_bytes(tool.parent_span_id.to_bytes())),
        iteration_id
    );
}

/// A span other instrumentation starts inside a loopotel span (an HTTP client span, a
/// `tracing` span) stays between it and a loopotel span started inside it in the
/// OpenTelemetry view. The LTF view holds loopotel spans only: by default the inner span goes
/// under the enclosing iteration (the foreign span hides the outer loopotel span's id);
/// `scope_through_foreign_spans(true)` links it to the outer loopotel span.
#[test]
fn a_foreign_span_between_two_loopotel_spans_stays_in_the_otel_tree() {
    for keep in [false, true] {
        let (provider, exporter) = provider();
        let app = provider.tracer("app");
        let tracer = LoopTracer::builder()
            .tracer_provider(&provider)
            .scope_through_foreign_spans(keep)
            .build();
        let run = tracer.run("foreign-between").start();
        let it = run.iteration(1);
        let (tool_id, foreign_id) = {
            let _ic = it.enter();
            let mut tool = start_span("execute_tool browse", SpanKind::Worker);
            let _tc = tool.context().attach();
            let foreign = app.start("http get");
            let foreign_id = foreign.span_context().span_id();
            let _fc = opentelemetry::Context::current_with_span(foreign).attach();
            drop(start_span("chat summarize", SpanKind::Worker.client()));
            // A scope used outside the context it was found in keeps its own parent.
            let scope = loopotel::context::LoopScope::current().unwrap();
            drop(_fc);
            drop(scope.start_span_in(
                &opentelemetry::Context::new(),
                "chat detached",
                SpanKind::Worker,
                std::iter::empty::<(&str, &str)>(),
            ));
            (tool.span_id().unwrap(), foreign_id)
        };
        let iteration_id = it.span_id().unwrap();
        drop(it);
        let doc = run.finish(Outcome::Success, "done");
        let spans = exporter.get_finished_spans().unwrap();
        let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
        let ltf = |name: &str| doc.spans.iter().find(|s| s.name == name).unwrap();
        assert_eq!(
            find("http get").parent_span_id.to_bytes(),
            tool_id.to_bytes()
        );
        assert_eq!(find("chat summarize").parent_span_id, foreign_id);
        assert_eq!(
            find("chat summarize").span_context.trace_id().to_bytes(),
            doc.trace_id.to_bytes()
        );
        let ltf_parent = if keep { tool_id } else { iteration_id };
        assert_eq!(
            ltf("chat summarize").parent_span_id,
            Some(ltf_parent),
            "keep={keep}"
        );
        assert_eq!(
            find("chat detached").parent_span_id.to_bytes(),
            ltf_parent.to_bytes()
        );
        assert_eq!(ltf("chat detached").parent_span_id, Some(ltf_parent));
        assert_eq!(validate_document(&doc), Vec::<String>::new());
    }
}

#[test]
fn continue_trace_joins_a_propagated_trace_with_the_bridge_too() {
    let (provider, exporter) = provider();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        .parse()
        .unwrap();
    let doc = tracer
        .run("consumer-loop")
        .continue_trace(tp)
        .start()
        .finish(Outcome::Unknown, "x");
    assert_eq!(doc.trace_id, tp.trace_id);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans[0].parent_span_id.to_bytes(), tp.span_id.to_bytes());
    assert!(spans[0].parent_span_is_remote);
}

#[test]
fn spans_ended_by_a_panic_are_errors_in_both_views() {
    let (provider, exporter) = provider();
    let docs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink_docs = docs.clone();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(move |d: &LtfDocument| sink_docs.lock().unwrap().push(d.clone()))
        .build();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let run = tracer.run("panic-loop").start();
        let it = run.iteration(1);
        let _tool = it.span("execute_tool crash", SpanKind::Worker);
        panic!("tool crashed");
    }));
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 3);
    let tool = spans
        .iter()
        .find(|s| s.name == "execute_tool crash")
        .unwrap();
    assert!(matches!(tool.status, Status::Error { .. }));
    let doc = &docs.lock().unwrap()[0];
    for ltf in &doc.spans {
        let o = spans
            .iter()
            .find(|s| s.span_context.span_id().to_bytes() == ltf.span_id.to_bytes())
            .unwrap();
        assert_same(ltf, o, doc);
    }
}

/// A provider shut down while the agent still runs (a graceful shutdown in progress, say)
/// starts no OpenTelemetry spans; the LTF record still gets valid ids of its own.
#[test]
fn a_shut_down_provider_leaves_the_ltf_record_valid() {
    let (provider, _exporter) = provider();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    provider.shutdown().unwrap();
    let run = tracer.run("after-shutdown").start();
    {
        let it = run.iteration(1);
        let mut call = it.span("execute_tool search", SpanKind::Worker);
        call.set_attribute("gen_ai.tool.name", "search");
        drop(call);
        let mut nested = it.span("chat model", SpanKind::Worker);
        let _cx = nested.context();
    }
    let doc = run.finish(Outcome::Success, "done");
    assert_eq!(doc.spans.len(), 4);
    let ids: std::collections::HashSet<_> = doc.spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), 4, "every span has its own id");
    assert!(doc.spans.iter().all(|s| !s.span_id.is_zero()));
    assert!(!doc.trace_id.is_zero());
    let problems = validate_document(&doc);
    assert!(problems.is_empty(), "{problems:?}");
}

/// A provider whose spans are only their parent's context again (the API's no-op provider,
/// a common way to switch OpenTelemetry off) gives no ids of its own: inside a propagated
/// trace, every span would otherwise take the caller's span id. The LTF record keeps ids of
/// its own, in the caller's trace.
#[test]
fn a_no_op_provider_inside_a_propagated_trace_leaves_the_ltf_record_valid() {
    let provider = opentelemetry::trace::noop::NoopTracerProvider::new();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        .parse()
        .unwrap();
    let run = tracer.run("consumer-loop").continue_trace(tp).start();
    {
        let it = run.iteration(1);
        drop(it.span("execute_tool search", SpanKind::Worker));
        let mut nested = it.span("chat model", SpanKind::Worker);
        let _cx = nested.context();
    }
    let doc = run.finish(Outcome::Success, "done");
    assert_eq!(doc.trace_id, tp.trace_id);
    let ids: std::collections::HashSet<_> = doc.spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), 4, "every span has its own id");
    assert!(!ids.contains(&tp.span_id), "no span takes the caller's id");
    let problems = validate_document(&doc);
    assert!(problems.is_empty(), "{problems:?}");
}

fn otel_values(s: &SpanData, key: &str) -> Vec<Value> {
    s.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
        .collect()
}

/// Attributes given when a span starts are on the OpenTelemetry span from its creation (a
/// sampler sees them); set again later, the new value follows at the end (after the first,
/// as the SDK appends every value set); cut by the attribute limits, the cut values follow.
#[test]
fn attributes_given_at_start_reach_the_sampler_and_later_changes_follow() {
    use loopotel::AttributeLimits;
    use loopotel::context::LoopScope;

    let exporter = InMemorySpanExporter::default();
    let seen = SeenAtCreation::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(seen.clone())
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .attribute_limits(AttributeLimits::default().max_value_len(16))
        .build();
    let run = tracer.run("start-attributes").start();
    let it = run.iteration(1);
    {
        let _inside = it.enter();
        let scope = LoopScope::current().expect("inside the iteration");
        let mut chat = scope.start_span_with_attributes(
            "chat model-a",
            SpanKind::Worker,
            [
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.request.model", "model-a"),
            ],
        );
        chat.set_attribute("gen_ai.request.model", "model-b");
        chat.set_attribute("gen_ai.usage.output_tokens", 7);
        drop(chat);
        let mut tool = scope.start_span_with_attributes(
            "execute_tool search",
            SpanKind::Worker,
            [("gen_ai.tool.name", "search")],
        );
        tool.set_attribute("app.hits", 3);
        drop(tool);
        let long = scope.start_span_with_attributes(
            "execute_tool long",
            SpanKind::Worker,
            [("app.query", "x".repeat(40))],
        );
        drop(long);
    }
    drop(it);
    let doc = run.finish(Outcome::Success, "done");
    assert_eq!(validate_document(&doc), Vec::<String>::new());
    let spans = exporter.get_finished_spans().expect("exported");
    let otel = |name: &str| spans.iter().find(|s| s.name == name).expect(name);
    let ltf = |name: &str| doc.spans.iter().find(|s| s.name == name).expect(name);

    let at_creation = |name: &str| seen.attributes_of(name).expect(name);
    assert_eq!(
        at_creation("chat model-a"),
        [
            ("gen_ai.operation.name".to_owned(), "chat".to_owned()),
            ("gen_ai.request.model".to_owned(), "model-a".to_owned()),
        ]
    );
    assert_eq!(
        at_creation("execute_tool search"),
        [("gen_ai.tool.name".to_owned(), "search".to_owned())]
    );

    // Changed after the start: the last value is the LTF span's.
    let chat = otel("chat model-a");
    assert_eq!(
        otel_values(chat, "gen_ai.request.model").last(),
        Some(&Value::from("model-b"))
    );
    assert_eq!(
        attr_str(ltf("chat model-a"), "gen_ai.request.model"),
        "model-b"
    );
    assert_eq!(otel_values(chat, "gen_ai.operation.name").len(), 1);
    assert_eq!(otel_values(chat, "gen_ai.usage.output_tokens").len(), 1);

    // Unchanged: the two views are the same, every attribute once.
    assert_same(
        ltf("execute_tool search"),
        otel("execute_tool search"),
        &doc,
    );

    // Cut by the limits: the cut value is the last one.
    let cut = attr_str(ltf("execute_tool long"), "app.query");
    assert!(cut.len() < 40, "{cut}");
    assert_eq!(
        otel_values(otel("execute_tool long"), "app.query").last(),
        Some(&Value::from(cut))
    );
}

fn attr_str(s: &LtfSpan, key: &str) -> String {
    s.attributes
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// With a provider a span's context holds its OpenTelemetry span and no loop scope of its
/// own; the run's table of open spans (256 slots) says which span children go under. Many
/// spans open at once — more than the table holds, so some keep a scope in their context
/// instead — each get their children, in both views, and the attempts counted under them.
#[test]
fn many_open_span_contexts_each_parent_their_children() {
    let (provider, exporter) = provider();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let run = tracer.run("many-open").start();
    let it = run.iteration(1);
    let _ic = it.enter();
    let mut tools: Vec<_> = (0..600)
        .map(|i| start_span(format!("execute_tool t{i}"), SpanKind::Worker))
        .collect();
    let contexts: Vec<_> = tools.iter_mut().map(|t| t.context()).collect();
    for (i, cx) in contexts.iter().enumerate() {
        let _c = cx.clone().attach();
        assert_eq!(loopotel::context::next_attempt(), Some(1));
        assert_eq!(loopotel::context::next_attempt(), Some(2));
        drop(start_span(format!("chat c{i}"), SpanKind::Worker.client()));
        let scope = loopotel::context::LoopScope::current().unwrap();
        assert_eq!(Some(scope.parent_span_id()), tools[i].span_id());
    }
    let ids: Vec<_> = tools.iter().map(|t| t.span_id().unwrap()).collect();
    drop(tools);
    // A context kept after its span ended: children go under the iteration.
    {
        let _c = contexts[0].clone().attach();
        drop(start_span("chat late", SpanKind::Worker.client()));
    }
    drop(contexts);
    drop(_ic);
    let iteration_id = it.span_id().unwrap();
    drop(it);
    let doc = run.finish(Outcome::Success, "done");
    let otel = exporter.get_finished_spans().unwrap();
    for (i, id) in ids.iter().enumerate() {
        let name = format!("chat c{i}");
        let ltf = doc.spans.iter().find(|s| s.name == name.as_str()).unwrap();
        assert_eq!(ltf.parent_span_id, Some(*id), "{name}");
        let span = otel.iter().find(|s| s.name == name).unwrap();
        assert_eq!(span.parent_span_id.to_bytes(), id.to_bytes(), "{name}");
    }
    let late = doc.spans.iter().find(|s| s.name == "chat late").unwrap();
    assert_eq!(late.parent_span_id, Some(iteration_id));
    assert_eq!(validate_document(&doc), Vec::<String>::new());
}
