//! Hostile input never panics, LES matches a from-scratch recomputation, and concurrent JSONL
//! writers never interleave lines.

use std::io::Write;

use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::les::{LesAccumulator, effectiveness};
use loopotel::validate::{Mode, validate_value};
use loopotel::{IterationRecord, LoopTracer, Outcome, SpanId, Timestamp, TraceId, TraceSink};
use proptest::prelude::*;

/// Keys the LTF schema knows (so generated trees reach deep into the validator), and a few
/// it does not.
const KEYS: &[&str] = &[
    "schema_version",
    "trace_id",
    "loop_name",
    "env_id",
    "task_id",
    "started_at",
    "ended_at",
    "outcome",
    "termination_reason",
    "spec_pins",
    "lss",
    "les",
    "ltf",
    "spans",
    "metadata",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "attributes",
    "events",
    "timestamp",
    "loop.iteration",
    "x",
    "",
];

/// Strings the schema's patterns and enums care about, and some they reject.
const STRINGS: &[&str] = &[
    "ltf/0.1",
    "ltf-0123abcd-0123-4567-89ab-0123456789ab",
    "0123456789abcdef",
    "loop",
    "iteration",
    "worker",
    "evaluator",
    "success",
    "failure",
    "partial",
    "unknown",
    "2026-12-04T10:00:00.000000Z",
    "2026-12-04T09:00:00Z",
    "not a date",
    "lss@1.0.0",
    "les@1.0.0",
    "ltf@0.1.0",
    "loop.run",
    "loop.iteration",
    "",
    "\u{2028}",
    "ff",
];

/// Arbitrary JSON trees, biased towards LTF's keys and values.
fn json_tree() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(STRINGS).prop_map(Value::from),
        "[a-z0-9 _.-]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                serde_json::Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                )
            }),
        ]
    })
}

/// A document that passes `validate --strict`.
fn valid_document() -> serde_json::Value {
    let tracer = LoopTracer::new();
    let run = tracer
        .run("mutated-loop")
        .env_id("e/v1")
        .task_id("t1")
        .start();
    {
        let it = run.iteration(1);
        let mut span = it.span("execute_tool search", loopotel::SpanKind::Worker);
        span.set_attribute("gen_ai.tool.name", "search");
        span.add_event("found", loopotel::Attributes::new());
    }
    run.emit_iteration(
        IterationRecord::new(2, 0.9)
            .tokens(5)
            .worker("w")
            .evaluator("e"),
    );
    let doc = run.finish(Outcome::Success, "done");
    serde_json::to_value(&doc).unwrap_or_default()
}

/// Replaces the value `path` leads to (each step picks a child by index, modulo the
/// children there are) with `with`.
fn replace_at(doc: &mut serde_json::Value, path: &[usize], with: serde_json::Value) {
    let Some((&step, rest)) = path.split_first() else {
        *doc = with;
        return;
    };
    let child = match doc {
        serde_json::Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            items.get_mut(step % n)
        }
        serde_json::Value::Object(map) if !map.is_empty() => {
            let n = map.len();
            map.values_mut().nth(step % n)
        }
        _ => None,
    };
    match child {
        Some(child) => replace_at(child, rest, with),
        None => *doc = with,
    }
}

/// The reference's algorithm, literally: recompute the compensated mean over every score.
fn reference_cumulative(scores: &[f64], target: f64) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for &s in scores {
        let x = effectiveness(s, target);
        let t = sum + x;
        if sum.abs() >= x.abs() {
            c += (sum - t) + x;
        } else {
            c += (x - t) + sum;
        }
        sum = t;
    }
    let total = if c != 0.0 && c.is_finite() {
        sum + c
    } else {
        sum
    };
    // Correct decimal rounding to 4 places, as the reference (Python `round`) does.
    format!("{:.4}", total / scores.len() as f64)
        .parse()
        .unwrap_or(f64::NAN)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn running_les_equals_recomputation(
        steps in prop::collection::vec((-0.5f64..1.5, prop::sample::select(vec![0.8, 0.8, 0.8, 0.5, 1.0, 0.0])), 1..60)
    ) {
        let mut acc = LesAccumulator::default();
        let mut scores = Vec::new();
        for (score, target) in steps {
            scores.push(score);
            let p = acc.push(score, target);
            prop_assert_eq!(p.cumulative.to_bits(), reference_cumulative(&scores, target).to_bits());
        }
    }

    #[test]
    fn id_and_time_parsers_never_panic(s in "\\PC{0,64}") {
        let _ = s.parse::<TraceId>();
        let _ = SpanId::from_hex(&s);
        let _ = s.parse::<Timestamp>();
        let _ = TraceId::from_ltf(&format!("ltf-{s}"));
    }

    #[test]
    fn traceparent_parser_never_panics_and_round_trips(
        s in "\\PC{0,80}",
        trace in any::<[u8; 16]>(),
        span in any::<[u8; 8]>(),
        flags in any::<u8>(),
        pos in 0usize..55,
        byte in any::<u8>(),
    ) {
        use loopotel::propagation::{TraceParent, parse_baggage, parse_tracestate};
        let _ = TraceParent::parse(&s);
        let _ = parse_tracestate(&s);
        let _ = parse_baggage(&s);
        let tp = TraceParent { trace_id: TraceId::from_bytes(trace), span_id: SpanId::from_bytes(span), flags: flags & 1 };
        let header = tp.to_string();
        match TraceParent::parse(&header) {
            Ok(back) => prop_assert_eq!(back, tp),
            // Only all-zero ids are refused.
            Err(_) => prop_assert!(tp.trace_id.is_zero() || tp.span_id.is_zero()),
        }
        // Any single-byte corruption is either refused or still a well-formed header.
        let mut bytes = header.into_bytes();
        bytes[pos] = byte;
        if let Ok(text) = String::from_utf8(bytes)
            && let Ok(parsed) = TraceParent::parse(&text)
        {
            let ok = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
            prop_assert!(ok && !text.starts_with("ff"), "accepted {:?} as {:?}", text, parsed);
        }
    }

    #[test]
    fn jsonl_reader_never_panics_and_numbers_lines(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut last = 0;
        for item in JsonlReader::new(&bytes[..]).max_line_bytes(256).parsed::<serde_json::Value>() {
            let line = match &item { Ok(r) => r.line, Err(e) => e.line() };
            prop_assert!(line > last);
            last = line;
        }
    }

    #[test]
    fn validator_never_panics_on_arbitrary_json_trees(v in json_tree()) {
        let reference = validate_value(&v, Mode::Reference);
        let strict = validate_value(&v, Mode::Strict);
        // Strict checks everything the reference checks, and more.
        prop_assert!(reference.is_empty() || !strict.is_empty(), "strict passed what the reference rejected: {}", v);
    }

    #[test]
    fn validator_judges_every_mutation_of_a_valid_document(
        path in prop::collection::vec(0usize..16, 1..6),
        replacement in json_tree(),
    ) {
        let mut doc = valid_document();
        prop_assert!(validate_value(&doc, Mode::Strict).is_empty());
        replace_at(&mut doc, &path, replacement);
        let reference = validate_value(&doc, Mode::Reference);
        let strict = validate_value(&doc, Mode::Strict);
        prop_assert!(reference.is_empty() || !strict.is_empty(), "strict passed what the reference rejected: {}", doc);
    }

    #[test]
    fn recorded_documents_round_trip_through_json(
        name in "[a-zA-Z0-9 äöü✓\\u{2028}\"\\\\-]{3,40}",
        scores in prop::collection::vec(-1.0f64..2.0, 0..20),
    ) {
        let tracer = LoopTracer::new();
        let run = tracer.run(name.clone()).task_id(name).start();
        for (i, s) in scores.iter().enumerate() {
            run.emit_iteration(IterationRecord::new(i as u64 + 1, *s).worker("w"));
        }
        let doc = run.finish(Outcome::Unknown, "x");
        let line = doc.to_json_line();
        let clean = !line.contains('\n') && !line.contains('\u{2028}');
        prop_assert!(clean, "line breaks in {}", line);
        let back: loopotel::LtfDocument = serde_json::from_str(&line).unwrap();
        prop_assert_eq!(&back, &doc);
        prop_assert!(loopotel::validate::validate_document(&doc).is_empty());
    }
}

#[test]
fn concurrent_writers_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrent.jsonl");
    // Two exporters on the same file (as two processes would be) and four threads.
    let a = std::sync::Arc::new(JsonlExporter::create(&path).unwrap());
    let b = std::sync::Arc::new(JsonlExporter::create(&path).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sink = if t % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                let tracer = LoopTracer::new();
                for i in 0..50 {
                    let run = tracer.run(format!("writer-{t}")).start();
                    for n in 1..=(i % 7 + 1) {
                        run.emit_iteration(IterationRecord::new(n, 0.5).worker("x".repeat(100)));
                    }
                    sink.export(&run.finish(Outcome::Success, "ok"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let docs: Vec<_> = JsonlReader::open(&path).unwrap().documents().collect();
    assert_eq!(docs.len(), 200);
    assert!(docs.iter().all(Result::is_ok));
}

#[test]
fn a_torn_last_line_is_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.jsonl");
    let exporter = JsonlExporter::create(&path).unwrap();
    let tracer = LoopTracer::new();
    for _ in 0..3 {
        exporter.export(
            &tracer
                .run("torn-loop")
                .start()
                .finish(Outcome::Success, "ok"),
        );
    }
    // Simulate a crash in the middle of the fourth write.
    let full = tracer
        .run("torn-loop")
        .start()
        .finish(Outcome::Success, "ok")
        .to_json_line();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&full.as_bytes()[..full.len() / 2])
        .unwrap();
    let items: Vec<_> = JsonlReader::open(&path).unwrap().documents().collect();
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(Result::is_ok));
    match &items[3] {
        Err(loopotel::jsonl::JsonlError::Torn { line: 4, .. }) => {}
        other => panic!("expected a torn line 4, got {other:?}"),
    }
}

#[test]
fn an_unwritable_sink_is_counted_not_raised() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = JsonlExporter::create(dir.path().join("ro.jsonl")).unwrap();
    // /dev/full fails every write with ENOSPC where it exists.
    let full = JsonlExporter::create("/dev/full");
    let tracer = LoopTracer::new();
    let doc = tracer
        .run("disk-full")
        .start()
        .finish(Outcome::Success, "ok");
    exporter.export(&doc);
    assert_eq!(exporter.written(), 1);
    if let Ok(full) = full {
        full.export(&doc);
        full.export(&doc);
        assert_eq!(full.failed(), 2);
        assert!(full.last_error().is_some());
    }
}
