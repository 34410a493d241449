//! Heap allocations per `tracing` span (5 fields, created, entered, exited, closed): with
//! `LoopLayer` outside any loop, bridged to LTF, bridged to LTF + OpenTelemetry, and the
//! same span through tracing-opentelemetry + the SDK, counted exactly on the calling
//! thread. `cargo test -p loopotel-tracing --test allocations -- --nocapture` prints the
//! table `docs/performance.md` quotes.

use loopotel::{LoopTracer, Outcome};
use loopotel_test_support::alloc::{Counting, PerCall, count};
use loopotel_test_support::bench::Discard;
use loopotel_tracing::LoopLayer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: usize = 2_000;

fn one_span(i: u64) {
    let span = tracing::info_span!(
        "lookup",
        app.table = "users",
        app.rows = 3i64,
        app.cached = true,
        app.ratio = 0.5,
        app.i = i
    );
    let entered = span.enter();
    drop(entered);
    drop(span);
}

fn per_span(dispatch: &Dispatch, tracer: Option<&LoopTracer>) -> PerCall {
    tracing::dispatcher::with_default(dispatch, || {
        let run = tracer.map(|t| t.run("alloc-loop").start());
        let it = run.as_ref().map(|r| r.iteration(1));
        let guard = it.as_ref().map(|it| it.context().attach());
        let mut i = 0;
        let counted = count(CALLS, || {
            i += 1;
            one_span(i);
        });
        drop(guard);
        drop(it);
        if let Some(run) = run {
            drop(run.finish(Outcome::Success, "done"));
        }
        counted
    })
}

#[test]
fn allocations_per_bridged_span() {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let otel_provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let registry = Dispatch::new(tracing_subscriber::registry());
    let loop_layer = Dispatch::new(tracing_subscriber::registry().with(LoopLayer::new()));
    let tracing_otel = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(otel_provider.tracer("alloc"))),
    );
    let ltf = LoopTracer::new();
    let bridged = LoopTracer::builder().tracer_provider(&provider).build();

    let rows = [
        ("Registry alone", per_span(&registry, None)),
        (
            "Registry + LoopLayer, outside any loop",
            per_span(&loop_layer, None),
        ),
        (
            "tracing-opentelemetry + SDK, in an iteration",
            per_span(&tracing_otel, Some(&ltf)),
        ),
        (
            "LoopLayer, LTF only, in an iteration",
            per_span(&loop_layer, Some(&ltf)),
        ),
        (
            "LoopLayer, LTF + OpenTelemetry, in an iteration",
            per_span(&loop_layer, Some(&bridged)),
        ),
    ];
    println!("| tracing span with 5 fields | allocations (median) | max of {CALLS} |");
    println!("|---|---|---|");
    for (name, c) in &rows {
        println!("| {name} | {} | {} |", c.median, c.max);
    }
    // Outside any loop the layer adds nothing to what the registry allocates.
    assert_eq!(rows[1].1.median, rows[0].1.median);
    drop(provider.shutdown());
    drop(otel_provider.shutdown());
}
