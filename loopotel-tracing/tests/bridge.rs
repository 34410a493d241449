//! `LoopLayer` with real `tracing` spans and events: parentage in both views, field
//! mapping, usage counted once, content policy, events, async and threads, and fail-open
//! behaviour on bad input.

use loopotel::{LoopTracer, LtfDocument, LtfSpan, Outcome, SpanKind};
use loopotel_tracing::LoopLayer;
use opentelemetry::trace::{SpanKind as OtelKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

fn span<'a>(doc: &'a LtfDocument, name: &str) -> &'a LtfSpan {
    doc.spans
        .iter()
        .find(|s| s.name.as_str() == name)
        .unwrap_or_else(|| {
            let names: Vec<_> = doc.spans.iter().map(|s| s.name.as_str()).collect();
            panic!("no span {name:?} in {names:?}")
        })
}

fn int(s: &LtfSpan, key: &str) -> Option<i64> {
    s.attributes.get(key).and_then(|v| v.as_i64())
}

fn text<'a>(s: &'a LtfSpan, key: &str) -> Option<&'a str> {
    s.attributes.get(key).and_then(|v| v.as_str())
}

/// A tracer with an in-memory OpenTelemetry pipeline (simple processor: exported on end).
fn bridged() -> (LoopTracer, SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    (tracer, provider, exporter)
}

fn otel<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no OpenTelemetry span {name:?}"))
}

#[test]
fn tracing_spans_inside_an_iteration_are_spans_of_it_in_both_views() {
    let (tracer, provider, exporter) = bridged();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("bridged-loop").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let outer = tracing::info_span!(
                "plan",
                app.flag = true,
                app.count = 7i64,
                app.big = u64::MAX,
                app.ratio = 0.25,
                app.label = "x",
                app.debug = ?vec![1, 2],
            );
            let _outer = outer.enter();
            let inner =
                tracing::info_span!("lookup", otel.name = "lookup users", otel.kind = "client");
            let _inner = inner.enter();
            // A loopotel span inside the tracing span nests under it.
            drop(loopotel::start_span("execute_tool cache", SpanKind::Worker));
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let iteration = doc.iterations().next().unwrap().span_id;
    let plan = span(&doc, "plan");
    let lookup = span(&doc, "lookup users");
    let cache = span(&doc, "execute_tool cache");
    assert_eq!(plan.parent_span_id, Some(iteration));
    assert_eq!(lookup.parent_span_id, Some(plan.span_id));
    assert_eq!(cache.parent_span_id, Some(lookup.span_id));
    assert!(plan.end_time.is_some() && plan.end_time >= lookup.end_time);
    // Types kept; u64 beyond i64 as exact text; Debug values as strings.
    assert_eq!(
        plan.attributes.get("app.flag"),
        Some(&loopotel::AttrValue::Bool(true))
    );
    assert_eq!(int(plan, "app.count"), Some(7));
    assert_eq!(text(plan, "app.big"), Some("18446744073709551615"));
    assert_eq!(
        plan.attributes.get("app.ratio").and_then(|v| v.as_f64()),
        Some(0.25)
    );
    assert_eq!(text(plan, "app.label"), Some("x"));
    assert_eq!(text(plan, "app.debug"), Some("[1, 2]"));
    assert!(loopotel::validate::validate_document(&doc).is_empty());

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let o_plan = otel(&spans, "plan");
    let o_lookup = otel(&spans, "lookup users");
    let o_cache = otel(&spans, "execute_tool cache");
    assert_eq!(
        o_plan.span_context.span_id().to_bytes(),
        plan.span_id.to_bytes()
    );
    assert_eq!(o_lookup.parent_span_id.to_bytes(), plan.span_id.to_bytes());
    assert_eq!(o_cache.parent_span_id.to_bytes(), lookup.span_id.to_bytes());
    assert_eq!(o_lookup.span_kind, OtelKind::Client);
    for s in [o_plan, o_lookup, o_cache] {
        assert_eq!(
            s.span_context.trace_id().to_bytes(),
            doc.trace_id.to_bytes()
        );
    }
    // Each span exactly once.
    assert_eq!(spans.iter().filter(|s| s.name == "plan").count(), 1);
}

/// A plain span (no mapped field) whose fields are declared empty and recorded later, as
/// `#[instrument(fields(rows = Empty))]` code does: typed in both views, the last value wins.
#[test]
fn a_plain_span_takes_fields_recorded_later_in_both_views() {
    let (tracer, provider, exporter) = bridged();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("plain-record").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let query = tracing::info_span!(
                "query",
                db.table = "users",
                db.rows = Empty,
                db.ratio = Empty
            );
            query.record("db.rows", 3u64);
            query.record("db.rows", 4u64);
            query.record("db.ratio", f64::NAN);
            let _e = query.enter();
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let query = span(&doc, "query");
    assert_eq!(text(query, "db.table"), Some("users"));
    assert_eq!(int(query, "db.rows"), Some(4));
    assert_eq!(text(query, "db.ratio"), Some("NaN"));
    assert!(loopotel::validate::validate_document(&doc).is_empty());
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let o_query = otel(&spans, "query");
    let rows = o_query
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str() == "db.rows")
        .map(|kv| kv.value.clone())
        .collect::<Vec<_>>();
    assert_eq!(rows, [opentelemetry::Value::I64(4)]);
    assert_eq!(o_query.span_kind, OtelKind::Internal);
}

#[test]
fn outside_any_loop_nothing_is_recorded() {
    let (tracer, provider, exporter) = bridged();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let s = tracing::info_span!("orphan", gen_ai.operation.name = "chat");
        let _e = s.enter();
        tracing::info!("nobody listens");
    });
    provider.force_flush().unwrap();
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    assert_eq!(tracer.stats(), loopotel::TracerStats::default());
}

/// rig's shape: an agent span whose usage is the sum of the chat calls inside it, usage
/// recorded after the response; a tool call between them.
#[test]
fn usage_is_counted_once_at_the_innermost_calls() {
    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("agent-loop").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let agent = tracing::info_span!(
                "invoke_agent",
                gen_ai.operation.name = "invoke_agent",
                gen_ai.agent.name = "helper",
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty,
            );
            let _agent = agent.enter();
            for (input, output) in [(100u64, 20u64), (150, 30)] {
                let chat = tracing::info_span!(
                    "chat",
                    gen_ai.operation.name = "chat",
                    gen_ai.request.model = "m-1",
                    gen_ai.usage.input_tokens = Empty,
                    gen_ai.usage.output_tokens = Empty,
                );
                chat.record("gen_ai.usage.input_tokens", input);
                chat.record("gen_ai.usage.output_tokens", output);
            }
            let tool = tracing::info_span!(
                "execute_tool",
                gen_ai.operation.name = "execute_tool",
                gen_ai.tool.name = "search"
            );
            drop(tool);
            agent.record("gen_ai.usage.input_tokens", 250u64);
            agent.record("gen_ai.usage.output_tokens", 50u64);
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let chats: Vec<_> = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "chat m-1")
        .collect();
    assert_eq!(chats.len(), 2);
    let chat_tokens: i64 = chats
        .iter()
        .map(|s| int(s, "loop.tokens_delta").unwrap_or(0))
        .sum();
    assert_eq!(chat_tokens, 300);
    let agent = span(&doc, "invoke_agent helper");
    assert_eq!(int(agent, "gen_ai.usage.input_tokens"), Some(250));
    assert_eq!(
        int(agent, "loop.tokens_delta"),
        None,
        "the agent's sum is not counted again"
    );
    let iteration = doc.iterations().next().unwrap();
    assert_eq!(int(iteration, "loop.tokens_delta"), Some(300));
    assert_eq!(int(doc.root().unwrap(), "loop.tokens_total"), Some(300));
    assert!(
        doc.spans
            .iter()
            .any(|s| s.name.as_str() == "execute_tool search")
    );
}

/// A call traced by loopotel itself (as loopotel-openai does) inside a bridged span that
/// also reports usage: counted once.
#[test]
fn a_loopotel_call_inside_a_bridged_llm_span_is_not_counted_twice() {
    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("wrapped-call").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let wrapper = tracing::info_span!(
                "my_chat",
                gen_ai.operation.name = "chat",
                gen_ai.usage.input_tokens = 40u64,
                gen_ai.usage.output_tokens = 2u64,
            );
            let _w = wrapper.enter();
            let mut call = loopotel::start_span("chat gpt-x", SpanKind::Worker.client());
            call.add_tokens(42);
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let iteration = doc.iterations().next().unwrap();
    assert_eq!(int(iteration, "loop.tokens_delta"), Some(42));
}

#[test]
fn otel_status_error_fields_and_bad_values_are_clear_results() {
    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("bad-input").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let err = std::io::Error::other("disk on fire");
            drop(tracing::info_span!(
                "failing",
                error = &err as &dyn std::error::Error
            ));
            drop(tracing::info_span!(
                "status",
                otel.status_code = "ERROR",
                otel.status_description = "upstream said no"
            ));
            drop(tracing::info_span!(
                "weird_usage",
                gen_ai.operation.name = "summon_demon",
                gen_ai.usage.input_tokens = "lots",
                gen_ai.usage.output_tokens = -5i64,
                gen_ai.usage.total_tokens = f64::NAN,
                app.nan = f64::NAN,
            ));
            let huge = "x".repeat(200_000);
            drop(tracing::info_span!("huge", app.huge = huge.as_str()));
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let failing = span(&doc, "failing");
    assert_eq!(text(failing, "error.type"), Some("error"));
    let exception = failing
        .events
        .iter()
        .find(|e| e.name.as_str() == "exception")
        .unwrap();
    assert_eq!(
        exception
            .attributes
            .get("exception.message")
            .and_then(|v| v.as_str()),
        Some("disk on fire")
    );
    let status = span(&doc, "status");
    assert_eq!(text(status, "error.type"), Some("error"));
    // An unknown operation is a plain span; bad counts are kept as given and not counted.
    let weird = span(&doc, "weird_usage");
    assert_eq!(text(weird, "gen_ai.operation.name"), Some("summon_demon"));
    assert_eq!(text(weird, "gen_ai.usage.input_tokens"), Some("lots"));
    assert_eq!(int(weird, "gen_ai.usage.output_tokens"), Some(-5));
    assert_eq!(text(weird, "app.nan"), Some("NaN"));
    assert_eq!(int(weird, "loop.tokens_delta"), None);
    let huge = span(&doc, "huge");
    assert!(text(huge, "app.huge").unwrap().len() <= 16_384);
    assert!(loopotel::validate::validate_document(&doc).is_empty());
}

#[test]
fn content_fields_follow_the_capture_policy() {
    let secret = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let record = |layer: LoopLayer| {
        let tracer = LoopTracer::new();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let run = tracer.run("content").start();
            let it = run.iteration(1);
            {
                let _inside = it.enter();
                drop(tracing::info_span!(
                    "chat",
                    gen_ai.operation.name = "chat",
                    gen_ai.input.messages =
                        format!("use key {secret} please {}", "y".repeat(100)).as_str(),
                    gen_ai.tool.call.arguments = "{\"q\": 1}",
                ));
            }
            drop(it);
            run.finish(Outcome::Success, "done")
        })
    };
    let off = record(LoopLayer::new().capture_content(false));
    let chat = span(&off, "chat");
    assert!(chat.attributes.get("gen_ai.input.messages").is_none());
    assert!(chat.attributes.get("gen_ai.tool.call.arguments").is_none());

    let on = record(LoopLayer::new().capture_content(true).content_budget(40));
    let chat = span(&on, "chat");
    let messages = text(chat, "gen_ai.input.messages").unwrap();
    assert!(!messages.contains(secret), "{messages}");
    assert!(messages.contains("[redacted]"));
    assert!(messages.len() <= 40);
    assert_eq!(text(chat, "gen_ai.tool.call.arguments"), Some("{\"q\": 1}"));
}

#[test]
fn events_become_span_events_in_both_views_above_the_level() {
    let (tracer, provider, exporter) = bridged();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("events").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let step = tracing::info_span!("step");
            let _s = step.enter();
            tracing::debug!("too chatty");
            tracing::info!(items = 3, "fetched");
            tracing::warn!(retry = true, "slow upstream");
            let err = std::io::Error::other("gave up");
            tracing::error!(error = &err as &dyn std::error::Error, "failed");
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let step = span(&doc, "step");
    let names: Vec<_> = step.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["fetched", "slow upstream", "exception", "failed"]);
    let fetched = &step.events[0];
    assert_eq!(
        fetched.attributes.get("items").and_then(|v| v.as_i64()),
        Some(3)
    );
    assert_eq!(
        fetched.attributes.get("level").and_then(|v| v.as_str()),
        Some("INFO")
    );
    assert_eq!(text(step, "error.type"), Some("error"));

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let o_step = otel(&spans, "step");
    let o_names: Vec<_> = o_step.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(o_names, names);

    // A lower threshold takes DEBUG too.
    let tracer = LoopTracer::new();
    let subscriber =
        tracing_subscriber::registry().with(LoopLayer::new().event_level(tracing::Level::DEBUG));
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("debug-events").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let step = tracing::info_span!("step");
            let _s = step.enter();
            tracing::debug!("now heard");
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    assert_eq!(span(&doc, "step").events[0].name.as_str(), "now heard");
}

/// Spans entered across `.await` on a multi-thread runtime, in spawned tasks, closed on
/// other threads, outliving their run, or never closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_and_threads_keep_parents_and_never_panic() {
    use opentelemetry::context::FutureExt as _;
    use tracing::Instrument as _;
    use tracing::instrument::WithSubscriber as _;

    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let _default = tracing::subscriber::set_default(subscriber);
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let run = tracer.run("async-bridge").start();
    let it = run.iteration(1);
    let cx = it.context();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let dispatch = dispatch.clone();
        let work = async move {
            let outer = tracing::info_span!("task", n);
            async {
                tokio::task::yield_now().await;
                let inner = tracing::info_span!("inner", n);
                async {
                    tokio::task::yield_now().await;
                }
                .instrument(inner)
                .await;
            }
            .instrument(outer)
            .await;
        };
        tasks.push(tokio::spawn(
            work.with_subscriber(dispatch).with_context(cx.clone()),
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A span created in the loop and closed on another thread.
    let moved = {
        let _inside = it.enter();
        tracing::info_span!("moved")
    };
    std::thread::spawn(move || drop(moved)).join().unwrap();
    // A span that outlives its run, and one that is never closed.
    let late = {
        let _inside = it.enter();
        tracing::info_span!("late")
    };
    let leaked = {
        let _inside = it.enter();
        tracing::info_span!("leaked")
    };
    std::mem::forget(leaked);
    drop(it);
    let doc = run.finish(Outcome::Success, "done");
    drop(late);

    let iteration = doc.iterations().next().unwrap().span_id;
    let tasks: Vec<_> = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "task")
        .collect();
    let inners: Vec<_> = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "inner")
        .collect();
    assert_eq!((tasks.len(), inners.len()), (16, 16));
    for t in &tasks {
        assert_eq!(t.parent_span_id, Some(iteration));
        let n = int(t, "n");
        let inner = inners.iter().find(|i| int(i, "n") == n).unwrap();
        assert_eq!(inner.parent_span_id, Some(t.span_id), "task {n:?}");
    }
    assert!(doc.spans.iter().any(|s| s.name.as_str() == "moved"));
    assert!(doc.spans.iter().all(|s| s.name.as_str() != "leaked"));
    assert!(doc.spans.iter().all(|s| s.name.as_str() != "late"));
    assert_eq!(tracer.stats().late_records, 1);
    assert!(loopotel::validate::validate_document(&doc).is_empty());
}

/// A field whose `Debug` panics — at a span's start, recorded later, in an event: each panic
/// is caught and counted, the application goes on.
#[test]
fn a_panic_while_mapping_is_counted_not_raised() {
    struct Explodes;
    impl std::fmt::Debug for Explodes {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Debug exploded")
        }
    }
    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("explodes").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let s = tracing::info_span!("boom", value = ?Explodes);
            let _e = s.enter();
            drop(tracing::info_span!("fine"));
            // In a bridged span: a value recorded later, and an event's field.
            let later = tracing::info_span!("later", value = tracing::field::Empty);
            later.record("value", tracing::field::debug(Explodes));
            let _in_later = later.enter();
            tracing::info!(value = ?Explodes, "an event");
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    assert_eq!(tracer.stats().instrumentation_panics, 3);
    assert!(doc.spans.iter().any(|s| s.name.as_str() == "fine"));
    assert!(doc.spans.iter().any(|s| s.name.as_str() == "later"));
}

/// 100 000 spans in one iteration: bounded by the run's span cap, counted, no panic.
#[test]
fn a_flood_of_spans_is_bounded_and_counted() {
    let tracer = LoopTracer::builder().max_spans_per_run(1_000).build();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("flood").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            for i in 0..100_000u64 {
                drop(tracing::info_span!("tick", i));
            }
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    assert!(doc.spans.len() <= 1_000);
    assert_eq!(
        tracer.stats().dropped_spans as usize,
        100_000 + 2 - doc.spans.len()
    );
}

#[test]
fn prices_cost_llm_spans_with_known_model_and_usage() {
    let prices = loopotel::price::PriceTable::from_json_str(
        r#"{"m-1": {"input_per_million": 1000000, "output_per_million": 2000000}}"#,
    )
    .unwrap();
    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new().prices(prices));
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("priced").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            drop(tracing::info_span!(
                "chat",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = "m-1",
                gen_ai.usage.input_tokens = 3u64,
                gen_ai.usage.output_tokens = 2u64,
            ));
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    let iteration = doc.iterations().next().unwrap();
    assert_eq!(
        iteration
            .attributes
            .get("loop.cost_usd")
            .and_then(|v| v.as_f64()),
        Some(7.0)
    );
}

/// Beside tracing-opentelemetry: it records the OpenTelemetry view of `tracing` spans,
/// `LoopLayer::ltf_only` the LTF view; no span is exported twice, one trace id, parents as
/// in the code.
#[test]
fn beside_tracing_opentelemetry_no_span_is_exported_twice() {
    let (tracer, provider, exporter) = bridged();
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing"));
    let subscriber = tracing_subscriber::registry()
        .with(otel_layer)
        .with(LoopLayer::new().ltf_only());
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("side-by-side").start();
        let it = run.iteration(1);
        {
            let _inside = it.enter();
            let outer = tracing::info_span!("outer");
            let _o = outer.enter();
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            drop(loopotel::start_span(
                "execute_tool native",
                SpanKind::Worker,
            ));
        }
        drop(it);
        run.finish(Outcome::Success, "done")
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    for name in [
        "outer",
        "inner",
        "execute_tool native",
        "loop.iteration",
        "loop.run",
    ] {
        assert_eq!(
            spans.iter().filter(|s| s.name == name).count(),
            1,
            "{name} exported once"
        );
    }
    let trace = doc.trace_id.to_bytes();
    assert!(
        spans
            .iter()
            .all(|s| s.span_context.trace_id().to_bytes() == trace)
    );
    let o_iteration = otel(&spans, "loop.iteration");
    let o_outer = otel(&spans, "outer");
    let o_inner = otel(&spans, "inner");
    let o_native = otel(&spans, "execute_tool native");
    assert_eq!(o_outer.parent_span_id, o_iteration.span_context.span_id());
    assert_eq!(o_inner.parent_span_id, o_outer.span_context.span_id());
    assert_eq!(o_native.parent_span_id, o_inner.span_context.span_id());
    // The LTF view: the same tree.
    let iteration = doc.iterations().next().unwrap().span_id;
    let outer = span(&doc, "outer");
    let inner = span(&doc, "inner");
    assert_eq!(outer.parent_span_id, Some(iteration));
    assert_eq!(inner.parent_span_id, Some(outer.span_id));
    assert_eq!(
        span(&doc, "execute_tool native").parent_span_id,
        Some(inner.span_id)
    );
}
