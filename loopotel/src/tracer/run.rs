//! The root of a loop run: [`RunBuilder`], [`Run`] (the owner) and [`RunHandle`] (shared).

use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt as _;
use opentelemetry::context::FutureExt as _;

use super::LoopScope;
use super::iteration::Iteration;
use super::owner::SpanOwner;
use super::record::{IterationData, IterationRecord, SpanSlot};
use super::span::SpanGuard;
use super::store::SpanStore;
use super::{LoopTracer, TracerConfig};
use crate::attr::{AttrValue, Attributes, Key, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::les::LesAccumulator;
use crate::model::{
    LtfDocument, LtfSpan, Outcome, SCHEMA_VERSION, SpanKind, SpanKindPair, SpecPins,
};
use crate::otel::LiveOtelSpan;
use crate::semconv as sc;
use crate::time::Timestamp;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;

/// Runs started by enabled tracers and not yet finished, process-wide: while it is zero,
/// instrumentation can skip even looking at the context.
pub(crate) static LIVE_RUNS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Describes a run before it starts. Made by [`LoopTracer::run`].
#[must_use = "a run starts only with .start() or .scope()"]
pub struct RunBuilder {
    tracer: LoopTracer,
    loop_name: SharedStr,
    env_id: Option<SharedStr>,
    task_id: Option<SharedStr>,
    goal_target: Option<f64>,
    trace_id: Option<TraceId>,
    remote_parent: Option<crate::propagation::TraceParent>,
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl RunBuilder {
    pub(super) fn new(tracer: LoopTracer, loop_name: SharedStr) -> Self {
        Self {
            tracer,
            loop_name,
            env_id: None,
            task_id: None,
            goal_target: None,
            trace_id: None,
            remote_parent: None,
            metadata: serde_json::Map::new(),
        }
    }

    /// The environment id (`loop.env_id`). Empty strings count as absent.
    pub fn env_id(mut self, env_id: impl Into<SharedStr>) -> Self {
        self.env_id = Some(env_id.into()).filter(|s| !s.is_empty());
        self
    }

    /// The task id (`loop.task_id`). Empty strings count as absent.
    pub fn task_id(mut self, task_id: impl Into<SharedStr>) -> Self {
        self.task_id = Some(task_id.into()).filter(|s| !s.is_empty());
        self
    }

    /// The goal target LES is measured against (default: the tracer's, 0.8).
    pub fn goal_target(mut self, target: f64) -> Self {
        self.goal_target = Some(target);
        self
    }

    /// Use this trace id instead of a random one. Ignored when the tracer has an
    /// OpenTelemetry provider (its SDK picks the ids); use [`RunBuilder::continue_trace`] to
    /// join an existing trace either way.
    pub fn trace_id(mut self, trace_id: TraceId) -> Self {
        self.trace_id = Some(trace_id);
        self
    }

    /// Continues a trace received from another task, process or service (see
    /// [`crate::propagation`]): the run takes the caller's trace id, and the root span records
    /// the caller's span as `loop.parent_span_id` (the LTF root itself keeps no parent).
    pub fn continue_trace(mut self, parent: crate::propagation::TraceParent) -> Self {
        self.trace_id = Some(parent.trace_id);
        self.remote_parent = Some(parent);
        self
    }

    /// Adds a document `metadata` entry. Strings in it pass the built-in secret patterns
    /// ([`crate::redact`]): an API key, bearer token or email address is recorded as
    /// `[redacted]`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let (key, value) = scrubbed_metadata(key.into(), value.into());
        self.metadata.insert(key, value);
        self
    }

    /// Starts the run: records the root `loop.run` span and returns its owner.
    pub fn start(self) -> Run {
        let config = self.tracer.config;
        let started_at = Timestamp::now();
        let goal_target = self.goal_target.unwrap_or(config.default_goal_target);
        // A remote parent in the current context (extracted from a request or message)
        // continues that trace, with or without an OpenTelemetry provider.
        let remote_parent = self.remote_parent.or_else(|| {
            Context::map_current(|cx| {
                let span = cx.span();
                let sc = span.span_context();
                sc.is_remote()
                    .then(|| crate::propagation::TraceParent::from_span_context(sc))
                    .flatten()
            })
        });
        let mut root_span_id = SpanId::random();
        let mut trace_id = match remote_parent {
            Some(tp) => tp.trace_id,
            None => self.trace_id.unwrap_or_else(TraceId::random),
        };
        let mut parent_span = remote_parent.map(|p| p.span_id);
        let mut otel = None;
        let mut spans = SpanStore::default();
        if config.enabled {
            LIVE_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut attributes = Attributes::with_capacity(12);
            attributes.push_new(sc::LOOP_NAME, self.loop_name.clone());
            if let Some(env) = &self.env_id {
                attributes.push_new(sc::LOOP_ENV_ID, env.clone());
            }
            if let Some(task) = &self.task_id {
                attributes.push_new(sc::LOOP_TASK_ID, task.clone());
            }
            attributes.push_new(sc::LOOP_GOAL_TARGET, goal_target);
            for (k, v) in &config.run_attributes {
                attributes.set(k.clone(), v.clone());
            }
            attributes.push_new(sc::LOOP_LSS_VERSION, sc::LSS_VERSION);
            attributes.push_new(sc::LOOP_LES_VERSION, sc::LES_VERSION);
            if let Some(bridge) = &config.otel {
                // The OpenTelemetry root comes first; the LTF ids are its ids.
                let current = Context::current();
                let parent_cx = match self.remote_parent {
                    Some(tp) => current.with_remote_span_context(
                        tp.to_span_context(opentelemetry::trace::TraceState::NONE),
                    ),
                    None => current,
                };
                let parent_sc = parent_cx.span().span_context().clone();
                if parent_sc.is_valid() {
                    parent_span = Some(SpanId::from_bytes(parent_sc.span_id().to_bytes()));
                }
                let (live, ids) = bridge.start(
                    &parent_cx,
                    &SharedStr::Static(sc::SPAN_RUN),
                    opentelemetry::trace::SpanKind::Internal,
                    started_at,
                    &attributes,
                );
                if let Some((t, s)) = ids {
                    trace_id = t;
                    root_span_id = s;
                }
                otel = Some(live);
            }
            if let Some(parent) = parent_span {
                attributes.push_new(sc::LOOP_PARENT_SPAN_ID, parent.to_string());
            }
            spans.push(SpanSlot::Span(LtfSpan {
                span_id: root_span_id,
                parent_span_id: None,
                name: SharedStr::Static(sc::SPAN_RUN),
                kind: SpanKind::Loop,
                start_time: started_at,
                end_time: None,
                attributes,
                events: Vec::new(),
            }));
        }
        let shared = Arc::new(RunShared {
            config,
            trace_id,
            root_span_id,
            otel,
            loop_name: self.loop_name,
            env_id: self.env_id,
            task_id: self.task_id,
            goal_target,
            started_at,
            state: Mutex::new(RunState {
                spans,
                metadata: self.metadata,
                ..RunState::default()
            }),
            open_spans: Default::default(),
        });
        if shared.enabled() {
            shared
                .config
                .journal(|| crate::journal::writer::Entry::Run(shared.clone()));
        }
        Run {
            handle: RunHandle { shared },
            finished: false,
        }
    }

    /// Runs `f` inside a new run and returns its output with the finished document.
    ///
    /// The run is the current one (see [`crate::context`]) for every `.await` inside `f`;
    /// work `f` spawns keeps it when given `run.context()`. Unlike the reference's
    /// `trace_loop`, async work is recorded. If `f` does not call
    /// [`RunHandle::set_outcome`], the run ends `unknown` / `completed`. If `f` panics, the
    /// run ends `failure` / `panic`, is exported to the sinks, and the panic continues.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use loopotel::{LoopTracer, Outcome, IterationRecord, emit_iteration};
    ///
    /// let tracer = LoopTracer::new();
    /// let (answer, doc) = tracer.run("async-loop").scope(|run| async move {
    ///     emit_iteration(IterationRecord::new(1, 0.9)); // found through the context
    ///     run.set_outcome(Outcome::Success, "quality_threshold");
    ///     42
    /// }).await;
    /// assert_eq!(answer, 42);
    /// assert_eq!(doc.outcome, Some(Outcome::Success));
    /// assert_eq!(doc.iterations().count(), 1);
    /// # });
    /// ```
    pub async fn scope<F, Fut, T>(self, f: F) -> (T, LtfDocument)
    where
        F: FnOnce(RunHandle) -> Fut,
        Fut: Future<Output = T>,
    {
        let run = self.start();
        let cx = run.context();
        let fut = f(run.handle());
        match AssertUnwindSafe(fut.with_context(cx)).catch_unwind().await {
            Ok(value) => {
                let doc = run.finish_with_hint(Outcome::Unknown, "completed");
                (value, doc)
            }
            Err(panic) => {
                run.finish(Outcome::Failure, "panic");
                std::panic::resume_unwind(panic)
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct RunState {
    pub(crate) spans: SpanStore,
    pub(crate) les: LesAccumulator,
    pub(crate) tokens_total: u64,
    pub(crate) cost_total: Option<f64>,
    pub(crate) iterations: u64,
    pub(crate) last_iteration: u64,
    pub(crate) dropped_spans: u64,
    pub(crate) finished: bool,
    pub(crate) outcome_hint: Option<(Outcome, String)>,
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
    pub(crate) root_extra: Attributes,
    /// Spans that ended and went only to the journal
    /// ([`crate::journal::JournalConfig::in_memory_spans`]).
    pub(crate) journal_only: u64,
    /// The store's length when the run began to spill: spans kept in memory from then on
    /// (the journal could not take them, or they were still open) come after the
    /// journal's in the document.
    pub(crate) spill_from: Option<usize>,
}

/// A finished run some of whose spans went only to the journal.
pub(crate) struct Spilled {
    /// How many.
    pub(crate) journal_only: u64,
    /// The document's spans that come before them (the others come after, iterations
    /// merged in number order).
    pub(crate) before: usize,
}

pub(crate) struct RunShared {
    pub(crate) config: Arc<TracerConfig>,
    pub(crate) trace_id: TraceId,
    pub(crate) root_span_id: SpanId,
    /// The root's OpenTelemetry span, when the tracer has a provider.
    pub(crate) otel: Option<LiveOtelSpan>,
    pub(crate) loop_name: SharedStr,
    pub(crate) env_id: Option<SharedStr>,
    pub(crate) task_id: Option<SharedStr>,
    pub(crate) goal_target: f64,
    pub(crate) started_at: Timestamp,
    pub(crate) state: Mutex<RunState>,
    pub(crate) open_spans: super::OpenSpans,
}

impl RunShared {
    pub(crate) fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Locks the state. A poisoned lock (a panic elsewhere while holding it) is recovered:
    /// the state is plain data and stays consistent enough to report.
    pub(crate) fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves the span's place in the document (start order). `None` when the run is
    /// finished (late) or full (dropped); both are counted.
    #[inline]
    pub(crate) fn reserve(&self, state: &mut RunState, span: SpanSlot) -> Option<usize> {
        if state.finished {
            self.config.count_late_record();
            return None;
        }
        if state.spans.live() >= self.config.max_spans_per_run {
            state.dropped_spans += 1;
            self.config.count_dropped_span();
            return None;
        }
        Some(state.spans.push(span))
    }

    /// Whether a span that ends now goes only to the journal: the run holds (or once held)
    /// [`crate::journal::JournalConfig::in_memory_spans`] already.
    #[inline]
    fn spills(&self, state: &mut RunState) -> bool {
        if state.spill_from.is_some() {
            return true;
        }
        let full = self
            .config
            .journal
            .as_ref()
            .is_some_and(|j| state.spans.live() >= j.shared.config.in_memory_spans);
        if full {
            state.spill_from = Some(state.spans.len());
        }
        full
    }

    /// Hands an ended span to the journal, if any. Returns it when the run keeps it in
    /// memory too: always, unless the run [spills](Self::spills) and the journal took it.
    pub(crate) fn journal_span(
        &self,
        state: &mut RunState,
        span: LtfSpan,
        iteration: bool,
    ) -> Option<LtfSpan> {
        use crate::journal::writer::Entry;
        let Some(journal) = self.config.journal.as_ref() else {
            return Some(span);
        };
        let trace_id = self.trace_id;
        if !self.spills(state) {
            let _ = journal.push(Entry::Span {
                trace_id,
                span: Box::new(span.clone()),
                iteration,
            });
            return Some(span);
        }
        match journal.push(Entry::Span {
            trace_id,
            span: Box::new(span),
            iteration,
        }) {
            Ok(()) => {
                state.journal_only += 1;
                None
            }
            Err(Entry::Span { span, .. }) => Some(*span),
            Err(_) => None,
        }
    }

    /// [`RunShared::journal_span`] for an iteration in compact form.
    pub(crate) fn journal_iteration(
        &self,
        state: &mut RunState,
        data: Arc<IterationData>,
    ) -> Option<Arc<IterationData>> {
        use crate::journal::writer::Entry;
        let Some(journal) = self.config.journal.as_ref() else {
            return Some(data);
        };
        let trace_id = self.trace_id;
        if !self.spills(state) {
            let _ = journal.push(Entry::Iteration {
                trace_id,
                data: data.clone(),
            });
            return Some(data);
        }
        match journal.push(Entry::Iteration { trace_id, data }) {
            Ok(()) => {
                state.journal_only += 1;
                None
            }
            Err(Entry::Iteration { data, .. }) => Some(data),
            Err(_) => None,
        }
    }

    /// Keeps an ended child span, unless the run finished or is at its span cap (counted,
    /// not kept), and journals it. Its attributes move into the store's attribute chunks
    /// ([`SpanStore::push_ended`]: a quarter of the memory per span); the emptied vector
    /// comes back, for the next span to reuse.
    pub(crate) fn keep_ended(&self, state: &mut RunState, span: LtfSpan) -> Option<Attributes> {
        if state.finished {
            self.config.count_late_record();
            return None;
        }
        let span = self.journal_span(state, span, false)?;
        if state.spans.live() >= self.config.max_spans_per_run {
            state.dropped_spans += 1;
            self.config.count_dropped_span();
            return None;
        }
        state.spans.push_ended(span)
    }

    /// Writes a finished span into its reserved slot.
    #[inline]
    pub(crate) fn fill(&self, state: &mut RunState, slot: usize, span: SpanSlot) {
        if state.finished {
            self.config.count_late_record();
            return;
        }
        if let Some(place) = state.spans.get_mut(slot) {
            *place = span;
        }
    }

    pub(crate) fn add_usage(&self, tokens: u64, cost: Option<f64>) {
        let mut state = self.lock();
        state.tokens_total = state.tokens_total.saturating_add(tokens);
        if let Some(c) = cost {
            *state.cost_total.get_or_insert(0.0) += c;
        }
    }

    /// Ends the run and builds its document from the spans in memory; also returns how many
    /// went only to the journal.
    fn finish(&self, outcome: Outcome, reason: &str) -> (LtfDocument, Option<Spilled>) {
        // Termination reasons often carry an error's text: the built-in patterns apply.
        let reason = crate::redact::scrub_secrets_cow(reason);
        let reason: &str = &reason;
        let ended_at = Timestamp::now().max(self.started_at);
        let mut state = self.lock();
        let iterations = state.iterations;
        let journal_only = std::mem::take(&mut state.journal_only);
        let spilled = state.spill_from.take().map(|at| Spilled {
            journal_only,
            before: state.spans.live_below(at),
        });
        let (spans, metadata) = if state.finished {
            // Already finished: a handle raced to finish twice. Report the facts again with
            // an empty span list replaced by the root alone.
            (SpanStore::default(), serde_json::Map::new())
        } else {
            state.finished = true;
            if self.enabled() {
                LIVE_RUNS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                self.close_root(&mut state, outcome, reason, ended_at);
            }
            (
                std::mem::take(&mut state.spans),
                std::mem::take(&mut state.metadata),
            )
        };
        drop(state);
        // Build the LTF view of every span outside the lock.
        // Document order: the root, then iterations in the order they started, each child
        // span when it ended (so always after its iteration, which took its place at start).
        let spans: Vec<LtfSpan> = if spans.is_empty() {
            vec![self.minimal_root(outcome, reason, ended_at)]
        } else {
            spans
                .into_iter()
                .filter_map(|s| s.into_span(self))
                .collect()
        };
        if let Some(m) = &self.config.metrics
            && self.enabled()
        {
            m.run_finished(
                &self.loop_name,
                self.env_id.as_ref(),
                outcome,
                reason,
                iterations,
                crate::otel::metrics::seconds(self.started_at, ended_at),
            );
        }
        if let (Some(otel), Some(root)) = (&self.otel, spans.first()) {
            otel.set_attributes(crate::otel::root_document_attributes(&metadata));
            otel.end(root);
        }
        let doc = LtfDocument {
            schema_version: SharedStr::Static(SCHEMA_VERSION),
            trace_id: self.trace_id,
            loop_name: self.loop_name.clone(),
            env_id: self.env_id.clone(),
            task_id: self.task_id.clone(),
            started_at: self.started_at,
            ended_at,
            outcome: Some(outcome),
            termination_reason: Some(reason.to_owned()),
            spec_pins: SpecPins::default(),
            spans,
            metadata: Some(metadata),
        };
        (doc, spilled.filter(|s| s.journal_only > 0))
    }

    fn close_root(
        &self,
        state: &mut RunState,
        outcome: Outcome,
        reason: &str,
        ended_at: Timestamp,
    ) {
        let tokens_total = state.tokens_total;
        let iterations = state.iterations;
        let cost_total = state.cost_total;
        let dropped = state.dropped_spans;
        let les = (!state.les.is_empty()).then(|| state.les.cumulative());
        let extra = std::mem::take(&mut state.root_extra);
        // Spans still open (a handle alive in another task) are closed at the run's end.
        for span in state.spans.iter_mut().skip(1) {
            span.close_at(ended_at);
        }
        let Some(SpanSlot::Span(root)) = state.spans.get_mut(0) else {
            return;
        };
        root.end_time = Some(ended_at);
        let a = &mut root.attributes;
        a.set(sc::LOOP_OUTCOME, outcome.as_str());
        a.set(sc::LOOP_TERMINATION_REASON, reason.to_owned());
        a.set(sc::LOOP_TOKENS_TOTAL, tokens_total);
        a.set(sc::LOOP_ITERATIONS, iterations);
        if let Some(cost) = cost_total {
            a.set(sc::LOOP_COST_TOTAL_USD, cost);
        }
        if let Some(les) = les {
            a.set(sc::LOOP_LES_CUMULATIVE, les);
        }
        if dropped > 0 {
            a.set(sc::LOOP_TELEMETRY_DROPPED_SPANS, dropped);
        }
        for (k, v) in extra.iter() {
            a.set(k.to_owned(), v.clone());
        }
        self.config.limits.apply(root);
    }

    /// The root span alone: what a disabled run (or a second finish) reports.
    fn minimal_root(&self, outcome: Outcome, reason: &str, ended_at: Timestamp) -> LtfSpan {
        let mut attributes = Attributes::with_capacity(8);
        attributes.push_new(sc::LOOP_NAME, self.loop_name.clone());
        if let Some(env) = &self.env_id {
            attributes.push_new(sc::LOOP_ENV_ID, env.clone());
        }
        if let Some(task) = &self.task_id {
            attributes.push_new(sc::LOOP_TASK_ID, task.clone());
        }
        attributes.push_new(sc::LOOP_GOAL_TARGET, self.goal_target);
        for (k, v) in &self.config.run_attributes {
            attributes.set(k.clone(), v.clone());
        }
        attributes.push_new(sc::LOOP_LSS_VERSION, sc::LSS_VERSION);
        attributes.push_new(sc::LOOP_LES_VERSION, sc::LES_VERSION);
        attributes.push_new(sc::LOOP_OUTCOME, outcome.as_str());
        attributes.push_new(sc::LOOP_TERMINATION_REASON, reason.to_owned());
        LtfSpan {
            span_id: self.root_span_id,
            parent_span_id: None,
            name: SharedStr::Static(sc::SPAN_RUN),
            kind: SpanKind::Loop,
            start_time: self.started_at,
            end_time: Some(ended_at),
            attributes,
            events: Vec::new(),
        }
    }
}

/// A shared reference to a running loop: clone it into tasks, find it through
/// [`crate::context::current_run`]. Recording methods are no-ops once the run finished
/// (counted in [`super::TracerStats::late_records`]).
#[derive(Clone)]
pub struct RunHandle {
    pub(crate) shared: Arc<RunShared>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("trace_id", &self.shared.trace_id)
            .field("loop_name", &self.shared.loop_name)
            .finish()
    }
}

impl RunHandle {
    /// The run's trace id.
    pub fn trace_id(&self) -> TraceId {
        self.shared.trace_id
    }

    /// The root span's id.
    pub fn root_span_id(&self) -> SpanId {
        self.shared.root_span_id
    }

    /// The loop's name.
    pub fn loop_name(&self) -> &str {
        &self.shared.loop_name
    }

    /// Counts a panic that instrumentation caught while recording into this run
    /// ([`crate::TracerStats::instrumentation_panics`]; reported once on stderr).
    pub fn count_instrumentation_panic(&self) {
        self.shared.config.count_instrumentation_panic();
    }

    /// Whether this run records anything.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled()
    }

    /// The run's goal target.
    pub fn goal_target(&self) -> f64 {
        self.shared.goal_target
    }

    /// Starts iteration number `n` (an `loop.iteration` span with a real duration).
    pub fn iteration(&self, n: u64) -> Iteration {
        Iteration::start(&self.shared, n)
    }

    /// Starts the iteration after the last one started (1 for the first).
    pub fn next_iteration(&self) -> Iteration {
        if !self.shared.enabled() {
            return Iteration::disabled();
        }
        let n = self.shared.lock().last_iteration + 1;
        Iteration::start(&self.shared, n)
    }

    /// Records a whole iteration in one call, as the reference's `emit_iteration` does.
    ///
    /// The span ends now and starts `latency_ms` earlier (an instant when no latency is
    /// given). Returns `false` when nothing was recorded (disabled, finished or full run).
    pub fn emit_iteration(&self, record: IterationRecord) -> bool {
        if !self.shared.enabled() {
            return false;
        }
        let (data, otel) = IterationData::from_record(&self.shared, record);
        data.record(&self.shared, None, None, otel.as_ref())
    }

    /// Starts a child span of the root (for work outside any iteration).
    pub fn span(&self, name: impl Into<SharedStr>, kind: impl Into<SpanKindPair>) -> SpanGuard {
        SpanGuard::start(
            SpanOwner::Run(self.shared.clone()),
            self.shared.root_span_id,
            self.shared.otel.as_ref().map(|o| &o.cx),
            name.into(),
            kind.into(),
            |_| {},
        )
    }

    /// Sets an attribute on the root span (written when the run finishes).
    pub fn set_attribute(&self, key: impl Into<Key>, value: impl Into<AttrValue>) {
        if self.shared.enabled() {
            self.shared.lock().root_extra.set(key, value);
        }
    }

    /// Adds a document `metadata` entry (secrets scrubbed, as [`RunBuilder::metadata`]).
    pub fn set_metadata(&self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        if self.shared.enabled() {
            let (key, value) = scrubbed_metadata(key.into(), value.into());
            self.shared.lock().metadata.insert(key, value);
        }
    }

    /// Records how the run is going to end, for helpers that finish it for you
    /// ([`RunBuilder::scope`], or the owner's drop).
    pub fn set_outcome(&self, outcome: Outcome, reason: impl Into<String>) {
        self.shared.lock().outcome_hint = Some((outcome, reason.into()));
    }

    /// The current OpenTelemetry context with this run as the current loop scope (and, with
    /// a provider, the root's OpenTelemetry span as the active span).
    pub fn context(&self) -> opentelemetry::Context {
        let base = match &self.shared.otel {
            Some(o) => o.cx.clone(),
            None => opentelemetry::Context::current(),
        };
        LoopScope::for_run(self.shared.clone()).attach_to(&base)
    }

    /// Makes this run current on this thread until the guard drops. Do not hold the guard
    /// across `.await`; use [`RunHandle::context`] with
    /// `opentelemetry::context::FutureExt::with_context` instead.
    pub fn enter(&self) -> opentelemetry::ContextGuard {
        self.context().attach()
    }
}

/// The owner of a run. Finish it with [`Run::finish`]; if it is dropped unfinished, the run
/// ends anyway — `failure` / `panic` while a panic unwinds, otherwise the outcome given to
/// [`RunHandle::set_outcome`] or `unknown` / `dropped` — and the document goes to the sinks.
///
/// Derefs to [`RunHandle`] for everything else.
#[must_use = "a run is finished by .finish(); dropping it ends it as `unknown`"]
pub struct Run {
    handle: RunHandle,
    finished: bool,
}

impl Deref for Run {
    type Target = RunHandle;
    fn deref(&self) -> &RunHandle {
        &self.handle
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.fmt(f)
    }
}

impl Run {
    /// A clonable handle to this run.
    pub fn handle(&self) -> RunHandle {
        self.handle.clone()
    }

    /// Ends the run, exports the document to the tracer's sinks and returns it.
    ///
    /// A run that held more spans than its journal keeps in memory
    /// ([`crate::journal::JournalConfig::in_memory_spans`]) goes to the sinks whole, read back
    /// from the journal; the value returned holds the root and the spans still in memory.
    pub fn finish(mut self, outcome: Outcome, termination_reason: impl AsRef<str>) -> LtfDocument {
        self.finished = true;
        let (doc, spilled) = self
            .handle
            .shared
            .finish(outcome, termination_reason.as_ref());
        self.handle.shared.config.export(&doc, spilled);
        doc
    }

    /// Finishes with the outcome set by [`RunHandle::set_outcome`], or the given default.
    pub fn finish_with_hint(self, outcome: Outcome, termination_reason: &str) -> LtfDocument {
        let hint = self.handle.shared.lock().outcome_hint.take();
        match hint {
            Some((o, r)) => self.finish(o, r),
            None => self.finish(outcome, termination_reason),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let hint = self.handle.shared.lock().outcome_hint.take();
        let (outcome, reason) = if std::thread::panicking() {
            (Outcome::Failure, "panic".to_owned())
        } else {
            hint.unwrap_or((Outcome::Unknown, "dropped".to_owned()))
        };
        let (doc, spilled) = self.handle.shared.finish(outcome, &reason);
        self.handle.shared.config.export(&doc, spilled);
    }
}

fn scrubbed_metadata(key: String, mut value: serde_json::Value) -> (String, serde_json::Value) {
    crate::redact::scrub_json(&mut value);
    let key = match crate::redact::scrub_secrets_cow(&key) {
        std::borrow::Cow::Borrowed(_) => key,
        std::borrow::Cow::Owned(clean) => clean,
    };
    (key, value)
}
