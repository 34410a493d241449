//! Child spans: LLM calls, tool calls, environment steps and evaluations.

use super::LoopScope;
use std::sync::Arc;

use super::owner::{SpanOwner, SpanUsage};
use crate::attr::{AttrValue, Attributes, Key, SharedStr};
use crate::ids::SpanId;
use crate::model::{LtfEvent, LtfSpan, SpanKindPair};
use crate::otel::LeafOtelSpan;
use crate::semconv as sc;
use crate::time::Timestamp;

struct LiveSpan {
    owner: SpanOwner,
    otel: Option<LeafOtelSpan>,
    span: LtfSpan,
    tokens: u64,
    cost: Option<f64>,
    /// How many of the first attributes the OpenTelemetry span got when it started.
    otel_initial: u8,
    /// Which of those changed since (bit `i`: attribute `i`): sent again at the end.
    otel_initial_changed: u64,
    /// Its slot in the run's open spans ([`super::OpenSpans`]), until it ends.
    open: Option<u16>,
    /// What its descendants reported, once [`SpanGuard::usage_context_on`] made a context
    /// for them.
    descendants: Option<Arc<SpanUsage>>,
}

/// Room in a new span's attribute list: instrumented calls carry a handful (one allocation).
const SPAN_ATTRIBUTES: usize = 8;

/// Spare allocations of ended spans, kept per thread for the next spans it starts: a span's
/// box and its attribute vector (emptied into the run's attribute chunks when it ended). A
/// loop that traces call after call then starts each span without allocating. Bounded:
/// a few of each per thread, and vectors that grew large are not kept.
#[allow(
    clippy::vec_box,
    reason = "the boxes are the allocations kept for reuse"
)]
mod spare {
    use std::cell::RefCell;
    use std::mem::MaybeUninit;

    use super::{LiveSpan, SPAN_ATTRIBUTES};
    use crate::attr::Attributes;

    /// Most spare boxes (and vectors) a thread keeps: enough for spans nested this deep.
    const KEEP: usize = 4;

    thread_local! {
        static BOXES: RefCell<Vec<Box<MaybeUninit<LiveSpan>>>> = const { RefCell::new(Vec::new()) };
        static ATTRIBUTES: RefCell<Vec<Attributes>> = const { RefCell::new(Vec::new()) };
    }

    /// A box for a new span: a spare one, or a new allocation.
    pub(super) fn boxed(live: LiveSpan) -> Box<LiveSpan> {
        let spare = BOXES
            .try_with(|b| b.try_borrow_mut().ok().and_then(|mut b| b.pop()))
            .ok()
            .flatten();
        match spare {
            Some(mut place) => {
                place.write(live);
                // SAFETY: just written.
                unsafe { place.assume_init() }
            }
            None => Box::new(live),
        }
    }

    /// Takes the span out of its box, and keeps the box for the next span.
    pub(super) fn unbox(live: Box<LiveSpan>) -> LiveSpan {
        let raw = Box::into_raw(live);
        // SAFETY: `raw` comes from a live `Box<LiveSpan>`; the value is read out exactly once
        // and the allocation is then owned as `MaybeUninit<LiveSpan>`, which has the same
        // layout, so dropping or reusing it never touches the value that was read.
        let (value, place) = unsafe {
            (
                std::ptr::read(raw),
                Box::from_raw(raw.cast::<MaybeUninit<LiveSpan>>()),
            )
        };
        let _ = BOXES.try_with(|b| {
            if let Ok(mut b) = b.try_borrow_mut()
                && b.len() < KEEP
            {
                b.push(place);
            }
        });
        value
    }

    /// An empty attribute list for a new span: a spare vector, or a new one.
    pub(super) fn attributes() -> Attributes {
        ATTRIBUTES
            .try_with(|a| a.try_borrow_mut().ok().and_then(|mut a| a.pop()))
            .ok()
            .flatten()
            .unwrap_or_else(|| Attributes::with_capacity(SPAN_ATTRIBUTES))
    }

    /// Keeps an emptied attribute vector for the next span (unless it grew large).
    pub(super) fn keep_attributes(attributes: Attributes) {
        if attributes.capacity() == 0 || attributes.capacity() > 4 * SPAN_ATTRIBUTES {
            return;
        }
        let _ = ATTRIBUTES.try_with(|a| {
            if let Ok(mut a) = a.try_borrow_mut()
                && a.len() < KEEP
            {
                a.push(attributes);
            }
        });
    }
}

/// The most attributes an OpenTelemetry span gets at its start (one bit each in
/// `LiveSpan::otel_initial_changed`); the rest follow at its end.
const OTEL_INITIAL_MAX: usize = 64;

impl LiveSpan {
    /// Sets an attribute, noting a change to one the OpenTelemetry span got at its start.
    fn set(&mut self, key: impl Into<Key>, value: impl Into<AttrValue>) {
        let i = self.span.attributes.set_at(key, value);
        if i < usize::from(self.otel_initial) {
            self.otel_initial_changed |= 1 << i;
        }
    }
}

/// An open child span of a run or iteration. Ends on [`SpanGuard::end`] or when dropped
/// (during a panic: `error.type = "panic"`, `loop.end_reason = "panic"`). Tokens and cost
/// added here roll up into the enclosing iteration (or the run's totals).
///
/// ```
/// use loopotel::{LoopTracer, Outcome, SpanKind};
///
/// let run = LoopTracer::new().run("tool-loop").start();
/// let it = run.iteration(1);
/// {
///     let mut call = it.span("chat gpt-4o", SpanKind::Worker);
///     call.set_attribute("gen_ai.request.model", "gpt-4o");
///     call.add_tokens(42);
/// }
/// drop(it);
/// let doc = run.finish(Outcome::Success, "done");
/// let iteration = doc.iterations().next().unwrap();
/// assert_eq!(iteration.attributes.get("loop.tokens_delta").unwrap().as_i64(), Some(42));
/// ```
#[must_use = "a span ends when dropped; bind it to a variable"]
pub struct SpanGuard {
    // Boxed: the guard is returned, moved and consumed by value; one allocation is cheaper
    // than copying the open span around.
    inner: Option<Box<LiveSpan>>,
}

impl std::fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(s) => f
                .debug_struct("SpanGuard")
                .field("name", &s.span.name)
                .field("span_id", &s.span.span_id)
                .finish(),
            None => f.write_str("SpanGuard(disabled)"),
        }
    }
}

impl SpanGuard {
    /// A span that records nothing (what a disabled tracer, or code outside any run, gets).
    pub fn noop() -> Self {
        Self { inner: None }
    }

    pub(crate) fn start(
        owner: SpanOwner,
        parent: SpanId,
        parent_otel: Option<&opentelemetry::Context>,
        name: SharedStr,
        kinds: SpanKindPair,
        initial: impl FnOnce(&mut Attributes),
    ) -> Self {
        if !owner.run().enabled() {
            return Self::noop();
        }
        let mut attributes = spare::attributes();
        initial(&mut attributes);
        // Both views get the same clean name (control characters become `_`).
        let name = crate::limits::clean_name(&name).unwrap_or(name);
        let start_time = Timestamp::now();
        // No lock here: a child span joins the run's list when it ends (after its iteration,
        // which took its place when it started). The box comes first and the OpenTelemetry
        // span is written into it: the SDK span is large, and moving it costs.
        let mut live = spare::boxed(LiveSpan {
            owner,
            otel: None,
            span: LtfSpan {
                // Set below, from the OpenTelemetry span when there is one.
                span_id: SpanId::from_bytes([0; 8]),
                parent_span_id: Some(parent),
                name,
                kind: kinds.ltf,
                start_time,
                end_time: None,
                attributes,
                events: Vec::new(),
            },
            tokens: 0,
            cost: None,
            otel_initial: 0,
            otel_initial_changed: 0,
            open: None,
            descendants: None,
        });
        live.span.span_id = match (&live.owner.run().config.otel, parent_otel) {
            (Some(bridge), Some(parent_cx)) => {
                let initial = live.span.attributes.len().min(OTEL_INITIAL_MAX);
                live.otel_initial = initial as u8;
                bridge.start_leaf(&mut live.otel, parent_cx, &live.span, kinds.otel, initial)
            }
            _ => SpanId::random(),
        };
        let run = live.owner.run();
        run.config.journal(|| {
            crate::journal::writer::Entry::Start(Box::new(crate::journal::writer::Started {
                trace_id: run.trace_id,
                span_id: live.span.span_id,
                parent: live.span.parent_span_id,
                name: live.span.name.clone(),
                kind: live.span.kind,
                start: start_time,
                iteration: None,
            }))
        });
        Self { inner: Some(live) }
    }

    /// Whether this span records anything.
    pub fn is_recording(&self) -> bool {
        self.inner.is_some()
    }

    /// When the span started (`None` when not recording).
    pub fn start_time(&self) -> Option<Timestamp> {
        self.inner.as_ref().map(|s| s.span.start_time)
    }

    /// The span id (`None` when not recording).
    pub fn span_id(&self) -> Option<SpanId> {
        self.inner.as_ref().map(|s| s.span.span_id)
    }

    /// Sets an attribute.
    pub fn set_attribute(&mut self, key: impl Into<Key>, value: impl Into<AttrValue>) {
        if let Some(s) = &mut self.inner {
            s.set(key, value);
        }
    }

    /// Adds an event now.
    pub fn add_event(&mut self, name: impl Into<SharedStr>, attributes: Attributes) {
        if let Some(s) = &mut self.inner {
            s.span.events.push(LtfEvent {
                name: name.into(),
                timestamp: Timestamp::now(),
                attributes,
            });
        }
    }

    /// Renames the span in both views (for a name that is only known after the span
    /// started, such as the model a request was routed to).
    pub fn update_name(&mut self, name: impl Into<SharedStr>) {
        if let Some(s) = &mut self.inner {
            let name = name.into();
            let name = crate::limits::clean_name(&name).unwrap_or(name);
            if let Some(otel) = &mut s.otel {
                otel.update_name(&name);
            }
            s.span.name = name;
        }
    }

    /// Adds tokens used by this call; they roll up into the iteration's `loop.tokens_delta`.
    pub fn add_tokens(&mut self, tokens: u64) {
        if let Some(s) = &mut self.inner {
            s.tokens = s.tokens.saturating_add(tokens);
        }
    }

    /// Adds a cost in US dollars; it rolls up into the iteration's `loop.cost_usd`.
    pub fn add_cost_usd(&mut self, usd: f64) {
        if let Some(s) = &mut self.inner {
            *s.cost.get_or_insert(0.0) += usd;
        }
    }

    /// Marks the span failed: sets `error.type` and adds an `exception` event. The message
    /// passes the built-in secret patterns ([`crate::redact`]).
    pub fn record_error(
        &mut self,
        error_type: impl Into<SharedStr>,
        message: impl Into<SharedStr>,
    ) {
        if let Some(s) = &mut self.inner {
            let error_type = error_type.into();
            let message = crate::redact::scrub_text(message.into());
            s.set("error.type", error_type.clone());
            let mut attrs = Attributes::with_capacity(2);
            attrs.set("exception.type", error_type);
            attrs.set("exception.message", message);
            s.span.events.push(LtfEvent {
                name: SharedStr::Static("exception"),
                timestamp: Timestamp::now(),
                attributes: attrs,
            });
        }
    }

    /// The current OpenTelemetry context with this span as the parent of spans started
    /// through [`crate::context::start_span`].
    ///
    /// Takes `&mut self`: with a provider, the OpenTelemetry span moves into a context the
    /// first time one is asked for (leaf spans that never need one skip that cost).
    pub fn context(&mut self) -> opentelemetry::Context {
        match &self.inner {
            Some(_) => self.context_on(&opentelemetry::Context::current()),
            None => opentelemetry::Context::current(),
        }
    }

    /// [`Self::context`] built on `base` instead of the current context (for a caller that
    /// already holds the current context). Once a context was made for the span, later
    /// calls return that one.
    ///
    /// ```
    /// use loopotel::{LoopTracer, Outcome, SpanKind};
    ///
    /// let run = LoopTracer::new().run("context-on").start();
    /// let mut span = run.span("execute_tool search", SpanKind::Worker);
    /// let caller = opentelemetry::Context::current().with_value(7u32);
    /// let cx = span.context_on(&caller);
    /// assert_eq!(cx.get::<u32>(), Some(&7)); // the caller's values stay in it
    /// drop(span);
    /// run.finish(Outcome::Success, "done");
    /// ```
    pub fn context_on(&mut self, base: &opentelemetry::Context) -> opentelemetry::Context {
        use opentelemetry::trace::TraceContextExt as _;
        let Some(s) = &mut self.inner else {
            return base.clone();
        };
        let otel = match &mut s.otel {
            Some(otel) => {
                let cx = otel.context(base);
                // The OpenTelemetry span is the context's active span. Where `base` already
                // holds this span's scope (its run or iteration), the active span's id says
                // which span new children go under: the span joins the run's open spans, and
                // the context needs no scope of its own (no copy of the context's value map).
                let run = s.owner.run();
                if !run.config.scope_in_every_context {
                    let active = cx.span();
                    let active = active.span_context();
                    let identified = active.span_id().to_bytes() == s.span.span_id.to_bytes()
                        && active.trace_id().to_bytes() == run.trace_id.to_bytes();
                    let in_scope = identified
                        && cx
                            .get::<LoopScope>()
                            .is_some_and(|scope| scope.owner.same(&s.owner));
                    if in_scope && s.open.is_none() {
                        s.open = run.open_spans.insert(s.span.span_id);
                    }
                    if in_scope && s.open.is_some() {
                        return cx;
                    }
                }
                Some(cx)
            }
            None => None,
        };
        let base = otel.as_ref().unwrap_or(base);
        LoopScope::new(s.owner.clone(), s.span.span_id, otel.clone()).attach_to(base)
    }

    /// [`Self::context_on`] for the work inside a span whose own usage is the sum of that
    /// work's (an agent invocation that reports the tokens of the calls it made): spans
    /// started in the returned context roll their tokens and cost up through this span,
    /// and [`Self::descendants_reported_usage`] then says whether any did, so that the
    /// span adds its own usage only when nothing inside it counted it already. Each token
    /// is counted once.
    ///
    /// ```
    /// use loopotel::{LoopTracer, Outcome, SpanKind};
    ///
    /// let run = LoopTracer::new().run("agent").start();
    /// let it = run.iteration(1);
    /// let mut agent = it.span("invoke_agent helper", SpanKind::Worker);
    /// let cx = agent.usage_context_on(&it.context());
    /// {
    ///     let _inside = cx.attach();
    ///     let mut chat = loopotel::start_span("chat gpt-4o", SpanKind::Worker);
    ///     chat.add_tokens(120);
    /// }
    /// // The agent reports the sum of its calls: already counted.
    /// if !agent.descendants_reported_usage() {
    ///     agent.add_tokens(120);
    /// }
    /// drop(agent);
    /// drop(it);
    /// let doc = run.finish(Outcome::Success, "done");
    /// let iteration = doc.iterations().next().unwrap();
    /// assert_eq!(iteration.attributes.get("loop.tokens_delta").unwrap().as_i64(), Some(120));
    /// ```
    pub fn usage_context_on(&mut self, base: &opentelemetry::Context) -> opentelemetry::Context {
        let Some(s) = &mut self.inner else {
            return base.clone();
        };
        let node = s
            .descendants
            .get_or_insert_with(|| Arc::new(SpanUsage::new(s.owner.clone())))
            .clone();
        let otel = match s.otel.as_mut() {
            Some(otel) => Some(otel.context(base)),
            // A span recorded in LTF only (another layer records it in OpenTelemetry):
            // spans inside it take `base`'s active span as their OpenTelemetry parent.
            None => s.owner.run().config.otel.is_some().then(|| base.clone()),
        };
        let base = otel.as_ref().unwrap_or(base);
        LoopScope::new(SpanOwner::Span(node), s.span.span_id, otel.clone()).attach_to(base)
    }

    /// Whether a span started in [`Self::usage_context_on`]'s context reported tokens or
    /// cost (so far).
    pub fn descendants_reported_usage(&self) -> bool {
        self.inner
            .as_ref()
            .and_then(|s| s.descendants.as_ref())
            .is_some_and(|d| d.reported())
    }

    /// Ends the span now.
    pub fn end(mut self) {
        self.finish(None);
    }

    fn finish(&mut self, end_reason: Option<&'static str>) {
        let Some(s) = self.inner.take() else {
            return;
        };
        let mut s = spare::unbox(s);
        // Never before the start (a clock stepped back, or a span ended on another thread).
        s.span.end_time = Some(Timestamp::now().max(s.span.start_time));
        if let Some(reason) = end_reason {
            s.set("error.type", reason);
            s.set(sc::LOOP_END_REASON, reason);
            let mut attrs = Attributes::with_capacity(2);
            attrs.set("exception.type", reason);
            attrs.set("exception.message", "a panic unwound through this span");
            s.span.events.push(LtfEvent {
                name: SharedStr::Static("exception"),
                timestamp: s.span.end_time.unwrap_or_else(Timestamp::now),
                attributes: attrs,
            });
        }
        if s.tokens > 0 {
            let tokens = s.tokens;
            s.set(sc::LOOP_TOKENS_DELTA, tokens);
        }
        if let Some(c) = s.cost {
            s.set(sc::LOOP_COST_USD, c);
        }
        if s.tokens > 0 || s.cost.is_some() {
            s.owner.add_usage(s.tokens, s.cost);
        }
        let run = s.owner.run();
        if run.config.limits.apply(&mut s.span) {
            // Cut or dropped: the attributes the OpenTelemetry span got at start go again.
            s.otel_initial_changed = u64::MAX;
        }
        if let Some(o) = &mut s.otel {
            o.end(&s.span, usize::from(s.otel_initial), s.otel_initial_changed);
        }
        if let Some(m) = &run.config.metrics {
            m.span_ended(&s.span);
        }
        if let Some(slot) = s.open {
            run.open_spans.remove(slot);
        }
        let emptied = {
            let mut state = run.lock();
            run.keep_ended(&mut state, s.span)
        };
        if let Some(attributes) = emptied {
            spare::keep_attributes(attributes);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        let reason = std::thread::panicking().then_some("panic");
        self.finish(reason);
    }
}
