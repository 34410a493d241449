//! [`TracedStream`]: a span that lives as long as a stream; [`TracedBody`] (feature `http`):
//! the same for an `http_body::Body`.
//!
//! Wrap any `futures::Stream` (an LLM token stream, a tool's paged results) with
//! [`StreamTraceExt::traced`]. The span ends exactly once — when the stream ends, when an
//! error item arrives ([`StreamTraceExt::traced_try`]), or when the stream is dropped early —
//! and records:
//!
//! | attribute | meaning |
//! |---|---|
//! | `loop.stream.end_reason` | `completed`, `error` or `dropped_early` |
//! | `loop.stream.items` | items yielded |
//! | `loop.stream.time_to_first_item_ms` | from the wrap to the first item |
//! | `loop.stream.gap_ms.min` / `.mean` / `.max` | time between consecutive items |
//! | `loop.stream.gap_ms.p50` / `.p95` | from a fixed log-scale histogram (upper bucket bounds) |
//! | `loop.stream.bytes` | total size, when a size function was given |
//!
//! The span's duration is the stream's duration. Per item the adapter reads the clock once
//! and updates a few counters; nothing is allocated.
//!
//! At the end, before the span closes, an [`OnEos`] callback (`.on_eos(..)`; a closure
//! works) sees a [`StreamEnd`] summary and the span — the place to record a final usage
//! chunk or a finish reason. A stream that is a whole run of its own (a standalone call)
//! ends that run after the span with `.with_run(run)`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use futures_util::StreamExt as _;
//! use loopotel::stream::StreamTraceExt as _;
//! use loopotel::{LoopTracer, Outcome, SpanKind};
//!
//! let run = LoopTracer::new().run("stream-loop").start();
//! let it = run.iteration(1);
//! let chunks = futures_util::stream::iter(["Hel", "lo", "!"])
//!     .traced(it.span("chat m", SpanKind::Worker.client()))
//!     .with_size(|s: &&str| s.len() as u64);
//! let text: String = chunks.collect::<Vec<_>>().await.concat();
//! assert_eq!(text, "Hello!");
//! drop(it);
//! let doc = run.finish(Outcome::Success, "done");
//! let span = doc.spans.iter().find(|s| s.name.as_str() == "chat m").unwrap();
//! assert_eq!(span.attributes.get("loop.stream.items").unwrap().as_i64(), Some(3));
//! assert_eq!(span.attributes.get("loop.stream.bytes").unwrap().as_i64(), Some(6));
//! assert_eq!(span.attributes.get("loop.stream.end_reason").unwrap().as_str(), Some("completed"));
//! # });
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::Stream;

use crate::model::Outcome;
use crate::tracer::{Run, SpanGuard};

/// How a traced stream or body ended, handed to [`OnEos`] before its span closes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamEnd {
    /// `completed`, `error` or `dropped_early`.
    pub reason: &'static str,
    /// Items (data frames, for a body) yielded.
    pub items: u64,
    /// Total size, when known.
    pub bytes: Option<u64>,
    /// From the wrap to the end.
    pub duration: std::time::Duration,
    /// From the wrap to the first item.
    pub time_to_first_item: Option<std::time::Duration>,
}

/// Called once when a traced stream or body ends (completed, error, or dropped early),
/// before its span closes. A panic inside is caught and ignored.
pub trait OnEos {
    /// Records what the end says.
    fn on_eos(&mut self, end: &StreamEnd, span: &mut SpanGuard);
}

/// Records nothing more than the `loop.stream.*` attributes.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultOnEos;

impl OnEos for DefaultOnEos {
    fn on_eos(&mut self, _: &StreamEnd, _: &mut SpanGuard) {}
}

impl<F: FnMut(&StreamEnd, &mut SpanGuard)> OnEos for F {
    fn on_eos(&mut self, end: &StreamEnd, span: &mut SpanGuard) {
        self(end, span)
    }
}

/// A boxed end-of-stream callback (cold: called once per stream).
type BoxOnEos = Box<dyn OnEos + Send + Sync>;

/// Upper bounds (ns) of the gap histogram buckets; the last bucket is unbounded.
const GAP_BOUNDS_NS: [u64; 12] = [
    100_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// Running statistics of the gaps between items, in integer nanoseconds (cheap per item).
#[derive(Debug, Default, Clone)]
struct Gaps {
    count: u64,
    sum_ns: u64,
    min_ns: u64,
    max_ns: u64,
    buckets: [u32; GAP_BOUNDS_NS.len() + 1],
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Gaps {
    fn add(&mut self, ns: u64) {
        if self.count == 0 || ns < self.min_ns {
            self.min_ns = ns;
        }
        self.max_ns = self.max_ns.max(ns);
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        let i = GAP_BOUNDS_NS.partition_point(|b| *b < ns);
        self.buckets[i] = self.buckets[i].saturating_add(1);
    }

    /// The upper bound (ms) of the bucket holding quantile `q` (the max for the last bucket).
    fn quantile_ms(&self, q: f64) -> f64 {
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return ms(GAP_BOUNDS_NS
                    .get(i)
                    .copied()
                    .unwrap_or(self.max_ns)
                    .min(self.max_ns));
            }
        }
        ms(self.max_ns)
    }
}

/// How a stream's items are judged and measured.
pub trait ItemPolicy<T> {
    /// `Some(error_type, message)` when the item is an error: the span ends `error`.
    fn error(&self, item: &T) -> Option<(String, String)>;
    /// The item's size in bytes, if known.
    fn size(&self, item: &T) -> Option<u64>;
}

/// Every item is a success; sizes unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyItem;

impl<T> ItemPolicy<T> for AnyItem {
    fn error(&self, _: &T) -> Option<(String, String)> {
        None
    }
    fn size(&self, _: &T) -> Option<u64> {
        None
    }
}

/// `Err` items are errors (for streams of `Result`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultItem;

impl<T, E: std::fmt::Display> ItemPolicy<Result<T, E>> for ResultItem {
    fn error(&self, item: &Result<T, E>) -> Option<(String, String)> {
        item.as_ref()
            .err()
            .map(|e| (crate::semconv::error_type_of::<E>(), e.to_string()))
    }
    fn size(&self, _: &Result<T, E>) -> Option<u64> {
        None
    }
}

/// A policy with a size function.
#[derive(Debug, Clone, Copy)]
pub struct WithSize<P, F> {
    policy: P,
    size: F,
}

impl<T, P: ItemPolicy<T>, F: Fn(&T) -> u64> ItemPolicy<T> for WithSize<P, F> {
    fn error(&self, item: &T) -> Option<(String, String)> {
        self.policy.error(item)
    }
    fn size(&self, item: &T) -> Option<u64> {
        Some((self.size)(item))
    }
}

/// The span and what was measured; ends the span (once) when dropped. Shared by
/// [`TracedStream`] and [`TracedBody`].
struct StreamRecord {
    span: Option<SpanGuard>,
    started: Instant,
    last: Option<Instant>,
    first_item_ms: Option<f64>,
    items: u64,
    bytes: Option<u64>,
    gaps: Gaps,
    on_eos: Option<BoxOnEos>,
    run: Option<Run>,
}

impl std::fmt::Debug for StreamRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecord")
            .field("span", &self.span)
            .field("items", &self.items)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl StreamRecord {
    fn new(span: SpanGuard) -> Self {
        Self {
            span: Some(span),
            started: Instant::now(),
            last: None,
            first_item_ms: None,
            items: 0,
            bytes: None,
            gaps: Gaps::default(),
            on_eos: None,
            run: None,
        }
    }

    fn item(&mut self, size: Option<u64>) {
        let now = Instant::now();
        match self.last {
            None => {
                self.first_item_ms = Some(now.duration_since(self.started).as_secs_f64() * 1000.0)
            }
            Some(prev) => self
                .gaps
                .add(u64::try_from(now.duration_since(prev).as_nanos()).unwrap_or(u64::MAX)),
        }
        self.last = Some(now);
        self.items += 1;
        if let Some(n) = size {
            *self.bytes.get_or_insert(0) += n;
        }
    }

    /// Ends the span once, with what was measured.
    fn end(&mut self, reason: &'static str, error: Option<(String, String)>) {
        let Some(mut span) = self.span.take() else {
            return;
        };
        span.set_attribute("loop.stream.end_reason", reason);
        span.set_attribute("loop.stream.items", self.items);
        if let Some(ms) = self.first_item_ms {
            span.set_attribute("loop.stream.time_to_first_item_ms", ms);
        }
        if self.gaps.count > 0 {
            span.set_attribute("loop.stream.gap_ms.min", ms(self.gaps.min_ns));
            span.set_attribute(
                "loop.stream.gap_ms.mean",
                ms(self.gaps.sum_ns) / self.gaps.count as f64,
            );
            span.set_attribute("loop.stream.gap_ms.max", ms(self.gaps.max_ns));
            span.set_attribute("loop.stream.gap_ms.p50", self.gaps.quantile_ms(0.5));
            span.set_attribute("loop.stream.gap_ms.p95", self.gaps.quantile_ms(0.95));
        }
        if let Some(b) = self.bytes {
            span.set_attribute("loop.stream.bytes", b);
        }
        if let Some((error_type, message)) = error {
            span.record_error(error_type, message);
        }
        if let Some(mut on_eos) = self.on_eos.take() {
            let end = StreamEnd {
                reason,
                items: self.items,
                bytes: self.bytes,
                duration: self.started.elapsed(),
                time_to_first_item: self
                    .first_item_ms
                    .map(|ms| std::time::Duration::from_secs_f64(ms / 1000.0)),
            };
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                on_eos.on_eos(&end, &mut span)
            }));
        }
        span.end();
        if let Some(run) = self.run.take() {
            let outcome = if reason == "completed" {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            run.finish(outcome, reason);
        }
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        self.end("dropped_early", None);
    }
}

/// A stream with a span that ends with it. Made by [`StreamTraceExt::traced`].
/// Polled through `Pin::new(&mut inner)`: wrap `!Unpin` streams in `Box::pin` first.
#[derive(Debug)]
pub struct TracedStream<S, P = AnyItem> {
    inner: S,
    policy: P,
    record: StreamRecord,
}

impl<S, P> TracedStream<S, P> {
    fn new(inner: S, policy: P, span: SpanGuard) -> Self {
        Self {
            inner,
            policy,
            record: StreamRecord::new(span),
        }
    }

    /// Measures items with `size` (bytes) as well.
    pub fn with_size<T, F: Fn(&T) -> u64>(self, size: F) -> TracedStream<S, WithSize<P, F>> {
        TracedStream {
            inner: self.inner,
            policy: WithSize {
                policy: self.policy,
                size,
            },
            record: self.record,
        }
    }

    /// The span, while the stream has not ended.
    pub fn span_mut(&mut self) -> Option<&mut SpanGuard> {
        self.record.span.as_mut()
    }

    /// Calls `on_eos` once at the end, before the span closes.
    pub fn on_eos(mut self, on_eos: impl OnEos + Send + Sync + 'static) -> Self {
        self.record.on_eos = Some(Box::new(on_eos));
        self
    }

    /// Ends `run` after the span: `success` when the stream completed, `failure` (with the
    /// end reason as termination reason) otherwise. For a stream that is a run of its own.
    pub fn with_run(mut self, run: Run) -> Self {
        self.record.run = Some(run);
        self
    }
}

impl<S: Stream + Unpin, P: ItemPolicy<S::Item> + Unpin> Stream for TracedStream<S, P> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        if this.record.span.is_none() {
            return polled;
        }
        match &polled {
            Poll::Pending => {}
            Poll::Ready(None) => this.record.end("completed", None),
            Poll::Ready(Some(item)) => {
                this.record.item(this.policy.size(item));
                if let Some(error) = this.policy.error(item) {
                    this.record.end("error", Some(error));
                }
            }
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[cfg(feature = "http")]
pin_project_lite::pin_project! {
    /// An `http_body::Body` with a span that ends with it (feature `http`): the same
    /// attributes as [`TracedStream`], counting data frames as items and their bytes.
    /// Errors end it `error`; reaching the end (or `is_end_stream`) ends it `completed`;
    /// dropping it earlier ends it `dropped_early`.
    #[derive(Debug)]
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        record: StreamRecord,
    }
}

#[cfg(feature = "http")]
impl<B> TracedBody<B> {
    /// Records `body` in `span`.
    pub fn new(body: B, span: SpanGuard) -> Self {
        Self {
            inner: body,
            record: StreamRecord::new(span),
        }
    }

    /// Calls `on_eos` once at the end, before the span closes.
    pub fn on_eos(mut self, on_eos: impl OnEos + Send + Sync + 'static) -> Self {
        self.record.on_eos = Some(Box::new(on_eos));
        self
    }

    /// Ends `run` after the span (see [`TracedStream::with_run`]).
    pub fn with_run(mut self, run: Run) -> Self {
        self.record.run = Some(run);
        self
    }
}

#[cfg(feature = "http")]
impl<B> http_body::Body for TracedBody<B>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use bytes::Buf as _;
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        if this.record.span.is_none() {
            return polled;
        }
        match &polled {
            Poll::Pending => {}
            Poll::Ready(None) => this.record.end("completed", None),
            Poll::Ready(Some(Err(e))) => {
                let error_type = crate::semconv::error_type_of::<B::Error>();
                this.record.end("error", Some((error_type, e.to_string())));
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.record.item(Some(data.remaining() as u64));
                }
                if this.inner.is_end_stream() {
                    this.record.end("completed", None);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `.traced(span)` for every stream.
pub trait StreamTraceExt: Stream + Sized {
    /// Records this stream in `span` (items are never errors).
    fn traced(self, span: SpanGuard) -> TracedStream<Self, AnyItem> {
        TracedStream::new(self, AnyItem, span)
    }

    /// Records this stream of `Result`s in `span`; the first `Err` item ends the span with
    /// `error` (the stream itself goes on unchanged).
    fn traced_try(self, span: SpanGuard) -> TracedStream<Self, ResultItem> {
        TracedStream::new(self, ResultItem, span)
    }

    /// Records this stream in `span`, judging items with `policy` (which items are errors,
    /// with what `error.type`; their sizes).
    fn traced_with<P: ItemPolicy<Self::Item>>(
        self,
        span: SpanGuard,
        policy: P,
    ) -> TracedStream<Self, P> {
        TracedStream::new(self, policy, span)
    }
}

impl<S: Stream> StreamTraceExt for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_quantiles_come_from_bucket_bounds() {
        let mut g = Gaps::default();
        for ms in [0.05, 0.3, 0.3, 0.7, 3.0, 7.0, 20.0, 40.0, 70.0, 400.0] {
            g.add((ms * 1e6) as u64);
        }
        assert_eq!(g.min_ns, 50_000);
        assert_eq!(g.max_ns, 400_000_000);
        assert_eq!(g.quantile_ms(0.5), 5.0);
        assert_eq!(g.quantile_ms(0.95), 400.0);
    }
}
