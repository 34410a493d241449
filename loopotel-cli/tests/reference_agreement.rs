//! `loopotel validate` against Python's `loopotel-validate` on a table of valid and broken
//! inputs: same exit code, same VALID/INVALID label for every document, and the same JSON
//! paths in the error lines (the message wording differs between the two schema engines).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use tests::{reference, run, sample_documents};

const OURS: &str = env!("CARGO_BIN_EXE_loopotel");

/// label → (valid?, set of error JSON paths)
type Verdicts = BTreeMap<String, (bool, BTreeSet<String>)>;

fn verdicts(out: &Output) -> Verdicts {
    let mut v = Verdicts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(label) = line.strip_prefix("VALID: ") {
            v.insert(label.to_owned(), (true, BTreeSet::new()));
        }
    }
    let mut current: Option<String> = None;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if let Some(label) = line.strip_prefix("INVALID: ") {
            current = Some(label.to_owned());
            v.insert(label.to_owned(), (false, BTreeSet::new()));
        } else if let (Some(label), Some(err)) = (&current, line.strip_prefix("  - ")) {
            let path = err.split(": ").next().unwrap_or(err).to_owned();
            if let Some(entry) = v.get_mut(label) {
                entry.1.insert(path);
            }
        }
    }
    v
}

type Mutation = Box<dyn Fn(&mut Value)>;

fn mutations() -> Vec<(&'static str, Mutation)> {
    fn span0(d: &mut Value) -> &mut Value {
        &mut d["spans"][0]
    }
    fn remove(d: &mut Value, key: &str) {
        if let Some(o) = d.as_object_mut() {
            o.remove(key);
        }
    }
    vec![
        ("valid", Box::new(|_| {})),
        ("no-trace-id", Box::new(|d| remove(d, "trace_id"))),
        (
            "trace-id-upper",
            Box::new(|d| d["trace_id"] = json!("ltf-4BF92F35-77b3-4da6-a3ce-929d0e0e4736")),
        ),
        (
            "trace-id-bare-hex",
            Box::new(|d| d["trace_id"] = json!("4bf92f3577b34da6a3ce929d0e0e4736")),
        ),
        (
            "loop-name-short",
            Box::new(|d| d["loop_name"] = json!("ab")),
        ),
        (
            "loop-name-65",
            Box::new(|d| d["loop_name"] = json!("x".repeat(65))),
        ),
        (
            "loop-name-64",
            Box::new(|d| d["loop_name"] = json!("x".repeat(64))),
        ),
        (
            "loop-name-3-umlauts",
            Box::new(|d| d["loop_name"] = json!("äöü")),
        ),
        (
            "loop-name-2-emoji",
            Box::new(|d| d["loop_name"] = json!("😀😀")),
        ),
        (
            "schema-version",
            Box::new(|d| d["schema_version"] = json!("ltf/0.2")),
        ),
        ("extra-top-level", Box::new(|d| d["extra"] = json!(1))),
        ("extra-odd-key", Box::new(|d| d["odd key's"] = json!(1))),
        ("outcome-bad", Box::new(|d| d["outcome"] = json!("maybe"))),
        ("env-id-null", Box::new(|d| d["env_id"] = Value::Null)),
        ("task-id-int", Box::new(|d| d["task_id"] = json!(5))),
        (
            "termination-null",
            Box::new(|d| d["termination_reason"] = Value::Null),
        ),
        (
            "pins-wrong",
            Box::new(|d| d["spec_pins"]["lss"] = json!("lss@2.0.0")),
        ),
        ("pins-extra", Box::new(|d| d["spec_pins"]["x"] = json!("y"))),
        (
            "pins-missing",
            Box::new(|d| remove(&mut d["spec_pins"], "ltf")),
        ),
        ("spans-empty", Box::new(|d| d["spans"] = json!([]))),
        ("spans-missing", Box::new(|d| remove(d, "spans"))),
        ("no-ended-at", Box::new(|d| remove(d, "ended_at"))),
        (
            "started-at-not-a-date",
            Box::new(|d| d["started_at"] = json!("yesterday")),
        ),
        (
            "span-id-15",
            Box::new(|d| span0(d)["span_id"] = json!("00f067aa0ba902b")),
        ),
        ("span-extra", Box::new(|d| span0(d)["status"] = json!("ok"))),
        (
            "span-kind-tool",
            Box::new(|d| span0(d)["kind"] = json!("tool")),
        ),
        (
            "span-name-empty",
            Box::new(|d| span0(d)["name"] = json!("")),
        ),
        (
            "span-attrs-null",
            Box::new(|d| span0(d)["attributes"] = Value::Null),
        ),
        (
            "span-attrs-missing",
            Box::new(|d| remove(span0(d), "attributes")),
        ),
        (
            "span-events-object",
            Box::new(|d| span0(d)["events"] = json!({})),
        ),
        (
            "span-parent-int",
            Box::new(|d| span0(d)["parent_span_id"] = json!(42)),
        ),
        (
            "span-end-number",
            Box::new(|d| span0(d)["end_time"] = json!(1.5)),
        ),
        (
            "event-no-timestamp",
            Box::new(|d| d["spans"][1]["events"] = json!([{"name": "x"}])),
        ),
        (
            "event-extra",
            Box::new(|d| {
                d["spans"][1]["events"] =
                    json!([{"name": "x", "timestamp": "2026-01-01T00:00:00Z", "y": 1}])
            }),
        ),
        ("metadata-array", Box::new(|d| d["metadata"] = json!([1]))),
        (
            "many-errors",
            Box::new(|d| {
                d["loop_name"] = json!("x");
                d["spans"][0]["kind"] = json!("bad");
                d["spans"][2]["span_id"] = json!("nothex");
                d["outcome"] = json!(1);
            }),
        ),
        ("not-an-object", Box::new(|d| *d = json!([1, 2]))),
        ("a-string", Box::new(|d| *d = json!("ltf"))),
    ]
}

fn both(reference_cli: &Path, path: &Path) -> (Output, Output) {
    (
        run(Command::new(OURS).arg("validate").arg(path)),
        run(Command::new(reference_cli).arg(path)),
    )
}

fn assert_agree(reference_cli: &Path, path: &Path, case: &str, exit_only: bool) {
    let (ours, theirs) = both(reference_cli, path);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{case}: exit code\nours: {}\ntheirs: {}",
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&theirs.stderr)
    );
    if exit_only {
        // The reference crashes with a traceback here; we give a one-line reason instead.
        let err = String::from_utf8_lossy(&ours.stderr);
        assert!(
            err.contains("line ") && !err.contains("panicked"),
            "{case}: {err}"
        );
        return;
    }
    assert_eq!(verdicts(&ours), verdicts(&theirs), "{case}");
}

#[test]
fn validate_agrees_with_the_reference_on_a_table_of_inputs() {
    let Some(r) = reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = serde_json::to_value(&sample_documents()[0]).unwrap();
    let mut jsonl_lines = Vec::new();
    for (name, mutate) in mutations() {
        let mut doc = base.clone();
        mutate(&mut doc);
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        assert_agree(&r.validate, &path, name, false);
        jsonl_lines.push(serde_json::to_string(&doc).unwrap());
    }
    // Many documents in one .jsonl, with blank lines: labels #1..#n.
    let many = dir.path().join("many.jsonl");
    std::fs::write(&many, jsonl_lines.join("\n\n") + "\n").unwrap();
    assert_agree(&r.validate, &many, "many.jsonl", false);
    // One document in a .jsonl: the label is the bare path.
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, format!("{}\n", jsonl_lines[0])).unwrap();
    assert_agree(&r.validate, &one, "one.jsonl", false);
    // Every sample document we record.
    let ours = dir.path().join("samples.jsonl");
    let samples: Vec<_> = sample_documents()
        .iter()
        .map(|d| d.to_json_line())
        .collect();
    std::fs::write(&ours, samples.join("\n")).unwrap();
    assert_agree(&r.validate, &ours, "samples.jsonl", false);
    // An empty .jsonl: nothing to say, exit 0.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n \n").unwrap();
    assert_agree(&r.validate, &empty, "empty.jsonl", false);
}

#[test]
fn validate_agrees_on_reference_traces_with_null_ids() {
    let Some(r) = reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let traces = tests::generate_reference_traces(&r, dir.path(), 3, 40);
    assert_agree(&r.validate, &traces.episodes, "episodes.jsonl", false);
    assert_agree(&r.validate, &traces.manual, "manual.jsonl", false);
}

#[test]
fn malformed_input_is_a_one_line_error_with_the_same_exit_code() {
    let Some(r) = reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 6] = [
        (
            "truncated.json",
            b"{\"schema_version\": \"ltf/0.1\", \"spans\": [",
        ),
        ("empty.json", b""),
        ("garbage.json", b"not json at all"),
        ("bad-line.jsonl", b"{\"a\":1}\n{oops\n{\"b\":2}\n"),
        ("torn.jsonl", b"{\"a\":1}\n{\"b\":"),
        ("latin1.json", b"{\"loop_name\": \"\xe9t\xe9\"}"),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        assert_agree(&r.validate, &path, name, true);
    }
    // Missing file: same message and exit code.
    let missing: PathBuf = dir.path().join("nope.json");
    let (ours, theirs) = both(&r.validate, &missing);
    assert_eq!(ours.status.code(), Some(1));
    assert_eq!(theirs.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&theirs.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let ours = run(Command::new(OURS).arg("validate"));
    assert_eq!(ours.status.code(), Some(2));
    let ours = run(Command::new(OURS)
        .arg("validate")
        .arg("--no-such-flag")
        .arg("x.json"));
    assert_eq!(ours.status.code(), Some(2));
    if let Some(r) = reference() {
        assert_eq!(run(&mut Command::new(&r.validate)).status.code(), Some(2));
    }
}
