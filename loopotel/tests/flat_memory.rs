//! A long run with a journal records in flat memory: past `in_memory_spans`, the heap does
//! not grow with the spans, and every span still reaches the JSONL document. The same run
//! kept in memory grows with every span, which shows the measure can see growth.
//! (`scripts/flat_memory.sh` measures the process's resident memory over 10 000 000 spans.)

use loopotel::journal::JournalConfig;
use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::{LoopTracer, Outcome, SpanKind};
use loopotel_test_support::alloc::{LiveBytes, live_bytes};

#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

const ITERATIONS: u64 = 8_000;
const SPANS_PER_ITERATION: u64 = 9;

/// Records the loop; returns the live heap at each quarter (after the journal caught up).
fn record(tracer: &LoopTracer) -> Vec<isize> {
    let run = tracer.run("long-loop").env_id("e/v1").start();
    let mut marks = Vec::new();
    for n in 1..=ITERATIONS {
        let mut it = run.iteration(n);
        for k in 0..SPANS_PER_ITERATION {
            let mut s = it.span("execute_tool step", SpanKind::Worker);
            s.set_attribute("tool.step", k as i64);
            s.add_tokens(3);
        }
        it.evaluator_complete("critic", (n % 100) as f64 / 100.0);
        drop(it);
        // A loop waits on models and tools: the journal thread writes meanwhile. How many
        // spans it is behind when a quarter is marked sets how much storage is in flight
        // then (kept afterwards in the bounded pool of span chunks): flushing every 50
        // iterations bounds that lag to 500 spans, about 0.2 MiB, well inside the
        // assertion's margin.
        if n % 50 == 0 {
            tracer.flush_journal();
        }
        if n % (ITERATIONS / 4) == 0 {
            marks.push(live_bytes());
        }
    }
    run.finish(Outcome::Success, "done");
    marks
}

#[test]
fn a_long_run_records_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("long.jsonl");
    let journaled = LoopTracer::builder()
        .sink(JsonlExporter::create(&out).unwrap())
        .journal(JournalConfig::beside(&out).in_memory_spans(2_000))
        .build();
    let flat = record(&journaled);
    assert_eq!(journaled.stats().journal_lost, 0);
    drop(journaled);

    let in_memory = record(&LoopTracer::new());

    let growth = |m: &[isize]| m[3] - m[0];
    eprintln!("live heap at each quarter: journaled {flat:?}, in memory {in_memory:?} (bytes)");
    // Three quarters of the run (60 000 spans) later, the heap is where it was: what grows
    // is per iteration (each goal score is kept for LES, 8 bytes), not per span.
    assert!(
        growth(&flat) < 1024 * 1024,
        "journaled run grew {} bytes",
        growth(&flat)
    );
    assert!(
        growth(&in_memory) > 8 * 1024 * 1024,
        "the in-memory run grows with its spans: {} bytes",
        growth(&in_memory)
    );
    let docs: Vec<_> = JsonlReader::open(&out)
        .unwrap()
        .documents()
        .map(|d| d.unwrap().value)
        .collect();
    let [doc] = &docs[..] else {
        panic!("one document")
    };
    let spans = 1 + ITERATIONS * (1 + SPANS_PER_ITERATION);
    assert_eq!(doc.spans.len() as u64, spans);
    assert!(loopotel::validate::validate_document(doc).is_empty());
    let tokens = doc.root().unwrap().attributes.get("loop.tokens_total");
    assert_eq!(
        tokens.and_then(|v| v.as_i64()),
        Some((ITERATIONS * SPANS_PER_ITERATION * 3) as i64)
    );
}
