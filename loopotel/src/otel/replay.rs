//! Replay: stored LTF documents as OpenTelemetry `SpanData`, with their original ids and
//! timestamps (feature `sdk`).
//!
//! [`document_to_span_data`] builds the spans an exporter takes directly (no tracer, no
//! sampler, no new ids), so a JSONL file recorded yesterday lands in a backend exactly as if
//! it had been exported live. `loopotel export` is this plus an OTLP exporter, batching and a
//! summary.
//!
//! Mapping: ids, parentage, names, start/end times, attributes and events as recorded; a root
//! that continued a trace (`loop.parent_span_id`) gets that span as its remote parent; status
//! `Error` where `error.type` is set; OpenTelemetry span kind `Client` for GenAI operations
//! (`gen_ai.operation.name` of `chat`, `text_completion`, `embeddings`,
//! `generate_content`), `Internal` otherwise; the root also carries `ltf.schema_version`,
//! `ltf.spec_pins.*` and `ltf.metadata`, as the live bridge writes them.
//!
//! ```
//! use loopotel::{LoopTracer, Outcome, IterationRecord};
//! use loopotel::otel::replay::document_to_span_data;
//!
//! let run = LoopTracer::new().run("replayed-loop").start();
//! run.emit_iteration(IterationRecord::new(1, 0.7));
//! let doc = run.finish(Outcome::Success, "done");
//! let spans = document_to_span_data(&doc);
//! assert_eq!(spans.len(), 2);
//! assert_eq!(spans[0].span_context.trace_id().to_bytes(), doc.trace_id.to_bytes());
//! assert_eq!(spans[1].start_time, doc.spans[1].start_time.to_system_time());
//! ```

use std::borrow::Cow;

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceState};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::{
    SCOPE_NAME, backend_kind_attributes, root_document_attributes, status_of, text_to_cow,
    to_otel_attributes,
};
use crate::attr::{AttrValue, SharedStr};
use crate::ids::SpanId;
use crate::model::{LtfDocument, LtfEvent, LtfSpan};
use crate::semconv as sc;

fn otel_trace_id(doc: &LtfDocument) -> opentelemetry::trace::TraceId {
    opentelemetry::trace::TraceId::from_bytes(doc.trace_id.to_bytes())
}

fn otel_span_id(id: SpanId) -> opentelemetry::trace::SpanId {
    opentelemetry::trace::SpanId::from_bytes(id.to_bytes())
}

fn kind_of(span: &LtfSpan) -> SpanKind {
    match span
        .attributes
        .get("gen_ai.operation.name")
        .and_then(AttrValue::as_str)
    {
        Some("chat" | "text_completion" | "embeddings" | "generate_content") => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

fn events_of(span: &LtfSpan) -> SpanEvents {
    let mut events = SpanEvents::default();
    events.events = span.events.iter().map(to_otel_event).collect();
    events
}

/// The document's spans as OpenTelemetry `SpanData`, in document order.
pub fn document_to_span_data(doc: &LtfDocument) -> Vec<SpanData> {
    let trace_id = otel_trace_id(doc);
    let scope = InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let root_id = doc.root().map(|r| r.span_id);
    doc.spans
        .iter()
        .map(|span| {
            let is_root = Some(span.span_id) == root_id && span.parent_span_id.is_none();
            let remote_parent = is_root
                .then(|| span.attributes.get(sc::LOOP_PARENT_SPAN_ID))
                .flatten()
                .and_then(AttrValue::as_str)
                .and_then(|s| SpanId::from_hex(s).ok());
            let (parent_span_id, parent_span_is_remote) = match (span.parent_span_id, remote_parent)
            {
                (Some(p), _) => (otel_span_id(p), false),
                (None, Some(p)) => (otel_span_id(p), true),
                (None, None) => (opentelemetry::trace::SpanId::INVALID, false),
            };
            let mut attributes = to_otel_attributes(&span.attributes, 0);
            attributes.extend(backend_kind_attributes(span).into_iter().flatten());
            if is_root {
                let metadata = doc.metadata.clone().unwrap_or_default();
                attributes.extend(root_document_attributes(&metadata));
            }
            SpanData {
                span_context: SpanContext::new(
                    trace_id,
                    otel_span_id(span.span_id),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                ),
                parent_span_id,
                parent_span_is_remote,
                span_kind: kind_of(span),
                name: match &span.name {
                    SharedStr::Static(s) => Cow::Borrowed(*s),
                    SharedStr::Shared(s) => Cow::Owned(s.to_string()),
                },
                start_time: span.start_time.to_system_time(),
                end_time: span.end_time.unwrap_or(span.start_time).to_system_time(),
                attributes,
                dropped_attributes_count: 0,
                events: events_of(span),
                links: SpanLinks::default(),
                status: status_of(span),
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}

/// Converts an LTF event.
fn to_otel_event(e: &LtfEvent) -> opentelemetry::trace::Event {
    opentelemetry::trace::Event::new(
        text_to_cow(&e.name),
        e.timestamp.to_system_time(),
        to_otel_attributes(&e.attributes, 0),
        0,
    )
}
