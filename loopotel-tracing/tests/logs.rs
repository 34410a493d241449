//! Log lines carry the loop: `tracing` events through the maintained
//! `opentelemetry-appender-tracing` into a real OTLP/gRPC logs receiver, and
//! `tracing_subscriber::fmt` JSON lines.

#![cfg(all(feature = "logs", feature = "fmt"))]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_opentelemetry_collector::FakeCollectorServer;
use loopotel::{LoopTracer, Outcome};
use loopotel_tracing::{LoopFields, LoopLayer, LoopLogProcessor};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, WithExportConfig as _};
use opentelemetry_sdk::logs::{SdkLoggerProvider, SimpleLogProcessor};
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_in_a_loop_carry_trace_span_run_and_iteration() {
    let mut collector = FakeCollectorServer::start().await.expect("a collector");
    let exporter = LogExporter::builder()
        .with_tonic()
        .with_endpoint(collector.endpoint())
        .build()
        .expect("an OTLP log exporter");
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(LoopLogProcessor::new(SimpleLogProcessor::new(exporter)))
        .build();
    let bridge = OpenTelemetryTracingBridge::new(&logger_provider);

    let tracer = LoopTracer::new();
    let subscriber = tracing_subscriber::registry()
        .with(LoopLayer::new())
        .with(bridge);
    let (doc, step_id) = tokio::task::spawn_blocking(move || {
        tracing::subscriber::with_default(subscriber, || {
            let run = tracer.run("logged-loop").start();
            let it = run.iteration(2);
            let step_id = {
                let _inside = it.enter();
                tracing::info!(target: "agent", "iteration started");
                let step = tracing::info_span!("step");
                let _s = step.enter();
                tracing::warn!(target: "agent", attempt = 1, "inside a step");
                loopotel::context::current_position().map(|p| p.span_id)
            };
            drop(it);
            tracing::info!(target: "agent", "outside the loop");
            (run.finish(Outcome::Success, "done"), step_id)
        })
    })
    .await
    .unwrap();
    let logs = collector.exported_logs(3, Duration::from_secs(10)).await;
    let _ = logger_provider.shutdown();

    let trace = opentelemetry::trace::TraceId::from_bytes(doc.trace_id.to_bytes()).to_string();
    let iteration = doc.iterations().next().unwrap();
    let step = doc
        .spans
        .iter()
        .find(|s| s.name.as_str() == "step")
        .unwrap();
    assert_eq!(step_id, Some(step.span_id));
    let find = |body: &str| {
        logs.iter()
            .find(|l| l.body.as_deref().is_some_and(|b| b.contains(body)))
            .unwrap_or_else(|| panic!("no log {body:?} in {logs:#?}"))
    };
    let started = find("iteration started");
    assert_eq!(started.trace_id, trace);
    assert_eq!(started.span_id, iteration.span_id.to_string());
    // The collector shows each attribute as the received protobuf value.
    let attr = |l: &fake_opentelemetry_collector::ExportedLog, k: &str| {
        l.attributes.get(k).cloned().unwrap_or_default()
    };
    assert!(attr(started, "loop.iteration").contains("IntValue(2)"));
    assert!(attr(started, "loop.run_id").contains(&format!("StringValue(\"{}\")", doc.trace_id)));
    assert!(attr(started, "loop.name").contains("StringValue(\"logged-loop\")"));
    let inside = find("inside a step");
    assert_eq!(inside.trace_id, trace);
    assert_eq!(inside.span_id, step.span_id.to_string());
    let outside = find("outside the loop");
    assert!(!outside.attributes.contains_key("loop.run_id"));
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn fmt_json_lines_in_a_loop_carry_trace_span_run_and_iteration() {
    let lines = Lines::default();
    let writer = lines.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .event_format(LoopFields::new(tracing_subscriber::fmt::format().json()))
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .with_writer(move || writer.clone());
    let subscriber = tracing_subscriber::registry()
        .with(LoopLayer::new())
        .with(fmt);
    let tracer = LoopTracer::new();
    let doc = tracing::subscriber::with_default(subscriber, || {
        let run = tracer.run("json-lines").start();
        let it = run.iteration(4);
        {
            let _inside = it.enter();
            tracing::info!(items = 2, "in the loop");
        }
        drop(it);
        tracing::info!("after the loop");
        run.finish(Outcome::Success, "done")
    });
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let parsed: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(parsed.len(), 2, "{text}");
    let inside = &parsed[0];
    let iteration = doc.iterations().next().unwrap();
    assert_eq!(inside["fields"]["message"], "in the loop");
    assert_eq!(inside["fields"]["items"], 2);
    assert_eq!(
        inside["trace_id"],
        opentelemetry::trace::TraceId::from_bytes(doc.trace_id.to_bytes()).to_string()
    );
    assert_eq!(inside["span_id"], iteration.span_id.to_string());
    assert_eq!(inside["loop.iteration"], 4);
    assert_eq!(inside["loop.name"], "json-lines");
    assert_eq!(inside["loop.run_id"], doc.trace_id.to_string());
    assert!(parsed[1].get("trace_id").is_none());
}
