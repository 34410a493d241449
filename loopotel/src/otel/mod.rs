//! The OpenTelemetry view of a loop: one recording, two views.
//!
//! Give a tracer a `TracerProvider` ([`crate::LoopTracerBuilder::tracer_provider`]) and
//! every LTF span is also a live OpenTelemetry span:
//!
//! - **same ids** — the OpenTelemetry span is started first and the LTF span takes its trace
//!   and span ids (the SDK's `IdGenerator` picks them; a run started inside another span or
//!   from a propagated `traceparent` joins that trace). A provider that starts no span of its
//!   own — shut down, telemetry suppressed, or the API's no-op provider, whose spans carry
//!   their parent's context — leaves the LTF span its own ids, so the LTF record stays
//!   valid;
//! - **same parentage** — root `loop.run` → `loop.iteration` → worker/evaluator spans, and
//!   the context a run or iteration attaches carries its OpenTelemetry span, so any other
//!   OpenTelemetry instrumentation inside nests under it;
//! - **same timestamps** — start, end and event times are the LTF values (microseconds);
//! - **same attributes and events**, converted by [`to_otel_value`]; document `metadata` and
//!   spec pins go on the root span as `ltf.metadata` (JSON) and `ltf.spec_pins.*`;
//! - OpenTelemetry span kind `Internal`, or `Client` for spans started with
//!   `opentelemetry::trace::SpanKind::Client` (LLM and remote tool calls); status `Error`
//!   when the span carries `error.type` (its `exception` event is already among the events).
//!
//! Spans end on the thread that ends the LTF span; with the SDK's `BatchSpanProcessor` that
//! is a queue push, never an export, so the bridge does not block (a full queue drops, as the
//! SDK does). No global provider is read or set.

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    Span as _, SpanContext, Status, TraceContextExt, Tracer as _, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, StringValue, Value};

use crate::attr::{AttrValue, Attributes, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::model::{LtfEvent, LtfSpan};
use crate::time::Timestamp;

#[cfg(feature = "sdk")]
pub mod delivery;
#[cfg(feature = "otlp")]
pub mod init;
pub(crate) mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "sdk")]
pub mod pipeline;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "sdk")]
pub mod replay;
#[cfg(feature = "sdk")]
pub mod spool;
#[cfg(feature = "sdk")]
pub mod tail;

/// The instrumentation scope name of loopotel's spans.
pub const SCOPE_NAME: &str = "loopotel";

/// Converts an LTF attribute value. JSON values OpenTelemetry cannot hold (null, objects,
/// mixed arrays) become their JSON text.
pub fn to_otel_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Int(i) => Value::I64(*i),
        AttrValue::Float(f) => Value::F64(*f),
        AttrValue::Str(SharedStr::Static(s)) => Value::String(StringValue::from(*s)),
        AttrValue::Str(SharedStr::Shared(s)) => Value::String(StringValue::from(s.clone())),
        AttrValue::Json(j) => match j {
            serde_json::Value::String(s) => Value::String(s.clone().into()),
            other => Value::String(other.to_string().into()),
        },
    }
}

/// Converts LTF attributes to OpenTelemetry key-values, skipping the first `skip`.
pub(crate) fn to_otel_attributes(attrs: &Attributes, skip: usize) -> Vec<KeyValue> {
    otel_attributes(attrs, skip).collect()
}

fn otel_attributes(attrs: &Attributes, skip: usize) -> impl Iterator<Item = KeyValue> + '_ {
    attrs
        .iter_keys()
        .skip(skip)
        .map(|(k, v)| KeyValue::new(k.clone(), to_otel_value(v)))
}

fn text_to_cow(t: &SharedStr) -> Cow<'static, str> {
    match t {
        SharedStr::Static(s) => Cow::Borrowed(s),
        SharedStr::Shared(s) => Cow::Owned(s.to_string()),
    }
}

/// The OpenTelemetry status of an LTF span: `Error` when it has `error.type` (described by
/// its last `exception.message`, else the error type), `Unset` otherwise.
pub(crate) fn status_of(span: &LtfSpan) -> Status {
    let Some(error) = span.attributes.get("error.type") else {
        return Status::Unset;
    };
    let description = span
        .events
        .iter()
        .rev()
        .find(|e| e.name.as_str() == "exception")
        .and_then(|e| e.attributes.get("exception.message"))
        .and_then(AttrValue::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("error")
        .to_owned();
    Status::error(description)
}

/// What the OpenTelemetry root carries of the document besides the LTF root's attributes:
/// the spec pins and the metadata (as JSON text).
pub(crate) fn root_document_attributes(
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> Vec<opentelemetry::KeyValue> {
    let pins = crate::model::SpecPins::default();
    let mut kv = vec![
        opentelemetry::KeyValue::new("ltf.schema_version", crate::model::SCHEMA_VERSION),
        opentelemetry::KeyValue::new("ltf.spec_pins.lss", pins.lss.to_string()),
        opentelemetry::KeyValue::new("ltf.spec_pins.les", pins.les.to_string()),
        opentelemetry::KeyValue::new("ltf.spec_pins.ltf", pins.ltf.to_string()),
    ];
    if !metadata.is_empty() {
        kv.push(opentelemetry::KeyValue::new(
            "ltf.metadata",
            serde_json::Value::Object(metadata.clone()).to_string(),
        ));
    }
    kv
}

/// `gen_ai.operation.name` values that backends (Arize Phoenix, among others) read as a span
/// kind of their own.
const KNOWN_OPERATIONS: [&str; 8] = [
    "chat",
    "text_completion",
    "generate_content",
    "embeddings",
    "execute_tool",
    "retrieval",
    "invoke_agent",
    "create_agent",
];

/// What the OpenTelemetry view adds so that backends show each span as what it is
/// (`specs/otel-semconv-loop.md`, "Span kinds in backends"): the run is an agent invocation
/// (GenAI semantic conventions); iterations and other work are OpenInference `CHAIN`
/// spans, evaluations `EVALUATOR` — unless the span names a known GenAI operation itself.
/// Never added to the LTF view. At most [`BACKEND_KIND_ATTRIBUTES`], without allocating.
pub(crate) fn backend_kind_attributes(
    ltf: &LtfSpan,
) -> [Option<KeyValue>; BACKEND_KIND_ATTRIBUTES] {
    let operation = ltf
        .attributes
        .get("gen_ai.operation.name")
        .and_then(AttrValue::as_str);
    if operation.is_some_and(|op| KNOWN_OPERATIONS.contains(&op)) {
        return [None, None];
    }
    match ltf.kind {
        crate::model::SpanKind::Loop => {
            let name = ltf
                .attributes
                .get(crate::semconv::LOOP_NAME)
                .and_then(AttrValue::as_str)
                .map_or_else(|| text_to_cow(&ltf.name), |n| Cow::Owned(n.to_owned()));
            [
                Some(KeyValue::new("gen_ai.operation.name", "invoke_agent")),
                Some(KeyValue::new("gen_ai.agent.name", name)),
            ]
        }
        crate::model::SpanKind::Evaluator => [
            Some(KeyValue::new("openinference.span.kind", "EVALUATOR")),
            None,
        ],
        crate::model::SpanKind::Iteration | crate::model::SpanKind::Worker => [
            Some(KeyValue::new("openinference.span.kind", "CHAIN")),
            None,
        ],
    }
}

/// The most attributes [`backend_kind_attributes`] adds.
pub(crate) const BACKEND_KIND_ATTRIBUTES: usize = 2;

/// The bridge a tracer holds when it was given a provider.
#[derive(Clone)]
pub(crate) struct OtelBridge {
    tracer: Arc<BridgeTracer>,
}

/// The SDK's own tracer is held as itself (its spans need no box, and the calls inline);
/// any other provider's tracer behind the API's object-safe box.
enum BridgeTracer {
    #[cfg(feature = "sdk")]
    Sdk(opentelemetry_sdk::trace::SdkTracer),
    Boxed(BoxedTracer),
}

/// A span of a [`BridgeTracer`]. The SDK span is held inline on purpose: it lives inside the
/// LTF span's own heap allocation, which saves the box the API would add.
#[allow(clippy::large_enum_variant)]
pub(crate) enum BridgeSpan {
    #[cfg(feature = "sdk")]
    Sdk(opentelemetry_sdk::trace::Span),
    Boxed(opentelemetry::global::BoxedSpan),
}

impl BridgeTracer {
    fn start(&self, builder: opentelemetry::trace::SpanBuilder, parent: &Context) -> BridgeSpan {
        match self {
            #[cfg(feature = "sdk")]
            BridgeTracer::Sdk(t) => BridgeSpan::Sdk(t.build_with_context(builder, parent)),
            BridgeTracer::Boxed(t) => BridgeSpan::Boxed(t.build_with_context(builder, parent)),
        }
    }

    fn span_builder(&self, name: Cow<'static, str>) -> opentelemetry::trace::SpanBuilder {
        opentelemetry::trace::SpanBuilder::from_name(name)
    }
}

/// The ids of a span the provider started, if it started one of its own: an SDK that
/// started nothing (shut down, telemetry suppressed) hands out the all-zero context, and the
/// API's no-op provider hands out the parent's context again.
fn own_ids(sc: &SpanContext, parent: &Context) -> Option<(TraceId, SpanId)> {
    let started = sc.is_valid() && parent.span().span_context().span_id() != sc.span_id();
    started.then(|| {
        (
            TraceId::from_bytes(sc.trace_id().to_bytes()),
            SpanId::from_bytes(sc.span_id().to_bytes()),
        )
    })
}

impl BridgeSpan {
    /// The span id the LTF span takes (one of its own when the provider started nothing).
    fn span_id(&self, parent: &Context) -> SpanId {
        let sc = match self {
            #[cfg(feature = "sdk")]
            BridgeSpan::Sdk(s) => s.span_context(),
            BridgeSpan::Boxed(s) => s.span_context(),
        };
        own_ids(sc, parent).map_or_else(SpanId::random, |(_, span)| span)
    }

    fn into_context(self, parent: &Context) -> Context {
        match self {
            #[cfg(feature = "sdk")]
            BridgeSpan::Sdk(s) => parent.with_span(s),
            BridgeSpan::Boxed(s) => parent.with_span(s),
        }
    }
}

impl std::fmt::Debug for OtelBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtelBridge")
    }
}

/// A live OpenTelemetry span held by an LTF span: the context that owns it, and how many of
/// the LTF span's attributes were already given at start.
#[derive(Clone, Debug)]
pub(crate) struct LiveOtelSpan {
    pub(crate) cx: Context,
    attrs_at_start: usize,
}

impl OtelBridge {
    pub(crate) fn new<P>(provider: &P) -> Self
    where
        P: TracerProvider + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        let scope = InstrumentationScope::builder(SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        #[cfg(feature = "sdk")]
        if let Some(sdk) = (provider as &dyn std::any::Any)
            .downcast_ref::<opentelemetry_sdk::trace::SdkTracerProvider>()
        {
            return Self {
                tracer: Arc::new(BridgeTracer::Sdk(sdk.tracer_with_scope(scope))),
            };
        }
        let tracer = provider.tracer_with_scope(scope);
        Self {
            tracer: Arc::new(BridgeTracer::Boxed(BoxedTracer::new(Box::new(tracer)))),
        }
    }

    /// Starts the OpenTelemetry view of the LTF span `ltf`, which just started, into `slot`
    /// (held directly until its context is needed), with its first `initial` attributes,
    /// and returns the span id the LTF span takes.
    pub(crate) fn start_leaf(
        &self,
        slot: &mut Option<LeafOtelSpan>,
        parent: &Context,
        ltf: &LtfSpan,
        kind: opentelemetry::trace::SpanKind,
        initial: usize,
    ) -> SpanId {
        let mut builder = self
            .tracer
            .span_builder(text_to_cow(&ltf.name))
            .with_kind(kind)
            .with_start_time(ltf.start_time.to_system_time());
        // The SDK keeps this vector for the span. With attributes at start it is exactly
        // their size (small vectors go back to the allocator without its lock when the
        // exporter thread frees them; room for the backend kinds the end adds measured
        // slower in the Tower layer's bench); without, room for the ones given at the end.
        builder.attributes = Some(if initial == 0 {
            Vec::with_capacity(LEAF_ATTRIBUTES)
        } else {
            ltf.attributes
                .iter_keys()
                .take(initial)
                .map(|(k, v)| KeyValue::new(k.clone(), to_otel_value(v)))
                .collect()
        });
        let span = self.tracer.start(builder, parent);
        let id = span.span_id(parent);
        *slot = Some(LeafOtelSpan::Detached(span));
        id
    }

    /// Starts the OpenTelemetry span and returns it with the ids the LTF span takes — `None`
    /// when the provider started no span of its own ([`own_ids`]): the LTF span then keeps
    /// ids of its own.
    pub(crate) fn start(
        &self,
        parent: &Context,
        name: &SharedStr,
        kind: opentelemetry::trace::SpanKind,
        start: Timestamp,
        initial: &Attributes,
    ) -> (LiveOtelSpan, Option<(TraceId, SpanId)>) {
        let builder = self
            .tracer
            .span_builder(text_to_cow(name))
            .with_kind(kind)
            .with_start_time(start.to_system_time())
            .with_attributes(to_otel_attributes(initial, 0));
        let cx = self.tracer.start(builder, parent).into_context(parent);
        let ids = own_ids(cx.span().span_context(), parent);
        (
            LiveOtelSpan {
                cx,
                attrs_at_start: initial.len(),
            },
            ids,
        )
    }
}

impl LiveOtelSpan {
    /// Sets attributes the LTF span does not carry (document-level fields on the root).
    pub(crate) fn set_attributes(&self, attributes: Vec<KeyValue>) {
        self.cx.span().set_attributes(attributes);
    }

    /// Ends the OpenTelemetry span with the LTF span's final attributes, events, status and
    /// end time.
    pub(crate) fn end(&self, ltf: &LtfSpan) {
        finish(&mut self.cx.span(), ltf, self.attrs_at_start, 0);
    }
}

/// The OpenTelemetry view of a leaf span (an LLM or tool call): the SDK span is held
/// directly — no context is built, no lock taken — until someone asks for the span's
/// context (to parent nested work), when it moves into one.
#[allow(clippy::large_enum_variant)] // held inside the LTF span's box
pub(crate) enum LeafOtelSpan {
    Detached(BridgeSpan),
    Attached(LiveOtelSpan),
    /// Only while switching states.
    Moved,
}

impl std::fmt::Debug for LeafOtelSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeafOtelSpan::Detached(_) => "LeafOtelSpan::Detached",
            LeafOtelSpan::Attached(_) => "LeafOtelSpan::Attached",
            LeafOtelSpan::Moved => "LeafOtelSpan::Moved",
        })
    }
}

impl LeafOtelSpan {
    /// `base` (the caller's context) with this span as the active span: what the caller's
    /// context carries (baggage, other instrumentation's values) stays in it. Made once;
    /// later calls return the same context.
    pub(crate) fn context(&mut self, base: &Context) -> Context {
        if let LeafOtelSpan::Detached(_) = self
            && let LeafOtelSpan::Detached(span) = std::mem::replace(self, LeafOtelSpan::Moved)
        {
            *self = LeafOtelSpan::Attached(LiveOtelSpan {
                cx: span.into_context(base),
                attrs_at_start: 0,
            });
        }
        match self {
            LeafOtelSpan::Attached(live) => live.cx.clone(),
            _ => base.clone(),
        }
    }

    /// Renames the OpenTelemetry span.
    pub(crate) fn update_name(&mut self, name: &SharedStr) {
        use opentelemetry::trace::Span as _;
        let name = text_to_cow(name);
        match self {
            #[cfg(feature = "sdk")]
            LeafOtelSpan::Detached(BridgeSpan::Sdk(span)) => span.update_name(name),
            LeafOtelSpan::Detached(BridgeSpan::Boxed(span)) => span.update_name(name),
            LeafOtelSpan::Attached(live) => live.cx.span().update_name(name),
            LeafOtelSpan::Moved => {}
        }
    }

    /// Ends the OpenTelemetry span with the LTF span's final state: the attributes after
    /// the first `initial` (given at start), and those of the first `initial` whose bit is
    /// set in `changed`.
    pub(crate) fn end(&mut self, ltf: &LtfSpan, initial: usize, changed: u64) {
        match self {
            #[cfg(feature = "sdk")]
            LeafOtelSpan::Detached(BridgeSpan::Sdk(span)) => finish(span, ltf, initial, changed),
            LeafOtelSpan::Detached(BridgeSpan::Boxed(span)) => finish(span, ltf, initial, changed),
            LeafOtelSpan::Attached(live) => finish(&mut live.cx.span(), ltf, initial, changed),
            LeafOtelSpan::Moved => {}
        }
    }
}

/// What finishing needs of a span, whether held directly or through a context.
trait FinishableSpan {
    fn recording(&self) -> bool;
    fn attributes(&mut self, attributes: impl Iterator<Item = KeyValue>);
    fn event(&mut self, e: &LtfEvent);
    fn status(&mut self, status: Status);
    fn end_at(&mut self, at: std::time::SystemTime);
}

/// The same calls exist on a span held directly and on one reached through a context.
macro_rules! finishable_span {
    ($($t:ty),*) => {$(
        impl FinishableSpan for $t {
            fn recording(&self) -> bool {
                self.is_recording()
            }
            fn attributes(&mut self, attributes: impl Iterator<Item = KeyValue>) {
                self.set_attributes(attributes);
            }
            fn event(&mut self, e: &LtfEvent) {
                self.add_event_with_timestamp(
                    text_to_cow(&e.name),
                    e.timestamp.to_system_time(),
                    to_otel_attributes(&e.attributes, 0),
                );
            }
            fn status(&mut self, status: Status) {
                self.set_status(status);
            }
            fn end_at(&mut self, at: std::time::SystemTime) {
                self.end_with_timestamp(at);
            }
        }
    )*};
}

finishable_span!(
    opentelemetry::global::BoxedSpan,
    opentelemetry::trace::SpanRef<'_>
);
#[cfg(feature = "sdk")]
finishable_span!(opentelemetry_sdk::trace::Span);

/// Capacity of a leaf span's attribute vector (a typical LLM or tool call's count).
const LEAF_ATTRIBUTES: usize = 8;

/// Gives the OpenTelemetry span the LTF span's attributes (after the first `skip`, which it
/// got at start, except those whose bit is set in `changed`), events, status and end time,
/// and ends it.
fn finish(span: &mut impl FinishableSpan, ltf: &LtfSpan, skip: usize, changed: u64) {
    // A span in a context takes its lock for each call: ask only when there is something to
    // give it (a call whose attributes all went in at its start just ends).
    let kinds = backend_kind_attributes(ltf);
    let more = ltf.attributes.len() > skip
        || changed != 0
        || kinds.iter().any(Option::is_some)
        || !ltf.events.is_empty()
        || ltf.attributes.get("error.type").is_some();
    if more && span.recording() {
        if kinds.iter().any(Option::is_some) {
            span.attributes(kinds.into_iter().flatten());
        }
        if changed == 0 {
            span.attributes(otel_attributes(&ltf.attributes, skip));
        } else {
            span.attributes(
                ltf.attributes
                    .iter_keys()
                    .enumerate()
                    .filter(|(i, _)| *i >= skip || (*i < 64 && changed & (1 << i) != 0))
                    .map(|(_, (k, v))| KeyValue::new(k.clone(), to_otel_value(v))),
            );
        }
        for e in &ltf.events {
            span.event(e);
        }
        let status = status_of(ltf);
        if status != Status::Unset {
            span.status(status);
        }
    }
    span.end_at(ltf.end_time.unwrap_or_else(Timestamp::now).to_system_time());
}
