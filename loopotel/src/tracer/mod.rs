//! Recording loop runs: [`LoopTracer`] → [`Run`] → [`Iteration`] → [`SpanGuard`].
//!
//! A [`LoopTracer`] holds the configuration (enabled, default goal target, span cap, sinks) and
//! starts runs. A [`Run`] is the root `loop.run` span; it owns the run and finishes it on
//! [`Run::finish`] or, if forgotten, on drop. Iterations and child spans are RAII guards too:
//! every span that was started is ended exactly once, and nothing is lost when a handle is
//! dropped early or a panic unwinds through it.
//!
//! ```
//! use loopotel::{LoopTracer, Outcome};
//!
//! let tracer = LoopTracer::new();
//! let run = tracer.run("demo-loop").env_id("demo/env-v1").start();
//! for n in 1..=3 {
//!     let mut it = run.iteration(n);
//!     it.worker_complete("writer");
//!     it.add_tokens(120);
//!     it.evaluator_complete("critic", 0.3 * n as f64);
//! } // each iteration ends here, with its LES values
//! let doc = run.finish(Outcome::Success, "quality_threshold");
//! assert_eq!(doc.spans.len(), 4);
//! assert_eq!(doc.root().unwrap().attributes.get("loop.tokens_total").unwrap().as_i64(), Some(360));
//! ```

pub(crate) mod iteration;
mod owner;
pub(crate) mod record;
pub(crate) mod run;
mod scope;
pub(crate) mod span;
mod store;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use iteration::Iteration;
pub use record::IterationRecord;
pub use run::{Run, RunBuilder, RunHandle};
pub use scope::LoopScope;
pub(crate) use scope::{OpenSpans, current_is_recording};
pub use span::SpanGuard;

use crate::les::DEFAULT_GOAL_TARGET;
use crate::model::LtfDocument;

/// Where finished LTF documents go (a JSONL file, an OTLP exporter, a test collector).
///
/// Implementations must be fail-open: they report their own errors through their own
/// counters and never panic into the caller (a panic is caught and counted anyway).
pub trait TraceSink: Send + Sync {
    /// Takes one finished document. Must not block for long: it runs on the thread that
    /// finished the run.
    fn export(&self, doc: &LtfDocument);

    /// Takes a finished document too large to hold in memory: `doc` holds the root and the
    /// spans that stayed in memory, `rest` the spans that went only to the journal
    /// ([`crate::journal::JournalConfig::in_memory_spans`]), read back on demand;
    /// [`crate::journal::JournaledSpans::document_order`] gives the whole document's spans.
    ///
    /// The default gathers them into one document for [`TraceSink::export`], so memory
    /// grows with the run; a sink that can write spans as they come overrides it, as
    /// [`crate::jsonl::JsonlExporter`] does.
    fn export_large(&self, doc: &LtfDocument, rest: &crate::journal::JournaledSpans) {
        let mut whole = doc.clone();
        whole.spans = rest
            .document_order(doc)
            .map(std::borrow::Cow::into_owned)
            .collect();
        self.export(&whole);
    }
}

impl<F: Fn(&LtfDocument) + Send + Sync> TraceSink for F {
    fn export(&self, doc: &LtfDocument) {
        self(doc)
    }
}

/// Counters of what instrumentation could not do. Never reset; read with [`LoopTracer::stats`].
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    runs_finished: AtomicU64,
    dropped_spans: AtomicU64,
    late_records: AtomicU64,
    sink_panics: AtomicU64,
    instrumentation_panics: AtomicU64,
}

/// A snapshot of a tracer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TracerStats {
    /// Runs finished (explicitly or by drop).
    pub runs_finished: u64,
    /// Spans not recorded because a run reached its span cap.
    pub dropped_spans: u64,
    /// Records that arrived after their run had finished (ignored).
    pub late_records: u64,
    /// Sink calls that panicked (caught).
    pub sink_panics: u64,
    /// Instrumentation built on loopotel (a `tracing` bridge, a callback) that panicked
    /// while recording into one of this tracer's runs: caught, and what it was recording
    /// is lost.
    pub instrumentation_panics: u64,
    /// Journal records not written (the journal's queue was full, or its directory could
    /// not be written: a full disk, a read-only directory). Recording went on in memory.
    pub journal_lost: u64,
}

pub(crate) struct TracerConfig {
    pub(crate) enabled: bool,
    pub(crate) otel: Option<crate::otel::OtelBridge>,
    pub(crate) metrics: Option<crate::otel::metrics::LoopMetrics>,
    pub(crate) default_goal_target: f64,
    pub(crate) max_spans_per_run: usize,
    pub(crate) limits: crate::limits::AttributeLimits,
    pub(crate) sinks: Vec<Arc<dyn TraceSink>>,
    pub(crate) stats: StatsCounters,
    /// Every span context carries a loop scope of its own (see
    /// [`LoopTracerBuilder::scope_through_foreign_spans`]).
    pub(crate) scope_in_every_context: bool,
    /// Attributes every run's root span starts with ([`LoopTracerBuilder::run_attribute`]).
    pub(crate) run_attributes: Vec<(crate::attr::Key, crate::AttrValue)>,
    /// The crash-safe journal ([`LoopTracerBuilder::journal`]).
    pub(crate) journal: Option<crate::journal::writer::Journal>,
}

impl TracerConfig {
    /// Sends a finished document to the sinks; the spans that `spilled` went only to the
    /// journal are read back from it.
    pub(crate) fn export(&self, doc: &LtfDocument, spilled: Option<run::Spilled>) {
        self.stats.runs_finished.fetch_add(1, Ordering::Relaxed);
        let rest = match (&self.journal, spilled) {
            (Some(j), Some(spilled)) => Some(j.journaled_spans(doc, spilled)),
            _ => None,
        };
        for sink in &self.sinks {
            let export = || match &rest {
                Some(rest) => sink.export_large(doc, rest),
                None => sink.export(doc),
            };
            if std::panic::catch_unwind(AssertUnwindSafe(export)).is_err() {
                self.stats.sink_panics.fetch_add(1, Ordering::Relaxed);
                self.count_metric_drop("sink_panic");
            }
        }
        // The document went to the sinks: the run's journal records are retired.
        self.journal(|| crate::journal::writer::Entry::End {
            trace_id: doc.trace_id,
        });
    }

    /// Queues a journal entry (built only when there is a journal; a loss is counted).
    #[inline]
    pub(crate) fn journal(&self, entry: impl FnOnce() -> crate::journal::writer::Entry) {
        if let Some(j) = &self.journal {
            let _ = j.push(entry());
        }
    }

    pub(crate) fn count_dropped_span(&self) {
        if self.stats.dropped_spans.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!(
                "loopotel: a run reached max_spans_per_run ({}); further spans are counted \
                 (TracerStats::dropped_spans, loop.telemetry.dropped), not kept. Reported once.",
                self.max_spans_per_run
            );
        }
        self.count_metric_drop("span_cap");
    }

    pub(crate) fn count_instrumentation_panic(&self) {
        if self
            .stats
            .instrumentation_panics
            .fetch_add(1, Ordering::Relaxed)
            == 0
        {
            eprintln!(
                "loopotel: instrumentation panicked while recording (caught; what it was \
                 recording is lost). Further panics are counted \
                 (TracerStats::instrumentation_panics), not logged."
            );
        }
        self.count_metric_drop("instrumentation_panic");
    }

    pub(crate) fn count_late_record(&self) {
        self.stats.late_records.fetch_add(1, Ordering::Relaxed);
        self.count_metric_drop("late");
    }

    fn count_metric_drop(&self, reason: &'static str) {
        if let Some(m) = &self.metrics {
            m.dropped(1, reason);
        }
    }
}

/// Starts loop runs and sends their documents to sinks. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct LoopTracer {
    pub(crate) config: Arc<TracerConfig>,
}

impl fmt::Debug for LoopTracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopTracer")
            .field("enabled", &self.config.enabled)
            .field("default_goal_target", &self.config.default_goal_target)
            .field("max_spans_per_run", &self.config.max_spans_per_run)
            .field("sinks", &self.config.sinks.len())
            .field("opentelemetry", &self.config.otel.is_some())
            .finish()
    }
}

impl Default for LoopTracer {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopTracer {
    /// An enabled tracer with no sinks (documents are returned by [`Run::finish`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A disabled tracer: runs record nothing and cost next to nothing, yet
    /// [`Run::finish`] still returns a schema-valid document (the root span alone).
    pub fn disabled() -> Self {
        Self::builder().enabled(false).build()
    }

    /// Configure a tracer.
    pub fn builder() -> LoopTracerBuilder {
        LoopTracerBuilder::default()
    }

    /// Whether runs started by this tracer record anything.
    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// Starts describing a run named `loop_name`; finish with [`RunBuilder::start`].
    pub fn run(&self, loop_name: impl Into<crate::SharedStr>) -> RunBuilder {
        RunBuilder::new(self.clone(), loop_name.into())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TracerStats {
        let s = &self.config.stats;
        TracerStats {
            runs_finished: s.runs_finished.load(Ordering::Relaxed),
            dropped_spans: s.dropped_spans.load(Ordering::Relaxed),
            late_records: s.late_records.load(Ordering::Relaxed),
            sink_panics: s.sink_panics.load(Ordering::Relaxed),
            instrumentation_panics: s.instrumentation_panics.load(Ordering::Relaxed),
            journal_lost: self
                .config
                .journal
                .as_ref()
                .map_or(0, |j| j.shared.lost.load(Ordering::Relaxed)),
        }
    }

    /// Waits (at most 10 s) until every span and iteration that ended before the call is
    /// written to the journal — and `fdatasync`ed, with [`crate::journal::JournalConfig::sync`].
    /// Returns whether it was (`false` without a journal). Recording never needs this; it
    /// is for a program that reports progress only once it would survive a crash.
    pub fn flush_journal(&self) -> bool {
        self.config
            .journal
            .as_ref()
            .is_some_and(|j| j.flush(std::time::Duration::from_secs(10)))
    }
}

/// Builder for [`LoopTracer`].
pub struct LoopTracerBuilder {
    enabled: bool,
    otel: Option<crate::otel::OtelBridge>,
    metrics: Option<crate::otel::metrics::LoopMetrics>,
    default_goal_target: f64,
    max_spans_per_run: usize,
    limits: crate::limits::AttributeLimits,
    sinks: Vec<Arc<dyn TraceSink>>,
    scope_in_every_context: bool,
    run_attributes: Vec<(crate::attr::Key, crate::AttrValue)>,
    journal: Option<crate::journal::JournalConfig>,
}

impl Default for LoopTracerBuilder {
    fn default() -> Self {
        Self {
            enabled: true,
            otel: None,
            metrics: None,
            default_goal_target: DEFAULT_GOAL_TARGET,
            max_spans_per_run: 1_000_000,
            limits: crate::limits::AttributeLimits::default(),
            sinks: Vec::new(),
            scope_in_every_context: false,
            run_attributes: Vec::new(),
            journal: None,
        }
    }
}

impl LoopTracerBuilder {
    /// Record (`true`, the default) or not.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Goal target for runs that do not set one (default 0.8, as the reference).
    pub fn default_goal_target(mut self, target: f64) -> Self {
        self.default_goal_target = target;
        self
    }

    /// Most spans one run keeps in memory (default 1 000 000). Further spans are dropped,
    /// counted in [`TracerStats::dropped_spans`] and in the root attribute
    /// `loop.telemetry.dropped_spans`. The root span is always kept.
    pub fn max_spans_per_run(mut self, max: usize) -> Self {
        self.max_spans_per_run = max.max(1);
        self
    }

    /// Limits on the attributes a span carries: value length, count per span (lowest
    /// priority evicted first; usage, cost and outcome never), control characters in names.
    /// See [`crate::limits`]; default [`crate::AttributeLimits::default`].
    pub fn attribute_limits(mut self, limits: crate::AttributeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Also records every span as a live OpenTelemetry span on this provider (same ids,
    /// parentage, timestamps, attributes and events; see [`crate::otel`]). The provider is
    /// used as given: nothing global is read or set.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: opentelemetry::trace::TracerProvider + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.otel = Some(crate::otel::OtelBridge::new(provider));
        self
    }

    /// Keeps the LTF parent of a loopotel span started inside another instrumentation's
    /// span (a `tracing` span, an HTTP client span) that is itself inside a loopotel span:
    /// with `true`, the outer loopotel span; by default, the enclosing run or iteration. The
    /// OpenTelemetry view places all three correctly either way.
    ///
    /// Only matters with a provider, where by default a span's context holds its
    /// OpenTelemetry span and nothing else: a span started inside finds its LTF parent from
    /// the active span's id (see [`crate::context`]), which a foreign span in between hides.
    /// With `true`, every span context also carries a loop scope of its own, as it does
    /// without a provider: a copy of the context's value map per span (≈ 120 ns per traced
    /// call, about a third of a bare SDK span's cost).
    ///
    /// ```
    /// use loopotel::{LoopTracer, Outcome, SpanKind, context};
    /// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    ///
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    /// let tracer = LoopTracer::builder()
    ///     .tracer_provider(&provider)
    ///     .scope_through_foreign_spans(true)
    ///     .build();
    /// let run = tracer.run("agent-as-tool").start();
    /// let tool_id = {
    ///     let _run = run.enter();
    ///     let mut tool = context::start_span("execute_tool research", SpanKind::Worker);
    ///     let _tool = tool.context().attach();
    ///     let foreign = provider.tracer("app").start("plan");
    ///     let _foreign = opentelemetry::Context::current_with_span(foreign).attach();
    ///     drop(context::start_span("chat gpt-4o", SpanKind::Worker.client()));
    ///     tool.span_id()
    /// };
    /// let doc = run.finish(Outcome::Success, "done");
    /// let chat = doc.spans.iter().find(|s| s.name == "chat gpt-4o").unwrap();
    /// assert_eq!(chat.parent_span_id, tool_id);
    /// ```
    pub fn scope_through_foreign_spans(mut self, keep: bool) -> Self {
        self.scope_in_every_context = keep;
        self
    }

    /// An attribute every run of this tracer records on its root span, in both views — for
    /// what identifies a batch of runs (`loopotel run` sets `loop.batch.id`), a service or
    /// a deployment. Set twice, the last value wins.
    ///
    /// ```
    /// let tracer = loopotel::LoopTracer::builder().run_attribute("loop.batch.id", "b-42").build();
    /// let doc = tracer.run("batched").start().finish(loopotel::Outcome::Success, "done");
    /// let root = doc.root().unwrap();
    /// assert_eq!(root.attributes.get("loop.batch.id").unwrap().as_str(), Some("b-42"));
    /// ```
    pub fn run_attribute(
        mut self,
        key: impl Into<crate::attr::Key>,
        value: impl Into<crate::AttrValue>,
    ) -> Self {
        let key = key.into();
        self.run_attributes.retain(|(k, _)| *k != key);
        self.run_attributes.push((key, value.into()));
        self
    }

    /// Records loop and GenAI metrics on this provider (`specs/otel-semconv-loop.md`,
    /// "Metrics"). Metrics do not depend on trace sampling.
    pub fn meter_provider<P>(mut self, provider: &P) -> Self
    where
        P: opentelemetry::metrics::MeterProvider + ?Sized,
    {
        self.metrics = Some(crate::otel::metrics::LoopMetrics::new(provider));
        self
    }

    /// Adds a sink that receives every finished document.
    pub fn sink(mut self, sink: impl TraceSink + 'static) -> Self {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Adds a shared sink.
    pub fn shared_sink(mut self, sink: Arc<dyn TraceSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Journals each run as it is recorded, so that a run cut short by the process's end
    /// can be recovered ([`crate::journal`]). With [`crate::journal::JournalConfig::beside`]
    /// an output, unfinished runs of ended processes are first recovered into it.
    pub fn journal(mut self, config: crate::journal::JournalConfig) -> Self {
        self.journal = Some(config);
        self
    }

    /// Builds the tracer.
    pub fn build(self) -> LoopTracer {
        let journal = self.journal.filter(|_| self.enabled).map(|config| {
            if config.recover_on_open
                && let Some(output) = &config.output
            {
                match crate::journal::recover(output, &config.dir) {
                    Ok(r) if r.runs > 0 => eprintln!(
                        "loopotel: recovered {} unfinished run(s) from {} into {}",
                        r.runs,
                        config.dir.display(),
                        output.display()
                    ),
                    Ok(_) => {}
                    Err(e) => eprintln!(
                        "loopotel: could not recover the journal {}: {e}",
                        config.dir.display()
                    ),
                }
            }
            crate::journal::writer::Journal::start(config)
        });
        LoopTracer {
            config: Arc::new(TracerConfig {
                enabled: self.enabled,
                otel: self.otel,
                metrics: self.metrics,
                default_goal_target: self.default_goal_target,
                max_spans_per_run: self.max_spans_per_run,
                limits: self.limits,
                sinks: self.sinks,
                stats: StatsCounters::default(),
                scope_in_every_context: self.scope_in_every_context,
                run_attributes: self.run_attributes,
                journal,
            }),
        }
    }
}
