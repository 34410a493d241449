//! `loopotel report`: the page's content, its limits and bad input — and, in a real headless
//! Chromium (`scripts/browser.sh setup`), that it renders, counts right, sorts, filters, draws
//! a run's timeline and charts, logs no console error and makes no request.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{loopotel, text};
use loopotel::jsonl::JsonlExporter;
use loopotel::{Attributes, LoopTracer, Outcome, SpanKind};
use serde_json::Value;

/// A name that would end the page's script element if it were not escaped.
const HOSTILE: &str = "</script><script>document.body.dataset.pwned='1'</script>";

/// Runs of an agent with LLM and tool calls: priced tokens, captured content, a failed
/// tool call, events, a span ended by a panic, and a hostile name.
fn agent_runs(path: &Path) {
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(path).unwrap())
        .build();
    for (k, outcome) in [(0, Outcome::Failure), (1, Outcome::Success)] {
        let run = tracer
            .run(if k == 0 { HOSTILE } else { "agent-loop" })
            .env_id("agent/support-v1")
            .task_id("refund-42")
            .goal_target(0.9)
            .metadata("seed", k)
            .start();
        for n in 1..=4u64 {
            let mut it = run.iteration(n);
            {
                let mut chat = it.span("chat gpt-4o", SpanKind::Worker);
                chat.set_attribute("gen_ai.operation.name", "chat");
                chat.set_attribute("gen_ai.request.model", "gpt-4o");
                chat.set_attribute(
                    "gen_ai.input.messages",
                    "[{\"role\":\"user\",\"content\":\"refund order 42\"}]",
                );
                chat.add_tokens(50_000 + 1000 * n);
                chat.add_cost_usd(0.01 * n as f64);
                chat.add_event("gen_ai.choice", Attributes::new());
            }
            {
                let mut tool = it.span("execute_tool lookup_order", SpanKind::Worker);
                tool.set_attribute("gen_ai.operation.name", "execute_tool");
                tool.set_attribute("gen_ai.tool.name", "lookup_order");
                if n == 2 {
                    tool.record_error("timeout", "lookup_order timed out");
                }
            }
            if n == 4 && k == 0 {
                // A tool that panics: its span ends early, marked `panic`.
                let it = &it;
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _span = it.span("execute_tool send_email", SpanKind::Worker);
                    panic!("send_email failed");
                }));
            }
            it.worker_complete("agent");
            it.evaluator_complete("judge", 0.2 * n as f64);
        }
        let _doc = run.finish(
            outcome,
            if k == 0 {
                "max_iterations"
            } else {
                "quality_threshold"
            },
        );
    }
}

fn docs(paths: &[&Path]) -> Vec<Value> {
    paths
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v.get("trace_id").is_some())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn builtin_batch(dir: &Path, seeds: &str) -> PathBuf {
    let out = dir.join("builtin.jsonl");
    let o = loopotel(&[
        "run",
        "builtin/triage-v1",
        "builtin/bugfix-v1",
        "--seeds",
        seeds,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    out
}

/// The `<script type="application/json" id="data">` of a page, parsed.
fn page_data(html: &str) -> Value {
    let start = html.find(r#"id="data">"#).unwrap() + r#"id="data">"#.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// The value shown on the overview card `key`.
fn card(html: &str, key: &str) -> String {
    let at = html.find(&format!(r#"data-k="{key}""#)).unwrap();
    let v = at + html[at..].find(r#"<div class="v">"#).unwrap() + r#"<div class="v">"#.len();
    html[v..v + html[v..].find("</div>").unwrap()].to_owned()
}

#[test]
fn the_page_is_self_contained_counts_every_run_and_keeps_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = builtin_batch(dir.path(), "0..30");
    let agent = dir.path().join("agent.jsonl");
    agent_runs(&agent);
    let all = docs(&[&builtin, &agent]);
    let page = dir.path().join("r.html");
    let o = loopotel(&[
        "report",
        builtin.to_str().unwrap(),
        agent.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
        "--detail-limit",
        "7",
        "--list-limit",
        "20",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing to fetch: no src or href, the policy forbids requests, no URL but the SVG
    // namespace's (a name, never requested).
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("default-src 'none'"));
    assert!(!html.contains(" src=") && !html.contains(" href="));
    let urls: BTreeSet<&str> = html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 30).min(html.len())])
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
        .collect();
    assert!(
        urls.iter()
            .all(|u| u.starts_with("http://www.w3.org/2000/svg")),
        "{urls:?}"
    );
    // The hostile name is data, escaped: it closes no element.
    assert_eq!(html.matches("</script>").count(), 2);
    // Every run counted; the list and the detail within their limits, problem runs first.
    assert_eq!(card(&html, "runs"), all.len().to_string());
    let failures = all.iter().filter(|d| d["outcome"] != "success").count();
    let successes = all.len() - failures;
    assert_eq!(
        card(&html, "success"),
        format!("{:.1}%", successes as f64 * 100.0 / all.len() as f64)
    );
    let data = page_data(&html);
    assert_eq!(data["runs_total"], all.len());
    let rows = data["rows"].as_array().unwrap();
    let details = data["details"].as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(details.len(), 7);
    // Problem runs: not successful, or with a failed span.
    let is_problem = |d: &Value| {
        d["outcome"] != "success"
            || d["spans"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| !s["attributes"]["error.type"].is_null())
    };
    let problems = all.iter().filter(|d| is_problem(d)).count();
    assert!(
        problems > failures,
        "a successful run with a failed tool call"
    );
    let listed_problems = rows.iter().filter(|r| r[17] == true).count();
    assert_eq!(
        listed_problems,
        problems.min(20),
        "problem runs listed first"
    );
    let detailed_problems = details
        .iter()
        .filter(|d| {
            all.iter()
                .any(|a| a["trace_id"] == d["id"] && is_problem(a))
        })
        .count();
    assert_eq!(detailed_problems, problems.min(7));
    // A detailed agent run: its spans, errors, content apart, events, series.
    let hostile = details
        .iter()
        .find(|d| d["name"] == HOSTILE)
        .expect("the failed agent run is detailed");
    let spans = hostile["spans"].as_array().unwrap();
    let doc = all.iter().find(|a| a["trace_id"] == hostile["id"]).unwrap();
    assert_eq!(spans.len(), doc["spans"].as_array().unwrap().len());
    assert_eq!(
        spans.iter().filter(|s| !s["err"].is_null()).count(),
        2,
        "the timeout and the panic"
    );
    assert!(
        spans.iter().any(|s| s["end"] == "panic"),
        "a span ended early is marked"
    );
    let chat = spans.iter().find(|s| s["c"] == "llm").unwrap();
    assert_eq!(chat["ct"][0][0], "gen_ai.input.messages");
    assert!(
        chat["a"]
            .as_array()
            .unwrap()
            .iter()
            .all(|kv| kv[0] != "gen_ai.input.messages")
    );
    assert_eq!(spans.iter().filter(|s| s["c"] == "tool").count(), 4);
    let its = hostile["its"].as_array().unwrap();
    assert_eq!(its.len(), 4);
    assert_eq!(its[3][1], 0.8);
    assert_eq!(its[0][3], 51_000.0);
    // The same input, the same page (the sample is seeded).
    let again = dir.path().join("again.html");
    let o = loopotel(&[
        "report",
        builtin.to_str().unwrap(),
        agent.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
        "--detail-limit",
        "7",
        "--list-limit",
        "20",
    ]);
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&again).unwrap(), html);
}

#[test]
fn bad_lines_are_listed_with_their_line_numbers_and_the_rest_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = builtin_batch(dir.path(), "0..3");
    let mut mixed = String::from("not json at all\n");
    mixed.push_str(&std::fs::read_to_string(&builtin).unwrap());
    // A record of another format (LoopNet).
    mixed.push_str("{\"id\": \"ln-00001\", \"source\": \"synthetic\"}\n");
    // A span of an unknown kind, and a 1 MB attribute value.
    let first: Value = serde_json::from_str(mixed.lines().nth(1).unwrap()).unwrap();
    let mut unknown = first.clone();
    unknown["spans"][1]["kind"] = "banana".into();
    mixed.push_str(&format!("{unknown}\n"));
    let mut huge = first;
    huge["trace_id"] = "ltf-00000000-0000-0000-0000-0000000000aa".into();
    huge["spans"][1]["attributes"]["notes"] = "x".repeat(1 << 20).into();
    mixed.push_str(&format!("{huge}\n"));
    let bad = dir.path().join("mixed.jsonl");
    std::fs::write(&bad, mixed).unwrap();
    let page = dir.path().join("r.html");
    let o = loopotel(&[
        "report",
        bad.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("3 line(s) skipped"), "{stderr}");
    assert!(stderr.contains("mixed.jsonl:1:"), "{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("3 line(s) could not be read and were skipped"));
    assert!(html.contains("mixed.jsonl:1"));
    let runs = docs(&[&builtin]).len();
    assert!(html.contains(&format!("mixed.jsonl:{}", runs + 2)));
    assert!(
        html.contains(&format!("mixed.jsonl:{}", runs + 3)),
        "unknown kind"
    );
    assert!(html.contains("banana"));
    // The huge value is shown cut, and said so.
    assert_eq!(card(&html, "runs"), (runs + 1).to_string());
    assert!(html.contains("… (1048576 characters)"));
    assert!(html.len() < 1 << 20, "{} bytes", html.len());
    // A missing file: a clear error, exit 1, no page.
    let o = loopotel(&[
        "report",
        "/nonexistent/x.jsonl",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("/nonexistent/x.jsonl"));
    // An empty file: a page that says there is nothing.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = loopotel(&[
        "report",
        empty.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(card(&html, "runs"), "0");
    assert!(html.contains("no values recorded"));
}

#[test]
fn shards_report_what_one_unsharded_batch_reports() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.jsonl");
    let args = |out: &Path, shard: Option<&str>| {
        let mut a: Vec<String> = [
            "run",
            "builtin/triage-v1",
            "builtin/summarize-v1",
            "--seeds",
            "0..20",
            "--out",
        ]
        .map(str::to_owned)
        .to_vec();
        a.push(out.display().to_string());
        if let Some(s) = shard {
            a.extend(["--shard".to_owned(), s.to_owned()]);
        }
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = loopotel(&a);
        assert!(o.status.success(), "{:?}", text(&o));
    };
    run(args(&whole, None));
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| dir.path().join(format!("s{k}.jsonl")))
        .collect();
    for (k, s) in shards.iter().enumerate() {
        run(args(s, Some(&format!("{}/3", k + 1))));
    }
    let report = |files: &[&Path], out: &str| {
        let page = dir.path().join(out);
        let mut a = vec!["report".to_owned()];
        a.extend(files.iter().map(|f| f.display().to_string()));
        a.extend(["-o".to_owned(), page.display().to_string()]);
        run(a);
        std::fs::read_to_string(page).unwrap()
    };
    let one = report(&[&whole], "one.html");
    let three = report(
        &shards.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        "three.html",
    );
    for key in ["runs", "success", "iterations", "score", "tokens", "errors"] {
        assert_eq!(card(&one, key), card(&three, key), "{key}");
    }
    // The per env and task table, too.
    let table = |h: &str| {
        let s = h.find(r#"<table class="groups">"#).unwrap();
        let body = &h[s..s + h[s..].find("</table>").unwrap()];
        // Mean durations differ between runs of the same grid; the rest must not.
        body.split("<tr")
            .map(|row| row.split("<td").take(10).collect::<Vec<_>>().join("|"))
            .collect::<Vec<_>>()
    };
    assert_eq!(table(&one), table(&three));
}

#[test]
fn run_report_writes_the_page_of_the_batch_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let page = dir.path().join("report.html");
    for extra in [&["--force"][..], &["--append"][..]] {
        let mut a = vec![
            "run",
            "builtin/bugfix-v1",
            "--seeds",
            "0..5",
            "--out",
            out.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let o = loopotel(&a);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("report of 10 run(s)"), "{stdout}");
    }
    // Two batches in the file; the page holds the last one only.
    assert_eq!(docs(&[&out]).len(), 20);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(card(&html, "runs"), "10");
    assert!(html.contains(" of batch b-"));
}

/// The page in a real headless Chromium.
#[test]
fn the_report_in_a_real_browser() {
    let Some(browser) = tests::browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let builtin = builtin_batch(dir.path(), "0..40");
    let agent = dir.path().join("agent.jsonl");
    agent_runs(&agent);
    let mut files = vec![builtin.clone(), agent.clone()];
    // A real LLM's runs too (llmock): GenAI chat spans and HTTP attempts.
    if let Some(base) = tests::llmock() {
        let live = dir.path().join("live.jsonl");
        let o = Command::new(common::OURS)
            .args([
                "run",
                "builtin/triage-v1",
                "--seeds",
                "0..2",
                "--model",
                "gpt-4o-mini",
                "--out",
            ])
            .arg(&live)
            .env("OPENAI_BASE_URL", format!("{base}/v1"))
            .env("OPENAI_API_KEY", "sk-report-test")
            .output()
            .unwrap();
        assert!(o.status.success(), "{:?}", text(&o));
        files.push(live);
    }
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"truncated\": \n").unwrap();
    files.push(bad);
    let all = docs(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let page = dir.path().join("report.html");
    let mut args: Vec<String> = vec!["report".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend([
        "-o".into(),
        page.display().to_string(),
        "--detail-limit".into(),
        "60".into(),
    ]);
    let o = loopotel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "one bad line: {:?}", text(&o));

    // Screenshots are kept under target/ (a CI artifact).
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let o = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/report_check.mjs"))
        .arg(&page)
        .arg(&shots)
        .env("LOOPOTEL_CHROMIUM", &browser.chromium)
        .env("LOOPOTEL_PLAYWRIGHT_DIR", &browser.playwright_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();

    // No console message of any kind, no script error, no request.
    assert_eq!(seen["console"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["pageErrors"], serde_json::json!([]));
    assert_eq!(seen["requests"], serde_json::json!([]));
    // The hostile loop name stayed text.
    assert!(
        seen["title"]
            .as_str()
            .unwrap()
            .starts_with("loopotel report")
    );
    // Counts.
    assert_eq!(seen["cards"]["runs"], all.len().to_string());
    let ids: BTreeSet<&str> = all
        .iter()
        .map(|d| d["trace_id"].as_str().unwrap())
        .collect();
    let listed: BTreeSet<&str> = seen["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, ids, "every run listed");
    for (outcome, n) in seen["byOutcome"].as_object().unwrap() {
        let expected = all
            .iter()
            .filter(|d| d["outcome"] == outcome.as_str())
            .count();
        assert_eq!(n.as_u64(), Some(expected as u64), "{outcome}");
    }
    assert!(seen["byOutcome"]["failure"].as_u64().unwrap() > 0);
    let seed3 = all.iter().filter(|d| d["metadata"]["seed"] == 3).count();
    assert_eq!(seen["seed3"].as_u64(), Some(seed3 as u64));
    assert_eq!(seen["byId"].as_array().unwrap().len(), 1);
    let tokens: Vec<u64> = seen["tokensSorted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] >= w[1]),
        "sorted by tokens: {tokens:?}"
    );
    // Charts rendered: every distribution and breakdown has bars.
    for (chart, bars) in seen["charts"].as_object().unwrap() {
        assert!(bars.as_u64().unwrap() > 0, "chart {chart} has no bars");
    }
    assert_eq!(seen["charts"].as_object().unwrap().len(), 8);
    assert_eq!(
        seen["groups"].as_array().unwrap().len(),
        8,
        "7 env/task rows and the total"
    );
    assert!(
        seen["skippedNote"][0]
            .as_str()
            .unwrap()
            .contains("bad.jsonl:1")
    );
    // The run drawn: the failed agent run (most tokens among failures, listed first).
    let run = &seen["run"];
    let doc = all.iter().find(|d| d["trace_id"] == run["id"]).unwrap();
    assert_eq!(doc["loop_name"], HOSTILE);
    let spans = doc["spans"].as_array().unwrap();
    assert_eq!(run["bars"].as_u64(), Some(spans.len() as u64));
    assert_eq!(run["rows"].as_u64(), Some(spans.len() as u64));
    let errors = spans
        .iter()
        .filter(|s| !s["attributes"]["error.type"].is_null())
        .count();
    assert_eq!(run["errorBars"].as_u64(), Some(errors as u64));
    let events: usize = spans
        .iter()
        .map(|s| s["events"].as_array().unwrap().len())
        .sum();
    assert_eq!(run["events"].as_u64(), Some(events as u64));
    assert_eq!(run["scoreLines"].as_u64(), Some(2), "goal score and LES");
    assert_eq!(run["scorePoints"].as_u64(), Some(8));
    assert_eq!(run["tokenBars"].as_u64(), Some(4));
    assert!(
        run["heading"].as_str().unwrap().contains(HOSTILE),
        "the name shown as text"
    );
    assert_eq!(run["names"][0], "loop.run");
    assert_eq!(
        run["names"][1], "loop.iteration",
        "tree order: the root, then its children"
    );
    assert!(seen["inspected"]["attributes"].as_u64().unwrap() > 3);
    assert_eq!(
        seen["hash"],
        format!("#run={}", run["id"].as_str().unwrap())
    );
    assert_eq!(seen["undetailed"], 1, "a run without detail says so");
    for shot in ["overview.png", "run.png"] {
        let len = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!(len > 10_000, "{shot}: {len} bytes");
    }
}
