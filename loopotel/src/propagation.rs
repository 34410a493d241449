//! W3C Trace Context: `traceparent` / `tracestate` for HTTP headers, string maps and JSON
//! messages, so a loop's context crosses tasks, queues and processes.
//!
//! - [`TraceParent`]: a strict parser and an allocation-free writer for `traceparent`.
//! - [`W3cPropagator`]: an `opentelemetry::propagation::TextMapPropagator`, usable wherever
//!   OpenTelemetry takes one; it never writes an empty `tracestate`.
//! - [`inject_current`] / [`extract`]: the short way, with any carrier: `HashMap<String,
//!   String>` (OpenTelemetry implements it), `http::HeaderMap` ([`HeaderCarrier`]), or a JSON
//!   message's `_trace_context` object ([`JsonCarrier`]).
//!
//! Hostile input never panics and never continues a trace it should not: a `traceparent`
//! with version `ff`, a wrong length, non-lowercase-hex, all-zero ids or a bad separator is
//! ignored, so the receiver starts a new root. Following the W3C rules, a valid
//! `traceparent` with an invalid or oversized `tracestate` (over 32 members, over
//! [`MAX_TRACESTATE_BYTES`], bad keys or values) continues the trace and drops the
//! `tracestate`. Future versions (`01`–`fe`) are read by their version-00 prefix, as W3C
//! requires.
//!
//! ```
//! use std::collections::HashMap;
//! use loopotel::propagation::{TraceParent, extract, inject_current};
//! use loopotel::LoopTracer;
//! use opentelemetry::trace::TraceContextExt;
//!
//! let run = LoopTracer::new().run("producer-loop").start();
//! let mut message = HashMap::new();
//! {
//!     let _g = run.enter();
//!     inject_current(&mut message); // traceparent of the current loop scope
//! }
//! let tp: TraceParent = message["traceparent"].parse().unwrap();
//! assert_eq!(tp.trace_id, run.trace_id());
//!
//! // The consumer continues the same trace.
//! let cx = extract(&message);
//! assert_eq!(cx.span().span_context().trace_id().to_bytes(), run.trace_id().to_bytes());
//! ```

use std::fmt;
use std::str::FromStr;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};

use crate::context::LoopScope;
use crate::ids::{SpanId, TraceId};

/// The `traceparent` header / field name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header / field name.
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` accepted (longer ones are dropped; the trace still continues).
pub const MAX_TRACESTATE_BYTES: usize = 4096;
/// The field of a JSON message that carries its trace context.
pub const JSON_FIELD: &str = "_trace_context";

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    /// Not `version-traceid-parentid-flags` with the right lengths.
    #[error("traceparent must be 2-32-16-2 lowercase hex fields separated by '-' (got {0} bytes)")]
    Layout(usize),
    /// A field holds something other than lowercase hex.
    #[error("traceparent {0} is not lowercase hex")]
    NotHex(&'static str),
    /// Version `ff` is invalid by definition.
    #[error("traceparent version ff is invalid")]
    VersionFF,
    /// Version 00 must be exactly 55 bytes.
    #[error("traceparent version 00 must be exactly 55 bytes")]
    TrailingData,
    /// The trace id or parent id is all zeros.
    #[error("traceparent {0} is all zeros")]
    ZeroId(&'static str),
}

/// A parsed `traceparent`: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id.
    pub trace_id: TraceId,
    /// The caller's span id (the parent of what the receiver records).
    pub span_id: SpanId,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

fn hex_byte(b: &[u8]) -> Option<u8> {
    let v = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(v(*b.first()?)? << 4 | v(*b.get(1)?)?)
}

impl TraceParent {
    /// A sampled `traceparent` for `span_id` in `trace_id`.
    pub fn new(trace_id: TraceId, span_id: SpanId) -> Self {
        Self {
            trace_id,
            span_id,
            flags: 1,
        }
    }

    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Parses a header value (surrounding spaces and tabs are ignored).
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        let v = value.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
        if v.len() < 55 {
            return Err(TraceParentError::Layout(v.len()));
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return Err(TraceParentError::Layout(v.len()));
        }
        let version = hex_byte(&v[0..2]).ok_or(TraceParentError::NotHex("version"))?;
        if version == 0xff {
            return Err(TraceParentError::VersionFF);
        }
        if version == 0 && v.len() != 55 {
            return Err(TraceParentError::TrailingData);
        }
        if v.len() > 55 && v[55] != b'-' {
            // A future version may append fields, always after a '-'.
            return Err(TraceParentError::Layout(v.len()));
        }
        let mut trace = [0u8; 16];
        for (i, byte) in trace.iter_mut().enumerate() {
            *byte = hex_byte(&v[3 + 2 * i..]).ok_or(TraceParentError::NotHex("trace-id"))?;
        }
        let mut span = [0u8; 8];
        for (i, byte) in span.iter_mut().enumerate() {
            *byte = hex_byte(&v[36 + 2 * i..]).ok_or(TraceParentError::NotHex("parent-id"))?;
        }
        let flags = hex_byte(&v[53..55]).ok_or(TraceParentError::NotHex("trace-flags"))?;
        let trace_id = TraceId::from_bytes(trace);
        let span_id = SpanId::from_bytes(span);
        if trace_id.is_zero() {
            return Err(TraceParentError::ZeroId("trace-id"));
        }
        if span_id.is_zero() {
            return Err(TraceParentError::ZeroId("parent-id"));
        }
        // Only the flags this version defines are propagated.
        Ok(Self {
            trace_id,
            span_id,
            flags: flags & 1,
        })
    }

    /// Writes the 55-byte header value into `out` without allocating.
    pub fn write(&self, out: &mut [u8; 55]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out[0] = b'0';
        out[1] = b'0';
        out[2] = b'-';
        for (i, b) in self.trace_id.to_bytes().iter().enumerate() {
            out[3 + 2 * i] = HEX[(b >> 4) as usize];
            out[4 + 2 * i] = HEX[(b & 15) as usize];
        }
        out[35] = b'-';
        for (i, b) in self.span_id.to_bytes().iter().enumerate() {
            out[36 + 2 * i] = HEX[(b >> 4) as usize];
            out[37 + 2 * i] = HEX[(b & 15) as usize];
        }
        out[52] = b'-';
        out[53] = HEX[(self.flags >> 4) as usize];
        out[54] = HEX[(self.flags & 15) as usize];
    }

    /// The OpenTelemetry span context this header describes (remote).
    pub fn to_span_context(&self, trace_state: TraceState) -> SpanContext {
        SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(self.trace_id.to_bytes()),
            opentelemetry::trace::SpanId::from_bytes(self.span_id.to_bytes()),
            TraceFlags::new(self.flags),
            true,
            trace_state,
        )
    }

    /// The header for an OpenTelemetry span context, if it is valid.
    pub fn from_span_context(sc: &SpanContext) -> Option<Self> {
        sc.is_valid().then(|| Self {
            trace_id: TraceId::from_bytes(sc.trace_id().to_bytes()),
            span_id: SpanId::from_bytes(sc.span_id().to_bytes()),
            flags: sc.trace_flags().to_u8() & 1,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 55];
        self.write(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;
    fn from_str(s: &str) -> Result<Self, TraceParentError> {
        Self::parse(s)
    }
}

/// Parses a `tracestate` value; `None` (drop it) when it is oversized or invalid.
pub fn parse_tracestate(value: &str) -> Option<TraceState> {
    if value.len() > MAX_TRACESTATE_BYTES {
        return None;
    }
    // More than 32 list members is invalid (the API silently keeps 32; we drop all).
    if value.split(',').filter(|m| !m.trim().is_empty()).count() > 32 {
        return None;
    }
    TraceState::from_str(value).ok()
}

/// The W3C Trace Context propagator (`traceparent` + `tracestate`), with W3C Baggage
/// (`baggage`) when opted in with [`W3cPropagator::with_baggage`].
///
/// Injects the span context of the context's OpenTelemetry span, or — when there is none —
/// of the current loop scope (so a loop recorded without an OpenTelemetry provider still
/// propagates its ids). Extracts into a remote span context.
#[derive(Debug, Default, Clone, Copy)]
pub struct W3cPropagator {
    baggage: bool,
}

/// The `baggage` header / field name.
pub const BAGGAGE: &str = "baggage";
/// Longest `baggage` header accepted (W3C limit); longer ones are dropped whole.
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// Most baggage members read (W3C limit: 180; the OpenTelemetry API keeps 64).
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

static FIELDS: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
    [
        TRACEPARENT.to_owned(),
        TRACESTATE.to_owned(),
        BAGGAGE.to_owned(),
    ]
});

fn baggage_safe(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b',' | b';' | b'\\' | b'"' | b'%' | b'=')
}

fn percent_encode(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if baggage_safe(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `baggage` header value for `baggage` (empty when there is none).
pub fn format_baggage(baggage: &opentelemetry::baggage::Baggage) -> String {
    let mut out = String::new();
    for (key, (value, metadata)) in baggage.iter() {
        if !out.is_empty() {
            out.push(',');
        }
        percent_encode(key.as_str(), &mut out);
        out.push('=');
        percent_encode(value.as_str(), &mut out);
        if !metadata.as_str().is_empty() {
            out.push(';');
            out.push_str(metadata.as_str());
        }
    }
    out
}

/// Parses a `baggage` header: members that are malformed are skipped; an oversized header is
/// dropped whole.
pub fn parse_baggage(value: &str) -> Vec<opentelemetry::baggage::KeyValueMetadata> {
    if value.len() > MAX_BAGGAGE_BYTES {
        return Vec::new();
    }
    value
        .split(',')
        .take(MAX_BAGGAGE_MEMBERS)
        .filter_map(|member| {
            let (kv, props) = member.split_once(';').unwrap_or((member, ""));
            let (k, v) = kv.split_once('=')?;
            let key = percent_decode(k.trim())?;
            if key.is_empty() || !key.bytes().all(baggage_safe) {
                return None;
            }
            let value = percent_decode(v.trim())?;
            Some(opentelemetry::baggage::KeyValueMetadata::new(
                key,
                value,
                props.trim().to_owned(),
            ))
        })
        .collect()
}

impl W3cPropagator {
    /// Trace context only (`traceparent` + `tracestate`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also propagate W3C Baggage (`baggage`), which may carry user data: opt-in.
    pub fn with_baggage(mut self) -> Self {
        self.baggage = true;
        self
    }

    /// The `traceparent` to send from `cx`, if it has a valid span or loop scope.
    pub fn traceparent(cx: &Context) -> Option<(TraceParent, Option<String>)> {
        let span = cx.span();
        let sc = span.span_context();
        if let Some(tp) = TraceParent::from_span_context(sc) {
            let state = sc.trace_state().header();
            return Some((tp, (!state.is_empty()).then_some(state)));
        }
        cx.get::<LoopScope>()
            .filter(|scope| scope.is_recording())
            .map(|scope| {
                (
                    TraceParent::new(scope.owner.run().trace_id, scope.parent_span_id()),
                    None,
                )
            })
    }
}

impl TextMapPropagator for W3cPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if let Some((tp, state)) = Self::traceparent(cx) {
            injector.set(TRACEPARENT, tp.to_string());
            if let Some(state) = state {
                injector.set(TRACESTATE, state);
            }
        }
        if self.baggage {
            use opentelemetry::baggage::BaggageExt as _;
            let header = format_baggage(cx.baggage());
            if !header.is_empty() {
                injector.set(BAGGAGE, header);
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let with_baggage;
        let cx = match extractor.get(BAGGAGE).filter(|_| self.baggage) {
            Some(header) => {
                use opentelemetry::baggage::BaggageExt as _;
                with_baggage = cx.with_baggage(parse_baggage(header));
                &with_baggage
            }
            None => cx,
        };
        let Some(tp) = extractor
            .get(TRACEPARENT)
            .and_then(|v| TraceParent::parse(v).ok())
        else {
            return cx.clone();
        };
        let state = extractor
            .get(TRACESTATE)
            .and_then(parse_tracestate)
            .unwrap_or_default();
        cx.with_remote_span_context(tp.to_span_context(state))
    }

    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        let n = if self.baggage { 3 } else { 2 };
        opentelemetry::propagation::text_map_propagator::FieldIter::new(&FIELDS[..n])
    }
}

/// Writes the current context's `traceparent` (and non-empty `tracestate`) into `carrier`.
/// Does nothing when there is no span or loop scope.
pub fn inject_current(carrier: &mut dyn Injector) {
    Context::map_current(|cx| W3cPropagator::new().inject_context(cx, carrier));
}

/// Writes `cx`'s `traceparent` (and non-empty `tracestate`) into `carrier`.
pub fn inject(cx: &Context, carrier: &mut dyn Injector) {
    W3cPropagator::new().inject_context(cx, carrier);
}

/// The current context continued from `carrier` (unchanged when it carries no valid
/// `traceparent`).
pub fn extract(carrier: &dyn Extractor) -> Context {
    Context::map_current(|cx| W3cPropagator::new().extract_with_context(cx, carrier))
}

/// The remote parent in `carrier`, if it carries a valid `traceparent`.
pub fn extract_traceparent(carrier: &dyn Extractor) -> Option<TraceParent> {
    carrier
        .get(TRACEPARENT)
        .and_then(|v| TraceParent::parse(v).ok())
}

/// A JSON message (an object) carrying its trace context in a `_trace_context` object, as
/// message-bus users do: `{"payload": …, "_trace_context": {"traceparent": "00-…"}}`.
/// Non-object messages are left alone and carry nothing.
pub struct JsonCarrier<'a>(pub &'a mut serde_json::Value);

impl Injector for JsonCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Some(obj) = self.0.as_object_mut() {
            let field = obj
                .entry(JSON_FIELD)
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !field.is_object() {
                *field = serde_json::Value::Object(Default::default());
            }
            if let Some(map) = field.as_object_mut() {
                map.insert(key.to_owned(), value.into());
            }
        }
    }
}

/// Reads the `_trace_context` of a JSON message.
pub struct JsonExtractor<'a>(pub &'a serde_json::Value);

impl Extractor for JsonExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(JSON_FIELD)?.get(key)?.as_str()
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .get(JSON_FIELD)
            .and_then(|v| v.as_object())
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// `http::HeaderMap` as an injector / extractor (feature `http`, on by default). Values that
/// are not valid header values are skipped.
#[cfg(feature = "http")]
pub struct HeaderCarrier<'a>(pub &'a mut http::HeaderMap);

#[cfg(feature = "http")]
impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Reads trace context from an `http::HeaderMap` (feature `http`).
#[cfg(feature = "http")]
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

#[cfg(feature = "http")]
impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_writes_the_w3c_example() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert!(tp.is_sampled());
        assert_eq!(tp.to_string(), GOOD);
        assert_eq!(tp.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn rejects_what_w3c_rejects() {
        let cases = [
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                TraceParentError::VersionFF,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                TraceParentError::ZeroId("trace-id"),
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                TraceParentError::ZeroId("parent-id"),
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                TraceParentError::NotHex("trace-id"),
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                TraceParentError::TrailingData,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                TraceParentError::Layout(52),
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                TraceParentError::Layout(55),
            ),
            (
                "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                TraceParentError::NotHex("version"),
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
                TraceParentError::NotHex("trace-flags"),
            ),
        ];
        for (value, err) in cases {
            assert_eq!(TraceParent::parse(value), Err(err), "{value}");
        }
    }

    #[test]
    fn future_versions_are_read_by_their_prefix() {
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-the-future-holds";
        let tp = TraceParent::parse(v).unwrap();
        assert_eq!(tp.flags, 1);
        assert!(
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x").is_err()
        );
    }

    #[test]
    fn invalid_tracestate_is_dropped_but_the_trace_continues() {
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), GOOD.to_owned());
        carrier.insert(
            "tracestate".to_owned(),
            "x".repeat(MAX_TRACESTATE_BYTES + 1),
        );
        let cx = W3cPropagator::new().extract_with_context(&Context::new(), &carrier);
        let span = cx.span();
        assert!(span.span_context().is_valid());
        assert_eq!(span.span_context().trace_state().header(), "");
        let many: Vec<_> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tracestate(&many.join(",")).is_none());
        assert!(parse_tracestate("vendor=value,other=x").is_some());
        assert!(parse_tracestate("BAD KEY=1").is_none());
    }

    #[test]
    fn round_trips_through_every_carrier() {
        let tp = TraceParent::parse(GOOD).unwrap();
        let state = TraceState::from_str("vendor=opaque").unwrap();
        let cx = Context::new().with_remote_span_context(tp.to_span_context(state));

        let mut map = HashMap::new();
        inject(&cx, &mut map);
        assert_eq!(map["traceparent"], GOOD);
        assert_eq!(map["tracestate"], "vendor=opaque");

        let mut msg = serde_json::json!({"payload": 1});
        inject(&cx, &mut JsonCarrier(&mut msg));
        assert_eq!(msg["_trace_context"]["traceparent"], GOOD);
        assert_eq!(extract_traceparent(&JsonExtractor(&msg)), Some(tp));
        let mut not_object = serde_json::json!([1]);
        inject(&cx, &mut JsonCarrier(&mut not_object));
        assert_eq!(not_object, serde_json::json!([1]));

        #[cfg(feature = "http")]
        {
            let mut headers = http::HeaderMap::new();
            inject(&cx, &mut HeaderCarrier(&mut headers));
            assert_eq!(extract_traceparent(&HeaderExtractor(&headers)), Some(tp));
        }
    }

    #[test]
    fn baggage_is_opt_in_and_round_trips() {
        use opentelemetry::baggage::BaggageExt as _;
        let cx = Context::new().with_baggage([
            opentelemetry::KeyValue::new("user.tier", "gold"),
            opentelemetry::KeyValue::new("note", "a, b; c=d ü"),
        ]);
        let mut plain = HashMap::new();
        W3cPropagator::new().inject_context(&cx, &mut plain);
        assert!(!plain.contains_key("baggage"), "baggage is opt-in");
        let mut map = HashMap::new();
        let p = W3cPropagator::new().with_baggage();
        p.inject_context(&cx, &mut map);
        let back = p.extract_with_context(&Context::new(), &map);
        assert_eq!(
            back.baggage()
                .get("user.tier")
                .map(|v| v.as_str().to_string()),
            Some("gold".into())
        );
        assert_eq!(
            back.baggage().get("note").map(|v| v.as_str().to_string()),
            Some("a, b; c=d ü".into())
        );
        // Hostile headers: oversized is dropped, malformed members are skipped.
        assert!(parse_baggage(&"k=v,".repeat(5000)).is_empty());
        let parsed = Context::new().with_baggage(parse_baggage(
            "good=1,=nokey,bad%zz=1,k2=%E2%9C%93;prop=1,noequals",
        ));
        let mut keys: Vec<_> = parsed
            .baggage()
            .iter()
            .map(|(k, _)| k.as_str().to_owned())
            .collect();
        keys.sort();
        assert_eq!(keys, ["good", "k2"]);
        assert_eq!(
            parsed.baggage().get("k2").map(|v| v.as_str().to_string()),
            Some("✓".into())
        );
    }

    #[test]
    fn empty_tracestate_is_never_written() {
        let tp = TraceParent::parse(GOOD).unwrap();
        let cx = Context::new().with_remote_span_context(tp.to_span_context(TraceState::NONE));
        let mut map = HashMap::new();
        inject(&cx, &mut map);
        assert!(!map.contains_key("tracestate"));
    }
}
