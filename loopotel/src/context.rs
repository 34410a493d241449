//! Finding the current run and iteration through `opentelemetry::Context`.
//!
//! A run, iteration or span attaches a [`LoopScope`] to the OpenTelemetry context. Code deep
//! in a tool stack calls [`emit_iteration`], [`current_run`] or [`start_span`] without being
//! handed anything. Nested runs do not clobber each other: each scope lives in its own
//! context, and the outer one is current again when the inner context is left.
//!
//! - Synchronous code: `let _guard = run.enter();` (restores the previous context on drop).
//! - Async code: `fut.with_context(run.context())` (`opentelemetry::context::FutureExt`);
//!   the scope is current on every poll, across `.await`s.
//! - Spawned tasks: `tokio::spawn(fut.with_context(Context::current()))` — `tokio::spawn`
//!   does not carry the context by itself.
//!
//! ```
//! use loopotel::{LoopTracer, Outcome, IterationRecord, SpanKind, context};
//!
//! let run = LoopTracer::new().run("ctx-demo").start();
//! {
//!     let _guard = run.enter();
//!     assert!(loopotel::emit_iteration(IterationRecord::new(1, 0.5)));
//!     let it = run.iteration(2);
//!     let _inner = it.enter();
//!     let tool = context::start_span("execute_tool search", SpanKind::Worker);
//!     assert!(tool.is_recording());
//! }
//! assert!(context::current_run().is_none());
//! let doc = run.finish(Outcome::Partial, "budget");
//! assert_eq!(doc.spans.len(), 4); // root, iteration 1, iteration 2, tool
//! ```

use std::sync::Arc;

use crate::attr::{AttrValue, Key, Text};
use crate::ids::SpanId;
use crate::model::SpanKinds;
use crate::tracer::iteration::SpanOwner;
use crate::tracer::run::RunShared;
use crate::tracer::{IterationRecord, RunHandle, SpanGuard};

/// The place in a loop run that new spans attach to: the run, the parent span, and the
/// iteration whose usage roll-ups they feed (if any). Stored in `opentelemetry::Context`.
pub struct LoopScope {
    /// The run, and the iteration whose usage roll-ups new spans feed (if any).
    pub(crate) owner: SpanOwner,
    pub(crate) parent: SpanId,
    /// The parent's OpenTelemetry context (holding its live span), with a provider.
    pub(crate) otel: Option<opentelemetry::Context>,
    /// Attempts started under this scope's span (for per-attempt instrumentation).
    pub(crate) attempts: std::sync::atomic::AtomicU64,
}

impl Clone for LoopScope {
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            parent: self.parent,
            otel: self.otel.clone(),
            attempts: std::sync::atomic::AtomicU64::new(
                self.attempts.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl std::fmt::Debug for LoopScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopScope")
            .field("trace_id", &self.owner.run().trace_id)
            .field("parent", &self.parent)
            .field("in_iteration", &self.owner.usage().is_some())
            .finish()
    }
}

impl LoopScope {
    pub(crate) fn for_run(run: Arc<RunShared>) -> Self {
        let parent = run.root_span_id;
        let otel = run.otel.as_ref().map(|o| o.cx.clone());
        Self {
            owner: SpanOwner::Run(run),
            parent,
            otel,
            attempts: Default::default(),
        }
    }

    pub(crate) fn attach_to(self, cx: &opentelemetry::Context) -> opentelemetry::Context {
        cx.with_value(self)
    }

    /// The scope of the current context, if any.
    pub fn current() -> Option<LoopScope> {
        opentelemetry::Context::map_current(|cx| cx.get::<LoopScope>().cloned())
    }

    /// The run this scope belongs to.
    pub fn run(&self) -> RunHandle {
        RunHandle {
            shared: self.owner.run().clone(),
        }
    }

    /// Whether spans started under this scope record anything (the run is enabled).
    pub fn is_recording(&self) -> bool {
        self.owner.run().enabled()
    }

    /// Numbers an attempt under this scope's span: 1 for the first call, then 2, 3, …
    pub fn next_attempt(&self) -> u64 {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1)
    }

    /// The span new children attach to.
    pub fn parent_span_id(&self) -> SpanId {
        self.parent
    }

    /// Starts a child span of this scope.
    pub fn start_span(&self, name: impl Into<Text>, kind: impl Into<SpanKinds>) -> SpanGuard {
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
        name: impl Into<Text>,
        kind: impl Into<SpanKinds>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard {
        self.start(self.otel.as_ref(), name.into(), kind.into(), attributes)
    }

    /// Starts a child span of this scope in `cx`, the context the scope was found in (as
    /// the free [`start_span_with_attributes`] does with the current context). In the LTF
    /// view the span is a child of the scope's span. In the OpenTelemetry view its parent is
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
        name: impl Into<Text>,
        kind: impl Into<SpanKinds>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard {
        self.start(
            self.otel_parent_in(cx),
            name.into(),
            kind.into(),
            attributes,
        )
    }

    /// The OpenTelemetry parent of a child started in `cx`: `cx` when its active span is in
    /// this scope's trace (the scope's own span, or a span started inside it), else the
    /// scope's own context.
    fn otel_parent_in<'a>(
        &'a self,
        cx: &'a opentelemetry::Context,
    ) -> Option<&'a opentelemetry::Context> {
        use opentelemetry::trace::TraceContextExt as _;
        let own = self.otel.as_ref()?;
        let active = cx.span();
        let active = active.span_context();
        let in_trace =
            active.is_valid() && active.trace_id() == own.span().span_context().trace_id();
        Some(if in_trace { cx } else { own })
    }

    fn start<K: Into<Key>, V: Into<AttrValue>>(
        &self,
        otel_parent: Option<&opentelemetry::Context>,
        name: Text,
        kinds: SpanKinds,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard {
        if !self.is_recording() {
            return SpanGuard::noop();
        }
        SpanGuard::start(
            self.owner.clone(),
            self.parent,
            otel_parent,
            name,
            kinds,
            |list| {
                for (k, v) in attributes {
                    list.set(k, v);
                }
            },
        )
    }
}

/// Whether the current context has a loop scope whose run records (cheap: nothing is
/// cloned). Instrumentation uses it to skip all work when there is nothing to record.
#[inline]
pub fn is_recording() -> bool {
    if crate::tracer::run::LIVE_RUNS.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return false;
    }
    scope_is_recording()
}

fn scope_is_recording() -> bool {
    opentelemetry::Context::map_current(|cx| {
        cx.get::<LoopScope>().is_some_and(|s| s.is_recording())
    })
}

/// Numbers an attempt under the current scope's span: 1 for the first call, then 2, 3, …
/// (`None` outside any scope). Retry-aware instrumentation records it as `loop.attempt`.
pub fn next_attempt() -> Option<u64> {
    opentelemetry::Context::map_current(|cx| cx.get::<LoopScope>().map(LoopScope::next_attempt))
}

/// The run of the current context, if any.
pub fn current_run() -> Option<RunHandle> {
    opentelemetry::Context::map_current(|cx| cx.get::<LoopScope>().map(LoopScope::run))
}

/// Records an iteration on the current run (the reference's free `emit_iteration`).
/// Returns `false`, doing nothing, when there is no current run or it is not recording.
pub fn emit_iteration(record: IterationRecord) -> bool {
    current_run().is_some_and(|run| run.emit_iteration(record))
}

/// Starts a span under the current scope. Without a current run the span records nothing
/// (`is_recording() == false`); it never panics. With an OpenTelemetry provider, its
/// OpenTelemetry parent is the current context's active span (see
/// [`LoopScope::start_span_in`]).
pub fn start_span(name: impl Into<Text>, kind: impl Into<SpanKinds>) -> SpanGuard {
    start_span_with_attributes(name, kind, std::iter::empty::<(Key, AttrValue)>())
}

/// Starts a span under the current scope with the attributes known at its start (see
/// [`LoopScope::start_span_with_attributes`]: samplers see them). Without a current run
/// the span records nothing and `attributes` is not read.
///
/// ```
/// use loopotel::{LoopTracer, Outcome, SpanKind, context};
///
/// let run = LoopTracer::new().run("attrs-at-start").start();
/// {
///     let _inside = run.enter();
///     let _call = context::start_span_with_attributes(
///         "chat gpt-4o",
///         SpanKind::Worker.client(),
///         [("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4o")],
///     );
/// }
/// let doc = run.finish(Outcome::Success, "done");
/// let chat = doc.spans.iter().find(|s| s.name == "chat gpt-4o").unwrap();
/// assert_eq!(chat.attributes.get("gen_ai.request.model").unwrap().as_str(), Some("gpt-4o"));
/// ```
pub fn start_span_with_attributes<K: Into<Key>, V: Into<AttrValue>>(
    name: impl Into<Text>,
    kind: impl Into<SpanKinds>,
    attributes: impl IntoIterator<Item = (K, V)>,
) -> SpanGuard {
    let current = opentelemetry::Context::current();
    match current.get::<LoopScope>() {
        Some(scope) => scope.start_span_in(&current, name, kind, attributes),
        None => SpanGuard::noop(),
    }
}
