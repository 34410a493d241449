//! The typed LTF 0.1 document model.
//!
//! Serializing any value of these types gives JSON that follows `specs/ltf-0.1.schema.json`
//! field for field (`additionalProperties: false` is mirrored by `deny_unknown_fields`), so
//! parsing a document from another producer either yields the typed model or a clear error
//! naming the unknown field.
//!
//! ```
//! use loopotel::model::{LtfDocument, SpanKind};
//!
//! let line = r#"{"schema_version":"ltf/0.1","trace_id":"ltf-4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
//!   "loop_name":"demo-loop","started_at":"2026-11-22T03:24:48.295794Z",
//!   "ended_at":"2026-11-22T03:24:49.000000Z","outcome":"success","termination_reason":"done",
//!   "spec_pins":{"lss":"lss@1.0.0","les":"les@1.0.0","ltf":"ltf@0.1.0"},
//!   "spans":[{"span_id":"00f067aa0ba902b7","parent_span_id":null,"name":"loop.run","kind":"loop",
//!   "start_time":"2026-11-22T03:24:48.295794Z","attributes":{"loop.name":"demo-loop"}}]}"#;
//! let doc: LtfDocument = serde_json::from_str(line).unwrap();
//! assert_eq!(doc.spans[0].kind, SpanKind::Loop);
//! assert_eq!(doc.root().unwrap().name.as_str(), "loop.run");
//! ```

use serde::{Deserialize, Serialize};

use crate::attr::{Attributes, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::time::Timestamp;

/// `schema_version` of every LTF 0.1 document.
pub const SCHEMA_VERSION: &str = "ltf/0.1";

/// How a loop run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The goal was reached.
    Success,
    /// The goal was not reached, or the run errored.
    Failure,
    /// Part of the goal was reached.
    Partial,
    /// Not known (for example: the run handle was dropped without `finish`).
    #[default]
    Unknown,
}

impl Outcome {
    /// The LTF string.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Partial => "partial",
            Outcome::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The LTF span kinds. LLM calls, tool calls and environment steps are `Worker` spans;
/// evaluations are `Evaluator` spans (see `specs/otel-semconv-loop.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// The root span of a run (`loop.run`).
    Loop,
    /// One iteration of the loop (`loop.iteration`).
    Iteration,
    /// Work done inside an iteration: LLM call, tool call, environment step.
    Worker,
    /// An evaluation of the iteration's work.
    Evaluator,
}

impl SpanKind {
    /// The LTF string.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Loop => "loop",
            SpanKind::Iteration => "iteration",
            SpanKind::Worker => "worker",
            SpanKind::Evaluator => "evaluator",
        }
    }
}

/// An LTF span kind, and the OpenTelemetry span kind of its OpenTelemetry view (default
/// `Internal`). `SpanKind::Worker.client()` marks an LLM or remote tool call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanKindPair {
    /// The LTF kind.
    pub ltf: SpanKind,
    /// The OpenTelemetry kind.
    pub otel: opentelemetry::trace::SpanKind,
}

impl From<SpanKind> for SpanKindPair {
    fn from(ltf: SpanKind) -> Self {
        Self {
            ltf,
            otel: opentelemetry::trace::SpanKind::Internal,
        }
    }
}

impl SpanKind {
    /// This kind, with OpenTelemetry kind `Client` (a call to a remote service).
    pub fn client(self) -> SpanKindPair {
        SpanKindPair {
            ltf: self,
            otel: opentelemetry::trace::SpanKind::Client,
        }
    }
}

/// The spec versions an LTF 0.1 document is pinned to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecPins {
    /// Always `lss@1.0.0`.
    pub lss: SharedStr,
    /// Always `les@1.0.0`.
    pub les: SharedStr,
    /// Always `ltf@0.1.0`.
    pub ltf: SharedStr,
}

impl Default for SpecPins {
    fn default() -> Self {
        Self {
            lss: SharedStr::Static("lss@1.0.0"),
            les: SharedStr::Static("les@1.0.0"),
            ltf: SharedStr::Static("ltf@0.1.0"),
        }
    }
}

/// A timestamped event on a span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LtfEvent {
    /// Event name, e.g. `loop.iteration.start`.
    pub name: SharedStr,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Event attributes.
    #[serde(default)]
    pub attributes: Attributes,
}

/// One span of an LTF document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LtfSpan {
    /// 16 lowercase hex digits; the OpenTelemetry span id.
    pub span_id: SpanId,
    /// The parent's span id; `null` for the root.
    #[serde(default)]
    pub parent_span_id: Option<SpanId>,
    /// Span name, e.g. `loop.run`, `loop.iteration`, `chat gpt-4o`.
    pub name: SharedStr,
    /// LTF span kind.
    pub kind: SpanKind,
    /// Start time.
    pub start_time: Timestamp,
    /// End time; absent while a span is still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// Attributes (`loop.*`, `gen_ai.*`, user attributes).
    pub attributes: Attributes,
    /// Events in the order they were recorded.
    #[serde(default)]
    pub events: Vec<LtfEvent>,
}

/// A complete LTF 0.1 trace document: one loop run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LtfDocument {
    /// Always `ltf/0.1`.
    pub schema_version: SharedStr,
    /// The run's trace id (the OpenTelemetry trace id in `ltf-` form).
    pub trace_id: TraceId,
    /// The loop's name (3–64 characters).
    pub loop_name: SharedStr,
    /// The environment id, omitted when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<SharedStr>,
    /// The task id, omitted when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<SharedStr>,
    /// When the run started.
    pub started_at: Timestamp,
    /// When the run ended.
    pub ended_at: Timestamp,
    /// How the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Why the run stopped (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<String>,
    /// Spec version pins.
    pub spec_pins: SpecPins,
    /// The spans; the root (`kind: loop`) first.
    pub spans: Vec<LtfSpan>,
    /// Free-form run metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl LtfDocument {
    /// The root span (the first span of kind `loop` with no parent).
    pub fn root(&self) -> Option<&LtfSpan> {
        self.spans
            .iter()
            .find(|s| s.kind == SpanKind::Loop && s.parent_span_id.is_none())
    }

    /// The iteration spans in document order.
    pub fn iterations(&self) -> impl Iterator<Item = &LtfSpan> {
        self.spans.iter().filter(|s| s.kind == SpanKind::Iteration)
    }

    /// Serializes to one compact JSON line (no trailing newline).
    /// U+0085, U+2028 and U+2029 are escaped so line-splitting readers see one line.
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        // Serializing this model cannot fail: every map key is a string and non-finite floats
        // are written as null. The formatter writes only valid UTF-8.
        let _ = write_json_line(&mut out, self);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Compact JSON that also escapes U+0085, U+2028 and U+2029. JSON allows them raw, but
/// line-splitting readers (Python's `str.splitlines`, which `loopotel-validate` uses on
/// `.jsonl` files) break a line there, so a raw one would tear the document.
struct LineSafeFormatter;

impl serde_json::ser::Formatter for LineSafeFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let bytes = fragment.as_bytes();
        // ASCII (the common case, checked word-wise by std) cannot hold these characters.
        if fragment.is_ascii() || !bytes.iter().any(|&b| b == 0xC2 || b == 0xE2) {
            return writer.write_all(bytes);
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '\u{0085}' => "\\u0085",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }
}

/// Serializes `value` as one compact JSON line (no newline) into `out`, escaping the
/// characters that line-splitting readers treat as line breaks.
pub fn write_json_line<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, LineSafeFormatter);
    value.serialize(&mut ser)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_escape_unicode_line_breaks() {
        let mut out = Vec::new();
        write_json_line(
            &mut out,
            &serde_json::json!({"k": "a\u{2028}b\u{85}c\u{2029}ü"}),
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, r#"{"k":"a\u2028b\u0085c\u2029ü"}"#);
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["k"], "a\u{2028}b\u{85}c\u{2029}ü");
    }
}
