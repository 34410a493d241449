//! The same trivial service through: no layer; a pass-through layer; the pass-through layer
//! with a future that can run code when dropped (the floor for a layer that notices dropped
//! calls, as `LoopTraceLayer` must to mark them cancelled); tower-http `TraceLayer`
//! with no subscriber; `LoopTraceLayer` with tracing disabled, with LTF only, and with LTF +
//! OpenTelemetry SDK (BatchSpanProcessor, discarding exporter); a hand-written layer over the
//! bare SDK doing the same OpenTelemetry work (the baseline for the bridged layer); that
//! layer with an LTF-only loopotel span recorded beside it (the two views apart); and a
//! 1 000-item stream plain vs traced. Ratios are computed from this run's measurements; the
//! bridged layer's ratio is also measured in interleaved rounds (`common::paired_ratio`). (Not
//! the disabled layer's: a second set of calls to the 18 ns services changes how they are
//! compiled, by as much as the difference being measured.)

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::Criterion;

use common::{Discard, mean_ns};
use futures_util::StreamExt as _;
use loopotel::stream::StreamTraceExt as _;
use loopotel::{LoopTracer, Outcome, SpanKind};
use loopotel_test_support::bench as common;
use loopotel_test_support::otel_layer::OtelSpanLayer;
use loopotel_tower::LoopTraceLayer;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower::{Layer, Service};

/// The trivial service: echoes its request.
#[derive(Clone, Copy)]
struct Echo;

impl Service<http::Request<String>> for Echo {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<String>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<String>) -> Self::Future {
        black_box(req.body().len());
        ready(Ok(http::Response::new(String::new())))
    }
}

/// A layer whose service forwards every call: the floor for any real layer (it moves the
/// request and wraps the future like one, and does nothing else).
#[derive(Clone, Copy)]
struct PassThrough;

impl<S> Layer<S> for PassThrough {
    type Service = Forward<S>;
    fn layer(&self, inner: S) -> Forward<S> {
        Forward(inner)
    }
}

#[derive(Clone, Copy)]
struct Forward<S>(S);

impl<S: Service<R>, R> Service<R> for Forward<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = ForwardFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> Self::Future {
        ForwardFuture {
            inner: self.0.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    struct ForwardFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F: std::future::Future> std::future::Future for ForwardFuture<F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// The pass-through layer plus the least a layer needs to notice that the caller dropped
/// the call (`LoopTraceLayer` ends the call's span then, marked cancelled): a future that
/// can run code when dropped. Here that code never runs — the switch is off and every call
/// is forwarded — but it is in the future's drop glue: the floor for a layer that can be
/// switched on at run time and watches for dropped calls.
#[derive(Clone, Copy)]
struct DropAware {
    watch: bool,
}

impl<S> Layer<S> for DropAware {
    type Service = DropAwareService<S>;
    fn layer(&self, inner: S) -> DropAwareService<S> {
        DropAwareService {
            inner,
            watch: self.watch,
        }
    }
}

#[derive(Clone, Copy)]
struct DropAwareService<S> {
    inner: S,
    watch: bool,
}

impl<S: Service<R>, R> Service<R> for DropAwareService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = DropAwareFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> Self::Future {
        if self.watch {
            drop(req);
            return DropAwareFuture::Watched { hook: DropHook };
        }
        DropAwareFuture::Forward {
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    #[project = DropAwareProj]
    enum DropAwareFuture<F> {
        Forward { #[pin] inner: F },
        Watched { hook: DropHook },
    }
}

/// Runs code when dropped.
struct DropHook;

impl Drop for DropHook {
    fn drop(&mut self) {
        dropped_call();
    }
}

#[inline(never)]
fn dropped_call() {
    black_box(());
}

impl<F: std::future::Future> std::future::Future for DropAwareFuture<F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            DropAwareProj::Forward { inner } => inner.poll(cx),
            DropAwareProj::Watched { .. } => Poll::Pending,
        }
    }
}

fn poll_once<F: std::future::Future>(f: F) -> F::Output {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the benchmarked services complete on the first poll"),
    }
}

/// One call, out of line: every variant pays the same call overhead, and how the compiler
/// inlines the timing loop cannot favour one of them.
#[inline(never)]
fn call_once<S>(svc: &mut S)
where
    S: Service<http::Request<String>>,
    S::Error: std::fmt::Debug,
{
    black_box(poll_once(svc.call(http::Request::new(String::new()))).unwrap());
}

/// Times `iters` calls of `svc` inside one iteration per 10 000 calls.
fn time_calls<S>(tracer: &LoopTracer, svc: &S, iters: u64) -> Duration
where
    S: Service<http::Request<String>> + Clone,
    S::Error: std::fmt::Debug,
{
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(10_000);
        let run = tracer.run("bench-loop").start();
        let it = run.iteration(1);
        let mut svc = svc.clone();
        // Every call runs in the iteration's context (attached once: the calls are synchronous).
        let guard = it.context().attach();
        let start = Instant::now();
        for _ in 0..chunk {
            call_once(&mut svc);
        }
        total += start.elapsed();
        drop(guard);
        drop(it);
        black_box(run.finish(Outcome::Success, "done"));
        left -= chunk;
    }
    total
}

/// The inner service with an LTF-only loopotel span per call recorded beside it (same name
/// and attributes as the layer's, ended when the call completes): around the bare SDK span
/// layer, the two views recorded independently.
#[derive(Clone)]
struct LtfSpanBeside<S>(S);

pin_project_lite::pin_project! {
    /// The future of an [`LtfSpanBeside`] call: ends the LTF span when ready.
    struct LtfSpanBesideFuture<F> {
        #[pin]
        inner: F,
        span: Option<loopotel::SpanGuard>,
    }
}

impl<F: std::future::Future> std::future::Future for LtfSpanBesideFuture<F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let p = this.inner.poll(cx);
        if p.is_ready() {
            this.span.take();
        }
        p
    }
}

impl<S: Service<R>, R> Service<R> for LtfSpanBeside<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = LtfSpanBesideFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> Self::Future {
        let mut s = loopotel::start_span("execute_tool echo", SpanKind::Worker);
        s.set_attribute("gen_ai.operation.name", "execute_tool");
        s.set_attribute("gen_ai.tool.name", "echo");
        LtfSpanBesideFuture {
            inner: self.0.call(req),
            span: Some(s),
        }
    }
}

fn benches(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let bridged = LoopTracer::builder().tracer_provider(&provider).build();
    let ltf = LoopTracer::new();
    let disabled = LoopTracer::disabled();
    let tool = LoopTraceLayer::tool("echo");

    let mut g = c.benchmark_group("layer");
    g.bench_function("no_layer", |b| {
        b.iter_custom(|n| time_calls(&ltf, &Echo, n))
    });
    g.bench_function("pass_through", |b| {
        b.iter_custom(|n| time_calls(&ltf, &PassThrough.layer(Echo), n))
    });
    let drop_aware = DropAware { watch: false }.layer(Echo);
    g.bench_function("pass_through_drop_aware", |b| {
        b.iter_custom(|n| time_calls(&ltf, &drop_aware, n))
    });
    let tower_http = tower_http::trace::TraceLayer::new_for_http().layer(Echo);
    g.bench_function("tower_http_trace_no_subscriber", |b| {
        b.iter_custom(|n| time_calls(&ltf, &tower_http, n))
    });
    let traced = tool.clone().layer(Echo);
    g.bench_function("loop_trace_disabled", |b| {
        b.iter_custom(|n| time_calls(&disabled, &traced, n))
    });
    g.bench_function("loop_trace_ltf", |b| {
        b.iter_custom(|n| time_calls(&ltf, &traced, n))
    });
    g.bench_function("loop_trace_ltf_otel", |b| {
        b.iter_custom(|n| time_calls(&bridged, &traced, n))
    });
    let otel_only = {
        use opentelemetry::trace::TracerProvider as _;
        OtelSpanLayer(provider.tracer("bench")).layer(Echo)
    };
    g.bench_function("otel_sdk_span_layer", |b| {
        b.iter_custom(|n| time_calls(&ltf, &otel_only, n))
    });
    let independent = LtfSpanBeside(otel_only.clone());
    g.bench_function("otel_sdk_span_layer_and_ltf_span", |b| {
        b.iter_custom(|n| time_calls(&ltf, &independent, n))
    });
    g.finish();

    let mut g = c.benchmark_group("stream_1000");
    g.bench_function("plain", |b| {
        b.iter(|| poll_once(futures_util::stream::iter(0..1000u64).fold(0, |a, x| ready(a + x))))
    });
    g.bench_function("traced", |b| {
        b.iter_custom(|iters| {
            let run = ltf.run("bench-loop").start();
            let it = run.iteration(1);
            let start = Instant::now();
            for _ in 0..iters {
                let s = futures_util::stream::iter(0..1000u64)
                    .traced(it.span("chat stream", SpanKind::Worker));
                black_box(poll_once(s.fold(0, |a, x| ready(a + x))));
            }
            let t = start.elapsed();
            drop(it);
            black_box(run.finish(Outcome::Success, "done"));
            t
        })
    });
    g.finish();

    // The bridged target ratio, measured so that machine noise hits both sides alike.
    let _ = PAIRED.set(common::paired_ratio(
        60,
        10_000,
        |n| time_calls(&ltf, &otel_only, n),
        |n| time_calls(&bridged, &traced, n),
    ));
    let _ = PAIRED_INDEPENDENT.set(common::paired_ratio(
        60,
        10_000,
        |n| time_calls(&ltf, &otel_only, n),
        |n| time_calls(&ltf, &independent, n),
    ));
    let _ = provider.shutdown();
}

static PAIRED: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();
static PAIRED_INDEPENDENT: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();

fn report() {
    let (Some(bare), Some(pass)) = (mean_ns("layer/no_layer"), mean_ns("layer/pass_through"))
    else {
        return;
    };
    println!("\n## loopotel-tower layer cost (this run)\n");
    println!("| service call | mean | ÷ no layer | ÷ pass-through |");
    println!("|---|---|---|---|");
    for (id, label) in [
        ("layer/no_layer", "no layer"),
        ("layer/pass_through", "pass-through layer"),
        (
            "layer/pass_through_drop_aware",
            "pass-through layer whose future can run code when dropped",
        ),
        (
            "layer/tower_http_trace_no_subscriber",
            "tower-http TraceLayer, no subscriber",
        ),
        (
            "layer/loop_trace_disabled",
            "LoopTraceLayer, tracing disabled",
        ),
        ("layer/loop_trace_ltf", "LoopTraceLayer, LTF"),
        (
            "layer/otel_sdk_span_layer",
            "bare OpenTelemetry SDK span layer (same name and attributes)",
        ),
        (
            "layer/loop_trace_ltf_otel",
            "LoopTraceLayer, LTF + OpenTelemetry SDK",
        ),
        (
            "layer/otel_sdk_span_layer_and_ltf_span",
            "bare SDK span layer + an LTF-only loopotel span beside it (views recorded apart)",
        ),
    ] {
        if let Some(ns) = mean_ns(id) {
            println!(
                "| {label} | {ns:.1} ns | {:.2}× | {:.2}× |",
                ns / bare,
                ns / pass
            );
        }
    }
    if let (Some(otel), Some(bridged)) = (
        mean_ns("layer/otel_sdk_span_layer"),
        mean_ns("layer/loop_trace_ltf_otel"),
    ) {
        println!(
            "\nLoopTraceLayer (LTF + OpenTelemetry) ÷ bare OpenTelemetry SDK span layer: {:.2}×",
            bridged / otel
        );
    }
    if let Some(paired) = PAIRED.get() {
        println!("LoopTraceLayer (LTF + OpenTelemetry) ÷ bare SDK span layer, paired: {paired}");
    }
    if let Some(paired) = PAIRED_INDEPENDENT.get() {
        println!(
            "bare SDK span layer + LTF-only span beside it ÷ bare SDK span layer, paired: {paired}"
        );
    }
    if let (Some(plain), Some(traced)) =
        (mean_ns("stream_1000/plain"), mean_ns("stream_1000/traced"))
    {
        println!(
            "\nStream of 1 000 items: plain {plain:.0} ns, traced {traced:.0} ns: {:.1} ns per item overhead (span start/end included).",
            (traced - plain) / 1000.0
        );
    }
}

fn main() {
    common::run(benches, report);
}
