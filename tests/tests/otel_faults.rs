//! Fail-open with real (broken) collectors on 127.0.0.1: refused, accepting-and-hanging, and
//! killed mid-run. The loop runs at full speed, nothing panics or errors, the JSONL sink
//! keeps every document, and a failing JSONL sink does not stop the OpenTelemetry view.

use std::time::{Duration, Instant};

use loopotel::LoopTracer;
use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::otel::delivery::DeliveryCounters;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

const RUNS: u64 = 40;
const ITERATIONS: u64 = 25;

/// The shared fault workload with this file's sizes.
fn workload(tracer: &LoopTracer) -> Duration {
    tests::loop_workload(tracer, RUNS, ITERATIONS)
}

/// Spans one workload ends: per run the root, its iterations and one tool span each.
const SPANS_PER_WORKLOAD: u64 = RUNS * (1 + (ITERATIONS + 1) + ITERATIONS);

/// A provider exporting to `endpoint`, counting what it delivers, fails or drops.
fn provider_to(endpoint: &str) -> (SdkTracerProvider, DeliveryCounters) {
    tests::counted_otlp_provider(endpoint, None)
}

/// The loop with a broken collector vs the same loop with no provider, in this run.
fn assert_full_speed(endpoint: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    let baseline = workload(
        &LoopTracer::builder()
            .sink(JsonlExporter::create(dir.path().join("b.jsonl")).unwrap())
            .build(),
    );
    let (provider, counters) = provider_to(endpoint);
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(&path).unwrap())
        .build();
    let broken = workload(&tracer);
    // Shutdown may wait for the exporter's timeout: off the measured path, and bounded.
    let shutdown = std::thread::spawn(move || {
        let t = Instant::now();
        let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
        t.elapsed()
    });
    let took = shutdown.join().unwrap();
    assert!(
        took < Duration::from_secs(20),
        "{what}: shutdown took {took:?}"
    );
    // Generous: the bridge costs something, but a dead collector must not slow the loop.
    let ratio = broken.as_secs_f64() / baseline.as_secs_f64().max(1e-6);
    assert!(
        ratio < 25.0,
        "{what}: {broken:?} vs {baseline:?} ({ratio:.1}×)"
    );
    let docs: Vec<_> = JsonlReader::open(&path).unwrap().documents().collect();
    assert_eq!(
        docs.len() as u64,
        RUNS,
        "{what}: the JSONL sink keeps every run"
    );
    // Every span is accounted for: nothing delivered, all of it reported as dropped.
    let stats = counters.report_final();
    assert_eq!(stats.ended, SPANS_PER_WORKLOAD, "{what}: {stats:?}");
    assert_eq!(stats.exported, 0, "{what}: {stats:?}");
    assert_eq!(stats.dropped(), stats.ended, "{what}: {stats:?}");
}

#[test]
fn a_refused_endpoint_does_not_slow_or_break_the_loop() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_full_speed(&format!("http://127.0.0.1:{port}"), "refused");
}

#[test]
fn an_endpoint_that_accepts_and_never_answers_does_not_block_the_loop() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = {
        let stop = stop.clone();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let mut conns = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((c, _)) = listener.accept() {
                    conns.push(c); // accepted, never read, never answered
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    assert_full_speed(&format!("http://{addr}"), "hung");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    held.join().unwrap();
}

#[test]
fn a_collector_killed_mid_run_does_not_break_the_loop() {
    let rt = tests::server_runtime();
    let (endpoint, _rx) = rt.block_on(tests::otlp_http_receiver());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    let (provider, counters) = provider_to(&endpoint);
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(&path).unwrap())
        .build();
    workload(&tracer);
    let _ = provider.force_flush();
    let before = counters.snapshot();
    rt.shutdown_timeout(Duration::from_secs(1)); // the collector dies
    workload(&tracer);
    let _ =
        std::thread::spawn(move || provider.shutdown_with_timeout(Duration::from_secs(5))).join();
    let docs: Vec<_> = JsonlReader::open(&path).unwrap().documents().collect();
    assert_eq!(docs.len() as u64, 2 * RUNS);
    // Delivered while the collector lived; the rest counted as lost, none unaccounted for.
    let stats = counters.report_final();
    assert_eq!(stats.ended, 2 * SPANS_PER_WORKLOAD, "{stats:?}");
    assert!(before.exported > 0, "{before:?}");
    assert_eq!(stats.exported, before.exported, "{stats:?}");
    assert_eq!(stats.dropped(), stats.ended - stats.exported, "{stats:?}");
}

#[test]
fn a_failing_jsonl_sink_does_not_stop_the_otel_view() {
    let Ok(full) = JsonlExporter::create("/dev/full") else {
        eprintln!("SKIPPED: no /dev/full on this machine");
        return;
    };
    let full = std::sync::Arc::new(full);
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .shared_sink(full.clone())
        .build();
    workload(&tracer);
    assert_eq!(full.failed(), RUNS);
    let expected = RUNS * (1 + ITERATIONS * 2 + 1);
    assert_eq!(spans.get_finished_spans().unwrap().len() as u64, expected);
}

/// A collector on 127.0.0.1 that reads each request and answers `status` after `delay`.
fn answering_collector(
    status: u16,
    delay: Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((mut c, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            std::thread::spawn(move || {
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 65536];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                std::thread::sleep(delay);
                let reason = if status == 200 { "OK" } else { "Error" };
                let mut head = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n"
                );
                if status == 429 {
                    head.push_str("retry-after: 1\r\n");
                }
                head.push_str("\r\n");
                let _ = c.write_all(head.as_bytes());
            });
        }
    });
    (format!("http://{addr}"), stop)
}

#[test]
fn a_collector_answering_5xx_or_429_does_not_slow_or_break_the_loop() {
    for (status, what) in [(503, "503"), (500, "500"), (429, "429")] {
        let (endpoint, stop) = answering_collector(status, Duration::ZERO);
        assert_full_speed(&endpoint, what);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_slow_collector_does_not_slow_the_loop() {
    // Seconds per export, longer than the exporter's 2 s timeout.
    let (endpoint, stop) = answering_collector(200, Duration::from_secs(3));
    assert_full_speed(&endpoint, "slow");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
