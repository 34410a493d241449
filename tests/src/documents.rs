//! LTF documents for tests: a sample covering every recording path, and semantic
//! comparison (null ⇔ absent, timestamps as instants).

use serde_json::Value;

/// Normalises an LTF document for semantic comparison: `env_id`/`task_id`/`parent_span_id`
/// null ⇔ absent, and every `date-time` field replaced by its instant (nanoseconds).
pub fn normalize(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(obj) = doc.as_object_mut() {
        for key in ["env_id", "task_id"] {
            if obj.get(key).is_some_and(Value::is_null) {
                obj.remove(key);
            }
        }
        for key in ["started_at", "ended_at"] {
            normalize_time(obj.get_mut(key));
        }
        if let Some(spans) = obj.get_mut("spans").and_then(Value::as_array_mut) {
            for span in spans {
                let Some(s) = span.as_object_mut() else {
                    continue;
                };
                if !s.contains_key("parent_span_id") {
                    s.insert("parent_span_id".into(), Value::Null);
                }
                normalize_time(s.get_mut("start_time"));
                normalize_time(s.get_mut("end_time"));
                if let Some(events) = s.get_mut("events").and_then(Value::as_array_mut) {
                    for e in events {
                        normalize_time(e.get_mut("timestamp"));
                    }
                }
            }
        }
    }
    doc
}

fn normalize_time(v: Option<&mut Value>) {
    if let Some(v) = v
        && let Some(ts) = v
            .as_str()
            .and_then(|s| s.parse::<loopotel::Timestamp>().ok())
    {
        *v = Value::from(ts.unix_nanos());
    }
}

/// Documents recorded by our tracer, covering every recording path: iteration guards with
/// child spans and roll-ups, one-shot records, the context API, async scopes with spawned
/// tasks, drops and panics, a disabled tracer, the span cap, odd names and metadata.
pub fn sample_documents() -> Vec<loopotel::LtfDocument> {
    use loopotel::{IterationRecord, LoopTracer, Outcome, SpanKind};
    use opentelemetry::context::FutureExt as _;

    let tracer = LoopTracer::new();
    let mut docs = Vec::new();

    // Guards, child spans, roll-ups, errors.
    let run = tracer
        .run("guarded-loop")
        .env_id("sample/env-v1")
        .task_id("t-1")
        .start();
    for n in 1..=4u64 {
        let mut it = run.iteration(n);
        {
            let mut llm = it.span("chat model-x", SpanKind::Worker);
            llm.add_tokens(100 * n);
            llm.add_cost_usd(0.001);
            if n == 3 {
                llm.record_error("timeout", "upstream took too long");
            }
        }
        it.worker_complete("writer");
        it.evaluator_complete("critic", 0.2 * n as f64);
    }
    docs.push(run.finish(Outcome::Success, "quality_threshold"));

    // One-shot records with every optional field, and through the context.
    let run = tracer
        .run("oneshot-loop")
        .goal_target(0.9)
        .metadata("nested", serde_json::json!({"a": [1, 2]}))
        .start();
    run.emit_iteration(
        IterationRecord::new(1, 0.31)
            .tokens(10)
            .cost_usd(0.5)
            .latency_ms(12.5)
            .worker("w")
            .evaluator("e"),
    );
    {
        let _g = run.enter();
        loopotel::emit_iteration(IterationRecord::new(2, 1.7).goal_target(0.5));
        let _s = loopotel::start_span("execute_tool search", SpanKind::Worker);
    }
    docs.push(run.finish(Outcome::Partial, ""));

    // Async scope with work on spawned tasks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (_, doc) = rt.block_on(tracer.run("async-loop").scope(|run| async move {
        for n in 1..=3u64 {
            let it = run.iteration(n);
            let cx = it.context();
            let tasks: Vec<_> = (0..3)
                .map(|k| {
                    tokio::spawn(
                        async move {
                            let mut s = loopotel::start_span(
                                format!("execute_tool t{k}"),
                                SpanKind::Worker,
                            );
                            tokio::task::yield_now().await;
                            s.add_tokens(7);
                        }
                        .with_context(cx.clone()),
                    )
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
            let mut it = it;
            it.set_goal_score(0.3 * n as f64);
        }
        run.set_outcome(Outcome::Success, "done");
    }));
    docs.push(doc);

    // Dropped without finish, and a panic unwinding through a run and an iteration.
    let collected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = {
        let collected = collected.clone();
        move |d: &loopotel::LtfDocument| collected.lock().expect("lock").push(d.clone())
    };
    let collecting = LoopTracer::builder().sink(sink).build();
    {
        let run = collecting.run("dropped-loop").start();
        let _it = run.iteration(1);
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let run = collecting.run("panicking-loop").start();
        let _it = run.iteration(1);
        panic!("agent bug");
    }));
    docs.extend(collected.lock().expect("lock").drain(..));

    // Disabled tracer, span cap, odd names.
    docs.push(
        LoopTracer::disabled()
            .run("disabled-loop")
            .env_id("e")
            .start()
            .finish(Outcome::Unknown, "disabled"),
    );
    let capped = LoopTracer::builder().max_spans_per_run(5).build();
    let run = capped.run("capped-loop").start();
    for n in 1..=10 {
        run.emit_iteration(IterationRecord::new(n, 0.5));
    }
    docs.push(run.finish(Outcome::Failure, "max_iterations"));
    let run = tracer
        .run("ünïcode \"quoted\" lööp ✓")
        .task_id("t\n2")
        .start();
    run.emit_iteration(IterationRecord::new(1, f64::NAN));
    run.set_attribute("user.key", "line\u{2028}sep");
    docs.push(run.finish(Outcome::Unknown, "weird\tinput"));

    // A long run.
    let run = tracer.run("long-loop").start();
    for n in 1..=500 {
        run.emit_iteration(IterationRecord::new(n, (n % 97) as f64 / 97.0).tokens(n));
    }
    docs.push(run.finish(Outcome::Failure, "max_iterations"));
    docs
}
