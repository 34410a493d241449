//! [`Iteration`]: an open `loop.iteration` span, a guard with a real duration. What the run
//! keeps of it is in [`super::record`].

use std::sync::{Arc, OnceLock};

use super::LoopScope;
use super::owner::{IterationUsage, SpanOwner};
use super::record::{IterationData, SpanSlot, start_otel};
use super::run::RunShared;
use super::span::SpanGuard;
use crate::attr::{AttrValue, Attributes, Key, SharedStr};
use crate::ids::SpanId;
use crate::model::{LtfEvent, SpanKindPair};
use crate::otel::LiveOtelSpan;
use crate::time::Timestamp;

struct LiveIteration {
    run: Arc<RunShared>,
    otel: Option<LiveOtelSpan>,
    /// Made when the first child span or context asks for it: an iteration without
    /// children keeps its usage in `data` alone.
    usage: OnceLock<Arc<IterationUsage>>,
    slot: Option<usize>,
    data: IterationData,
}

impl LiveIteration {
    /// What the iteration's children roll their usage up into.
    fn usage(&self) -> &Arc<IterationUsage> {
        self.usage
            .get_or_init(|| Arc::new(IterationUsage::new(self.run.clone(), self.data.number)))
    }
}

/// An open `loop.iteration` span. Ends on [`Iteration::end`] or when dropped (a drop during
/// a panic marks it `loop.end_reason = "panic"`), and then computes its LES values.
///
/// Child spans (LLM calls, tool calls, env steps) started from it or from its
/// [`Iteration::context`] roll their tokens and cost up into `loop.tokens_delta` and
/// `loop.cost_usd`.
#[must_use = "an iteration ends when dropped; bind it to a variable"]
pub struct Iteration {
    inner: Option<LiveIteration>,
}

impl std::fmt::Debug for Iteration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(i) => f
                .debug_struct("Iteration")
                .field("number", &i.data.number)
                .field("span_id", &i.data.span_id)
                .finish(),
            None => f.write_str("Iteration(disabled)"),
        }
    }
}

impl Iteration {
    pub(crate) fn disabled() -> Self {
        Self { inner: None }
    }

    pub(crate) fn start(run: &Arc<RunShared>, number: u64) -> Self {
        if !run.enabled() {
            return Self::disabled();
        }
        let start = Timestamp::now();
        let (otel, span_id) = start_otel(run, start);
        let data = IterationData::new(run, number, span_id, start);
        // Reserve the place now so the document lists spans in start order; until the
        // iteration ends, the slot holds it without an end time.
        let slot = {
            let mut state = run.lock();
            state.last_iteration = state.last_iteration.max(number);
            let place = SpanSlot::OpenIteration {
                number,
                span_id,
                start,
                goal_target: data.goal_target,
            };
            run.reserve(&mut state, place)
        };
        if slot.is_some() {
            run.config.journal(|| {
                crate::journal::writer::Entry::Start(Box::new(crate::journal::writer::Started {
                    trace_id: run.trace_id,
                    span_id,
                    parent: Some(run.root_span_id),
                    name: crate::SharedStr::Static(crate::semconv::SPAN_ITERATION),
                    kind: crate::SpanKind::Iteration,
                    start,
                    iteration: Some(number),
                }))
            });
        }
        if slot.is_none() {
            if let Some(o) = otel {
                o.end(&data.into_span(run));
            }
            return Self::disabled();
        }
        Self {
            inner: Some(LiveIteration {
                run: run.clone(),
                otel,
                usage: OnceLock::new(),
                slot,
                data,
            }),
        }
    }

    /// The iteration number (0 when not recording).
    pub fn number(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.data.number)
    }

    /// The span id (`None` when not recording).
    pub fn span_id(&self) -> Option<SpanId> {
        self.inner.as_ref().map(|i| i.data.span_id)
    }

    /// Records `loop.worker.complete` now and sets `loop.worker.id`.
    pub fn worker_complete(&mut self, worker_id: impl Into<SharedStr>) {
        if let Some(i) = &mut self.inner {
            i.data.worker_complete(worker_id.into(), Timestamp::now());
        }
    }

    /// Records `loop.evaluator.complete` now with the goal score, and sets
    /// `loop.evaluator.id` and `loop.goal_score`.
    pub fn evaluator_complete(&mut self, evaluator_id: impl Into<SharedStr>, goal_score: f64) {
        if let Some(i) = &mut self.inner {
            i.data
                .evaluator_complete(evaluator_id.into(), goal_score, Timestamp::now());
        }
    }

    /// Sets the goal score without an evaluator event.
    pub fn set_goal_score(&mut self, goal_score: f64) {
        if let Some(i) = &mut self.inner {
            i.data.goal_score = Some(goal_score);
        }
    }

    /// Overrides the goal target for this iteration.
    pub fn set_goal_target(&mut self, goal_target: f64) {
        if let Some(i) = &mut self.inner {
            i.data.goal_target = goal_target;
        }
    }

    /// Adds tokens to `loop.tokens_delta`.
    pub fn add_tokens(&mut self, tokens: u64) {
        if let Some(i) = &mut self.inner {
            i.data.tokens = i.data.tokens.saturating_add(tokens);
        }
    }

    /// Adds a cost in US dollars to `loop.cost_usd`.
    pub fn add_cost_usd(&mut self, usd: f64) {
        if let Some(i) = &mut self.inner {
            *i.data.cost.get_or_insert(0.0) += usd;
        }
    }

    /// Sets `loop.latency_ms` (default: the span's own duration, rounded to 0.01 ms).
    pub fn set_latency_ms(&mut self, ms: f64) {
        if let Some(i) = &mut self.inner {
            i.data.latency_ms = Some(ms);
        }
    }

    /// Sets any other attribute on the iteration span.
    pub fn set_attribute(&mut self, key: impl Into<Key>, value: impl Into<AttrValue>) {
        if let Some(i) = &mut self.inner {
            i.data.extras().attributes.set(key, value);
        }
    }

    /// Adds an event now.
    pub fn add_event(&mut self, name: impl Into<SharedStr>, attributes: Attributes) {
        if let Some(i) = &mut self.inner {
            i.data.extras().events.push(LtfEvent {
                name: name.into(),
                timestamp: Timestamp::now(),
                attributes,
            });
        }
    }

    /// Starts a child span (an LLM call, tool call or env step: `SpanKind::Worker`; an
    /// evaluation: `SpanKind::Evaluator`).
    pub fn span(&self, name: impl Into<SharedStr>, kind: impl Into<SpanKindPair>) -> SpanGuard {
        match &self.inner {
            Some(i) => SpanGuard::start(
                SpanOwner::Iteration(i.usage().clone()),
                i.data.span_id,
                i.otel.as_ref().map(|o| &o.cx),
                name.into(),
                kind.into(),
                |_| {},
            ),
            None => SpanGuard::noop(),
        }
    }

    /// The current OpenTelemetry context with this iteration as the loop scope: spans
    /// started through [`crate::context`] under it become its children.
    pub fn context(&self) -> opentelemetry::Context {
        match &self.inner {
            Some(i) => {
                let otel = i.otel.as_ref().map(|o| o.cx.clone());
                let base = otel.clone().unwrap_or_else(opentelemetry::Context::current);
                LoopScope::new(
                    SpanOwner::Iteration(i.usage().clone()),
                    i.data.span_id,
                    otel,
                )
                .attach_to(&base)
            }
            None => opentelemetry::Context::current(),
        }
    }

    /// Makes this iteration current on this thread until the guard drops (not across
    /// `.await`; use [`Iteration::context`] with `FutureExt::with_context`).
    pub fn enter(&self) -> opentelemetry::ContextGuard {
        self.context().attach()
    }

    /// Ends the iteration now.
    pub fn end(mut self) {
        self.finish(None);
    }

    fn finish(&mut self, end_reason: Option<&'static str>) {
        if let Some(mut i) = self.inner.take() {
            if let Some(usage) = i.usage.get() {
                i.data.tokens = i.data.tokens.saturating_add(usage.tokens());
                if let Some(c) = usage.cost() {
                    *i.data.cost.get_or_insert(0.0) += c;
                }
            }
            i.data.record(&i.run, i.slot, end_reason, i.otel.as_ref());
        }
    }
}

impl Drop for Iteration {
    fn drop(&mut self) {
        let reason = std::thread::panicking().then_some("panic");
        self.finish(reason);
    }
}
