//! The no-loss disk spool with real collectors on 127.0.0.1: down for part of a run, killed
//! and restarted mid-run, down across a restart of the exporting side, and over the spool's
//! size cap. Every span arrives exactly once with its original ids, or is counted as evicted.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use loopotel::LoopTracer;
use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::otel::delivery::{DeliveryCounters, DeliveryStats};
use loopotel::otel::spool::SpoolConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::sync::mpsc::UnboundedReceiver;

const RUNS: u64 = 20;
const ITERATIONS: u64 = 10;
/// Per run: the root, its iterations and one tool span each.
const SPANS_PER_WORKLOAD: u64 = RUNS * (1 + (ITERATIONS + 1) + ITERATIONS);

/// The shared fault workload with this file's sizes.
fn workload(tracer: &LoopTracer) -> Duration {
    tests::loop_workload(tracer, RUNS, ITERATIONS)
}

/// A tracer writing JSONL to `jsonl` and spans to `endpoint` through a spool in `spool`.
fn spooled_tracer(
    endpoint: &str,
    spool: SpoolConfig,
    jsonl: &Path,
) -> (LoopTracer, SdkTracerProvider, DeliveryCounters) {
    let (provider, counters) = tests::counted_otlp_provider(endpoint, Some(spool));
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(jsonl).unwrap())
        .build();
    (tracer, provider, counters)
}

fn shutdown(provider: SdkTracerProvider) {
    let _ =
        std::thread::spawn(move || provider.shutdown_with_timeout(Duration::from_secs(10))).join();
}

/// A free port on 127.0.0.1 (bound, then released: connections are refused until a
/// collector binds it).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn received(rxs: &mut [UnboundedReceiver<(String, Vec<u8>)>]) -> Vec<(String, String)> {
    let mut bodies = Vec::new();
    for rx in rxs {
        while let Ok((_, body)) = rx.try_recv() {
            bodies.push(body);
        }
    }
    tests::otlp_span_ids(&bodies)
}

fn recorded(jsonl: &Path) -> Vec<(String, String)> {
    let docs: Vec<_> = JsonlReader::open(jsonl)
        .unwrap()
        .documents()
        .map(|r| r.unwrap().value)
        .collect();
    tests::ltf_span_ids(&docs)
}

/// Every recorded span arrived exactly once, and nothing else arrived.
fn assert_exactly_once(got: &[(String, String)], want: &[(String, String)]) {
    let mut counts: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for id in got {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "arrived more than once: {twice:?}");
    let got: std::collections::BTreeSet<_> = got.iter().collect();
    let want: std::collections::BTreeSet<_> = want.iter().collect();
    let missing = want.difference(&got).count();
    let unknown = got.difference(&want).count();
    assert_eq!(
        (missing, unknown),
        (0, 0),
        "{} recorded, {} arrived: (missing, unknown)",
        want.len(),
        got.len()
    );
}

fn assert_all_delivered(stats: DeliveryStats, spans: u64) {
    assert_eq!(stats.ended, spans, "{stats:?}");
    assert!(stats.spooled > 0, "nothing was spooled: {stats:?}");
    assert_eq!(stats.resent, stats.spooled, "{stats:?}");
    assert_eq!(stats.delivered(), spans, "{stats:?}");
    assert_eq!((stats.evicted, stats.dropped()), (0, 0), "{stats:?}");
}

#[test]
fn a_collector_down_for_part_of_a_run_gets_every_span_exactly_once_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("traces.jsonl");
    let addr = free_addr();
    let (tracer, provider, counters) = spooled_tracer(
        &format!("http://{addr}"),
        SpoolConfig::new(dir.path().join("spool")),
        &jsonl,
    );
    let down = workload(&tracer); // refused: spooled
    let _ = provider.force_flush();
    let while_down = counters.snapshot();
    assert_eq!(while_down.spooled, SPANS_PER_WORKLOAD, "{while_down:?}");
    let rt = tests::server_runtime();
    let (_, rx) = rt.block_on(tests::otlp_http_receiver_on(&addr));
    let up = workload(&tracer); // back: this run's spans, then the spool
    shutdown(provider);
    assert_exactly_once(&received(&mut [rx]), &recorded(&jsonl));
    assert_all_delivered(counters.report_final(), 2 * SPANS_PER_WORKLOAD);
    // Spooling happens on the exporter's thread, not the loop's: the same loop runs as fast
    // with the collector down as with it up (generous, as for the other faults).
    let ratio = down.as_secs_f64() / up.as_secs_f64().max(1e-6);
    assert!(ratio < 25.0, "down {down:?} vs up {up:?} ({ratio:.1}×)");
}

#[test]
fn a_collector_killed_and_restarted_mid_run_gets_every_span_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("traces.jsonl");
    let first = tests::server_runtime();
    let (endpoint, rx1) = first.block_on(tests::otlp_http_receiver());
    let addr = endpoint.trim_start_matches("http://").to_owned();
    let (tracer, provider, counters) = spooled_tracer(
        &endpoint,
        SpoolConfig::new(dir.path().join("spool")),
        &jsonl,
    );
    workload(&tracer);
    let _ = provider.force_flush();
    assert_eq!(counters.snapshot().exported, SPANS_PER_WORKLOAD);
    first.shutdown_timeout(Duration::from_secs(1)); // killed
    workload(&tracer);
    let _ = provider.force_flush();
    let second = tests::server_runtime();
    let (_, rx2) = second.block_on(tests::otlp_http_receiver_on(&addr)); // restarted
    workload(&tracer);
    shutdown(provider);
    assert_exactly_once(&received(&mut [rx1, rx2]), &recorded(&jsonl));
    assert_all_delivered(counters.report_final(), 3 * SPANS_PER_WORKLOAD);
}

#[test]
fn spooled_spans_survive_a_restart_of_the_exporting_process() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("traces.jsonl");
    let spool = dir.path().join("spool");
    let addr = free_addr();
    let endpoint = format!("http://{addr}");
    // First "process": the collector is down the whole time; its exporter goes away.
    let (tracer, provider, counters) = spooled_tracer(&endpoint, SpoolConfig::new(&spool), &jsonl);
    workload(&tracer);
    drop(tracer);
    shutdown(provider);
    let first = counters.report_final();
    assert_eq!(
        (first.spooled, first.delivered(), first.dropped()),
        (SPANS_PER_WORKLOAD, 0, 0),
        "{first:?}"
    );
    // Second: a new exporter on the same spool, the collector back.
    let rt = tests::server_runtime();
    let (_, rx) = rt.block_on(tests::otlp_http_receiver_on(&addr));
    let (tracer, provider, counters) = spooled_tracer(&endpoint, SpoolConfig::new(&spool), &jsonl);
    workload(&tracer);
    shutdown(provider);
    assert_exactly_once(&received(&mut [rx]), &recorded(&jsonl));
    let second = counters.report_final();
    assert_eq!(second.resent, SPANS_PER_WORKLOAD, "{second:?}");
    assert_eq!(second.exported, SPANS_PER_WORKLOAD, "{second:?}");
    let left = std::fs::read_dir(&spool).unwrap().count();
    assert_eq!(left, 0, "the spool is empty once everything was delivered");
}

#[test]
fn a_full_spool_evicts_the_oldest_spans_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("traces.jsonl");
    let spool = dir.path().join("spool");
    let addr = free_addr();
    let cap = 512 * 1024;
    let (tracer, provider, counters) = spooled_tracer(
        &format!("http://{addr}"),
        SpoolConfig::new(&spool).max_bytes(cap),
        &jsonl,
    );
    // Several batches (each about 130 KB on disk), so the cap has something old to evict.
    const ROUNDS: u64 = 8;
    for _ in 0..ROUNDS {
        workload(&tracer);
        let _ = provider.force_flush();
    }
    let on_disk: u64 = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= cap, "{on_disk} bytes on disk, cap {cap}");
    let full = counters.snapshot();
    assert!(full.evicted > 0, "{full:?}");
    let rt = tests::server_runtime();
    let (_, rx) = rt.block_on(tests::otlp_http_receiver_on(&addr));
    shutdown(provider); // the collector is back: what the spool kept goes now
    let got = received(&mut [rx]);
    let stats = counters.report_final();
    assert_eq!(stats.ended, ROUNDS * SPANS_PER_WORKLOAD, "{stats:?}");
    assert_eq!(stats.delivered(), got.len() as u64, "{stats:?}");
    assert_eq!(stats.delivered() + stats.evicted, stats.ended, "{stats:?}");
    assert_eq!(stats.dropped(), stats.evicted, "{stats:?}");
    // What arrived arrived once, and is the newest part of what was recorded.
    let want = recorded(&jsonl);
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "duplicates arrived");
    assert!(
        got.iter().all(|id| want.contains(id)),
        "unknown spans arrived"
    );
    let last_run = want.last().unwrap();
    assert!(got.contains(last_run), "the newest spans are kept");
}
