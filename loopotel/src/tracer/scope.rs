//! [`LoopScope`]: the place in a loop run that new spans attach to, stored in
//! `opentelemetry::Context`, and [`OpenSpans`], the run's lock-free table of open spans
//! through which a span started in a span's context finds its LTF parent.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::TraceContextExt as _;

use super::owner::SpanOwner;
use super::run::{LIVE_RUNS, RunShared};
use super::{RunHandle, SpanGuard};
use crate::attr::{AttrValue, Attributes, Key, SharedStr};
use crate::ids::SpanId;
use crate::model::SpanKindPair;

/// The place in a loop run that new spans attach to: the run, the parent span, and the
/// iteration whose usage roll-ups they feed (if any). Stored in `opentelemetry::Context`.
pub struct LoopScope {
    /// The run, and the iteration whose usage roll-ups new spans feed (if any).
    pub(crate) owner: SpanOwner,
    pub(crate) parent: SpanId,
    /// The parent's OpenTelemetry context (holding its live span), with a provider.
    pub(crate) otel: Option<opentelemetry::Context>,
    /// Attempts started under this scope's span (for per-attempt instrumentation).
    pub(crate) attempts: AtomicU64,
    /// The parent is one of the run's open spans ([`OpenSpans`]), which counts its attempts.
    pub(crate) open_parent: bool,
}

impl Clone for LoopScope {
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            parent: self.parent,
            otel: self.otel.clone(),
            attempts: AtomicU64::new(self.attempts.load(Ordering::Relaxed)),
            open_parent: self.open_parent,
        }
    }
}

/// The open spans of a run whose OpenTelemetry span is the active span of a context handed
/// out ([`crate::SpanGuard::context`]), with the attempts numbered under each. A span joins
/// when its first context is made and leaves when it ends.
///
/// Lock-free: a table of [`OPEN_SLOTS`] slots (allocated when the first span joins), where a
/// span takes a free slot among [`OPEN_PROBES`] from its id's own. Span ids are random, so
/// their bits place them. A span that finds no free slot keeps a scope in its context
/// instead, as it does without a provider.
#[derive(Default)]
pub(crate) struct OpenSpans {
    slots: std::sync::OnceLock<Box<[OpenSlot]>>,
}

/// Slots in a run's table of open spans: 4 KiB per run.
const OPEN_SLOTS: usize = 256;

/// Slots a span may take, from its id's own on.
const OPEN_PROBES: usize = 8;

#[derive(Default)]
struct OpenSlot {
    /// The span id's bits; 0 when free (a zero span id is invalid).
    span: AtomicU64,
    attempts: AtomicU64,
}

impl OpenSpans {
    fn probe(span: u64) -> impl Iterator<Item = usize> {
        let home = span as usize;
        (0..OPEN_PROBES).map(move |i| home.wrapping_add(i) % OPEN_SLOTS)
    }

    /// Adds an open span; returns its slot (`None` when its slots are taken).
    pub(crate) fn insert(&self, span: SpanId) -> Option<u16> {
        let key = key(span);
        if key == 0 {
            return None;
        }
        let slots = self
            .slots
            .get_or_init(|| (0..OPEN_SLOTS).map(|_| OpenSlot::default()).collect());
        for i in Self::probe(key) {
            let slot = &slots[i];
            let taken = slot.span.load(Ordering::Relaxed) == 0
                && slot
                    .span
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok();
            if taken {
                // Before the span's context exists: no attempt under it can be numbered yet.
                slot.attempts.store(0, Ordering::Relaxed);
                return u16::try_from(i).ok();
            }
        }
        None
    }

    /// Frees the slot of an ended span.
    pub(crate) fn remove(&self, slot: u16) {
        if let Some(slot) = self.slots.get().and_then(|s| s.get(usize::from(slot))) {
            slot.span.store(0, Ordering::Release);
        }
    }

    /// The slot of an open span.
    fn find(&self, span: SpanId) -> Option<&OpenSlot> {
        let key = key(span);
        let slots = self.slots.get()?;
        Self::probe(key)
            .map(|i| &slots[i])
            .find(|slot| slot.span.load(Ordering::Acquire) == key)
    }

    /// Numbers the next attempt under an open span (`None` once it ended).
    fn next_attempt(&self, span: SpanId) -> Option<u64> {
        let slot = self.find(span)?;
        let n = slot
            .attempts
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        // The span may have ended meanwhile, and its slot gone to another.
        (slot.span.load(Ordering::Acquire) == key(span)).then_some(n)
    }
}

fn key(span: SpanId) -> u64 {
    u64::from_ne_bytes(span.to_bytes())
}

impl std::fmt::Debug for LoopScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopScope")
            .field("trace_id", &self.owner.run().trace_id)
            .field("parent", &self.parent)
            .field("iteration", &self.owner.iteration())
            .finish()
    }
}

impl LoopScope {
    /// The scope of spans under `parent`, whose OpenTelemetry context is `otel`.
    pub(crate) fn new(
        owner: SpanOwner,
        parent: SpanId,
        otel: Option<opentelemetry::Context>,
    ) -> Self {
        Self {
            owner,
            parent,
            otel,
            attempts: AtomicU64::new(0),
            open_parent: false,
        }
    }

    pub(crate) fn for_run(run: Arc<RunShared>) -> Self {
        let parent = run.root_span_id;
        let otel = run.otel.as_ref().map(|o| o.cx.clone());
        Self::new(SpanOwner::Run(run), parent, otel)
    }

    pub(crate) fn attach_to(self, cx: &opentelemetry::Context) -> opentelemetry::Context {
        cx.with_value(self)
    }

    /// The scope of the current context, if any: inside an open span of the scope's run
    /// (with a provider, the active OpenTelemetry span), that span's scope.
    pub fn current() -> Option<LoopScope> {
        opentelemetry::Context::map_current(|cx| cx.get::<LoopScope>().map(|s| s.resolved_in(cx)))
    }

    /// This scope as seen from `cx`, the context it was found in: when `cx`'s active span is
    /// one of the run's open spans, a scope under that span.
    ///
    /// ```
    /// use loopotel::{LoopTracer, Outcome, SpanKind};
    /// use loopotel::context::LoopScope;
    ///
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    /// let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    /// let run = tracer.run("resolve").start();
    /// let it = run.iteration(1);
    /// let mut tool = it.span("execute_tool search", SpanKind::Worker);
    /// // With a provider the tool's context holds its OpenTelemetry span and the
    /// // iteration's scope; resolved there, the scope is the tool's.
    /// let cx = tool.context_on(&it.context());
    /// let found = cx.get::<LoopScope>().unwrap();
    /// assert_eq!(Some(found.parent_span_id()), it.span_id());
    /// assert_eq!(Some(found.resolved_in(&cx).parent_span_id()), tool.span_id());
    /// drop((cx, tool, it));
    /// run.finish(Outcome::Success, "done");
    /// ```
    pub fn resolved_in(&self, cx: &opentelemetry::Context) -> LoopScope {
        match self.open_span_in(cx) {
            Some(span) => LoopScope {
                open_parent: true,
                ..LoopScope::new(self.owner.clone(), span, Some(cx.clone()))
            },
            None => self.clone(),
        }
    }

    /// The open span of this scope's run that is `cx`'s active span, other than the scope's
    /// own span (with a provider, a span's context holds no scope of its own).
    fn open_span_in(&self, cx: &opentelemetry::Context) -> Option<SpanId> {
        let run = self.owner.run();
        run.config.otel.as_ref()?;
        let active = cx.span();
        let active = active.span_context();
        let span = SpanId::from_bytes(active.span_id().to_bytes());
        if span == self.parent
            || !active.is_valid()
            || active.trace_id().to_bytes() != run.trace_id.to_bytes()
        {
            return None;
        }
        run.open_spans.find(span).map(|_| span)
    }

    /// The run this scope belongs to.
    pub fn run(&self) -> RunHandle {
        RunHandle {
            shared: self.owner.run().clone(),
        }
    }

    /// The trace id of this scope's run.
    pub fn trace_id(&self) -> crate::TraceId {
        self.owner.run().trace_id
    }

    /// The loop name of this scope's run.
    pub fn loop_name(&self) -> &SharedStr {
        &self.owner.run().loop_name
    }

    /// The number of the iteration this scope is in, if any.
    pub fn iteration(&self) -> Option<u64> {
        self.owner.iteration()
    }

    /// Whether spans started under this scope record anything (the run is enabled).
    pub fn is_recording(&self) -> bool {
        self.owner.run().enabled()
    }

    /// Numbers an attempt under this scope's span: 1 for the first call, then 2, 3, …
    pub fn next_attempt(&self) -> u64 {
        if self.open_parent
            && let Some(n) = self.owner.run().open_spans.next_attempt(self.parent)
        {
            return n;
        }
        self.attempts
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// Numbers an attempt under the span this scope resolves to in `cx` (see
    /// [`Self::resolved_in`]), the context it was found in.
    pub fn next_attempt_in(&self, cx: &opentelemetry::Context) -> u64 {
        self.open_span_in(cx)
            .and_then(|span| self.owner.run().open_spans.next_attempt(span))
            .unwrap_or_else(|| self.next_attempt())
    }

    /// The span new children attach to.
    pub fn parent_span_id(&self) -> SpanId {
        self.parent
    }

    /// Starts a child span of this scope.
    pub fn start_span(
        &self,
        name: impl Into<SharedStr>,
        kind: impl Into<SpanKindPair>,
    ) -> SpanGuard {
        self.start_span_with_attributes(name, kind, std::iter::empty::<(Key, AttrValue)>())
    }

    /// Starts a child span of this scope with the attributes known at its start. The
    /// OpenTelemetry span is created with them, so samplers and span processors see them
    /// (the semantic conventions ask for sampling-relevant attributes at creation). Set
    /// again later, the new value follows at the end; the OpenTelemetry SDK keeps every
    /// value set, in order, as it does for any span.
    ///
    /// ```
    /// use loopotel::{LoopTracer, Outcome, SpanKind};
    /// use loopotel::context::LoopScope;
    ///
    /// let run = LoopTracer::new().run("scope-demo").start();
    /// let it = run.iteration(1);
    /// {
    ///     let _inside = it.enter();
    ///     let scope = LoopScope::current().expect("inside the iteration");
    ///     let _span = scope.start_span_with_attributes(
    ///         "execute_tool search",
    ///         SpanKind::Worker,
    ///         [("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", "search")],
    ///     );
    /// }
    /// drop(it);
    /// let doc = run.finish(Outcome::Success, "done");
    /// let tool = doc.spans.iter().find(|s| s.name == "execute_tool search").unwrap();
    /// assert_eq!(tool.attributes.get("gen_ai.tool.name").unwrap().as_str(), Some("search"));
    /// ```
    pub fn start_span_with_attributes<K: Into<Key>, V: Into<AttrValue>>(
        &self,
        name: impl Into<SharedStr>,
        kind: impl Into<SpanKindPair>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard {
        self.start(
            self.parent,
            self.otel.as_ref(),
            name.into(),
            kind.into(),
            setting(attributes),
        )
    }

    /// Starts a child span of this scope in `cx`, the context the scope was found in (as
    /// the free [`start_span_with_attributes`](crate::context::start_span_with_attributes) does with the current context). In the LTF
    /// view the span is a child of the scope's span, or of the open span of the run that is
    /// `cx`'s active span (see [`Self::resolved_in`]). In the OpenTelemetry view its parent is
    /// `cx`'s active span when that span is in the scope's trace: a span another
    /// instrumentation started inside the scope's span (an HTTP client span, a `tracing`
    /// span) stays between them, as the OpenTelemetry SDK would place it.
    ///
    /// ```
    /// use loopotel::{LoopTracer, Outcome, SpanKind};
    /// use loopotel::context::LoopScope;
    ///
    /// let run = LoopTracer::new().run("scope-in-demo").start();
    /// let it = run.iteration(1);
    /// let cx = it.context();
    /// if let Some(scope) = cx.get::<LoopScope>() {
    ///     let _span = scope.start_span_in(&cx, "execute_tool search", SpanKind::Worker, [
    ///         ("gen_ai.tool.name", "search"),
    ///     ]);
    /// }
    /// drop(it);
    /// let doc = run.finish(Outcome::Success, "done");
    /// assert!(doc.spans.iter().any(|s| s.name == "execute_tool search"));
    /// ```
    pub fn start_span_in<K: Into<Key>, V: Into<AttrValue>>(
        &self,
        cx: &opentelemetry::Context,
        name: impl Into<SharedStr>,
        kind: impl Into<SpanKindPair>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard {
        self.start_span_with(cx, name, kind, setting(attributes))
    }

    /// [`Self::start_span_in`] with the span's first attributes written by `fill` straight
    /// into the span's list (for a bridge that visits another library's fields: no
    /// collection in between). `fill` runs only when the scope records.
    pub fn start_span_with(
        &self,
        cx: &opentelemetry::Context,
        name: impl Into<SharedStr>,
        kind: impl Into<SpanKindPair>,
        fill: impl FnOnce(&mut Attributes),
    ) -> SpanGuard {
        let parent = self.open_span_in(cx).unwrap_or(self.parent);
        self.start(
            parent,
            self.otel_parent_in(cx),
            name.into(),
            kind.into(),
            fill,
        )
    }

    /// [`Self::start_span_with`] in the LTF view only: for a span that another layer
    /// already records in OpenTelemetry (a `tracing` span beside `tracing-opentelemetry`).
    /// Spans started inside it still take `cx`'s active span as their OpenTelemetry parent.
    pub fn start_ltf_span_with(
        &self,
        cx: &opentelemetry::Context,
        name: impl Into<SharedStr>,
        kind: impl Into<SpanKindPair>,
        fill: impl FnOnce(&mut Attributes),
    ) -> SpanGuard {
        let parent = self.open_span_in(cx).unwrap_or(self.parent);
        self.start(parent, None, name.into(), kind.into(), fill)
    }

    /// The OpenTelemetry parent of a child started in `cx`: `cx` when its active span is in
    /// this scope's trace (the scope's own span, or a span started inside it), else the
    /// scope's own context.
    fn otel_parent_in<'a>(
        &'a self,
        cx: &'a opentelemetry::Context,
    ) -> Option<&'a opentelemetry::Context> {
        let own = self.otel.as_ref()?;
        let active = cx.span();
        let active = active.span_context();
        let in_trace =
            active.is_valid() && active.trace_id() == own.span().span_context().trace_id();
        Some(if in_trace { cx } else { own })
    }

    fn start(
        &self,
        parent: SpanId,
        otel_parent: Option<&opentelemetry::Context>,
        name: SharedStr,
        kinds: SpanKindPair,
        fill: impl FnOnce(&mut Attributes),
    ) -> SpanGuard {
        if !self.is_recording() {
            return SpanGuard::noop();
        }
        SpanGuard::start(self.owner.clone(), parent, otel_parent, name, kinds, fill)
    }
}

/// Sets each of `attributes` on a span's list.
fn setting<K: Into<Key>, V: Into<AttrValue>>(
    attributes: impl IntoIterator<Item = (K, V)>,
) -> impl FnOnce(&mut Attributes) {
    |list| {
        for (k, v) in attributes {
            list.set(k, v);
        }
    }
}

/// Whether the current context has a loop scope whose run records (cheap: nothing is
/// cloned, and nothing is read while no run is live).
#[inline]
pub(crate) fn current_is_recording() -> bool {
    if LIVE_RUNS.load(Ordering::Relaxed) == 0 {
        return false;
    }
    opentelemetry::Context::map_current(|cx| {
        cx.get::<LoopScope>().is_some_and(|s| s.is_recording())
    })
}
