//! The allocation gate: heap allocations per traced call, counted exactly by a counting
//! global allocator on the calling thread (the SDK's export thread is not the caller's
//! cost), against a bare OpenTelemetry SDK span doing the same work in the same test.
//!
//! Each path runs warm (its first calls fill caches and pools), then `CALLS` calls are
//! counted one by one; the median per call is reported and asserted. Amortised growth (a
//! run's span store taking a new chunk every few thousand spans) shows in the maximum, not
//! the median. `cargo test -p loopotel-tower --test allocations -- --nocapture` prints the
//! table that `docs/performance.md` quotes.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use futures_util::StreamExt as _;
use loopotel::stream::StreamTraceExt as _;
use loopotel::{IterationRecord, LoopTracer, Outcome, SpanKind};
use loopotel_test_support::alloc::{Counting, PerCall, count};
use loopotel_test_support::bench::Discard;
use loopotel_test_support::otel_layer::OtelSpanLayer;
use loopotel_tower::LoopTraceLayer;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower::{Layer, Service};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Calls counted per path (after as many warm-up calls).
const CALLS: usize = 2_000;

/// The trivial service: answers at once.
#[derive(Clone, Copy)]
struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: u64) -> Self::Future {
        ready(Ok(req))
    }
}

fn poll_once<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the counted services complete on the first poll"),
    }
}

/// Counts one call of `svc` per step, inside one iteration of a run of `tracer`.
fn count_calls<S>(tracer: &LoopTracer, mut svc: S) -> PerCall
where
    S: Service<u64, Response = u64>,
    S::Error: std::fmt::Debug,
{
    let run = tracer.run("alloc-loop").start();
    let it = run.iteration(1);
    let guard = it.context().attach();
    let counted = count(CALLS, || {
        let out = poll_once(svc.call(7));
        assert_eq!(out.ok(), Some(7), "the response passes through");
    });
    drop(guard);
    drop(it);
    drop(run.finish(Outcome::Success, "done"));
    counted
}

#[test]
fn traced_calls_allocate_no_more_than_a_bare_sdk_span_plus_two() {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let sdk_tracer = {
        use opentelemetry::trace::TracerProvider as _;
        provider.tracer("alloc-baseline")
    };
    let bridged = LoopTracer::builder().tracer_provider(&provider).build();
    let ltf = LoopTracer::new();
    let disabled = LoopTracer::disabled();
    let tool = LoopTraceLayer::tool("echo");

    let no_layer = count_calls(&ltf, Echo);
    let bare_sdk = count_calls(&ltf, OtelSpanLayer(sdk_tracer).layer(Echo));
    let layer_disabled = count_calls(&disabled, tool.clone().layer(Echo));
    let layer_ltf = count_calls(&ltf, tool.clone().layer(Echo));
    let layer_bridged = count_calls(&bridged, tool.layer(Echo));

    let iteration_record = {
        let run = ltf.run("alloc-iterations").start();
        let mut n = 0;
        let counted = count(CALLS, || {
            n += 1;
            run.emit_iteration(
                IterationRecord::new(n, 0.5)
                    .tokens(100)
                    .worker("writer")
                    .evaluator("critic"),
            );
        });
        drop(run.finish(Outcome::Success, "done"));
        counted
    };

    let stream_item = {
        let run = ltf.run("alloc-stream").start();
        let it = run.iteration(1);
        let mut stream = futures_util::stream::iter(0..u64::MAX)
            .traced(it.span("stream echo", SpanKind::Worker));
        let counted = count(CALLS, || {
            assert!(poll_once(stream.next()).is_some());
        });
        drop(stream);
        drop(it);
        drop(run.finish(Outcome::Success, "done"));
        counted
    };

    let rows = [
        ("service call, no layer", no_layer),
        ("bare OpenTelemetry SDK span layer (baseline)", bare_sdk),
        ("LoopTraceLayer, tracing disabled", layer_disabled),
        ("LoopTraceLayer, LTF", layer_ltf),
        ("LoopTraceLayer, LTF + OpenTelemetry SDK", layer_bridged),
        ("emit_iteration (span + 4 events + LES)", iteration_record),
        ("traced stream item", stream_item),
    ];
    println!("| path | allocations per call (median) | max of {CALLS} |");
    println!("|---|---|---|");
    for (name, c) in rows {
        println!("| {name} | {} | {} |", c.median, c.max);
    }

    assert_eq!(no_layer.median, 0, "the harness itself allocates nothing");
    assert_eq!(
        layer_disabled.median, 0,
        "a disabled LoopTraceLayer allocates nothing"
    );
    assert_eq!(layer_disabled.max, 0, "not even once in {CALLS} calls");
    assert!(
        layer_bridged.median <= bare_sdk.median + 2,
        "LTF + OpenTelemetry allocates {} per call, the bare SDK span layer {}: more than 2 over",
        layer_bridged.median,
        bare_sdk.median
    );
    drop(provider.shutdown());
}
