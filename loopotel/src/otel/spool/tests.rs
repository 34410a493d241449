//! Tests of the spool: round trips of every span field, claims, eviction, restarts.
use std::fs;
use std::str::FromStr as _;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

use super::format::{SpoolBatch, SpooledSpan};
use super::store::EXT;
use super::*;
use opentelemetry_sdk::trace::InMemorySpanExporter;

fn rich_span() -> SpanData {
    let cx = SpanContext::new(
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        SpanId::from_hex("b7ad6b7169203331").unwrap(),
        TraceFlags::SAMPLED,
        false,
        TraceState::from_str("vendor=a,other=b").unwrap(),
    );
    let mut events = SpanEvents::default();
    events.events.push(Event::new(
        "exception",
        UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        vec![KeyValue::new("exception.message", "boom")],
        2,
    ));
    events.dropped_count = 3;
    let mut links = SpanLinks::default();
    links.links.push(Link::new(
        SpanContext::new(
            TraceId::from_hex("11111111111111111111111111111111").unwrap(),
            SpanId::from_hex("2222222222222222").unwrap(),
            TraceFlags::default(),
            true,
            TraceState::NONE,
        ),
        vec![KeyValue::new("link.kind", "retry")],
        1,
    ));
    SpanData {
        span_context: cx,
        parent_span_id: SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        parent_span_is_remote: true,
        span_kind: SpanKind::Client,
        name: "chat gpt-x".into(),
        start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001),
        end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_999_999_999),
        attributes: vec![
            KeyValue::new("b", true),
            KeyValue::new("i", -7_i64),
            KeyValue::new("f", 0.25),
            KeyValue::new("nan", f64::NAN),
            KeyValue::new("inf", f64::NEG_INFINITY),
            KeyValue::new("s", "text with \"quotes\" and \n newline"),
            KeyValue::new("bs", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("is", Value::Array(Array::I64(vec![1, 2]))),
            KeyValue::new("fs", Value::Array(Array::F64(vec![1.5, f64::INFINITY]))),
            KeyValue::new(
                "ss",
                Value::Array(Array::String(vec!["a".into(), "b".into()])),
            ),
        ],
        dropped_attributes_count: 4,
        events,
        links,
        status: Status::error("it broke"),
        instrumentation_scope: InstrumentationScope::builder("loopotel")
            .with_version("0.1.0")
            .with_schema_url("https://opentelemetry.io/schemas/1.41.0")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build(),
    }
}

/// Debug text compares every field (NaN included, which `PartialEq` would not); whether
/// a string was static or owned is not data.
fn same(a: &SpanData, b: &SpanData) {
    let text = |s: &SpanData| format!("{s:?}").replace("Static(", "Owned(");
    assert_eq!(text(a), text(b));
}

#[test]
fn every_field_of_a_span_survives_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    let span = rich_span();
    let err = OTelSdkError::InternalFailure("down".into());
    assert_eq!(spool.write(std::slice::from_ref(&span), &err).unwrap(), 0);
    let files = spool.files();
    assert_eq!((files.len(), files[0].spans), (1, 1));
    let back = read_batch(&files[0].path).unwrap();
    same(&back[0], &span);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&files[0].path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "spool files are private: {mode:o}");
    }
}

#[test]
fn drain_resends_oldest_first_and_drops_unreadable_files_counted() {
    let dir = tempfile::tempdir().unwrap();
    let err = OTelSdkError::InternalFailure("down".into());
    let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    let mut first = rich_span();
    first.name = "first".into();
    let mut second = rich_span();
    second.name = "second".into();
    spool.write(&[first], &err).unwrap();
    spool.write(&[second.clone(), second], &err).unwrap();
    // A damaged file (written by hand, so it sorts first).
    fs::write(dir.path().join(format!("00-0-0-5.{EXT}")), b"{not json").unwrap();
    // A temporary file and a claim left by a process that no longer exists.
    fs::write(dir.path().join(".tmp-999999999-1"), b"partial").unwrap();
    let orphan = dir.path().join(format!("01-0-0-1.{EXT}"));
    fs::write(
        &orphan,
        serde_json::to_vec(&SpoolBatch {
            version: 1,
            spans: vec![SpooledSpan::from(&rich_span())],
        })
        .unwrap(),
    )
    .unwrap();
    let claimed = dir.path().join(format!("01-0-0-1.{EXT}.sending-999999999"));
    fs::rename(&orphan, &claimed).unwrap();

    let collector = InMemorySpanExporter::default();
    let counters = DeliveryCounters::new();
    let exporter = SpoolingSpanExporter::new(
        collector.clone(),
        SpoolConfig::new(dir.path()),
        counters.clone(),
    )
    .unwrap();
    assert!(!dir.path().join(".tmp-999999999-1").exists());
    assert_eq!(exporter.spooled_on_disk(), 5 + 1 + 1 + 2);
    let report = futures_executor::block_on(exporter.drain());
    assert_eq!((report.files, report.spans, report.complete), (3, 4, true));
    let names: Vec<_> = collector
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["chat gpt-x", "first", "second", "second"]);
    let stats = counters.snapshot();
    assert_eq!((stats.resent, stats.evicted), (4, 5));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_drain_cancelled_mid_export_leaves_nothing_claimed() {
    /// A collector that never answers: the drain's export stays pending.
    #[derive(Debug)]
    struct Hung;
    impl SpanExporter for Hung {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending().await
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let err = OTelSdkError::InternalFailure("down".into());
    Spool::open(SpoolConfig::new(dir.path()))
        .unwrap()
        .write(&[rich_span()], &err)
        .unwrap();
    let exporter =
        SpoolingSpanExporter::new(Hung, SpoolConfig::new(dir.path()), DeliveryCounters::new())
            .unwrap();
    {
        let mut drain = std::pin::pin!(exporter.drain());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(drain.as_mut().poll(&mut cx).is_pending());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names[0].contains(".sending-"),
            "claimed while sending: {names:?}"
        );
    } // cancelled here (an export timeout, a shutdown)
    assert_eq!(
        exporter.spooled_on_disk(),
        1,
        "the file is back in the spool"
    );
    assert!(
        !exporter.spool.draining.load(Ordering::Relaxed),
        "a later drain can run"
    );
}

#[test]
fn a_failing_collector_keeps_the_spool_and_a_spool_that_cannot_be_written_counts_a_failure() {
    #[derive(Debug)]
    struct Down;
    impl SpanExporter for Down {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("connection refused".into()))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let counters = DeliveryCounters::new();
    let exporter =
        SpoolingSpanExporter::new(Down, SpoolConfig::new(dir.path()), counters.clone()).unwrap();
    assert!(futures_executor::block_on(exporter.export(vec![rich_span()])).is_ok());
    let report = futures_executor::block_on(exporter.drain());
    assert_eq!((report.files, report.complete), (0, false));
    assert_eq!(
        exporter.spooled_on_disk(),
        1,
        "a failed re-send puts the file back"
    );
    // The spool directory disappears (disk trouble): the batch is lost, and counted.
    fs::remove_dir_all(dir.path()).unwrap();
    assert!(futures_executor::block_on(exporter.export(vec![rich_span()])).is_err());
    let stats = counters.snapshot();
    assert_eq!((stats.spooled, stats.failed), (1, 1));
}
