//! `loopotel run` and `loopotel list`: traced batches on the built-in envs (no Python), the
//! reference's envs through an installed loopgym, the summary (table and JSON), and clear
//! errors for bad arguments.

mod common;

use common::{OURS, loopotel};
use std::process::Command;

use loopotel::jsonl::JsonlReader;
use serde_json::Value;

#[test]
fn a_batch_on_the_builtin_envs_writes_valid_traces_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let o = loopotel(&[
        "run",
        "builtin/summarize-v1",
        "builtin/triage-v1",
        "--seeds",
        "0..=4",
        "--concurrency",
        "3",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    // 3 + 4 tasks, 5 seeds each.
    assert_eq!(summary["episodes"], 35);
    let envs = summary["envs"].as_array().unwrap();
    assert_eq!(envs.len(), 2);
    for e in envs {
        for key in [
            "success_rate",
            "mean_iterations",
            "mean_final_quality",
            "mean_cumulative_les",
            "p50_episode_ms",
            "p95_episode_ms",
        ] {
            assert!(e[key].as_f64().is_some(), "{key} in {e}");
        }
        assert!(e["tokens"].as_u64().unwrap() > 0);
        assert_eq!(e["errors"], 0);
    }
    let docs: Vec<_> = JsonlReader::open(&out).unwrap().documents().collect();
    assert_eq!(docs.len(), 35);
    for d in docs {
        let d = d.expect("a document").value;
        assert!(
            loopotel::validate::validate_document(&d).is_empty(),
            "valid"
        );
        assert!(d.spans.iter().any(|s| s.name.as_str() == "loop.env.step"));
    }
    let v = Command::new(OURS)
        .args(["validate", "--strict", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(v.status.success());
}

#[test]
fn list_shows_builtins_and_bad_arguments_are_clear_errors() {
    let o = loopotel(&["list", "--json"]);
    assert!(o.status.success());
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "builtin/bugfix-v1" && r["native"] == true)
    );
    for (args, needle) in [
        (vec!["run", "nope/x"], "unknown env \"nope/x\""),
        (
            vec!["run", "builtin/bugfix-v1", "--seeds", "5..1"],
            "empty range",
        ),
        (
            vec!["run", "builtin/bugfix-v1", "--seeds", "a,b"],
            "not an integer list",
        ),
        (
            vec!["run", "loopbench/code-repair-v1"],
            "pip install loopgym",
        ),
    ] {
        let o = loopotel(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn the_reference_envs_run_natively_from_an_installed_loopgym() {
    let Some(r) = tests::reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let o = Command::new(OURS)
        .args(["list", "--json"])
        .env("LOOPOTEL_PYTHON", &r.python)
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let native = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["native"].clone())
    };
    assert_eq!(native("loopbench/code-repair-v1"), Some(Value::Bool(true)));
    assert_eq!(native("loopbench/hitl-gate-v1"), Some(Value::Bool(true)));
    assert_eq!(
        native("loopbench/composed-swarm-v1"),
        Some(Value::Bool(true))
    );
    // Replay is native too (it needs a LoopNet records file, not loopgym's specs).
    assert_eq!(native("replay/loopnet-v1"), Some(Value::Bool(true)));
    let o = Command::new(OURS)
        .args([
            "run",
            "loopbench/code-repair-v1",
            "sim/mock-llm-v1",
            "--seeds",
            "1,2",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("LOOPOTEL_PYTHON", &r.python)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    // code-repair: 3 tasks × 2 seeds; mock-llm: the default task × 2 seeds.
    assert_eq!(summary["episodes"], 8);
}

#[test]
fn ctrl_c_stops_cleanly_and_keeps_every_finished_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let child = Command::new(OURS)
        .args([
            "run",
            "builtin/triage-v1",
            "--seeds",
            "0..5000000",
            "--out",
            out.to_str().unwrap(),
        ])
        .env_remove("LOOPOTEL_LOOPGYM_DIR")
        .env("LOOPOTEL_PYTHON", "/nonexistent/python")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until episodes are being written, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 100_000 {
        assert!(std::time::Instant::now() < deadline, "no traces written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
    // Every line is a complete, valid trace; the summary counts them.
    let docs: Vec<_> = JsonlReader::open(&out).unwrap().documents().collect();
    assert!(!docs.is_empty());
    for d in &docs {
        let d = d.as_ref().expect("complete line");
        assert!(loopotel::validate::validate_document(&d.value).is_empty());
    }
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains(&format!("{}/", docs.len())), "{summary}");
}

/// `--otlp` with `--spool`: a run while the collector is down spools its spans and exits
/// cleanly; the next run (a new process, the collector back) sends them along with its own.
/// The collector gets every span of both runs exactly once, with the ids in their JSONL.
#[test]
fn a_spool_carries_spans_across_processes_to_a_collector_that_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let endpoint = format!("http://{addr}");
    let batch = |out: &std::path::Path| {
        let o = loopotel(&[
            "run",
            "builtin/triage-v1",
            "--seeds",
            "0..5",
            "--json",
            "--out",
            out.to_str().unwrap(),
            "--otlp",
            &endpoint,
            "--spool",
            spool.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let summary: Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
        summary["otlp"].clone()
    };
    let (first, second) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let down = batch(&first);
    assert_eq!(down["delivered"], 0, "{down}");
    assert_eq!(down["spooled"], down["spans"], "{down}");
    assert_eq!(down["dropped"], 0, "{down}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_, mut rx) = rt.block_on(tests::otlp_http_receiver_on(&addr));
    let up = batch(&second);
    assert_eq!(up["resent_from_spool"], down["spans"], "{up}");
    assert_eq!(up["dropped"], 0, "{up}");

    let mut bodies = Vec::new();
    while let Ok((_, body)) = rx.try_recv() {
        bodies.push(body);
    }
    let mut got = tests::otlp_span_ids(&bodies);
    let docs: Vec<_> = [&first, &second]
        .into_iter()
        .flat_map(|p| JsonlReader::open(p).unwrap().documents())
        .map(|d| d.unwrap().value)
        .collect();
    let mut want = tests::ltf_span_ids(&docs);
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "each span exactly once");
    assert!(got == want, "the collector got the recorded ids");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool emptied"
    );
}

/// `replay/loopnet-v1` runs natively over a LoopNet records file: each seed replays the
/// record the reference would choose, as a strict-valid traced episode.
#[test]
fn a_loopnet_corpus_replays_as_traced_episodes() {
    let dir = tempfile::tempdir().unwrap();
    let records = tests::workspace_root().join("tests/fixtures/loopnet/records.jsonl");
    let out = dir.path().join("replay.jsonl");
    let o = loopotel(&[
        "run",
        "replay/loopnet-v1",
        "--seeds",
        "0..20",
        "--loopnet",
        records.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = loopotel(&["validate", "--strict", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let docs = tests::read_jsonl_values(&out);
    assert_eq!(docs.len(), 20);
    assert!(docs.iter().all(|d| d["env_id"] == "replay/loopnet-v1"));
    // Without a corpus the env says what it needs.
    let o = loopotel(&[
        "run",
        "replay/loopnet-v1",
        "--out",
        dir.path().join("x.jsonl").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--loopnet"));
}

/// `--metrics-addr` serves the batch's metrics for Prometheus while it runs and for
/// `--metrics-linger` seconds after.
#[test]
fn the_batch_metrics_are_served_for_prometheus() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(OURS)
        .args([
            "run",
            "builtin/triage-v1",
            "--seeds",
            "0..10",
            "--metrics-addr",
            "127.0.0.1:0",
            "--metrics-linger",
            "3",
            "--out",
        ])
        .arg(dir.path().join("t.jsonl"))
        .env_remove("LOOPOTEL_LOOPGYM_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = lines
        .find_map(|l| {
            let l = l.ok()?;
            let rest = l.split("metrics at http://").nth(1)?;
            Some(rest.trim_end_matches("/metrics").to_owned())
        })
        .expect("the endpoint's address on stderr");
    // The batch of 40 episodes takes milliseconds; the endpoint lingers.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    let runs: f64 = body
        .lines()
        .filter(|l| l.starts_with("loop_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(runs, 40.0, "{body}");
    assert!(body.contains("loop_env_id=\"builtin/triage-v1\""));
    assert!(child.wait().unwrap().success());
}

/// `--model`: a real LLM (the local llmock server) is each episode's worker and critic;
/// its calls are traced with their usage, each token counted once.
#[test]
fn a_batch_with_a_real_llm_as_worker_and_critic() {
    let Some(base) = tests::llmock() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let o = Command::new(OURS)
        .args([
            "run",
            "builtin/triage-v1",
            "--seeds",
            "0..2",
            "--model",
            "lt-cli",
            "--concurrency",
            "4",
            "--json",
            "--out",
        ])
        .arg(&out)
        .env("OPENAI_BASE_URL", format!("{base}/v1"))
        .env("OPENAI_API_KEY", "sk-cli-live-0123456789")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = loopotel(&["validate", "--strict", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let docs = tests::read_jsonl_values(&out);
    assert_eq!(docs.len(), 8);
    for d in &docs {
        let spans = d["spans"].as_array().unwrap();
        let chats: Vec<&Value> = spans
            .iter()
            .filter(|s| s["name"] == "chat lt-cli")
            .collect();
        assert!(!chats.is_empty(), "LLM calls traced");
        assert!(
            spans.iter().any(|s| s["name"] == "POST"),
            "HTTP attempts traced"
        );
        let usage: i64 = chats
            .iter()
            .map(|c| {
                c["attributes"]["gen_ai.usage.input_tokens"]
                    .as_i64()
                    .unwrap_or(0)
                    + c["attributes"]["gen_ai.usage.output_tokens"]
                        .as_i64()
                        .unwrap_or(0)
            })
            .sum();
        assert!(usage > 0);
        assert_eq!(
            spans[0]["attributes"]["loop.tokens_total"].as_i64(),
            Some(usage)
        );
        assert!(!d.to_string().contains("0123456789"), "API key recorded");
    }
    // Without an endpoint it says what it needs.
    let o = Command::new(OURS)
        .args(["run", "builtin/triage-v1", "--model", "m", "--out"])
        .arg(dir.path().join("x.jsonl"))
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("OPENAI_BASE_URL"));
}
