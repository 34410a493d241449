//! What a run records of its iterations: [`IterationRecord`] (a whole iteration in one
//! value, the reference's `emit_iteration`), [`IterationData`] (an iteration as plain
//! fields, turned into an LTF span only when the document is built) and [`SpanSlot`] (one
//! entry of the run's span list).

use std::sync::Arc;
use std::time::Duration;

use super::run::RunShared;
use crate::attr::{AttrValue, Attributes, SharedStr};
use crate::ids::SpanId;
use crate::les::{RawLesPoint, round4};
use crate::model::{LtfEvent, LtfSpan, SpanKind};
use crate::otel::LiveOtelSpan;
use crate::semconv as sc;
use crate::time::Timestamp;

/// A whole iteration described in one value, for [`super::RunHandle::emit_iteration`] and
/// [`crate::emit_iteration`]. Field for field the reference's `emit_iteration` arguments.
///
/// ```
/// use loopotel::IterationRecord;
///
/// let rec = IterationRecord::new(3, 0.72)
///     .tokens(410)
///     .latency_ms(812.5)
///     .worker("implementer")
///     .evaluator("test_runner");
/// assert_eq!(rec.iteration, 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IterationRecord {
    /// Iteration number.
    pub iteration: u64,
    /// Goal score the evaluator gave.
    pub goal_score: f64,
    /// Goal target (the run's when `None`).
    pub goal_target: Option<f64>,
    /// Tokens used in the iteration.
    pub tokens_delta: u64,
    /// Cost in US dollars.
    pub cost_usd: Option<f64>,
    /// Latency in milliseconds.
    pub latency_ms: Option<f64>,
    /// The worker's id.
    pub worker_id: Option<SharedStr>,
    /// The evaluator's id.
    pub evaluator_id: Option<SharedStr>,
}

impl IterationRecord {
    /// Iteration `iteration` scored `goal_score`.
    pub fn new(iteration: u64, goal_score: f64) -> Self {
        Self {
            iteration,
            goal_score,
            ..Self::default()
        }
    }

    /// Sets the goal target.
    pub fn goal_target(mut self, target: f64) -> Self {
        self.goal_target = Some(target);
        self
    }

    /// Sets the tokens used.
    pub fn tokens(mut self, tokens: u64) -> Self {
        self.tokens_delta = tokens;
        self
    }

    /// Sets the cost in US dollars.
    pub fn cost_usd(mut self, cost: f64) -> Self {
        self.cost_usd = Some(cost);
        self
    }

    /// Sets the latency in milliseconds.
    pub fn latency_ms(mut self, ms: f64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// Sets the worker id.
    pub fn worker(mut self, id: impl Into<SharedStr>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Sets the evaluator id.
    pub fn evaluator(mut self, id: impl Into<SharedStr>) -> Self {
        self.evaluator_id = Some(id.into());
        self
    }
}

/// A recorded iteration in compact form: plain fields, no allocation in the common case.
/// It becomes an [`LtfSpan`] (attributes and events) only when the document is built, so
/// the hot path stays cheap and the document is assembled in one pass at the run's end.
#[derive(Clone, Debug)]
pub(crate) struct IterationData {
    pub(super) number: u64,
    pub(super) span_id: SpanId,
    pub(super) start: Timestamp,
    pub(super) end: Option<Timestamp>,
    pub(super) goal_score: Option<f64>,
    pub(super) goal_target: f64,
    pub(super) tokens: u64,
    pub(super) cost: Option<f64>,
    pub(super) latency_ms: Option<f64>,
    /// Write the span's own duration as `loop.latency_ms` when none was given (guards do;
    /// one-shot records, which have no duration of their own, do not — as the reference).
    pub(super) measure_latency: bool,
    /// The worker id, and when `loop.worker.complete` happened (no event for an empty id).
    pub(super) worker: Option<(SharedStr, Option<Timestamp>)>,
    /// The evaluator id, and when `loop.evaluator.complete` happened with which score.
    pub(super) evaluator: Option<(SharedStr, Option<(Timestamp, f64)>)>,
    pub(super) les: Option<RawLesPoint>,
    pub(super) end_reason: Option<&'static str>,
    /// User attributes and events: rare, so boxed to keep the record small to move.
    pub(super) extras: Option<Box<IterationExtras>>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct IterationExtras {
    pub(super) attributes: Attributes,
    pub(super) events: Vec<LtfEvent>,
}

fn event(name: &'static str, timestamp: Timestamp, attributes: Attributes) -> LtfEvent {
    LtfEvent {
        name: SharedStr::Static(name),
        timestamp,
        attributes,
    }
}

fn one_attr(key: &'static str, value: impl Into<AttrValue>) -> Attributes {
    let mut a = Attributes::with_capacity(1);
    a.push_new(key, value);
    a
}

fn worker_event(id: &SharedStr, at: Timestamp) -> LtfEvent {
    event(
        sc::EVENT_WORKER_COMPLETE,
        at,
        one_attr(sc::LOOP_WORKER_ID, id.clone()),
    )
}

fn evaluator_event(id: &SharedStr, at: Timestamp, score: f64) -> LtfEvent {
    let mut attrs = Attributes::with_capacity(2);
    attrs.push_new(sc::LOOP_EVALUATOR_ID, id.clone());
    attrs.push_new(sc::LOOP_GOAL_SCORE, score);
    event(sc::EVENT_EVALUATOR_COMPLETE, at, attrs)
}

impl IterationData {
    pub(super) fn new(run: &RunShared, number: u64, span_id: SpanId, start: Timestamp) -> Self {
        Self::open(number, span_id, start, run.goal_target)
    }

    /// An iteration started at `start`, nothing recorded on it yet.
    fn open(number: u64, span_id: SpanId, start: Timestamp, goal_target: f64) -> Self {
        Self {
            number,
            span_id,
            start,
            end: None,
            goal_score: None,
            goal_target,
            tokens: 0,
            cost: None,
            latency_ms: None,
            measure_latency: true,
            worker: None,
            evaluator: None,
            les: None,
            end_reason: None,
            extras: None,
        }
    }

    pub(crate) fn from_record(
        run: &RunShared,
        rec: IterationRecord,
    ) -> (Self, Option<LiveOtelSpan>) {
        let now = Timestamp::now();
        let start = match rec.latency_ms {
            Some(ms) if ms.is_finite() && ms > 0.0 => {
                now.saturating_sub(Duration::from_secs_f64((ms / 1000.0).min(1e9)))
            }
            _ => now,
        };
        let (otel, span_id) = start_otel(run, start);
        let mut data = Self::new(run, rec.iteration, span_id, start);
        data.goal_target = rec.goal_target.unwrap_or(run.goal_target);
        data.tokens = rec.tokens_delta;
        data.cost = rec.cost_usd;
        data.latency_ms = rec.latency_ms;
        data.measure_latency = false;
        data.end = Some(now); // a one-shot record ends when it is made: one clock read
        // As the reference: an empty id is written as an attribute but gets no event.
        data.worker = rec.worker_id.map(|w| {
            let at = (!w.is_empty()).then_some(now);
            (w, at)
        });
        data.evaluator = rec.evaluator_id.map(|e| {
            let at = (!e.is_empty()).then_some((now, rec.goal_score));
            (e, at)
        });
        data.goal_score = Some(rec.goal_score);
        (data, otel)
    }

    pub(super) fn extras(&mut self) -> &mut IterationExtras {
        self.extras.get_or_insert_with(Box::default)
    }

    pub(super) fn worker_complete(&mut self, id: SharedStr, at: Timestamp) {
        // A second worker in the same iteration: keep the earlier one's event.
        if let Some((prev, Some(prev_at))) = self.worker.take() {
            self.extras().events.push(worker_event(&prev, prev_at));
        }
        self.worker = Some((id, Some(at)));
    }

    pub(super) fn evaluator_complete(&mut self, id: SharedStr, score: f64, at: Timestamp) {
        if let Some((prev, Some((prev_at, prev_score)))) = self.evaluator.take() {
            self.extras()
                .events
                .push(evaluator_event(&prev, prev_at, prev_score));
        }
        self.evaluator = Some((id, Some((at, score))));
        self.goal_score = Some(score);
    }

    /// Ends the iteration: computes its LES point and the run's totals under the run's lock
    /// and stores the compact record (into `slot` if one was reserved at start). Returns
    /// whether it was recorded.
    pub(crate) fn record(
        mut self,
        run: &RunShared,
        slot: Option<usize>,
        end_reason: Option<&'static str>,
        otel: Option<&LiveOtelSpan>,
    ) -> bool {
        let start = self.start;
        // Never before the start (a clock stepped back, or the iteration ended on another thread).
        let end = *self.end.get_or_insert_with(|| Timestamp::now().max(start));
        self.end_reason = end_reason;
        if self.latency_ms.is_none() && self.measure_latency {
            self.latency_ms = Some(round2(
                end.saturating_since(self.start).as_secs_f64() * 1000.0,
            ));
        }
        let mut state = run.lock();
        let late = state.finished;
        if late {
            run.config.count_late_record();
        } else {
            self.les = self
                .goal_score
                .map(|score| state.les.push_raw(score, self.goal_target));
            state.tokens_total = state.tokens_total.saturating_add(self.tokens);
            if let Some(c) = self.cost {
                *state.cost_total.get_or_insert(0.0) += c;
            }
            state.iterations += 1;
            state.last_iteration = state.last_iteration.max(self.number);
        }
        // Metric values, recorded once the run's lock is released.
        let metrics = (!late).then_some((self.goal_score, self.les, self.tokens, self.cost));
        // What the run keeps in memory: `None` once the journal took an iteration of a run
        // that spills.
        let record = match otel {
            None => {
                // One allocation, shared by the run and the journal (which only reads it).
                let data = Arc::new(self);
                if late {
                    None
                } else {
                    run.journal_iteration(&mut state, data)
                        .map(SpanSlot::Iteration)
                }
            }
            Some(otel) => {
                // The OpenTelemetry span ends now, so its attributes are built now (outside
                // the lock), and the LTF view reuses them.
                drop(state);
                let span = self.into_span(run);
                otel.end(&span);
                state = run.lock();
                if late {
                    None
                } else {
                    run.journal_span(&mut state, span, true).map(SpanSlot::Span)
                }
            }
        };
        if late {
            return false;
        }
        let recorded = match (slot, record) {
            (Some(slot), Some(record)) => {
                run.fill(&mut state, slot, record);
                true
            }
            (Some(slot), None) => {
                state.spans.release(slot);
                true
            }
            (None, Some(record)) => run.reserve(&mut state, record).is_some(),
            (None, None) => true,
        };
        drop(state);
        if let (Some(m), Some((goal, les, tokens, cost))) = (&run.config.metrics, metrics) {
            let les = les.map(|p| p.cumulative());
            m.iteration_ended(&run.loop_name, goal, les, tokens, cost);
        }
        recorded
    }

    /// Marks an iteration still open when its run finishes.
    pub(crate) fn close_at(&mut self, at: Timestamp) {
        if self.end.is_none() {
            self.end = Some(at.max(self.start));
            self.end_reason = Some("run_finished");
        }
    }

    /// The LTF span: the reference's attribute keys in the reference's order, then ours.
    pub(crate) fn into_span(self, run: &RunShared) -> LtfSpan {
        let IterationExtras {
            attributes: extra_attributes,
            events: extra_events,
        } = self.extras.map(|b| *b).unwrap_or_default();
        let mut a = Attributes::with_capacity(17 + extra_attributes.len());
        a.push_new(sc::LOOP_NAME, run.loop_name.clone());
        if let Some(env) = &run.env_id {
            a.push_new(sc::LOOP_ENV_ID, env.clone());
        }
        if let Some(task) = &run.task_id {
            a.push_new(sc::LOOP_TASK_ID, task.clone());
        }
        a.push_new(sc::LOOP_ITERATION, self.number);
        if let Some(score) = self.goal_score {
            a.push_new(sc::LOOP_GOAL_SCORE, round4(score));
        }
        a.push_new(sc::LOOP_GOAL_TARGET, self.goal_target);
        a.push_new(sc::LOOP_TOKENS_DELTA, self.tokens);
        if let Some(c) = self.cost {
            a.push_new(sc::LOOP_COST_USD, c);
        }
        if let Some(ms) = self.latency_ms {
            a.push_new(sc::LOOP_LATENCY_MS, ms);
        }
        if let Some(p) = self.les.map(|p| p.rounded()) {
            a.push_new(sc::LOOP_LES_CUMULATIVE, p.cumulative);
            a.push_new(sc::LOOP_LES_EFFECTIVENESS, p.effectiveness);
            a.push_new(sc::LOOP_LES_DELTA, p.delta);
        }
        if let Some((w, _)) = &self.worker {
            a.push_new(sc::LOOP_WORKER_ID, w.clone());
        }
        if let Some((e, _)) = &self.evaluator {
            a.push_new(sc::LOOP_EVALUATOR_ID, e.clone());
        }
        a.push_new(sc::LOOP_LSS_VERSION, sc::LSS_VERSION);
        a.push_new(sc::LOOP_LES_VERSION, sc::LES_VERSION);
        for (k, v) in extra_attributes.iter() {
            a.set(k.to_owned(), v.clone());
        }
        if let Some(reason) = self.end_reason {
            a.set(sc::LOOP_END_REASON, reason);
        }

        let mut events = Vec::with_capacity(4 + extra_events.len());
        events.push(event(
            sc::EVENT_ITERATION_START,
            self.start,
            one_attr(sc::LOOP_ITERATION, self.number),
        ));
        let middle = events.len();
        if let Some((w, Some(at))) = &self.worker {
            events.push(worker_event(w, *at));
        }
        if let Some((e, Some((at, score)))) = &self.evaluator {
            events.push(evaluator_event(e, *at, *score));
        }
        events.extend(extra_events);
        if !events[middle..].is_sorted_by_key(|e| e.timestamp) {
            events[middle..].sort_by_key(|e| e.timestamp);
        }
        if let Some(end) = self.end {
            let mut end_attrs = Attributes::with_capacity(2);
            end_attrs.push_new(sc::LOOP_ITERATION, self.number);
            if let Some(score) = self.goal_score {
                end_attrs.push_new(sc::LOOP_GOAL_SCORE, score);
            }
            events.push(event(sc::EVENT_ITERATION_END, end, end_attrs));
        }
        let mut span = LtfSpan {
            span_id: self.span_id,
            parent_span_id: Some(run.root_span_id),
            name: SharedStr::Static(sc::SPAN_ITERATION),
            kind: SpanKind::Iteration,
            start_time: self.start,
            end_time: self.end,
            attributes: a,
            events,
        };
        run.config.limits.apply(&mut span);
        span
    }
}

/// One entry of a run's span list: a full span, or an iteration in compact form.
#[derive(Clone, Debug)]
pub(crate) enum SpanSlot {
    Span(LtfSpan),
    // Behind a pointer: a run holds one iteration per many spans, and every slot is the
    // size of the largest variant. Shared with the journal's queue until it is written.
    Iteration(Arc<IterationData>),
    /// An open iteration's place, reserved when it started (so the document lists spans in
    /// start order): what a run that finishes before the iteration ends writes of it.
    OpenIteration {
        number: u64,
        span_id: SpanId,
        start: Timestamp,
        goal_target: f64,
    },
    /// An ended span whose `attributes` attributes wait in the store's attribute chunks
    /// ([`super::store::SpanStore::push_ended`]); only ever inside the store.
    Ended {
        span: LtfSpan,
        attributes: u32,
    },
    /// An iteration's place whose span, once it ended, went only to the journal
    /// ([`super::store::SpanStore::release`]); only ever inside the store.
    Released,
}

impl SpanSlot {
    pub(crate) fn close_at(&mut self, at: Timestamp) {
        match self {
            SpanSlot::Span(s) => {
                if s.end_time.is_none() {
                    s.end_time = Some(at.max(s.start_time));
                    s.attributes.set(sc::LOOP_END_REASON, "run_finished");
                }
            }
            SpanSlot::Iteration(i) => Arc::make_mut(i).close_at(at),
            &mut SpanSlot::OpenIteration {
                number,
                span_id,
                start,
                goal_target,
            } => {
                let mut data = IterationData::open(number, span_id, start, goal_target);
                data.close_at(at);
                *self = SpanSlot::Iteration(Arc::new(data));
            }
            SpanSlot::Ended { .. } | SpanSlot::Released => {}
        }
    }

    /// The LTF span (`None` for a released place, which the store never hands out).
    pub(crate) fn into_span(self, run: &RunShared) -> Option<LtfSpan> {
        match self {
            SpanSlot::Span(s) => Some(s),
            SpanSlot::Iteration(i) => Some(Arc::unwrap_or_clone(i).into_span(run)),
            SpanSlot::OpenIteration {
                number,
                span_id,
                start,
                goal_target,
            } => Some(IterationData::open(number, span_id, start, goal_target).into_span(run)),
            // The store gives ended spans their attributes back before they get here.
            SpanSlot::Ended { span, .. } => Some(span),
            SpanSlot::Released => None,
        }
    }
}

/// Starts the OpenTelemetry view of an iteration (child of the run's root), if bridged; the
/// iteration takes its span id.
pub(super) fn start_otel(run: &RunShared, start: Timestamp) -> (Option<LiveOtelSpan>, SpanId) {
    match (&run.config.otel, &run.otel) {
        (Some(bridge), Some(root)) => {
            let (live, ids) = bridge.start(
                &root.cx,
                &SharedStr::Static(sc::SPAN_ITERATION),
                opentelemetry::trace::SpanKind::Internal,
                start,
                &Attributes::new(),
            );
            (
                Some(live),
                ids.map_or_else(SpanId::random, |(_, span)| span),
            )
        }
        _ => (None, SpanId::random()),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
