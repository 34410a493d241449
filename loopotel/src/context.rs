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
//! With an OpenTelemetry provider, a span's context holds the span's OpenTelemetry span as
//! the active span and no scope of its own: the run keeps a list of its open spans that
//! code runs inside ([`crate::SpanGuard::context`]), and a span started in such a context
//! finds its LTF parent (and the attempt count) from the active span's id. That spares each
//! call a copy of the context's value map. One consequence: a span another
//! instrumentation starts inside a loopotel span, with a loopotel span started inside *that*
//! one, puts the inner loopotel span under the enclosing scope (the iteration, say) in the
//! LTF view, since LTF has no record of the foreign span; the OpenTelemetry view keeps all
//! three in their places. [`crate::LoopTracerBuilder::scope_through_foreign_spans`] keeps a
//! scope in every span context instead (the LTF view then links the two loopotel spans).
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

use crate::attr::{AttrValue, Key, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::model::SpanKindPair;
pub use crate::tracer::LoopScope;
use crate::tracer::{IterationRecord, RunHandle, SpanGuard};

/// Whether the current context has a loop scope whose run records (cheap: nothing is
/// cloned). Instrumentation uses it to skip all work when there is nothing to record.
#[inline]
pub fn is_recording() -> bool {
    crate::tracer::current_is_recording()
}

/// Numbers an attempt under the current scope's span: 1 for the first call, then 2, 3, …
/// (`None` outside any scope). Retry-aware instrumentation records it as `loop.attempt`.
pub fn next_attempt() -> Option<u64> {
    opentelemetry::Context::map_current(|cx| cx.get::<LoopScope>().map(|s| s.next_attempt_in(cx)))
}

/// The run of the current context, if any.
pub fn current_run() -> Option<RunHandle> {
    opentelemetry::Context::map_current(|cx| cx.get::<LoopScope>().map(LoopScope::run))
}

/// Where the current context is in a loop run: what a log record or a log line written
/// here should carry to be found next to the run's spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopPosition {
    /// The run's trace id (its LTF form, `ltf-…`, is the run's id in documents).
    pub trace_id: TraceId,
    /// The innermost loopotel span of the context: a span, the iteration or the run's root.
    pub span_id: SpanId,
    /// The run's loop name.
    pub loop_name: SharedStr,
    /// The number of the iteration the context is in, if any.
    pub iteration: Option<u64>,
}

/// The position of the current context in a loop run (`None` outside any recording run).
///
/// ```
/// use loopotel::{LoopTracer, Outcome, context};
///
/// let run = LoopTracer::new().run("where-am-i").start();
/// let it = run.iteration(3);
/// let _inside = it.enter();
/// let here = context::current_position().unwrap();
/// assert_eq!((here.trace_id, here.iteration), (run.trace_id(), Some(3)));
/// # drop(_inside); drop(it); run.finish(Outcome::Success, "done");
/// ```
pub fn current_position() -> Option<LoopPosition> {
    if !is_recording() {
        return None;
    }
    let scope = LoopScope::current()?;
    Some(LoopPosition {
        trace_id: scope.trace_id(),
        span_id: scope.parent_span_id(),
        loop_name: scope.loop_name().clone(),
        iteration: scope.iteration(),
    })
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
pub fn start_span(name: impl Into<SharedStr>, kind: impl Into<SpanKindPair>) -> SpanGuard {
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
    name: impl Into<SharedStr>,
    kind: impl Into<SpanKindPair>,
    attributes: impl IntoIterator<Item = (K, V)>,
) -> SpanGuard {
    let current = opentelemetry::Context::current();
    match current.get::<LoopScope>() {
        Some(scope) => scope.start_span_in(&current, name, kind, attributes),
        None => SpanGuard::noop(),
    }
}
