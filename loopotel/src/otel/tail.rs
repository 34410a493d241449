//! Loop-aware tail sampling (feature `sdk`): a [`SpanProcessor`] that holds each trace's
//! spans until its `loop.run` root ends, then keeps or drops the whole trace by how the run
//! went.
//!
//! Always kept: runs that failed or errored (`loop.outcome` other than `success`), runs that
//! hit the iteration cap (`termination_reason` starting `max_iterations`), runs over a cost or
//! duration threshold, runs whose last goal score is below a threshold. The rest are kept
//! at a ratio, decided from the trace id (like `TraceIdRatioBased`, so every service keeps
//! the same traces). Metrics never pass through here: they stay unsampled.
//!
//! Bounded: at most `max_buffered_spans` are held; past that, spans pass straight through
//! (kept, counted in [`TailStats::overflowed`]). A trace whose root does not end within
//! `max_trace_age` (not a loop, or a run still going) is passed through as it is. Shutdown
//! and flush pass through everything still held — never lost, only unsampled.
//!
//! ```
//! use loopotel::otel::tail::{TailSampler, TailSamplingProcessor};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
//!
//! let exported = InMemorySpanExporter::default();
//! let sampler = TailSampler::default().ratio(0.0).keep_cost_above_usd(1.0);
//! let tail = TailSamplingProcessor::new(SimpleSpanProcessor::new(exported.clone()), sampler);
//! let provider = SdkTracerProvider::builder().with_span_processor(tail).build();
//! let tracer = loopotel::LoopTracer::builder().tracer_provider(&provider).build();
//!
//! let ok = tracer.run("fine").start();
//! let ok_trace = ok.trace_id().to_hex();
//! ok.emit_iteration(loopotel::IterationRecord::new(1, 0.9));
//! ok.finish(loopotel::Outcome::Success, "quality_threshold");
//! let bad = tracer.run("broken").start();
//! bad.emit_iteration(loopotel::IterationRecord::new(1, 0.2));
//! bad.finish(loopotel::Outcome::Failure, "gave up");
//!
//! let kept = exported.get_finished_spans().unwrap();
//! assert!(kept.iter().all(|s| s.span_context.trace_id().to_string() != ok_trace));
//! assert_eq!(kept.len(), 2, "the failed run, root and iteration");
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceId;
use opentelemetry::{Context, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// When to keep a finished run (see the module docs). Defaults: keep failures, errors and
/// iteration-cap runs; keep 10 % of the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct TailSampler {
    ratio: f64,
    keep_failures: bool,
    keep_iteration_cap: bool,
    cost_above: Option<f64>,
    duration_above: Option<Duration>,
    score_below: Option<f64>,
    max_buffered_spans: usize,
    max_trace_age: Duration,
}

impl Default for TailSampler {
    fn default() -> Self {
        Self {
            ratio: 0.1,
            keep_failures: true,
            keep_iteration_cap: true,
            cost_above: None,
            duration_above: None,
            score_below: None,
            max_buffered_spans: 100_000,
            max_trace_age: Duration::from_secs(600),
        }
    }
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

impl TailSampler {
    /// Defaults, changed by `LOOPOTEL_TAIL_SAMPLING_RATIO`, `LOOPOTEL_TAIL_KEEP_COST_USD`,
    /// `LOOPOTEL_TAIL_KEEP_DURATION_MS`, `LOOPOTEL_TAIL_KEEP_SCORE_BELOW` (unparsable values
    /// are ignored).
    pub fn from_env() -> Self {
        let mut s = Self::default();
        if let Some(r) = env_f64("LOOPOTEL_TAIL_SAMPLING_RATIO") {
            s = s.ratio(r);
        }
        if let Some(c) = env_f64("LOOPOTEL_TAIL_KEEP_COST_USD") {
            s = s.keep_cost_above_usd(c);
        }
        if let Some(ms) = env_f64("LOOPOTEL_TAIL_KEEP_DURATION_MS").filter(|v| *v >= 0.0) {
            s = s.keep_duration_above(Duration::from_secs_f64(ms / 1000.0));
        }
        if let Some(v) = env_f64("LOOPOTEL_TAIL_KEEP_SCORE_BELOW") {
            s = s.keep_score_below(v);
        }
        s
    }

    /// Whether any `LOOPOTEL_TAIL_*` variable is set (then [`crate::otel::init::init`] adds
    /// tail sampling).
    pub fn configured_by_env() -> bool {
        [
            "LOOPOTEL_TAIL_SAMPLING_RATIO",
            "LOOPOTEL_TAIL_KEEP_COST_USD",
            "LOOPOTEL_TAIL_KEEP_DURATION_MS",
            "LOOPOTEL_TAIL_KEEP_SCORE_BELOW",
        ]
        .iter()
        .any(|k| std::env::var_os(k).is_some())
    }

    /// The share of unremarkable runs kept (clamped to 0..=1).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self
    }

    /// Keep runs whose outcome is not `success` (default on).
    pub fn keep_failures(mut self, on: bool) -> Self {
        self.keep_failures = on;
        self
    }

    /// Keep runs that ended on the iteration cap (default on).
    pub fn keep_iteration_cap(mut self, on: bool) -> Self {
        self.keep_iteration_cap = on;
        self
    }

    /// Keep runs that cost more than `usd`.
    pub fn keep_cost_above_usd(mut self, usd: f64) -> Self {
        self.cost_above = Some(usd);
        self
    }

    /// Keep runs that took longer than `d`.
    pub fn keep_duration_above(mut self, d: Duration) -> Self {
        self.duration_above = Some(d);
        self
    }

    /// Keep runs whose last goal score is below `score`.
    pub fn keep_score_below(mut self, score: f64) -> Self {
        self.score_below = Some(score);
        self
    }

    /// Most spans held at once (default 100 000).
    pub fn max_buffered_spans(mut self, n: usize) -> Self {
        self.max_buffered_spans = n;
        self
    }

    /// How long a trace may wait for its root (default 10 minutes).
    pub fn max_trace_age(mut self, d: Duration) -> Self {
        self.max_trace_age = d;
        self
    }

    fn by_ratio(&self, trace: TraceId) -> bool {
        if self.ratio >= 1.0 {
            return true;
        }
        let bytes = trace.to_bytes();
        let x = u64::from_be_bytes(bytes[8..].try_into().unwrap_or_default());
        (x as f64) < self.ratio * u64::MAX as f64
    }

    /// Why `root` (with the last goal score seen in its trace) is kept, or `None`.
    fn keep_reason(&self, root: &SpanData, last_score: Option<f64>) -> Option<&'static str> {
        let attr = |key: &str| {
            root.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| &kv.value)
        };
        let num = |v: &Value| match v {
            Value::F64(f) => Some(*f),
            Value::I64(i) => Some(*i as f64),
            _ => None,
        };
        if self.keep_failures {
            match attr("loop.outcome") {
                Some(Value::String(s)) if s.as_str() == "success" => {}
                _ => return Some("failure"),
            }
        }
        if self.keep_iteration_cap
            && let Some(Value::String(r)) = attr("loop.termination_reason")
            && r.as_str().starts_with("max_iterations")
        {
            return Some("iteration_cap");
        }
        if let (Some(limit), Some(cost)) =
            (self.cost_above, attr("loop.cost_total_usd").and_then(num))
            && cost > limit
        {
            return Some("cost");
        }
        if let Some(limit) = self.duration_above
            && root
                .end_time
                .duration_since(root.start_time)
                .unwrap_or_default()
                > limit
        {
            return Some("duration");
        }
        if let (Some(limit), Some(score)) = (self.score_below, last_score)
            && score < limit
        {
            return Some("low_score");
        }
        self.by_ratio(root.span_context.trace_id())
            .then_some("ratio")
    }
}

/// What the tail sampler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Runs kept.
    pub traces_kept: u64,
    /// Runs dropped (all their spans).
    pub traces_dropped: u64,
    /// Spans dropped with them.
    pub spans_dropped: u64,
    /// Spans passed through unsampled (buffer full, trace too old, shutdown).
    pub overflowed: u64,
}

#[derive(Debug)]
struct Pending {
    spans: Vec<SpanData>,
    first_seen: Instant,
    last_score: Option<f64>,
}

/// The processor (see the module docs): wraps the processor that exports.
#[derive(Debug)]
pub struct TailSamplingProcessor<P> {
    inner: P,
    sampler: TailSampler,
    pending: Mutex<(HashMap<TraceId, Pending>, usize)>,
    kept: AtomicU64,
    dropped: AtomicU64,
    spans_dropped: AtomicU64,
    overflowed: AtomicU64,
}

/// A run's root: `loop.run` with no parent in this process (none, or a remote caller's).
/// (A run nested in another span of the same process is held with that trace.)
fn is_root_run(span: &SpanData) -> bool {
    span.name == "loop.run"
        && (span.parent_span_id == opentelemetry::trace::SpanId::INVALID
            || span.parent_span_is_remote)
}

fn goal_score(span: &SpanData) -> Option<f64> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == "loop.goal_score")
        .and_then(|kv| match kv.value {
            Value::F64(f) => Some(f),
            Value::I64(i) => Some(i as f64),
            _ => None,
        })
}

impl<P: SpanProcessor> TailSamplingProcessor<P> {
    /// Samples into `inner` with `sampler`.
    pub fn new(inner: P, sampler: TailSampler) -> Self {
        Self {
            inner,
            sampler,
            pending: Mutex::new((HashMap::new(), 0)),
            kept: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            spans_dropped: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> TailStats {
        TailStats {
            traces_kept: self.kept.load(Ordering::Relaxed),
            traces_dropped: self.dropped.load(Ordering::Relaxed),
            spans_dropped: self.spans_dropped.load(Ordering::Relaxed),
            overflowed: self.overflowed.load(Ordering::Relaxed),
        }
    }

    fn forward(&self, spans: Vec<SpanData>) {
        for s in spans {
            self.inner.on_end(s);
        }
    }

    /// Passes through every held trace (flush, shutdown) or only the old ones.
    fn release(&self, only_older_than: Option<Duration>) {
        let released: Vec<SpanData> = {
            let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let (map, count) = &mut *guard;
            let now = Instant::now();
            let old: Vec<TraceId> = map
                .iter()
                .filter(|(_, p)| {
                    only_older_than.is_none_or(|age| now.duration_since(p.first_seen) > age)
                })
                .map(|(t, _)| *t)
                .collect();
            let mut out = Vec::new();
            for t in old {
                if let Some(p) = map.remove(&t) {
                    *count -= p.spans.len();
                    out.extend(p.spans);
                }
            }
            out
        };
        self.overflowed
            .fetch_add(released.len() as u64, Ordering::Relaxed);
        self.forward(released);
    }
}

impl<P: SpanProcessor> SpanProcessor for TailSamplingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let trace = span.span_context.trace_id();
        if is_root_run(&span) {
            let held = {
                let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let (map, count) = &mut *guard;
                let p = map.remove(&trace);
                if let Some(p) = &p {
                    *count -= p.spans.len();
                }
                p
            };
            let (mut spans, last_score) =
                held.map_or((Vec::new(), None), |p| (p.spans, p.last_score));
            if self.sampler.keep_reason(&span, last_score).is_some() {
                self.kept.fetch_add(1, Ordering::Relaxed);
                spans.push(span);
                self.forward(spans);
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.spans_dropped
                    .fetch_add(spans.len() as u64 + 1, Ordering::Relaxed);
            }
            return;
        }
        let overflow = {
            let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let (map, count) = &mut *guard;
            if *count >= self.sampler.max_buffered_spans {
                Some(span)
            } else {
                let score = goal_score(&span);
                let p = map.entry(trace).or_insert_with(|| Pending {
                    spans: Vec::new(),
                    first_seen: Instant::now(),
                    last_score: None,
                });
                if score.is_some() && span.name == "loop.iteration" {
                    p.last_score = score;
                }
                p.spans.push(span);
                *count += 1;
                None
            }
        };
        if let Some(span) = overflow {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            self.inner.on_end(span);
        }
        // Old traces (no root coming) pass through, checked now and then.
        if self.spans_seen_tick() {
            self.release(Some(self.sampler.max_trace_age));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.release(Some(self.sampler.max_trace_age));
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.release(None);
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<P> TailSamplingProcessor<P> {
    /// True about once every 1024 held spans.
    fn spans_seen_tick(&self) -> bool {
        static TICK: AtomicU64 = AtomicU64::new(0);
        TICK.fetch_add(1, Ordering::Relaxed) % 1024 == 1023
    }
}
