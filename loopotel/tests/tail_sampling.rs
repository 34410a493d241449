//! Loop-aware tail sampling: which finished runs are kept, that a kept run keeps all its
//! spans and a dropped one loses all of them, the ratio, and the bounds (buffer cap, traces
//! that never get a root, shutdown).
#![cfg(feature = "sdk")]

use std::collections::HashSet;
use std::time::Duration;

use loopotel::otel::tail::{TailSampler, TailSamplingProcessor};
use loopotel::{IterationRecord, LoopTracer, Outcome};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};

fn setup(sampler: TailSampler) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exported = InMemorySpanExporter::default();
    let tail = TailSamplingProcessor::new(SimpleSpanProcessor::new(exported.clone()), sampler);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(tail)
        .build();
    (provider, exported)
}

fn kept_traces(exported: &InMemorySpanExporter) -> HashSet<String> {
    exported
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|s| s.span_context.trace_id().to_string())
        .collect()
}

/// A run of `scores`, ending with `outcome` / `reason`, costing `cost`.
fn run(tracer: &LoopTracer, scores: &[f64], outcome: Outcome, reason: &str, cost: f64) -> String {
    let r = tracer.run("sampled").start();
    let id = r.trace_id().to_hex();
    for (i, s) in scores.iter().enumerate() {
        r.emit_iteration(
            IterationRecord::new(i as u64 + 1, *s).cost_usd(cost / scores.len() as f64),
        );
    }
    r.finish(outcome, reason);
    id
}

#[test]
fn remarkable_runs_are_kept_whole_and_the_rest_dropped_whole() {
    let (provider, exported) = setup(
        TailSampler::default()
            .ratio(0.0)
            .keep_cost_above_usd(0.5)
            .keep_score_below(0.5),
    );
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let fine = run(
        &tracer,
        &[0.6, 0.9],
        Outcome::Success,
        "quality_threshold",
        0.01,
    );
    let failed = run(&tracer, &[0.2, 0.3], Outcome::Failure, "gave up", 0.01);
    let capped = run(
        &tracer,
        &[0.6, 0.7, 0.7],
        Outcome::Success,
        "max_iterations (3)",
        0.01,
    );
    let costly = run(&tracer, &[0.9], Outcome::Success, "quality_threshold", 1.0);
    let low = run(&tracer, &[0.9, 0.4], Outcome::Success, "stopped", 0.01);
    let kept = kept_traces(&exported);
    assert!(!kept.contains(&fine));
    for (name, id) in [
        ("failed", &failed),
        ("capped", &capped),
        ("costly", &costly),
        ("low", &low),
    ] {
        assert!(kept.contains(id), "{name} dropped");
    }
    // Kept whole: root plus every iteration.
    let spans = exported.get_finished_spans().unwrap();
    let of = |id: &str| {
        spans
            .iter()
            .filter(|s| s.span_context.trace_id().to_string() == id)
            .count()
    };
    assert_eq!(of(&failed), 3);
    assert_eq!(of(&capped), 4);
    assert_eq!(of(&fine), 0);
    let _ = provider.shutdown();
}

#[test]
fn the_ratio_decides_the_rest_and_one_keeps_everything() {
    for (ratio, lo, hi) in [(0.0, 0, 0), (1.0, 300, 300), (0.5, 90, 210)] {
        let (provider, exported) = setup(TailSampler::default().ratio(ratio));
        let tracer = LoopTracer::builder().tracer_provider(&provider).build();
        for _ in 0..300 {
            run(&tracer, &[0.95], Outcome::Success, "quality_threshold", 0.0);
        }
        let n = kept_traces(&exported).len();
        assert!((lo..=hi).contains(&n), "ratio {ratio}: kept {n}");
        let _ = provider.shutdown();
    }
}

#[test]
fn held_spans_are_bounded_and_never_lost() {
    // Buffer cap: past two held spans, spans pass straight through.
    let exported = InMemorySpanExporter::default();
    let tail = TailSamplingProcessor::new(
        SimpleSpanProcessor::new(exported.clone()),
        TailSampler::default().ratio(0.0).max_buffered_spans(2),
    );
    let provider = SdkTracerProvider::builder()
        .with_span_processor(tail)
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    run(
        &tracer,
        &[0.9, 0.9, 0.9, 0.9, 0.9],
        Outcome::Success,
        "quality_threshold",
        0.0,
    );
    assert_eq!(
        exported.get_finished_spans().unwrap().len(),
        3,
        "three iterations overflowed"
    );

    // A trace without a loop root is held only until it is old, then passed through on
    // flush; shutdown passes through everything still held.
    let exported = InMemorySpanExporter::default();
    let tail = TailSamplingProcessor::new(
        SimpleSpanProcessor::new(exported.clone()),
        TailSampler::default().max_trace_age(Duration::ZERO),
    );
    let provider = SdkTracerProvider::builder()
        .with_span_processor(tail)
        .build();
    let other = provider.tracer("other");
    other.start("plain work").end();
    assert!(
        exported.get_finished_spans().unwrap().is_empty(),
        "held first"
    );
    std::thread::sleep(Duration::from_millis(5));
    provider.force_flush().unwrap();
    assert_eq!(exported.get_finished_spans().unwrap().len(), 1);

    let seen = Collect::default();
    let tail = TailSamplingProcessor::new(
        SimpleSpanProcessor::new(seen.clone()),
        TailSampler::default().ratio(0.0),
    );
    let provider2 = SdkTracerProvider::builder()
        .with_span_processor(tail)
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider2).build();
    let r = tracer.run("unfinished").start();
    r.emit_iteration(IterationRecord::new(1, 0.5));
    assert_eq!(seen.names().len(), 0, "held while the run is open");
    // The run is still open at shutdown: its iteration is passed through, not lost.
    provider2.shutdown().unwrap();
    assert_eq!(seen.names(), ["loop.iteration"]);
    drop(r);
}

/// Collects exported span names (unlike the in-memory exporter, it keeps them at shutdown).
#[derive(Debug, Clone, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Collect {
    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl opentelemetry_sdk::trace::SpanExporter for Collect {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0
            .lock()
            .unwrap()
            .extend(batch.into_iter().map(|s| s.name.to_string()));
        Ok(())
    }
}
