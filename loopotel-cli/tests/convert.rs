//! `loopotel convert` between LTF and LoopNet `ln/record-v1`: the 500 sample records round
//! trip exactly and their LTF passes `validate --strict`; records made from traces pass the
//! real schema (checked by the Python reference's own `jsonschema`, too); our trajectory
//! equals the reference's `trajectory_from_trace` on its own traces; long runs, bad lines
//! and records of another format are handled as documented.

mod common;

use common::loopotel;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    tests::workspace_root()
}

fn lines(path: &Path) -> Vec<Value> {
    tests::read_jsonl_values(path)
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `input` (in `format`) → LTF, checked with `validate --strict` → `format` again: the LTF
/// file and the file converted back.
fn round_trip(dir: &Path, format: &str, input: &Path) -> (PathBuf, PathBuf) {
    let ltf = dir.join("ltf.jsonl");
    let back = dir.join("back.jsonl");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    ok(&loopotel(&[
        "convert",
        "--from",
        format,
        &path(input),
        "-o",
        &path(&ltf),
    ]));
    ok(&loopotel(&["validate", "--strict", &path(&ltf)]));
    ok(&loopotel(&[
        "convert",
        "--to",
        format,
        &path(&ltf),
        "-o",
        &path(&back),
    ]));
    (ltf, back)
}

#[test]
fn the_sample_records_round_trip_exactly_through_valid_ltf() {
    let dir = tempfile::tempdir().unwrap();
    let records = root().join("tests/fixtures/loopnet/records.jsonl");
    let (ltf, back) = round_trip(dir.path(), "loopnet", &records);
    let (a, b) = (lines(&records), lines(&back));
    assert_eq!(a.len(), 500);
    assert_eq!(a, b, "every field of every record comes back");
    // The LTF document carries the trajectory as iterations: scores, cost, tokens, latency.
    let docs = lines(&ltf);
    let first = &docs[0];
    let its: Vec<&Value> = first["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "iteration")
        .collect();
    assert_eq!(its.len(), a[0]["trajectory"].as_array().unwrap().len());
    assert_eq!(
        its[0]["attributes"]["loop.goal_score"],
        a[0]["trajectory"][0]["goal_score"]
    );
    assert_eq!(
        first["trace_id"].as_str().unwrap()[4..],
        a[0]["record_id"].as_str().unwrap()[3..]
    );
}

#[test]
fn records_from_traces_are_valid_including_long_runs_and_the_reference_agrees() {
    let dir = tempfile::tempdir().unwrap();
    // A batch of the built-in envs, and one run of 60 iterations (beyond the schema's 50).
    let batch = dir.path().join("batch.jsonl");
    ok(&loopotel(&[
        "run",
        "builtin/bugfix-v1",
        "--seeds",
        "0..4",
        "--out",
        batch.to_str().unwrap(),
    ]));
    let tracer = loopotel::LoopTracer::new();
    let run = tracer.run("Long Loop!").start();
    for n in 1..=60 {
        run.emit_iteration(
            loopotel::IterationRecord::new(n, n as f64 / 100.0)
                .tokens(10)
                .latency_ms(5.0),
        );
    }
    let long = run.finish(loopotel::Outcome::Partial, "max iterations reached");
    let mut body = std::fs::read_to_string(&batch).unwrap();
    body.push_str(&long.to_json_line());
    body.push('\n');
    std::fs::write(&batch, body).unwrap();

    let out = dir.path().join("records.jsonl");
    ok(&loopotel(&[
        "convert",
        "--to",
        "loopnet",
        batch.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--source",
        "synthetic",
        "--split",
        "test",
        "--pattern",
        "critique-loop",
    ]));
    let records = lines(&out);
    let last = records.last().unwrap();
    assert_eq!(last["trajectory"].as_array().unwrap().len(), 50);
    assert_eq!(
        last["trajectory"][49]["iteration"], 60,
        "the last iteration is kept"
    );
    assert_eq!(last["metadata"]["iteration_count"], 60);
    assert_eq!(last["loop_name"], "long-loop");
    assert_eq!(last["termination_reason"], "max_iterations");
    assert_eq!(last["failure_modes"], serde_json::json!(["fail.open_loop"]));
    assert!(
        records
            .iter()
            .all(|r| r["source"] == "synthetic" && r["split"] == "test")
    );

    // The Python reference's environment validates them against the real schema too.
    let Some(reference) = tests::reference() else {
        return;
    };
    let schema = root().join("loopotel-cli/schemas/loopnet-record-v1.schema.json");
    let check = tests::run(
        Command::new(&reference.python)
            .arg("-c")
            .arg(
                "import json,sys,jsonschema\n\
         s=json.load(open(sys.argv[1]))\n\
         v=jsonschema.Draft202012Validator(s)\n\
         bad=[e.message for l in open(sys.argv[2]) for e in v.iter_errors(json.loads(l))]\n\
         print(len(bad)); print(bad[:3])\n",
            )
            .arg(&schema)
            .arg(&out),
    );
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(stdout.lines().next(), Some("0"), "{stdout}");

    // On the reference's own traces our trajectory equals its `trajectory_from_trace`
    // wherever that is defined (it writes null cost and latency when the trace has none).
    let traces = tests::generate_reference_traces(&reference, dir.path(), 2, 20);
    let ours = dir.path().join("ref-records.jsonl");
    ok(&loopotel(&[
        "convert",
        "--to",
        "loopnet",
        traces.episodes.to_str().unwrap(),
        "-o",
        ours.to_str().unwrap(),
    ]));
    let theirs = tests::run(
        Command::new(&reference.python)
            .arg("-c")
            .arg(
                "import json,sys\n\
         from loopotel.exporter.loopnet import trajectory_from_trace\n\
         for l in open(sys.argv[1]):\n\
         \x20   print(json.dumps(trajectory_from_trace(json.loads(l))))\n",
            )
            .arg(&traces.episodes),
    );
    assert!(
        theirs.status.success(),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let theirs: Vec<Value> = String::from_utf8_lossy(&theirs.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours = lines(&ours);
    assert_eq!(ours.len(), theirs.len());
    let mut compared = 0;
    for (record, expected) in ours.iter().zip(&theirs) {
        let got = record["trajectory"].as_array().unwrap();
        let want = expected.as_array().unwrap();
        assert_eq!(got.len(), want.len().min(50));
        for (g, w) in got.iter().zip(want) {
            for (key, value) in w.as_object().unwrap() {
                if value.is_null() {
                    continue; // documented default in ours
                }
                let (a, b) = (&g[key], value);
                let same = match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => (x - y).abs() < 1e-9,
                    _ => a == b,
                };
                assert!(same, "{key}: ours {a}, reference {b}");
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "compared {compared} fields");
}

#[test]
fn bad_lines_and_other_formats_are_reported_and_the_rest_converted() {
    let dir = tempfile::tempdir().unwrap();
    let records = root().join("tests/fixtures/loopnet/records.jsonl");
    let good: Vec<String> = std::fs::read_to_string(&records)
        .unwrap()
        .lines()
        .take(3)
        .map(str::to_owned)
        .collect();
    let mut invalid: Value = serde_json::from_str(&good[0]).unwrap();
    invalid["outcome"] = Value::from("exploded");
    let ltf_doc = loopotel::LoopTracer::new()
        .run("x-loop")
        .start()
        .finish(loopotel::Outcome::Success, "done");
    let mixed = [
        good[0].clone(),
        "this is not JSON".to_owned(),
        invalid.to_string(),
        ltf_doc.to_json_line(),
        good[1].clone(),
        good[2].clone(),
    ];
    let input = dir.path().join("mixed.jsonl");
    std::fs::write(&input, mixed.join("\n") + "\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let o = loopotel(&[
        "convert",
        "--from",
        "loopnet",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mixed.jsonl:2: skipped: not JSON"), "{err}");
    assert!(
        err.contains("mixed.jsonl:3: skipped: not a valid ln/record-v1 record"),
        "{err}"
    );
    assert!(
        err.contains("mixed.jsonl:4: skipped: not an ln/record-v1 record"),
        "{err}"
    );
    assert!(err.contains("3 converted, 3 skipped"), "{err}");
    assert_eq!(lines(&out).len(), 3);
    // The other way: a LoopNet record is not an LTF document.
    let o = loopotel(&[
        "convert",
        "--to",
        "loopnet",
        records.to_str().unwrap(),
        "-o",
        dir.path().join("x.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains(":1: skipped: not an LTF 0.1 document"));
    // An existing output is not overwritten by accident.
    let o = loopotel(&[
        "convert",
        "--from",
        "loopnet",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
}

/// Loop Trace 1.0 documents the installed loopgym writes (`run_episode(...)["loop_trace"]`)
/// become strict-valid LTF, and come back unchanged; our own runs become Loop Trace 1.0
/// documents with the shape loopgym writes.
#[test]
fn loop_trace_documents_from_loopgym_round_trip_through_valid_ltf() {
    let Some(reference) = tests::reference() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lt.jsonl");
    let made = tests::run(Command::new(&reference.python).arg("-c").arg(
        "import json,sys,loopgym\n\
         out=open(sys.argv[1],'w')\n\
         for env_id in ['sim/mock-llm-v1','loopbench/code-repair-v1','loopbench/research-synthesis-v1']:\n\
         \x20   env=loopgym.make(env_id)\n\
         \x20   for seed in range(4):\n\
         \x20       out.write(json.dumps(env.run_episode(seed=seed)['loop_trace'])+'\\n')\n",
    ).arg(&input));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (ltf, back) = round_trip(dir.path(), "looptrace", &input);
    let (a, b) = (lines(&input), lines(&back));
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
    // The LTF side: iterations numbered from 1, scores from the evaluator, env and seed.
    let doc = &lines(&ltf)[0];
    assert_eq!(doc["env_id"], "sim/mock-llm-v1");
    assert_eq!(doc["metadata"]["seed"], 0);
    let first = doc["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "iteration")
        .unwrap();
    assert_eq!(first["attributes"]["loop.iteration"], 1);
    assert_eq!(
        first["attributes"]["loop.goal_score"],
        a[0]["iterations"][0]["evaluator_scores"]["quality"]
    );

    // Our own runs: the Loop Trace shape (0-based iterations, evaluator scores, cost).
    let batch = dir.path().join("batch.jsonl");
    ok(&loopotel(&[
        "run",
        "builtin/triage-v1",
        "--seeds",
        "0..2",
        "--out",
        batch.to_str().unwrap(),
    ]));
    let lt = dir.path().join("ours.lt.jsonl");
    ok(&loopotel(&[
        "convert",
        "--to",
        "looptrace",
        batch.to_str().unwrap(),
        "-o",
        lt.to_str().unwrap(),
    ]));
    for t in lines(&lt) {
        assert_eq!(t["trace_version"], "1.0");
        assert_eq!(t["iterations"][0]["iteration"], 0);
        assert!(t["iterations"][0]["evaluator_scores"]["quality"].is_number());
        assert!(t["success"].is_boolean() && t["metadata"]["seed"].is_number());
    }
    // A LoopNet record is not a Loop Trace.
    let records = root().join("tests/fixtures/loopnet/records.jsonl");
    let o = loopotel(&[
        "convert",
        "--from",
        "looptrace",
        records.to_str().unwrap(),
        "-o",
        dir.path().join("x.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(":1: skipped: not a Loop Trace 1.0 document")
    );
}
