//! `loopotel compare`, `loopotel show`, and the batch hygiene of `run` (`--append`,
//! `--force`, `--batch-id`, `--shard`): real binaries over real files — hand-made documents
//! with known outcomes, scores, tokens and durations, and batches of the built-in envs.

mod common;

use common::{loopotel, text};
use std::path::Path;

use serde_json::{Value, json};

/// A valid LTF document of one run with one iteration: known outcome, score, tokens and
/// duration.
fn run_doc(
    n: u64,
    task: &str,
    seed: Option<i64>,
    success: bool,
    score: f64,
    tokens: i64,
    ms: u64,
) -> Value {
    let trace = format!("ltf-{:08x}-0000-4000-8000-{:012x}", n, n);
    let end = format!("2026-12-04T10:00:00.{:06}Z", ms * 1000);
    let outcome = if success { "success" } else { "failure" };
    let mut metadata = json!({});
    if let Some(s) = seed {
        metadata["seed"] = json!(s);
    }
    json!({
        "schema_version": "ltf/0.1", "trace_id": trace, "loop_name": "cmp-loop",
        "env_id": "cmp/env-v1", "task_id": task,
        "started_at": "2026-12-04T10:00:00.000000Z", "ended_at": end,
        "outcome": outcome, "termination_reason": "done",
        "spec_pins": {"lss": "lss@1.0.0", "les": "les@1.0.0", "ltf": "ltf@0.1.0"},
        "spans": [
            {"span_id": format!("{:016x}", n * 2 + 1), "parent_span_id": null, "name": "loop.run",
             "kind": "loop", "start_time": "2026-12-04T10:00:00.000000Z", "end_time": end,
             "attributes": {"loop.tokens_total": tokens, "loop.outcome": outcome}, "events": []},
            {"span_id": format!("{:016x}", n * 2 + 2), "parent_span_id": format!("{:016x}", n * 2 + 1),
             "name": "loop.iteration", "kind": "iteration",
             "start_time": "2026-12-04T10:00:00.000000Z", "end_time": end,
             "attributes": {"loop.iteration": 1, "loop.goal_score": score,
                            "loop.les.cumulative_normalized": score, "loop.tokens_delta": tokens},
             "events": []}
        ],
        "metadata": metadata
    })
}

fn write(path: &Path, docs: &[Value]) {
    let lines: Vec<String> = docs.iter().map(Value::to_string).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// 40 seeded runs per side over two tasks: the base succeeds and scores high; the
/// candidate fails a third of the time, scores lower and spends more tokens.
fn batches(dir: &Path, candidate_worse: bool) -> (String, String) {
    let mut base = Vec::new();
    let mut cand = Vec::new();
    for seed in 0..40i64 {
        let task = if seed % 2 == 0 { "t-even" } else { "t-odd" };
        let jitter = (seed % 5) as f64 * 0.01;
        base.push(run_doc(
            seed as u64,
            task,
            Some(seed),
            true,
            0.9 + jitter,
            100 + seed % 7,
            50,
        ));
        let (ok, score, tokens) = if candidate_worse {
            (seed % 3 != 0, 0.7 + jitter, 160 + seed % 7)
        } else {
            (true, 0.9 + jitter, 100 + seed % 7)
        };
        cand.push(run_doc(
            1000 + seed as u64,
            task,
            Some(seed),
            ok,
            score,
            tokens,
            50,
        ));
    }
    let (b, c) = (dir.join("base.jsonl"), dir.join("cand.jsonl"));
    write(&b, &base);
    write(&c, &cand);
    (b.display().to_string(), c.display().to_string())
}

#[test]
fn a_worse_candidate_fails_the_gate_and_names_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = batches(dir.path(), true);
    let o = loopotel(&["compare", &b, &c, "--fail-on-regression"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    for metric in ["success_rate", "final_goal_score", "les", "tokens"] {
        assert!(
            err.contains(&format!("*/* {metric}")),
            "{metric} named in: {err}"
        );
    }
    assert!(
        !err.contains("duration_ms"),
        "equal durations are no regression: {err}"
    );
    assert!(out.contains("paired, 40 pairs"), "{out}");

    // JSON: stable schema, paired bootstrap, the intervals below zero.
    let o = loopotel(&["compare", &b, &c, "--json"]);
    assert!(o.status.success());
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["schema"], "loopotel.compare/1");
    assert_eq!(report["overall"]["pairing"], "paired");
    let metric = |name: &str| {
        report["overall"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    let sr = metric("success_rate");
    assert_eq!(sr["method"], "paired_bootstrap");
    assert!(sr["ci"][1].as_f64().unwrap() < 0.0);
    assert!((sr["difference"].as_f64().unwrap() + 14.0 / 40.0).abs() < 1e-9);
    assert_eq!(metric("tokens")["regression"], true);
    assert_eq!(report["groups"].as_array().unwrap().len(), 2);
    // Reproducible: the same inputs give the same report.
    let again = loopotel(&["compare", &b, &c, "--json"]);
    assert_eq!(o.stdout, again.stdout);

    // Markdown for a pull-request comment.
    let o = loopotel(&["compare", &b, &c, "--markdown"]);
    let (md, _) = text(&o);
    assert!(md.contains("| metric | base | candidate | diff | interval | |"));
    assert!(md.contains("significant regression"));
}

#[test]
fn an_equal_candidate_passes_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = batches(dir.path(), false);
    let o = loopotel(&["compare", &b, &c, "--fail-on-regression"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("no significant regression"));
}

#[test]
fn unpaired_runs_use_newcombe_and_degenerate_inputs_get_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    // No seeds: unpaired; success rates by Newcombe's interval.
    let base: Vec<Value> = (0..30)
        .map(|i| run_doc(i, "t", None, i % 10 != 0, 0.8, 100, 40))
        .collect();
    let cand: Vec<Value> = (0..30)
        .map(|i| run_doc(100 + i, "t", None, i % 2 == 0, 0.8, 100, 40))
        .collect();
    let (b, c) = (dir.path().join("b.jsonl"), dir.path().join("c.jsonl"));
    write(&b, &base);
    write(&c, &cand);
    let o = loopotel(&[
        "compare",
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["overall"]["pairing"], "unpaired");
    let sr = &report["overall"]["metrics"][0];
    assert_eq!(sr["method"], "newcombe");
    assert!(sr["ci"][1].as_f64().unwrap() < 0.0, "{sr}");

    // One run a side, all successes, zero variance: no NaN, an explained null interval.
    let one_b = dir.path().join("one_b.jsonl");
    let one_c = dir.path().join("one_c.jsonl");
    write(&one_b, &[run_doc(1, "t", Some(1), true, 0.5, 10, 10)]);
    write(&one_c, &[run_doc(2, "t", Some(1), true, 0.5, 10, 10)]);
    let o = loopotel(&[
        "compare",
        one_b.to_str().unwrap(),
        one_c.to_str().unwrap(),
        "--json",
        "--fail-on-regression",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let body = String::from_utf8_lossy(&o.stdout);
    assert!(!body.contains("NaN"));
    let report: Value = serde_json::from_str(&body).unwrap();
    let tokens = report["overall"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tokens")
        .unwrap();
    assert!(tokens["ci"].is_null());
    assert!(tokens["note"].as_str().unwrap().contains("fewer than 2"));

    // Different envs: nothing shared, exit 2 with the reason.
    let other: Vec<Value> = (0..3)
        .map(|i| {
            let mut d = run_doc(200 + i, "t", Some(i as i64), true, 0.5, 10, 10);
            d["env_id"] = json!("other/env-v1");
            d
        })
        .collect();
    let o_path = dir.path().join("other.jsonl");
    write(&o_path, &other);
    let o = loopotel(&["compare", b.to_str().unwrap(), o_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("share no (env, task)"));

    // A file of another format: its lines are reported, and nothing is left to compare.
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "{\"not\": \"ltf\"}\nnot json at all\n").unwrap();
    let o = loopotel(&["compare", b.to_str().unwrap(), junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(
        err.contains("2 line(s) skipped") && err.contains("junk.jsonl:2"),
        "{err}"
    );
}

#[test]
fn show_lists_runs_and_draws_a_run_within_80_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let o = loopotel(&[
        "run",
        "builtin/bugfix-v1",
        "--seeds",
        "0..3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // A torn line does not hide the rest.
    let mut body = std::fs::read_to_string(&out).unwrap();
    body.push_str("{\"schema_version\": \"ltf/0.1\", \"tra");
    std::fs::write(&out, body).unwrap();
    let o = loopotel(&["show", out.to_str().unwrap()]);
    let (list, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "skipped lines make the exit 1");
    assert!(err.contains("1 line(s) skipped"), "{err}");
    let written = std::fs::read_to_string(&out).unwrap().lines().count() - 1;
    let runs: Vec<&str> = list.lines().filter(|l| l.contains("bugfix-v1/")).collect();
    assert_eq!(runs.len(), written, "every run listed:\n{list}");
    for seed in ["/0 ", "/1 ", "/2 "] {
        assert!(
            runs.iter().any(|l| l.contains(seed)),
            "seed {seed} listed:\n{list}"
        );
    }
    for line in list.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
    let o = loopotel(&["show", out.to_str().unwrap(), "--index", "2"]);
    let (tree, _) = text(&o);
    assert!(
        tree.contains("loop.run")
            && tree.contains("loop.iteration")
            && tree.contains("loop.env.step")
    );
    for line in tree.lines().skip(2) {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        !tree.contains('\u{1b}'),
        "NO_COLOR and no terminal: plain text"
    );
    // By id prefix.
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    let o = loopotel(&["show", out.to_str().unwrap(), "--run", id]);
    assert!(o.status.success() && text(&o).0.contains("loop.run"));
}

#[test]
fn run_refuses_to_mix_batches_and_shards_cover_the_grid_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    fn args(out: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["run", "builtin/triage-v1", "--seeds", "0..5", "--out"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        a.push(out.display().to_string());
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    }
    let loopotel = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        loopotel(&refs)
    };
    assert!(
        loopotel(args(&out, &["--batch-id", "first"]))
            .status
            .success()
    );
    let o = loopotel(args(&out, &[]));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--append") && text(&o).1.contains("--force"));
    assert!(
        loopotel(args(&out, &["--append", "--batch-id", "second"]))
            .status
            .success()
    );
    let docs = std::fs::read_to_string(&out).unwrap();
    let batches: Vec<String> = docs
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["spans"][0]["attributes"]["loop.batch.id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        batches.iter().filter(|b| *b == "first").count(),
        batches.len() / 2
    );
    // `--batch` separates them again.
    let o = loopotel(vec![
        "show".into(),
        out.display().to_string(),
        "--batch".into(),
        "second".into(),
    ]);
    assert!(text(&o).0.contains(&format!("{} runs", batches.len() / 2)));
    assert!(loopotel(args(&out, &["--force"])).status.success());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        batches.len() / 2
    );

    // Shards 1/3, 2/3, 3/3 together equal the unsharded batch, with no overlap.
    let key = |path: &Path| {
        let mut keys: Vec<(String, i64, String, i64)> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["task_id"].as_str().unwrap().to_owned(),
                    v["metadata"]["seed"].as_i64().unwrap(),
                    v["outcome"].as_str().unwrap().to_owned(),
                    v["spans"][0]["attributes"]["loop.tokens_total"]
                        .as_i64()
                        .unwrap(),
                )
            })
            .collect();
        keys.sort();
        keys
    };
    let whole = dir.path().join("whole.jsonl");
    assert!(loopotel(args(&whole, &[])).status.success());
    let mut union = Vec::new();
    for k in 1..=3 {
        let part = dir.path().join(format!("part{k}.jsonl"));
        let shard = format!("{k}/3");
        assert!(loopotel(args(&part, &["--shard", &shard])).status.success());
        union.extend(key(&part));
    }
    union.sort();
    assert_eq!(union, key(&whole));
    // And compare over the shards' files equals compare over the whole batch.
    let parts: Vec<String> = (1..=3)
        .map(|k| {
            dir.path()
                .join(format!("part{k}.jsonl"))
                .display()
                .to_string()
        })
        .collect();
    let o = loopotel(
        [
            "compare",
            whole.to_str().unwrap(),
            &parts[0],
            "--candidate-file",
            &parts[1],
            "--candidate-file",
            &parts[2],
            "--json",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["overall"]["pairs"], union.len());
    assert!(
        report["regressions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["metric"] == "duration_ms")
    );
    let o = loopotel(vec![
        "run".into(),
        "builtin/triage-v1".into(),
        "--shard".into(),
        "4/3".into(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}
