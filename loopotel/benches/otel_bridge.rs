//! Cost of a recorded span with the OpenTelemetry bridge on, against a bare OpenTelemetry SDK
//! span with the same attributes, measured in the same run (SDK + BatchSpanProcessor +
//! discarding exporter), and against the two views recorded independently (a bare SDK span
//! and an LTF-only span per step: nothing shared). Prints a ratio table after the criterion
//! output, and the ratios measured in interleaved rounds ([`common::paired_ratio`]).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;

use common::{Discard, mean_ns};
use loopotel::{Iteration, LoopTracer, Outcome, SpanGuard, SpanKind};
use loopotel_test_support::bench as common;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build()
}

/// A child span of `it` with the bench's name and five attributes (ended when dropped).
#[inline(always)]
fn loopotel_span(it: &Iteration, i: u64) -> SpanGuard {
    let mut s = it.span("execute_tool search", SpanKind::Worker);
    s.set_attribute("gen_ai.operation.name", "execute_tool");
    s.set_attribute("gen_ai.tool.name", "search");
    s.set_attribute("gen_ai.tool.call.id", "call-1");
    s.set_attribute("loop.iteration", 1i64);
    s.set_attribute("bench.i", i as i64);
    s
}

/// A bare SDK span with the same name and five attributes.
#[inline(always)]
fn sdk_span(tracer: &SdkTracer, i: u64) -> opentelemetry_sdk::trace::Span {
    tracer
        .span_builder("execute_tool search")
        .with_attributes([
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", "search"),
            KeyValue::new("gen_ai.tool.call.id", "call-1"),
            KeyValue::new("loop.iteration", 1i64),
            KeyValue::new("bench.i", i as i64),
        ])
        .start(tracer)
}

/// Times `iters` calls of `step`, inside one iteration of a run of `tracer` per 10 000
/// (finishing the run is not timed).
#[inline(always)]
fn time_in_iterations(
    tracer: &LoopTracer,
    iters: u64,
    mut step: impl FnMut(&Iteration, u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(10_000);
        let run = tracer.run("bench-loop").start();
        let it = run.iteration(1);
        let start = Instant::now();
        for i in 0..chunk {
            step(&it, i);
        }
        total += start.elapsed();
        drop(it);
        black_box(run.finish(Outcome::Success, "done"));
        left -= chunk;
    }
    total
}

/// Times `iters` child spans with five attributes.
fn time_loopotel_spans(tracer: &LoopTracer, iters: u64) -> Duration {
    time_in_iterations(tracer, iters, |it, i| drop(loopotel_span(it, i)))
}

/// Times `iters` bare SDK spans with the same name and five attributes.
fn time_sdk_spans(tracer: &SdkTracer, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        sdk_span(tracer, i).end();
    }
    start.elapsed()
}

/// Times `iters` steps that each record a bare SDK span and an LTF-only loopotel span, with
/// the same five attributes, independently: what the two views cost with nothing shared
/// (the floor the bridged span is compared with).
fn time_views_independent(sdk: &SdkTracer, tracer: &LoopTracer, iters: u64) -> Duration {
    time_in_iterations(tracer, iters, |it, i| {
        let mut o = sdk_span(sdk, i);
        drop(loopotel_span(it, i));
        o.end();
    })
}

fn benches(c: &mut Criterion) {
    let sdk = provider();
    let bare = sdk.tracer("bench");
    let bridged_provider = provider();
    let bridged = LoopTracer::builder()
        .tracer_provider(&bridged_provider)
        .build();
    let ltf_only = LoopTracer::new();
    let independent_provider = provider();
    let independent = independent_provider.tracer("bench");
    let disabled = LoopTracer::disabled();

    let mut g = c.benchmark_group("span");
    g.bench_function("sdk_bare_5_attributes", |b| {
        b.iter_custom(|n| time_sdk_spans(&bare, n))
    });
    g.bench_function("loopotel_ltf_only", |b| {
        b.iter_custom(|n| time_loopotel_spans(&ltf_only, n))
    });
    g.bench_function("loopotel_ltf_and_otel", |b| {
        b.iter_custom(|n| time_loopotel_spans(&bridged, n))
    });
    g.bench_function("sdk_and_ltf_only_independent", |b| {
        b.iter_custom(|n| time_views_independent(&independent, &ltf_only, n))
    });
    g.bench_function("loopotel_disabled", |b| {
        b.iter_custom(|n| time_loopotel_spans(&disabled, n))
    });
    g.finish();

    // The target ratio, measured so that machine noise hits both sides alike.
    let paired = common::paired_ratio(
        60,
        10_000,
        |n| time_sdk_spans(&bare, n),
        |n| time_loopotel_spans(&bridged, n),
    );
    let _ = PAIRED.set(paired);
    let floor = common::paired_ratio(
        60,
        10_000,
        |n| time_sdk_spans(&bare, n),
        |n| time_views_independent(&independent, &ltf_only, n),
    );
    let _ = PAIRED_INDEPENDENT.set(floor);
}

static PAIRED: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();
static PAIRED_INDEPENDENT: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();

fn report() {
    let Some(bare) = mean_ns("span/sdk_bare_5_attributes") else {
        return;
    };
    println!("\n## span cost with the OpenTelemetry bridge (this run)\n");
    println!("| span with 5 attributes | mean | ÷ bare SDK span |");
    println!("|---|---|---|");
    for (id, label) in [
        (
            "span/sdk_bare_5_attributes",
            "bare OpenTelemetry SDK span (BatchSpanProcessor, discarding exporter)",
        ),
        (
            "span/loopotel_ltf_and_otel",
            "loopotel span, LTF + OpenTelemetry (same SDK pipeline)",
        ),
        (
            "span/sdk_and_ltf_only_independent",
            "bare SDK span + LTF-only loopotel span, recorded independently",
        ),
        (
            "span/loopotel_ltf_only",
            "loopotel span, LTF only (no provider)",
        ),
        ("span/loopotel_disabled", "loopotel span, tracing disabled"),
    ] {
        if let Some(ns) = mean_ns(id) {
            println!("| {label} | {ns:.0} ns | {:.2}× |", ns / bare);
        }
    }
    if let Some(paired) = PAIRED.get() {
        println!("\nLTF + OpenTelemetry ÷ bare SDK span, paired: {paired}");
    }
    if let Some(paired) = PAIRED_INDEPENDENT.get() {
        println!("SDK span + LTF-only span, independently ÷ bare SDK span, paired: {paired}");
    }
}

fn main() {
    common::run(benches, report);
}
