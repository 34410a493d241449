//! Interop with the Python reference (`pip install loopotel loopgym`), live:
//!
//! 1. documents our recorder writes pass `loopotel-validate`;
//! 2. traces the reference writes (loopgym episodes over every env, sampled seeds, and the
//!    manual `LoopTracer` API) parse in our model and re-serialize to semantically equal JSON;
//! 3. our LES equals the reference's `loop.les.*` values bit for bit, and replaying the
//!    reference's inputs through our `emit_iteration` yields the same attributes and events.

use std::collections::BTreeSet;
use std::process::Command;

use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::{IterationRecord, LoopTracer, LtfDocument, Outcome, TraceSink};
use serde_json::Value;
use tests::{
    ReferenceTraces, generate_reference_traces, normalize, read_jsonl_values, reference, run,
    sample_documents,
};

fn reference_traces(dir: &std::path::Path) -> Option<ReferenceTraces> {
    let r = reference()?;
    Some(generate_reference_traces(&r, dir, 6, 300))
}

#[test]
fn our_documents_pass_the_reference_validator() {
    let Some(r) = reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let docs = sample_documents();
    assert!(docs.len() >= 9);

    // All in one JSONL file (labels #1..#n) ...
    let jsonl = dir.path().join("ours.jsonl");
    let exporter = JsonlExporter::create(&jsonl).unwrap();
    for d in &docs {
        exporter.export(d);
    }
    assert_eq!(exporter.written(), docs.len() as u64);
    let out = run(Command::new(&r.validate).arg(&jsonl));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loopotel-validate rejected our documents:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("VALID: ")).count(),
        docs.len()
    );

    // ... and each as a pretty-printed .json file.
    for (i, d) in docs.iter().enumerate() {
        let path = dir.path().join(format!("doc{i}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(d).unwrap()).unwrap();
        let out = run(Command::new(&r.validate).arg(&path));
        assert!(
            out.status.success(),
            "doc {i} ({}): {}",
            d.loop_name,
            String::from_utf8_lossy(&out.stderr)
        );
        // Our strict validator agrees, and is stricter than the reference.
        assert_eq!(
            loopotel::validate::validate_document(d),
            Vec::<String>::new(),
            "doc {i}"
        );
    }
}

#[test]
fn reference_traces_round_trip_through_our_model() {
    let dir = tempfile::tempdir().unwrap();
    let Some(traces) = reference_traces(dir.path()) else {
        return;
    };
    let mut total = 0;
    for path in [&traces.episodes, &traces.manual] {
        let raw = read_jsonl_values(path);
        assert!(!raw.is_empty(), "{} is empty", path.display());
        let parsed: Vec<_> = JsonlReader::open(path).unwrap().documents().collect();
        assert_eq!(parsed.len(), raw.len());
        for (value, doc) in raw.iter().zip(parsed) {
            let doc = doc.unwrap_or_else(|e| panic!("seed {}: {e}", traces.seed));
            let back = serde_json::to_value(&doc.value).unwrap();
            assert_eq!(
                normalize(&back),
                normalize(value),
                "seed {} line {}",
                traces.seed,
                doc.line
            );
            total += 1;
        }
    }
    assert!(total >= 300, "only {total} reference traces");
}

#[test]
fn episode_traces_cover_every_env_and_several_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let Some(traces) = reference_traces(dir.path()) else {
        return;
    };
    let episodes = read_jsonl_values(&traces.episodes);
    let envs: BTreeSet<_> = episodes
        .iter()
        .filter_map(|d| d["metadata"]["episode"]["env"].as_str())
        .collect();
    let seeds: BTreeSet<_> = episodes
        .iter()
        .filter_map(|d| d["metadata"]["episode"]["seed"].as_u64())
        .collect();
    assert!(envs.len() >= 7, "envs traced: {envs:?}");
    assert!(seeds.len() >= 20, "seeds: {}", seeds.len());
    let iterations: usize = episodes
        .iter()
        .map(|d| d["spans"].as_array().map_or(0, |s| s.len() - 1))
        .sum();
    assert!(
        iterations > episodes.len(),
        "episodes should have iterations"
    );
}

/// Bit-exact float comparison (so 0.1 + 0.2 style drift fails).
fn same_number(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x == 0.0 && y == 0.0),
        _ => a == b,
    }
}

#[test]
fn our_les_equals_the_references_on_its_traces() {
    let dir = tempfile::tempdir().unwrap();
    let Some(traces) = reference_traces(dir.path()) else {
        return;
    };
    let mut compared = 0;
    for path in [&traces.episodes, &traces.manual] {
        for rec in JsonlReader::open(path).unwrap().documents() {
            let doc = rec.unwrap().value;
            let rows = loopotel::les::series(&doc);
            let spans: Vec<_> = doc.iterations().collect();
            assert_eq!(rows.len(), spans.len());
            for (row, span) in rows.iter().zip(spans) {
                let a = &span.attributes;
                let cum = a
                    .get("loop.les.cumulative_normalized")
                    .and_then(|v| v.as_f64())
                    .unwrap();
                let eff = a
                    .get("loop.les.effectiveness")
                    .and_then(|v| v.as_f64())
                    .unwrap();
                assert_eq!(
                    row.cumulative.to_bits(),
                    cum.to_bits(),
                    "seed {} {}: cumulative",
                    traces.seed,
                    doc.trace_id
                );
                assert_eq!(
                    row.effectiveness.to_bits(),
                    eff.to_bits(),
                    "seed {} {}: effectiveness",
                    traces.seed,
                    doc.trace_id
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 1000, "only {compared} iterations compared");
}

/// Extras we add on purpose (documented in specs/otel-semconv-loop.md).
const OUR_ITERATION_EXTRAS: &[&str] = &["loop.les.delta"];
const OUR_ROOT_EXTRAS: &[&str] = &[
    "loop.iterations",
    "loop.les.cumulative_normalized",
    "loop.cost_total_usd",
];

fn assert_attributes_match(ours: &Value, theirs: &Value, extras: &[&str], what: &str) {
    let (Some(o), Some(t)) = (ours.as_object(), theirs.as_object()) else {
        panic!("{what}: attributes are not objects");
    };
    for (k, tv) in t {
        let ov = o
            .get(k)
            .unwrap_or_else(|| panic!("{what}: we lack {k} (reference: {tv})"));
        assert!(
            same_number(ov, tv),
            "{what}: {k}: ours {ov} vs reference {tv}"
        );
    }
    for k in o.keys() {
        assert!(
            t.contains_key(k) || extras.contains(&k.as_str()),
            "{what}: undocumented extra attribute {k}"
        );
    }
    // Same order for the keys both have (Python dicts keep insertion order).
    let ours_common: Vec<_> = o.keys().filter(|k| t.contains_key(*k)).collect();
    let theirs_keys: Vec<_> = t.keys().collect();
    assert_eq!(ours_common, theirs_keys, "{what}: attribute order");
}

#[test]
fn replaying_reference_inputs_gives_the_same_attributes_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let Some(traces) = reference_traces(dir.path()) else {
        return;
    };
    let tracer = LoopTracer::new();
    let mut replayed = 0;
    for theirs in read_jsonl_values(&traces.manual) {
        let case = &theirs["metadata"]["case"];
        let mut builder = tracer
            .run(case["loop_name"].as_str().unwrap().to_owned())
            .goal_target(case["goal_target"].as_f64().unwrap());
        if let Some(env) = case["env_id"].as_str() {
            builder = builder.env_id(env.to_owned());
        }
        if let Some(task) = case["task_id"].as_str() {
            builder = builder.task_id(task.to_owned());
        }
        let run = builder.start();
        run.set_metadata("case", case.clone());
        for it in case["iterations"].as_array().unwrap() {
            let mut rec = IterationRecord::new(
                it["iteration"].as_u64().unwrap(),
                it["goal_score"].as_f64().unwrap(),
            )
            .tokens(it["tokens_delta"].as_u64().unwrap());
            rec.goal_target = it["goal_target"].as_f64();
            rec.cost_usd = it["cost_usd"].as_f64();
            rec.latency_ms = it["latency_ms"].as_f64();
            rec.worker_id = it["worker_id"].as_str().map(|s| s.to_owned().into());
            rec.evaluator_id = it["evaluator_id"].as_str().map(|s| s.to_owned().into());
            assert!(run.emit_iteration(rec));
        }
        let outcome: Outcome = serde_json::from_value(case["outcome"].clone()).unwrap();
        let doc: LtfDocument = run.finish(outcome, case["termination_reason"].as_str().unwrap());
        let ours = serde_json::to_value(&doc).unwrap();

        for key in [
            "schema_version",
            "loop_name",
            "outcome",
            "termination_reason",
            "spec_pins",
            "metadata",
        ] {
            assert_eq!(ours[key], theirs[key], "seed {}: {key}", traces.seed);
        }
        for key in ["env_id", "task_id"] {
            // The reference writes null for an absent id (and fails its own schema); we omit.
            assert_eq!(ours.get(key).unwrap_or(&Value::Null), &theirs[key], "{key}");
        }
        let (os, ts) = (
            ours["spans"].as_array().unwrap(),
            theirs["spans"].as_array().unwrap(),
        );
        assert_eq!(os.len(), ts.len());
        for (i, (o, t)) in os.iter().zip(ts).enumerate() {
            let what = format!("seed {} {} span {i}", traces.seed, theirs["trace_id"]);
            for key in ["name", "kind"] {
                assert_eq!(o[key], t[key], "{what}: {key}");
            }
            assert_eq!(
                o["parent_span_id"].is_null(),
                t["parent_span_id"].is_null(),
                "{what}"
            );
            let extras = if i == 0 {
                OUR_ROOT_EXTRAS
            } else {
                OUR_ITERATION_EXTRAS
            };
            assert_attributes_match(&o["attributes"], &t["attributes"], extras, &what);
            let (oe, te) = (
                o["events"].as_array().unwrap(),
                t["events"].as_array().unwrap(),
            );
            assert_eq!(oe.len(), te.len(), "{what}: events");
            for (a, b) in oe.iter().zip(te) {
                assert_eq!(a["name"], b["name"], "{what}");
                assert_attributes_match(
                    &a["attributes"],
                    &b["attributes"],
                    &[],
                    &format!("{what} event {}", b["name"]),
                );
            }
        }
        replayed += 1;
    }
    assert!(replayed >= 300);
}
