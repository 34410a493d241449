//! Runs longer than the journal keeps in memory (`JournalConfig::in_memory_spans`): their
//! spans past the limit live only in the journal, and the document that reaches the sinks —
//! streamed by the JSONL exporter, gathered by any other sink — is the same as a run kept
//! wholly in memory would give.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use loopotel::journal::{self, JournalConfig};
use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::{IterationRecord, LoopTracer, LtfDocument, Outcome, SpanKind};

fn documents(path: &std::path::Path) -> Vec<LtfDocument> {
    JsonlReader::open(path)
        .unwrap()
        .documents()
        .map(|d| d.unwrap().value)
        .collect()
}

/// The same loop each time: a span across the whole run, 40 iterations with 4 child spans
/// each (attributes, an event, tokens), 30 one-shot iterations, and one left open.
fn record(tracer: &LoopTracer) -> LtfDocument {
    let run = tracer.run("big-loop").env_id("e/v1").task_id("t").start();
    let mut whole = run.span("plan", SpanKind::Worker);
    whole.set_attribute("plan.steps", 70);
    for n in 1..=40u64 {
        let mut it = run.iteration(n);
        for k in 0..4 {
            let mut s = it.span(format!("execute_tool t{k}"), SpanKind::Worker);
            s.set_attribute("tool.step", k as i64);
            let mut attrs = loopotel::Attributes::new();
            attrs.set("done", 0.5);
            s.add_event("tool.progress", attrs);
            s.add_tokens(10);
        }
        it.worker_complete("w");
        it.evaluator_complete("critic", n as f64 / 100.0);
    }
    for n in 41..=70u64 {
        run.emit_iteration(IterationRecord::new(n, n as f64 / 100.0).tokens(5));
    }
    whole.end();
    // Still open when the run finishes: closed at its end, last in the document.
    let open = run.iteration(71);
    let doc = run.finish(Outcome::Success, "done");
    drop(open);
    doc
}

/// What a document says, ids aside: each span's name, kind, iteration, attribute and
/// event counts, whether its parent is the root; and the root's totals.
fn shape(doc: &LtfDocument) -> (BTreeMap<String, usize>, String) {
    let root = doc.root().unwrap();
    let mut spans = BTreeMap::new();
    for s in &doc.spans {
        let key = format!(
            "{} {:?} it={:?} attrs={} events={} under_root={}",
            s.name,
            s.kind,
            s.attributes.get("loop.iteration").and_then(|v| v.as_i64()),
            s.attributes.len(),
            s.events.len(),
            s.parent_span_id == Some(root.span_id)
        );
        *spans.entry(key).or_insert(0) += 1;
    }
    let totals = [
        "loop.tokens_total",
        "loop.iterations",
        "loop.les.cumulative",
    ]
    .map(|k| format!("{k}={:?}", root.attributes.get(k)))
    .join(" ");
    (spans, totals)
}

fn tracer(
    out: &std::path::Path,
    in_memory: usize,
    gathered: Arc<Mutex<Vec<LtfDocument>>>,
) -> LoopTracer {
    LoopTracer::builder()
        .sink(JsonlExporter::create(out).unwrap())
        .sink(move |doc: &LtfDocument| gathered.lock().unwrap().push(doc.clone()))
        .journal(JournalConfig::beside(out).in_memory_spans(in_memory))
        .build()
}

#[test]
fn a_run_past_its_in_memory_spans_reaches_the_sinks_whole() {
    let dir = tempfile::tempdir().unwrap();
    let whole_out = dir.path().join("whole.jsonl");
    let large_out = dir.path().join("large.jsonl");
    let gathered = Arc::new(Mutex::new(Vec::new()));

    let in_memory = record(&tracer(&whole_out, usize::MAX, Arc::default()));
    let large = tracer(&large_out, 50, gathered.clone());
    let returned = record(&large);
    assert_eq!(large.stats().journal_lost, 0);
    drop(large);

    let [streamed] = &documents(&large_out)[..] else {
        panic!("one document")
    };
    let [whole] = &documents(&whole_out)[..] else {
        panic!("one document")
    };
    // 1 root + 1 plan + 40 × (iteration + 4 spans) + 30 iterations + 1 open.
    assert_eq!(whole.spans.len(), 233);
    assert_eq!(in_memory.spans.len(), 233);
    assert_eq!(shape(streamed), shape(whole), "streamed from the journal");
    assert!(
        loopotel::validate::validate_document(streamed).is_empty(),
        "{:?}",
        loopotel::validate::validate_document(streamed)
    );
    // Another sink gets the same document, gathered.
    let gathered = gathered.lock().unwrap();
    assert_eq!(gathered.len(), 1);
    assert_eq!(shape(&gathered[0]), shape(whole));
    assert_eq!(gathered[0].spans.len(), streamed.spans.len());
    // What `finish` returned: the root and the spans still in memory.
    assert!(returned.spans.len() <= 52, "{}", returned.spans.len());
    assert_eq!(
        returned.root().unwrap().span_id,
        streamed.root().unwrap().span_id
    );
    // The run finished: its journal is retired.
    assert!(!journal::dir_beside(&large_out).exists());
}

/// With an OpenTelemetry provider, iterations end as full spans: they spill the same way.
#[test]
fn a_bridged_run_spills_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bridged.jsonl");
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(&out).unwrap())
        .journal(JournalConfig::beside(&out).in_memory_spans(20))
        .build();
    let returned = record(&tracer);
    drop(tracer);
    let [doc] = &documents(&out)[..] else {
        panic!("one document")
    };
    assert_eq!(doc.spans.len(), 233);
    assert!(returned.spans.len() <= 22);
    assert!(loopotel::validate::validate_document(doc).is_empty());
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 233);
}

/// A document cut short while it was streamed (the process died) leaves a torn line; the
/// next exporter on the file ends it, so what it appends stays readable.
#[test]
fn a_torn_last_line_is_ended_before_anything_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    std::fs::write(&out, b"{\"schema_version\":\"0.1\",\"spans\":[{\"span_id\"").unwrap();
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(&out).unwrap())
        .build();
    tracer.run("after").start().finish(Outcome::Success, "done");
    let lines: Vec<_> = JsonlReader::open(&out).unwrap().documents().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].is_err(), "the torn line stays one bad line");
    assert_eq!(lines[1].as_ref().unwrap().value.loop_name.as_str(), "after");
}
