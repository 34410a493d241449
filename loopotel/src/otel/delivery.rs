//! Counting what the OpenTelemetry SDK pipeline delivered, failed to export, or dropped
//! (feature `sdk`).
//!
//! The SDK's `BatchSpanProcessor` drops spans silently when its queue is full and keeps the
//! count to itself; an exporter error is logged and the batch is gone. Wrap the exporter in
//! [`CountingSpanExporter`] and the processor in [`CountingSpanProcessor`] (sharing one
//! [`DeliveryCounters`]) and every ended span is accounted for:
//!
//! - `exported` — batches the exporter accepted;
//! - `failed` — batches the exporter rejected (dead or hung endpoint, timeout, 5xx);
//! - `pending` — ended but not yet handed to the exporter: queued, or dropped by a full
//!   queue. After a flush or shutdown nothing is queued, so what is left was dropped
//!   ([`DeliveryStats::dropped`]);
//! - with a disk spool ([`super::spool`], through [`super::pipeline::counted_batch_processor`]): `spooled` —
//!   kept on disk while the collector was away — then `resent` once it is back, or
//!   `evicted` by the spool's size cap.
//!
//! The first failure is reported once on stderr, not per span. [`crate::otel::init::init`]
//! wires this up and adds the counts to `loop.telemetry.dropped` (reasons `export_failed`,
//! `queue_full`).
//!
//! ```
//! use loopotel::otel::delivery::{CountingSpanExporter, CountingSpanProcessor, DeliveryCounters};
//! use opentelemetry_sdk::trace::{BatchSpanProcessor, InMemorySpanExporter, SdkTracerProvider};
//!
//! let counters = DeliveryCounters::new();
//! let exporter = CountingSpanExporter::new(InMemorySpanExporter::default(), counters.clone());
//! let processor = CountingSpanProcessor::new(BatchSpanProcessor::builder(exporter).build(), counters.clone());
//! let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
//!
//! let tracer = loopotel::LoopTracer::builder().tracer_provider(&provider).build();
//! let run = tracer.run("counted").start();
//! drop(run.iteration(1));
//! run.finish(loopotel::Outcome::Success, "done");
//! provider.force_flush().unwrap();
//!
//! let stats = counters.snapshot();
//! assert_eq!((stats.ended, stats.exported, stats.dropped()), (2, 2, 0));
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::metrics::{Counter, MeterProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

#[derive(Debug, Default)]
struct Counts {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    spooled: AtomicU64,
    resent: AtomicU64,
    evicted: AtomicU64,
    reported: AtomicBool,
    /// `loop.telemetry.dropped`, when counting into a meter provider.
    dropped_metric: OnceLock<Counter<u64>>,
    /// `loop.telemetry.spooled`, when counting into a meter provider.
    spooled_metric: OnceLock<Counter<u64>>,
}

/// Shared delivery counters (cheap to clone: one `Arc`).
#[derive(Debug, Clone, Default)]
pub struct DeliveryCounters(Arc<Counts>);

/// A snapshot of [`DeliveryCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Spans that ended and reached the processor.
    pub ended: u64,
    /// Spans in batches the exporter accepted.
    pub exported: u64,
    /// Spans in batches the exporter rejected (and no spool could keep).
    pub failed: u64,
    /// Spans a [`super::spool::SpoolingSpanExporter`] wrote to its disk spool because the
    /// collector was unreachable.
    pub spooled: u64,
    /// Spooled spans delivered later (by this process, possibly from an earlier process's
    /// spool).
    pub resent: u64,
    /// Spooled spans the spool's size cap evicted, oldest first (lost, counted).
    pub evicted: u64,
}

impl DeliveryStats {
    /// Ended spans the exporter has not seen: queued, or dropped by a full queue.
    pub fn pending(&self) -> u64 {
        self.ended
            .saturating_sub(self.exported + self.failed + self.spooled)
    }

    /// Spans that will never arrive: failed exports, spans evicted from the spool and, once
    /// the pipeline has been flushed or shut down (nothing queued any more), the pending ones.
    pub fn dropped(&self) -> u64 {
        self.failed + self.evicted + self.pending()
    }

    /// Spans the collector accepted: directly, or re-sent from the spool.
    pub fn delivered(&self) -> u64 {
        self.exported + self.resent
    }
}

impl DeliveryCounters {
    /// New counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also counts losses into `loop.telemetry.dropped` of `provider` (reason
    /// `export_failed` as they happen; `queue_full` through [`DeliveryCounters::report_final`]),
    /// and spans written to a disk spool into `loop.telemetry.spooled`. Only the first
    /// provider given is used.
    pub fn with_meter_provider<P: MeterProvider + ?Sized>(self, provider: &P) -> Self {
        let _ = self
            .0
            .dropped_metric
            .set(super::metrics::dropped_counter(provider));
        let _ = self
            .0
            .spooled_metric
            .set(super::metrics::spooled_counter(provider));
        self
    }

    /// Once the pipeline has been shut down (nothing queued), reports spans that never reached
    /// the exporter — dropped by a full queue — once on stderr and into the metric, and
    /// returns the final counts.
    pub fn report_final(&self) -> DeliveryStats {
        let stats = self.snapshot();
        let queue_full = stats.pending();
        if queue_full > 0 {
            eprintln!(
                "loopotel: {queue_full} spans were dropped by the OpenTelemetry batch queue \
                 (queue full); {} failed to export, {} delivered.",
                stats.failed, stats.exported
            );
            self.count_metric(queue_full, "queue_full");
        }
        stats
    }

    fn count_metric(&self, spans: u64, reason: &'static str) {
        if let Some(c) = self.0.dropped_metric.get() {
            c.add(spans, &[KeyValue::new("loop.telemetry.reason", reason)]);
        }
    }

    /// The current counts.
    pub fn snapshot(&self) -> DeliveryStats {
        DeliveryStats {
            ended: self.0.ended.load(Ordering::Relaxed),
            exported: self.0.exported.load(Ordering::Relaxed),
            failed: self.0.failed.load(Ordering::Relaxed),
            spooled: self.0.spooled.load(Ordering::Relaxed),
            resent: self.0.resent.load(Ordering::Relaxed),
            evicted: self.0.evicted.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn exported(&self, spans: u64) {
        self.0.exported.fetch_add(spans, Ordering::Relaxed);
    }

    pub(crate) fn spooled(&self, spans: u64) {
        self.0.spooled.fetch_add(spans, Ordering::Relaxed);
        if let Some(m) = self.0.spooled_metric.get() {
            m.add(spans, &[]);
        }
    }

    pub(crate) fn resent(&self, spans: u64) {
        self.0.resent.fetch_add(spans, Ordering::Relaxed);
    }

    pub(crate) fn evicted(&self, spans: u64) {
        self.0.evicted.fetch_add(spans, Ordering::Relaxed);
        self.count_metric(spans, "spool_evicted");
    }

    pub(crate) fn export_failed(&self, spans: u64, error: &dyn std::fmt::Display) {
        self.0.failed.fetch_add(spans, Ordering::Relaxed);
        self.count_metric(spans, "export_failed");
        if !self.0.reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "loopotel: an OpenTelemetry export failed ({error}); {spans} spans lost. Further \
                 losses are counted (delivery stats, loop.telemetry.dropped), not logged."
            );
        }
    }
}

/// A [`SpanExporter`] that counts the spans its inner exporter accepted or rejected.
#[derive(Debug)]
pub struct CountingSpanExporter<E> {
    inner: E,
    counters: DeliveryCounters,
}

impl<E> CountingSpanExporter<E> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: E, counters: DeliveryCounters) -> Self {
        Self { inner, counters }
    }
}

impl<E: SpanExporter> SpanExporter for CountingSpanExporter<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let export = self.inner.export(batch);
        let counters = &self.counters;
        async move {
            let result = export.await;
            match &result {
                Ok(()) => counters.exported(spans),
                Err(e) => counters.export_failed(spans, e),
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A [`SpanProcessor`] that counts ended spans before handing them to its inner processor.
#[derive(Debug)]
pub struct CountingSpanProcessor<P> {
    inner: P,
    counters: DeliveryCounters,
}

impl<P> CountingSpanProcessor<P> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: P, counters: DeliveryCounters) -> Self {
        Self { inner, counters }
    }
}

impl<P: SpanProcessor> SpanProcessor for CountingSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.counters.0.ended.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
