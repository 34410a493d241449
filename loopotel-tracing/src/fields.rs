//! From `tracing` fields to loopotel attributes: tracing-opentelemetry's `otel.*`
//! conventions, the GenAI semantic conventions' `gen_ai.*` fields (operation, model,
//! usage, content), `error` fields, and typed values.

use std::fmt::{self, Write as _};

use loopotel::{AttrValue, Attributes, SharedStr};
use tracing_core::field::{Field, Visit};

/// What a GenAI operation is, from `gen_ai.operation.name`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Operation {
    /// An inference call: `chat`, `text_completion`, `generate_content`.
    Llm,
    /// `embeddings`.
    Embeddings,
    /// `execute_tool`.
    Tool,
    /// `invoke_agent`, `create_agent`.
    Agent,
    /// No operation, or one the conventions do not name (recorded as a plain span).
    #[default]
    Other,
}

impl Operation {
    pub(crate) fn parse(name: &str) -> Self {
        match name {
            "chat" | "text_completion" | "generate_content" => Operation::Llm,
            "embeddings" => Operation::Embeddings,
            "execute_tool" => Operation::Tool,
            "invoke_agent" | "create_agent" => Operation::Agent,
            _ => Operation::Other,
        }
    }
}

/// Token usage as reported in `gen_ai.usage.*` fields (only valid counts: non-negative
/// integers, or strings and floats that are exactly such an integer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input: Option<u64>,
    pub(crate) output: Option<u64>,
    pub(crate) total: Option<u64>,
    pub(crate) cached_input: Option<u64>,
}

impl Usage {
    /// Tokens to roll up: input + output when either is known, else the reported total.
    pub(crate) fn tokens(&self) -> u64 {
        match (self.input, self.output) {
            (None, None) => self.total.unwrap_or(0),
            (i, o) => i.unwrap_or(0).saturating_add(o.unwrap_or(0)),
        }
    }

    fn set(&mut self, key: &str, count: u64) {
        match key {
            "gen_ai.usage.input_tokens" | "gen_ai.usage.prompt_tokens" => self.input = Some(count),
            "gen_ai.usage.output_tokens" | "gen_ai.usage.completion_tokens" => {
                self.output = Some(count)
            }
            "gen_ai.usage.total_tokens" => self.total = Some(count),
            "gen_ai.usage.cache_read.input_tokens" => self.cached_input = Some(count),
            _ => {}
        }
    }
}

/// A value as text (what a name or a model field holds).
fn text(value: &AttrValue) -> String {
    match value {
        AttrValue::Str(s) => s.as_str().to_owned(),
        AttrValue::Int(n) => n.to_string(),
        AttrValue::Float(f) => f.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Json(v) => v.to_string(),
    }
}

/// A token count from a field value, if it is one.
fn count_of(value: &AttrValue) -> Option<u64> {
    match value {
        AttrValue::Int(n) => u64::try_from(*n).ok(),
        AttrValue::Float(f) if f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15 => {
            Some(*f as u64)
        }
        AttrValue::Str(s) => s.as_str().trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// How much of a `Debug` or `Display` rendering is kept (the attribute limits cut further).
const MAX_RENDERED: usize = 64 * 1024;

/// A `fmt::Write` that keeps at most `MAX_RENDERED` bytes (on a character boundary) and
/// then stops the formatter, so a huge value never becomes a huge string.
struct Bounded(String);

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_RENDERED.saturating_sub(self.0.len());
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.0.push_str(&s[..cut]);
        Err(fmt::Error)
    }
}

/// Renders a value with `Debug`, bounded.
pub(crate) fn render_debug(value: &dyn fmt::Debug) -> String {
    let mut out = Bounded(String::new());
    let _ = write!(out, "{value:?}");
    out.0
}

/// Renders a value with `Display`, bounded.
pub(crate) fn render_display(value: &dyn fmt::Display) -> String {
    let mut out = Bounded(String::new());
    let _ = write!(out, "{value}");
    out.0
}

/// What a span's or an event's fields say, mapped.
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    /// `otel.name`.
    pub(crate) name: Option<String>,
    /// `otel.kind`.
    pub(crate) otel_kind: Option<opentelemetry::trace::SpanKind>,
    /// `otel.status_code` said error, with `otel.status_description` if given.
    pub(crate) status_error: Option<Option<String>>,
    /// `otel.status_code` said ok.
    pub(crate) status_ok: bool,
    /// `gen_ai.operation.name`, as given and as understood.
    pub(crate) operation_name: Option<String>,
    pub(crate) operation: Option<Operation>,
    /// `gen_ai.request.model` / `gen_ai.response.model` (the response's wins for prices).
    pub(crate) request_model: Option<String>,
    pub(crate) response_model: Option<String>,
    /// `gen_ai.tool.name`, `gen_ai.agent.name` (for the span's name).
    pub(crate) tool_name: Option<String>,
    pub(crate) agent_name: Option<String>,
    /// `gen_ai.usage.*` counts seen.
    pub(crate) usage: Usage,
    /// An `error` field: its message.
    pub(crate) error: Option<String>,
    /// The `message` field (events).
    pub(crate) message: Option<String>,
    /// Every other field, typed, in order (content fields only when captured).
    pub(crate) attributes: Vec<(&'static str, AttrValue)>,
    /// Content fields left out because capture is off.
    pub(crate) content_dropped: u32,
}

/// Visits fields into a [`Mapped`].
pub(crate) struct FieldVisitor<'a> {
    pub(crate) mapped: &'a mut Mapped,
    /// Record content fields (prompts, completions, tool arguments and results).
    pub(crate) capture_content: bool,
}

impl FieldVisitor<'_> {
    fn value(&mut self, field: &Field, value: AttrValue) {
        let key = field.name();
        let m = &mut *self.mapped;
        match key {
            "message" => {
                m.message = Some(match value {
                    AttrValue::Str(s) => s.as_str().to_owned(),
                    other => text(&other),
                });
                return;
            }
            "otel.name" => {
                m.name = Some(text(&value));
                return;
            }
            "otel.kind" => {
                m.otel_kind = span_kind(&text(&value));
                return;
            }
            "otel.status_code" => {
                match text(&value).to_ascii_lowercase().as_str() {
                    "error" => m.status_error = Some(m.status_error.take().flatten()),
                    "ok" => m.status_ok = true,
                    _ => {}
                }
                return;
            }
            "otel.status_description" => {
                m.status_error = Some(Some(text(&value)));
                return;
            }
            "gen_ai.operation.name" => {
                let name = text(&value);
                m.operation = Some(Operation::parse(&name));
                m.operation_name = Some(name);
            }
            "gen_ai.request.model" => m.request_model = Some(text(&value)),
            "gen_ai.response.model" => m.response_model = Some(text(&value)),
            "gen_ai.tool.name" => m.tool_name = Some(text(&value)),
            "gen_ai.agent.name" => m.agent_name = Some(text(&value)),
            _ if key.starts_with("gen_ai.usage.") => {
                if let Some(count) = count_of(&value) {
                    m.usage.set(key, count);
                }
            }
            _ => {}
        }
        if loopotel::semconv::is_content_attribute(key) && !self.capture_content {
            m.content_dropped += 1;
            return;
        }
        m.attributes.push((key, value));
    }
}

/// `otel.kind` values as tracing-opentelemetry reads them.
fn span_kind(s: &str) -> Option<opentelemetry::trace::SpanKind> {
    use opentelemetry::trace::SpanKind;
    match s.to_ascii_lowercase().as_str() {
        "server" => Some(SpanKind::Server),
        "client" => Some(SpanKind::Client),
        "producer" => Some(SpanKind::Producer),
        "consumer" => Some(SpanKind::Consumer),
        "internal" => Some(SpanKind::Internal),
        _ => None,
    }
}

/// Whether a field name means something to the mapping (`message`, `error`, `otel.*`,
/// `gen_ai.*`). A span with none of these is plain: its fields are typed attributes and
/// nothing more, and [`PlainVisitor`] writes them straight into the span.
pub(crate) fn is_mapped_field(name: &str) -> bool {
    // The first byte rules most names out without comparing strings.
    match name.as_bytes().first() {
        Some(b'm') => name == "message",
        Some(b'e') => name == "error",
        Some(b'o') => name.starts_with("otel."),
        Some(b'g') => name.starts_with("gen_ai."),
        _ => false,
    }
}

/// Values as attributes: bool / i64 / f64 / str keep their types; integers beyond `i64`
/// keep their exact value as text rather than a wrapped number; JSON has no NaN or
/// infinity, so those are kept as their names; strings and renderings are bounded.
mod typed {
    use super::{MAX_RENDERED, render_display};
    use loopotel::{AttrValue, SharedStr};

    pub(super) fn wide(value: impl TryInto<i64> + ToString + Copy) -> AttrValue {
        value
            .try_into()
            .map(AttrValue::Int)
            .unwrap_or_else(|_| AttrValue::Str(SharedStr::from(value.to_string())))
    }

    pub(super) fn float(value: f64) -> AttrValue {
        if value.is_finite() {
            AttrValue::Float(value)
        } else {
            AttrValue::Str(SharedStr::from(value.to_string()))
        }
    }

    pub(super) fn text(value: &str) -> AttrValue {
        AttrValue::Str(if value.len() > MAX_RENDERED {
            SharedStr::from(render_display(&value))
        } else {
            SharedStr::Shared(std::sync::Arc::from(value))
        })
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, AttrValue::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, AttrValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, typed::wide(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.value(field, typed::wide(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.value(field, typed::wide(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, typed::float(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, typed::text(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = render_display(&value);
        if field.name() == "error" {
            self.mapped.error = Some(message);
            return;
        }
        self.value(field, AttrValue::Str(SharedStr::from(message)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let rendered = render_debug(value);
        if field.name() == "error" {
            self.mapped.error = Some(rendered);
            return;
        }
        self.value(field, AttrValue::Str(SharedStr::from(rendered)));
    }
}

/// Visits the fields of a plain span (see [`is_mapped_field`]) straight into its
/// attribute list, typed as [`FieldVisitor`] types them.
pub(crate) struct PlainVisitor<'a>(pub(crate) &'a mut Attributes);

impl Visit for PlainVisitor<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(field.name(), typed::wide(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.set(field.name(), typed::wide(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.set(field.name(), typed::wide(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set(field.name(), typed::float(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set(field.name(), typed::text(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.set(field.name(), render_display(&value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.set(field.name(), render_debug(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_come_only_from_valid_values() {
        assert_eq!(count_of(&AttrValue::Int(12)), Some(12));
        assert_eq!(count_of(&AttrValue::Int(-3)), None);
        assert_eq!(count_of(&AttrValue::Float(f64::NAN)), None);
        assert_eq!(count_of(&AttrValue::Float(7.0)), Some(7));
        assert_eq!(count_of(&AttrValue::Float(7.5)), None);
        assert_eq!(
            count_of(&AttrValue::Str(SharedStr::from(" 40 ".to_owned()))),
            Some(40)
        );
        assert_eq!(count_of(&AttrValue::Str(SharedStr::Static("many"))), None);
    }

    #[test]
    fn rendering_is_bounded_and_cut_on_a_character_boundary() {
        let huge = "é".repeat(MAX_RENDERED);
        let out = render_debug(&huge);
        assert!(out.len() <= MAX_RENDERED);
        assert!(out.starts_with("\"é"));
    }

    #[test]
    fn usage_prefers_input_plus_output_over_a_reported_total() {
        let u = Usage {
            input: Some(10),
            output: Some(5),
            total: Some(99),
            cached_input: None,
        };
        assert_eq!(u.tokens(), 15);
        let only_total = Usage {
            total: Some(7),
            ..Usage::default()
        };
        assert_eq!(only_total.tokens(), 7);
    }
}
