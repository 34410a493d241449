//! What a `tracing` span costs with `LoopLayer`, against the same span through
//! tracing-opentelemetry and the SDK's batch processor, measured in the same run: a span
//! with 5 fields, created, entered, exited and closed inside an iteration. Also a span
//! outside any loop with `LoopLayer` installed, against a `Registry` without it, and the
//! floor: a minimal bridge layer that does only what any bridge must (start the loopotel
//! span with the fields, keep it in the registry's extensions, make its context current
//! while entered, end it on close). Prints a ratio table after the criterion output, and
//! the in-loop ratios in interleaved rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use loopotel::{LoopTracer, Outcome};
use loopotel_test_support::bench::{self as common, Discard, mean_ns};
use loopotel_tracing::LoopLayer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build()
}

/// One `tracing` span with five fields: created, entered, exited, closed.
#[inline(never)]
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
    black_box(&entered);
    drop(entered);
    drop(span);
}

/// The least a bridge can do, as a layer: a span inside a loop starts a loopotel span from
/// the current loop scope with its fields visited into it, keeps it (and its context) in
/// the registry's extensions, makes that context current while entered, and ends it on
/// close. No fail-open wrapping, no field mapping, no parent walk, no usage accounting:
/// the floor under `LoopLayer`'s cost.
struct MinimalBridge;

/// What [`MinimalBridge`] keeps per span.
struct Kept {
    _span: loopotel::SpanGuard,
    cx: opentelemetry::Context,
}

/// Fields written straight into the loopotel span's attributes.
struct Fields<'a>(&'a mut loopotel::Attributes);

impl tracing::field::Visit for Fields<'_> {
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.set(field.name(), value);
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.set(field.name(), value as i64);
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.set(field.name(), value);
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.set(field.name(), value);
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0
            .set(field.name(), loopotel::SharedStr::Shared(value.into()));
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.set(field.name(), format!("{value:?}"));
    }
}

thread_local! {
    static MINIMAL_ENTERED: std::cell::RefCell<Vec<opentelemetry::ContextGuard>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl<S> tracing_subscriber::Layer<S> for MinimalBridge
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let base = opentelemetry::Context::current();
        let Some(scope) = base.get::<loopotel::context::LoopScope>() else {
            return;
        };
        let mut span = scope.start_span_with(
            &base,
            attrs.metadata().name(),
            loopotel::SpanKind::Worker,
            |list| attrs.record(&mut Fields(list)),
        );
        let cx = span.context_on(&base);
        if let Some(s) = ctx.span(id) {
            s.extensions_mut().insert(Kept { _span: span, cx });
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(s) = ctx.span(id) else { return };
        let Some(cx) = s.extensions().get::<Kept>().map(|k| k.cx.clone()) else {
            return;
        };
        MINIMAL_ENTERED.with_borrow_mut(|stack| stack.push(cx.attach()));
    }

    fn on_exit(&self, _: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        let guard = MINIMAL_ENTERED.with_borrow_mut(Vec::pop);
        drop(guard);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(s) = ctx.span(&id) {
            let kept = s.extensions_mut().remove::<Kept>();
            drop(kept);
        }
    }
}

/// Times `iters` spans under `dispatch`, inside one iteration per 10 000 spans of `tracer`
/// (or outside any loop when `tracer` is `None`).
fn time_spans(dispatch: &Dispatch, tracer: Option<&LoopTracer>, iters: u64) -> Duration {
    tracing::dispatcher::with_default(dispatch, || {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let chunk = left.min(10_000);
            let run = tracer.map(|t| t.run("bench-loop").start());
            let it = run.as_ref().map(|r| r.iteration(1));
            let guard = it.as_ref().map(|it| it.context().attach());
            let start = Instant::now();
            for i in 0..chunk {
                one_span(i);
            }
            total += start.elapsed();
            drop(guard);
            drop(it);
            if let Some(run) = run {
                black_box(run.finish(Outcome::Success, "done"));
            }
            left -= chunk;
        }
        total
    })
}

struct Setups {
    registry: Dispatch,
    outside: Dispatch,
    tracing_otel: Dispatch,
    loop_layer: Dispatch,
    minimal: Dispatch,
    ltf: LoopTracer,
    bridged: LoopTracer,
    _providers: (SdkTracerProvider, SdkTracerProvider),
}

fn setups() -> Setups {
    let bridged_provider = provider();
    let otel_provider = provider();
    let otel_layer = tracing_opentelemetry::layer().with_tracer(otel_provider.tracer("bench"));
    Setups {
        registry: Dispatch::new(tracing_subscriber::registry()),
        outside: Dispatch::new(tracing_subscriber::registry().with(LoopLayer::new())),
        tracing_otel: Dispatch::new(tracing_subscriber::registry().with(otel_layer)),
        loop_layer: Dispatch::new(tracing_subscriber::registry().with(LoopLayer::new())),
        minimal: Dispatch::new(tracing_subscriber::registry().with(MinimalBridge)),
        ltf: LoopTracer::new(),
        bridged: LoopTracer::builder()
            .tracer_provider(&bridged_provider)
            .build(),
        _providers: (bridged_provider, otel_provider),
    }
}

static SETUPS: std::sync::OnceLock<Setups> = std::sync::OnceLock::new();

fn benches(c: &mut Criterion) {
    let s = SETUPS.get_or_init(setups);
    let ltf = LoopTracer::new();
    let mut g = c.benchmark_group("tracing_span");
    g.bench_function("registry_no_loop_layer", |b| {
        b.iter_custom(|n| time_spans(&s.registry, None, n))
    });
    g.bench_function("loop_layer_outside_any_loop", |b| {
        b.iter_custom(|n| time_spans(&s.outside, None, n))
    });
    g.bench_function("tracing_opentelemetry_sdk", |b| {
        b.iter_custom(|n| time_spans(&s.tracing_otel, Some(&ltf), n))
    });
    g.bench_function("loop_layer_ltf", |b| {
        b.iter_custom(|n| time_spans(&s.loop_layer, Some(&s.ltf), n))
    });
    g.bench_function("loop_layer_ltf_and_otel", |b| {
        b.iter_custom(|n| time_spans(&s.loop_layer, Some(&s.bridged), n))
    });
    g.bench_function("minimal_bridge_ltf", |b| {
        b.iter_custom(|n| time_spans(&s.minimal, Some(&s.ltf), n))
    });
    g.bench_function("minimal_bridge_ltf_and_otel", |b| {
        b.iter_custom(|n| time_spans(&s.minimal, Some(&s.bridged), n))
    });
    g.finish();

    // Outside any loop: the difference per span, alternating the two subscribers.
    let mut diffs: Vec<f64> = (0..40)
        .map(|round| {
            let (a, b) = if round % 2 == 0 {
                let a = time_spans(&s.registry, None, 20_000);
                (a, time_spans(&s.outside, None, 20_000))
            } else {
                let b = time_spans(&s.outside, None, 20_000);
                (time_spans(&s.registry, None, 20_000), b)
            };
            (b.as_secs_f64() - a.as_secs_f64()) * 1e9 / 20_000.0
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let _ = OUTSIDE.set((diffs[10], diffs[20], diffs[30]));

    let _ = PAIRED.set(common::paired_ratio(
        40,
        10_000,
        |n| time_spans(&s.tracing_otel, Some(&ltf), n),
        |n| time_spans(&s.loop_layer, Some(&s.bridged), n),
    ));
    let _ = PAIRED_FLOOR.set(common::paired_ratio(
        40,
        10_000,
        |n| time_spans(&s.tracing_otel, Some(&ltf), n),
        |n| time_spans(&s.minimal, Some(&s.ltf), n),
    ));
    let _ = PAIRED_FLOOR_BOTH.set(common::paired_ratio(
        40,
        10_000,
        |n| time_spans(&s.tracing_otel, Some(&ltf), n),
        |n| time_spans(&s.minimal, Some(&s.bridged), n),
    ));
    let _ = PAIRED_LTF.set(common::paired_ratio(
        40,
        10_000,
        |n| time_spans(&s.tracing_otel, Some(&ltf), n),
        |n| time_spans(&s.loop_layer, Some(&s.ltf), n),
    ));
}

static PAIRED: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();
static PAIRED_LTF: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();
static PAIRED_FLOOR: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();
static PAIRED_FLOOR_BOTH: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();
static OUTSIDE: std::sync::OnceLock<(f64, f64, f64)> = std::sync::OnceLock::new();

fn report() {
    let Some(base) = mean_ns("tracing_span/tracing_opentelemetry_sdk") else {
        return;
    };
    println!("\n## a tracing span with 5 fields (this run)\n");
    println!("| span | mean | ÷ tracing-opentelemetry + SDK |");
    println!("|---|---|---|");
    for (id, label) in [
        (
            "tracing_span/registry_no_loop_layer",
            "Registry alone, no loop",
        ),
        (
            "tracing_span/loop_layer_outside_any_loop",
            "Registry + LoopLayer, outside any loop",
        ),
        (
            "tracing_span/tracing_opentelemetry_sdk",
            "tracing-opentelemetry + SDK batch processor, in an iteration",
        ),
        (
            "tracing_span/loop_layer_ltf",
            "LoopLayer, LTF only, in an iteration",
        ),
        (
            "tracing_span/loop_layer_ltf_and_otel",
            "LoopLayer, LTF + OpenTelemetry (same SDK pipeline), in an iteration",
        ),
        (
            "tracing_span/minimal_bridge_ltf",
            "minimal bridge (the floor: no fail-open, mapping or usage), LTF only, in an iteration",
        ),
        (
            "tracing_span/minimal_bridge_ltf_and_otel",
            "minimal bridge (the floor), LTF + OpenTelemetry, in an iteration",
        ),
    ] {
        if let Some(ns) = mean_ns(id) {
            println!("| {label} | {ns:.0} ns | {:.2}× |", ns / base);
        }
    }
    if let (Some(reg), Some(out)) = (
        mean_ns("tracing_span/registry_no_loop_layer"),
        mean_ns("tracing_span/loop_layer_outside_any_loop"),
    ) {
        println!(
            "\nLoopLayer outside any loop adds {:.1} ns per span.",
            out - reg
        );
    }
    if let Some(paired) = PAIRED.get() {
        println!("LoopLayer LTF + OpenTelemetry ÷ tracing-opentelemetry + SDK, paired: {paired}");
    }
    if let Some(paired) = PAIRED_LTF.get() {
        println!("LoopLayer LTF only ÷ tracing-opentelemetry + SDK, paired: {paired}");
    }
    if let Some(paired) = PAIRED_FLOOR.get() {
        println!(
            "Minimal bridge (the floor), LTF only ÷ tracing-opentelemetry + SDK, paired: {paired}"
        );
    }
    if let Some(paired) = PAIRED_FLOOR_BOTH.get() {
        println!(
            "Minimal bridge (the floor), LTF + OpenTelemetry ÷ tracing-opentelemetry + SDK, \
             paired: {paired}"
        );
    }
}

fn main() {
    common::run(benches, report);
}
