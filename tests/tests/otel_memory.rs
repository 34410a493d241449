//! Memory stays bounded while the collector accepts connections and never answers: the
//! instrumented loop keeps running, the SDK's queue is bounded, and LTF documents are written
//! out and freed. One test in its own binary, so other tests do not move the process's RSS.

use std::time::{Duration, Instant};

use loopotel::otel::otlp::{Protocol, span_exporter};
use loopotel::{LoopTracer, Outcome, SpanKind};
use opentelemetry_sdk::trace::SdkTracerProvider;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[test]
fn a_hung_collector_does_not_grow_memory_without_bound() {
    let Some(_) = rss_kib() else {
        eprintln!("SKIPPED: no /proc/self/status on this system");
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hold = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conns = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((c, _)) = listener.accept() {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let exporter = span_exporter(
        &format!("http://{addr}"),
        Protocol::HttpProtobuf,
        Duration::from_secs(2),
        &[],
    )
    .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let dir = tempfile::tempdir().unwrap();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(loopotel::jsonl::JsonlExporter::create(dir.path().join("t.jsonl")).unwrap())
        .build();
    let round = |runs: u32| {
        for _ in 0..runs {
            let run = tracer.run("memory-loop").start();
            for n in 1..=20 {
                let mut it = run.iteration(n);
                let mut tool = it.span("execute_tool search", SpanKind::Worker);
                tool.set_attribute("payload", "x".repeat(256));
                drop(tool);
                it.evaluator_complete("critic", 0.5);
            }
            run.finish(Outcome::Success, "done");
        }
    };
    round(200); // warm up: the SDK queue fills to its bound, allocators settle
    let before = rss_kib().unwrap();
    round(2000); // 82 000 spans more, none of which can be delivered
    let after = rss_kib().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ =
        std::thread::spawn(move || provider.shutdown_with_timeout(Duration::from_secs(5))).join();
    hold.join().unwrap();
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    // Unbounded buffering of 82 000 spans with 256-byte payloads would be well over 20 MiB.
    eprintln!("RSS grew {grown_mib:.1} MiB over 82 000 undeliverable spans");
    assert!(
        grown_mib < 20.0,
        "RSS grew {grown_mib:.1} MiB ({before} → {after} KiB)"
    );
}
