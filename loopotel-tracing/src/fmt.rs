//! [`LoopFields`]: `tracing_subscriber::fmt` lines written inside a loop carry the trace
//! id, span id, run and iteration.

use std::fmt::{self, Write as _};

use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a `tracing_subscriber::fmt` event format (`Format::default()`, `.json()`,
/// `.compact()`, …): a line written inside a loop run gets `trace_id`, `span_id` (the
/// innermost loopotel span, as 32 and 16 hex digits, as OpenTelemetry writes them),
/// `loop.name`, `loop.run_id` and `loop.iteration`. JSON lines get them as top-level
/// fields of the line's object; other formats as `key=value` pairs in front of the line.
/// Lines outside any run are written as the inner format writes them.
///
/// ```
/// use loopotel_tracing::{LoopFields, LoopLayer};
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let format = LoopFields::new(tracing_subscriber::fmt::format().json());
/// let subscriber = tracing_subscriber::registry()
///     .with(LoopLayer::new())
///     .with(tracing_subscriber::fmt::layer().event_format(format));
/// # drop(subscriber);
/// ```
#[derive(Clone, Debug, Default)]
pub struct LoopFields<F> {
    inner: F,
}

impl<F> LoopFields<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

/// The fields of a position, as JSON members (without braces) or as `key=value` pairs.
fn members(here: &loopotel::context::LoopPosition, json: bool) -> String {
    let trace = opentelemetry::trace::TraceId::from_bytes(here.trace_id.to_bytes());
    let span = opentelemetry::trace::SpanId::from_bytes(here.span_id.to_bytes());
    let mut out = String::with_capacity(160);
    if json {
        let name = serde_json_string(here.loop_name.as_str());
        let _ = write!(
            out,
            r#""trace_id":"{trace}","span_id":"{span}","loop.name":{name},"loop.run_id":"{}""#,
            here.trace_id
        );
        if let Some(n) = here.iteration {
            let _ = write!(out, r#","loop.iteration":{n}"#);
        }
    } else {
        let _ = write!(
            out,
            "trace_id={trace} span_id={span} loop.name={} loop.run_id={}",
            here.loop_name, here.trace_id
        );
        if let Some(n) = here.iteration {
            let _ = write!(out, " loop.iteration={n}");
        }
        out.push(' ');
    }
    out
}

/// `s` as a JSON string literal.
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl<S, N, F> FormatEvent<S, N> for LoopFields<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(here) = loopotel::context::current_position() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        if body.starts_with('{') && body.ends_with('}') {
            let open = &body[..body.len() - 1];
            let separator = if open.trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            writeln!(writer, "{open}{separator}{}}}", members(&here, true))
        } else {
            // Written again, straight to the writer, so its colours stay.
            writer.write_str(&members(&here, false))?;
            self.inner.format_event(ctx, writer, event)
        }
    }
}
