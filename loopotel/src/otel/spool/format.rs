//! The on-disk form of a batch of `SpanData` (JSON, versioned): every field the exporter
//! needs to re-send a span with its original ids, timestamps, attributes, events, links,
//! status and scope.

use std::borrow::Cow;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(super) struct SpoolBatch {
    pub(super) version: u32,
    pub(super) spans: Vec<SpooledSpan>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct SpooledSpan {
    trace_id: String,
    span_id: String,
    flags: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    trace_state: String,
    #[serde(default)]
    remote: bool,
    parent: String,
    #[serde(default)]
    parent_remote: bool,
    kind: u8,
    name: String,
    start_ns: u64,
    end_ns: u64,
    attributes: Vec<SpooledKv>,
    #[serde(default)]
    dropped_attributes: u32,
    events: Vec<SpooledEvent>,
    #[serde(default)]
    dropped_events: u32,
    links: Vec<SpooledLink>,
    #[serde(default)]
    dropped_links: u32,
    status: SpooledStatus,
    scope: SpooledScope,
}

#[derive(Serialize, Deserialize)]
struct SpooledKv(String, SpooledValue);

/// Floats as their bits, so NaN and infinities survive JSON.
#[derive(Serialize, Deserialize)]
enum SpooledValue {
    B(bool),
    I(i64),
    F(u64),
    S(String),
    Bs(Vec<bool>),
    Is(Vec<i64>),
    Fs(Vec<u64>),
    Ss(Vec<String>),
}

#[derive(Serialize, Deserialize)]
struct SpooledEvent {
    name: String,
    time_ns: u64,
    attributes: Vec<SpooledKv>,
    #[serde(default)]
    dropped_attributes: u32,
}

#[derive(Serialize, Deserialize)]
struct SpooledLink {
    trace_id: String,
    span_id: String,
    flags: u8,
    #[serde(default)]
    trace_state: String,
    attributes: Vec<SpooledKv>,
    #[serde(default)]
    dropped_attributes: u32,
}

#[derive(Serialize, Deserialize)]
enum SpooledStatus {
    Unset,
    Ok,
    Error(String),
}

#[derive(Serialize, Deserialize)]
struct SpooledScope {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    schema_url: Option<String>,
    #[serde(default)]
    attributes: Vec<SpooledKv>,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn kvs(attributes: &[KeyValue]) -> Vec<SpooledKv> {
    attributes
        .iter()
        .map(|kv| SpooledKv(kv.key.as_str().to_owned(), (&kv.value).into()))
        .collect()
}

fn from_kvs(attributes: Vec<SpooledKv>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|SpooledKv(k, v)| KeyValue::new(Key::new(k), Value::from(v)))
        .collect()
}

impl From<&Value> for SpooledValue {
    fn from(v: &Value) -> Self {
        match v {
            Value::Bool(b) => Self::B(*b),
            Value::I64(i) => Self::I(*i),
            Value::F64(f) => Self::F(f.to_bits()),
            Value::String(s) => Self::S(s.as_str().to_owned()),
            Value::Array(Array::Bool(a)) => Self::Bs(a.clone()),
            Value::Array(Array::I64(a)) => Self::Is(a.clone()),
            Value::Array(Array::F64(a)) => Self::Fs(a.iter().map(|f| f.to_bits()).collect()),
            Value::Array(Array::String(a)) => {
                Self::Ss(a.iter().map(|s| s.as_str().to_owned()).collect())
            }
            // Kinds added to opentelemetry after this build: kept as their text.
            other => Self::S(other.to_string()),
        }
    }
}

impl From<SpooledValue> for Value {
    fn from(v: SpooledValue) -> Self {
        match v {
            SpooledValue::B(b) => Value::Bool(b),
            SpooledValue::I(i) => Value::I64(i),
            SpooledValue::F(bits) => Value::F64(f64::from_bits(bits)),
            SpooledValue::S(s) => Value::String(s.into()),
            SpooledValue::Bs(a) => Value::Array(Array::Bool(a)),
            SpooledValue::Is(a) => Value::Array(Array::I64(a)),
            SpooledValue::Fs(a) => {
                Value::Array(Array::F64(a.into_iter().map(f64::from_bits).collect()))
            }
            SpooledValue::Ss(a) => Value::Array(Array::String(
                a.into_iter().map(StringValue::from).collect(),
            )),
        }
    }
}

fn kind_code(kind: &SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 0,
        SpanKind::Server => 1,
        SpanKind::Client => 2,
        SpanKind::Producer => 3,
        SpanKind::Consumer => 4,
    }
}

fn kind_of(code: u8) -> SpanKind {
    match code {
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

impl From<&SpanData> for SpooledSpan {
    fn from(s: &SpanData) -> Self {
        let cx = &s.span_context;
        Self {
            trace_id: cx.trace_id().to_string(),
            span_id: cx.span_id().to_string(),
            flags: cx.trace_flags().to_u8(),
            trace_state: cx.trace_state().header(),
            remote: cx.is_remote(),
            parent: s.parent_span_id.to_string(),
            parent_remote: s.parent_span_is_remote,
            kind: kind_code(&s.span_kind),
            name: s.name.to_string(),
            start_ns: nanos(s.start_time),
            end_ns: nanos(s.end_time),
            attributes: kvs(&s.attributes),
            dropped_attributes: s.dropped_attributes_count,
            events: s
                .events
                .events
                .iter()
                .map(|e| SpooledEvent {
                    name: e.name.to_string(),
                    time_ns: nanos(e.timestamp),
                    attributes: kvs(&e.attributes),
                    dropped_attributes: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events: s.events.dropped_count,
            links: s
                .links
                .links
                .iter()
                .map(|l| SpooledLink {
                    trace_id: l.span_context.trace_id().to_string(),
                    span_id: l.span_context.span_id().to_string(),
                    flags: l.span_context.trace_flags().to_u8(),
                    trace_state: l.span_context.trace_state().header(),
                    attributes: kvs(&l.attributes),
                    dropped_attributes: l.dropped_attributes_count,
                })
                .collect(),
            dropped_links: s.links.dropped_count,
            status: match &s.status {
                Status::Unset => SpooledStatus::Unset,
                Status::Ok => SpooledStatus::Ok,
                Status::Error { description } => SpooledStatus::Error(description.to_string()),
            },
            scope: SpooledScope {
                name: s.instrumentation_scope.name().to_owned(),
                version: s.instrumentation_scope.version().map(str::to_owned),
                schema_url: s.instrumentation_scope.schema_url().map(str::to_owned),
                attributes: kvs(&s
                    .instrumentation_scope
                    .attributes()
                    .cloned()
                    .collect::<Vec<_>>()),
            },
        }
    }
}

fn context(
    trace_id: &str,
    span_id: &str,
    flags: u8,
    state: &str,
    remote: bool,
) -> Result<SpanContext, String> {
    let trace_id =
        TraceId::from_hex(trace_id).map_err(|e| format!("trace id {trace_id:?}: {e}"))?;
    let span_id = SpanId::from_hex(span_id).map_err(|e| format!("span id {span_id:?}: {e}"))?;
    let state = if state.is_empty() {
        TraceState::NONE
    } else {
        TraceState::from_str(state).unwrap_or(TraceState::NONE)
    };
    Ok(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        remote,
        state,
    ))
}

impl TryFrom<SpooledSpan> for SpanData {
    type Error = String;

    fn try_from(s: SpooledSpan) -> Result<Self, String> {
        let span_context = context(&s.trace_id, &s.span_id, s.flags, &s.trace_state, s.remote)?;
        let parent_span_id =
            SpanId::from_hex(&s.parent).map_err(|e| format!("parent id {:?}: {e}", s.parent))?;
        let mut events = SpanEvents::default();
        events.events = s
            .events
            .into_iter()
            .map(|e| {
                let mut event = Event::new(e.name, time(e.time_ns), from_kvs(e.attributes), 0);
                event.dropped_attributes_count = e.dropped_attributes;
                event
            })
            .collect();
        events.dropped_count = s.dropped_events;
        let mut links = SpanLinks::default();
        for l in s.links {
            let cx = context(&l.trace_id, &l.span_id, l.flags, &l.trace_state, true)?;
            links
                .links
                .push(Link::new(cx, from_kvs(l.attributes), l.dropped_attributes));
        }
        links.dropped_count = s.dropped_links;
        let mut scope = InstrumentationScope::builder(s.scope.name);
        if let Some(v) = s.scope.version {
            scope = scope.with_version(v);
        }
        if let Some(u) = s.scope.schema_url {
            scope = scope.with_schema_url(u);
        }
        Ok(SpanData {
            span_context,
            parent_span_id,
            parent_span_is_remote: s.parent_remote,
            span_kind: kind_of(s.kind),
            name: Cow::Owned(s.name),
            start_time: time(s.start_ns),
            end_time: time(s.end_ns),
            attributes: from_kvs(s.attributes),
            dropped_attributes_count: s.dropped_attributes,
            events,
            links,
            status: match s.status {
                SpooledStatus::Unset => Status::Unset,
                SpooledStatus::Ok => Status::Ok,
                SpooledStatus::Error(d) => Status::error(d),
            },
            instrumentation_scope: scope.with_attributes(from_kvs(s.scope.attributes)).build(),
        })
    }
}
