//! Recording semantics: guards, context, nesting, roll-ups, limits, fail-open sinks.

use std::sync::{Arc, Mutex};

use loopotel::context::{current_run, start_span};
use loopotel::validate::validate_document;
use loopotel::{
    AttrValue, IterationRecord, LoopTracer, LtfDocument, Outcome, SpanKind, emit_iteration,
};
use opentelemetry::context::FutureExt as _;

fn attr<'a>(span: &'a loopotel::LtfSpan, key: &str) -> &'a AttrValue {
    span.attributes
        .get(key)
        .unwrap_or_else(|| panic!("{} has no {key}", span.name))
}

fn collecting() -> (LoopTracer, Arc<Mutex<Vec<LtfDocument>>>) {
    let docs = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let docs = docs.clone();
        move |d: &LtfDocument| docs.lock().unwrap().push(d.clone())
    };
    (LoopTracer::builder().sink(sink).build(), docs)
}

#[test]
fn iteration_guards_have_real_durations_and_reference_events() {
    let tracer = LoopTracer::new();
    let run = tracer.run("guard-loop").start();
    let mut it = run.iteration(1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    it.worker_complete("writer");
    it.evaluator_complete("critic", 0.6);
    it.end();
    let doc = run.finish(Outcome::Failure, "max_iterations");
    assert!(validate_document(&doc).is_empty());
    let span = doc.iterations().next().unwrap();
    let end = span.end_time.unwrap();
    assert!(end.saturating_since(span.start_time) >= std::time::Duration::from_millis(5));
    let names: Vec<_> = span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "loop.iteration.start",
            "loop.worker.complete",
            "loop.evaluator.complete",
            "loop.iteration.end"
        ]
    );
    assert!(attr(span, "loop.latency_ms").as_f64().unwrap() >= 5.0);
    assert_eq!(attr(span, "loop.les.effectiveness").as_f64(), Some(0.75));
    let root = doc.root().unwrap();
    assert_eq!(attr(root, "loop.outcome").as_str(), Some("failure"));
    assert_eq!(root.end_time, Some(doc.ended_at));
}

#[test]
fn dropped_and_panicking_runs_still_end_and_reach_the_sinks() {
    let (tracer, docs) = collecting();
    {
        let run = tracer.run("dropped-loop").start();
        run.emit_iteration(IterationRecord::new(1, 0.5));
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let run = tracer.run("panicking-loop").start();
        let it = run.iteration(1);
        let _span = it.span("chat m", SpanKind::Worker);
        panic!("boom");
    }));
    assert!(caught.is_err());
    {
        let run = tracer.run("hinted-loop").start();
        run.set_outcome(Outcome::Partial, "budget_exhausted");
    }
    let docs = docs.lock().unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].outcome, Some(Outcome::Unknown));
    assert_eq!(docs[0].termination_reason.as_deref(), Some("dropped"));
    assert_eq!(docs[0].iterations().count(), 1);
    let p = &docs[1];
    assert_eq!(p.outcome, Some(Outcome::Failure));
    assert_eq!(p.termination_reason.as_deref(), Some("panic"));
    // The iteration and its child span were ended by the unwinding, marked as such.
    for span in &p.spans[1..] {
        assert!(span.end_time.is_some(), "{} left open", span.name);
        assert_eq!(attr(span, "loop.end_reason").as_str(), Some("panic"));
    }
    assert_eq!(docs[2].outcome, Some(Outcome::Partial));
    for d in docs.iter() {
        assert!(
            validate_document(d).is_empty(),
            "{:?}",
            validate_document(d)
        );
    }
    assert_eq!(tracer.stats().runs_finished, 3);
}

#[test]
fn nested_runs_do_not_clobber_each_other() {
    let tracer = LoopTracer::new();
    let outer = tracer.run("outer-loop").start();
    let _outer_guard = outer.enter();
    assert!(emit_iteration(IterationRecord::new(1, 0.1)));
    let inner = tracer.run("inner-loop").start();
    {
        let _inner_guard = inner.enter();
        assert_eq!(current_run().unwrap().loop_name(), "inner-loop");
        assert!(emit_iteration(IterationRecord::new(1, 0.9)));
        assert!(emit_iteration(IterationRecord::new(2, 0.9)));
    }
    assert_eq!(current_run().unwrap().loop_name(), "outer-loop");
    assert!(emit_iteration(IterationRecord::new(2, 0.2)));
    let inner = inner.finish(Outcome::Success, "done");
    drop(_outer_guard);
    let outer = outer.finish(Outcome::Failure, "done");
    assert_eq!(inner.iterations().count(), 2);
    assert_eq!(outer.iterations().count(), 2);
    assert_ne!(inner.trace_id, outer.trace_id);
    assert!(current_run().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_crosses_awaits_and_spawned_tasks_when_passed() {
    let tracer = LoopTracer::new();
    let (_, doc) = tracer
        .run("async-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            let cx = it.context();
            let with_cx = tokio::spawn(
                async {
                    tokio::task::yield_now().await;
                    let mut s = start_span("execute_tool search", SpanKind::Worker);
                    tokio::task::yield_now().await;
                    s.add_tokens(11);
                    s.is_recording()
                }
                .with_context(cx),
            );
            // Without the context, a spawned task does not see the run (and nothing panics).
            let without_cx =
                tokio::spawn(async { start_span("lost", SpanKind::Worker).is_recording() });
            assert!(with_cx.await.unwrap());
            assert!(!without_cx.await.unwrap());
            tokio::task::yield_now().await;
            assert!(emit_iteration(IterationRecord::new(2, 0.5)));
            drop(it);
        })
        .await;
    assert_eq!(doc.outcome, Some(Outcome::Unknown));
    assert_eq!(doc.termination_reason.as_deref(), Some("completed"));
    let first = doc.iterations().next().unwrap();
    assert_eq!(attr(first, "loop.tokens_delta").as_i64(), Some(11));
    let tool = doc
        .spans
        .iter()
        .find(|s| s.name.as_str() == "execute_tool search")
        .unwrap();
    assert_eq!(tool.parent_span_id, Some(first.span_id));
    assert!(validate_document(&doc).is_empty());
}

#[tokio::test]
async fn scope_records_a_panicking_future_and_rethrows() {
    use futures_util::FutureExt as _;
    let (tracer, docs) = collecting();
    let result = std::panic::AssertUnwindSafe(tracer.run("scope-panic").scope(|run| async move {
        run.emit_iteration(IterationRecord::new(1, 0.4));
        panic!("agent bug");
    }))
    .catch_unwind()
    .await;
    assert!(result.is_err());
    let docs = docs.lock().unwrap();
    assert_eq!(docs[0].outcome, Some(Outcome::Failure));
    assert_eq!(docs[0].iterations().count(), 1);
}

#[test]
fn child_usage_rolls_up_into_iterations_and_the_run() {
    let tracer = LoopTracer::new();
    let run = tracer.run("usage-loop").start();
    for n in 1..=3u64 {
        let mut it = run.iteration(n);
        it.add_tokens(1);
        let mut a = it.span("chat a", SpanKind::Worker);
        a.add_tokens(10 * n);
        a.add_cost_usd(0.25);
        let mut b = it.span("execute_tool b", SpanKind::Worker);
        b.add_tokens(100);
        drop((a, b));
        it.set_goal_score(0.8);
    }
    let mut outside = run.span("setup", SpanKind::Worker);
    outside.add_tokens(1000);
    drop(outside);
    let doc = run.finish(Outcome::Success, "done");
    let deltas: Vec<_> = doc
        .iterations()
        .map(|s| attr(s, "loop.tokens_delta").as_i64().unwrap())
        .collect();
    assert_eq!(deltas, [111, 121, 131]);
    let costs: Vec<_> = doc
        .iterations()
        .map(|s| attr(s, "loop.cost_usd").as_f64().unwrap())
        .collect();
    assert_eq!(costs, [0.25, 0.25, 0.25]);
    let root = doc.root().unwrap();
    assert_eq!(
        attr(root, "loop.tokens_total").as_i64(),
        Some(111 + 121 + 131 + 1000)
    );
    assert_eq!(attr(root, "loop.cost_total_usd").as_f64(), Some(0.75));
    assert_eq!(attr(root, "loop.iterations").as_i64(), Some(3));
    // Spans are listed in start order: parents before children.
    let it1 = doc
        .spans
        .iter()
        .position(|s| s.kind == SpanKind::Iteration)
        .unwrap();
    let child = doc
        .spans
        .iter()
        .position(|s| s.name.as_str() == "chat a")
        .unwrap();
    assert!(it1 < child);
}

#[test]
fn late_records_and_the_span_cap_are_counted_not_recorded() {
    let tracer = LoopTracer::builder().max_spans_per_run(3).build();
    let run = tracer.run("capped-loop").start();
    let handle = run.handle();
    for n in 1..=5 {
        run.emit_iteration(IterationRecord::new(n, 0.5));
    }
    let open = run.iteration(9); // dropped: over the cap
    assert_eq!(open.number(), 0);
    let doc = run.finish(Outcome::Unknown, "x");
    assert_eq!(doc.spans.len(), 3);
    assert_eq!(
        attr(doc.root().unwrap(), "loop.telemetry.dropped_spans").as_i64(),
        Some(4)
    );
    assert!(!handle.emit_iteration(IterationRecord::new(6, 0.5)));
    let stats = tracer.stats();
    assert_eq!(stats.dropped_spans, 4);
    assert_eq!(stats.late_records, 1);
}

#[test]
fn spans_still_open_when_the_run_finishes_are_closed_with_a_reason() {
    let tracer = LoopTracer::new();
    let run = tracer.run("open-span-loop").start();
    let it = run.iteration(1);
    let doc = run.finish(Outcome::Unknown, "early");
    let span = doc.iterations().next().unwrap();
    assert_eq!(span.end_time, Some(doc.ended_at));
    assert_eq!(attr(span, "loop.end_reason").as_str(), Some("run_finished"));
    drop(it); // late: counted, nothing panics
    assert_eq!(tracer.stats().late_records, 1);
}

#[test]
fn disabled_tracing_records_nothing_but_yields_a_valid_document() {
    let tracer = LoopTracer::disabled();
    let run = tracer.run("off-loop").task_id("t").start();
    let _g = run.enter();
    assert!(!emit_iteration(IterationRecord::new(1, 0.5)));
    let mut it = run.iteration(1);
    it.evaluator_complete("c", 1.0);
    assert!(!it.span("x", SpanKind::Worker).is_recording());
    drop(it);
    drop(_g);
    let doc = run.finish(Outcome::Success, "done");
    assert_eq!(doc.spans.len(), 1);
    assert!(validate_document(&doc).is_empty());
    assert_eq!(doc.task_id.as_deref(), Some("t"));
}

#[test]
fn a_panicking_sink_is_caught_and_counted_and_others_still_run() {
    let seen = Arc::new(Mutex::new(0));
    let counter = seen.clone();
    let tracer = LoopTracer::builder()
        .sink(|_: &LtfDocument| panic!("sink bug"))
        .sink(move |_: &LtfDocument| *counter.lock().unwrap() += 1)
        .build();
    let doc = tracer
        .run("sink-loop")
        .start()
        .finish(Outcome::Success, "done");
    assert_eq!(doc.outcome, Some(Outcome::Success));
    assert_eq!(*seen.lock().unwrap(), 1);
    assert_eq!(tracer.stats().sink_panics, 1);
}

#[test]
fn les_through_the_tracer_matches_the_les_module() {
    let scores = [0.1, 0.95, 0.33, 0.8, 0.0, 1.2, 0.79999];
    let tracer = LoopTracer::new();
    let run = tracer.run("les-loop").start();
    for (i, s) in scores.iter().enumerate() {
        run.emit_iteration(IterationRecord::new(i as u64 + 1, *s));
    }
    let doc = run.finish(Outcome::Unknown, "");
    let mut acc = loopotel::les::LesAccumulator::default();
    for (span, s) in doc.iterations().zip(scores) {
        let p = acc.push(s, 0.8);
        assert_eq!(
            attr(span, "loop.les.cumulative_normalized").as_f64(),
            Some(p.cumulative)
        );
        assert_eq!(attr(span, "loop.les.delta").as_f64(), Some(p.delta));
    }
    assert_eq!(loopotel::les::series(&doc).len(), scores.len());
}
