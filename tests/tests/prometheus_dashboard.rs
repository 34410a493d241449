//! The Grafana dashboard on real metrics: a batch recorded through loopotel's own metrics,
//! served by `otel::prometheus::PrometheusEndpoint`, scraped by a real Prometheus (Debian's,
//! started by `scripts/prometheus.sh`); every panel's query parses (promql-parser), and
//! evaluated through Prometheus's HTTP API returns series whose values agree with the batch.

use std::time::{Duration, Instant};

use loopotel::otel::prometheus::PrometheusEndpoint;
use loopotel::{LoopTracer, Outcome, SpanKind};
use serde_json::Value;

fn prometheus() -> Option<(String, String)> {
    let url = loopotel_test_support::peers::peer_url(
        "LOOPOTEL_PROMETHEUS_URL",
        "LOOPOTEL_REQUIRE_PROMETHEUS",
        "Prometheus",
        "bash scripts/prometheus.sh start",
    )?;
    let addr = std::env::var("LOOPOTEL_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:19464".into());
    Some((url, addr))
}

fn query(url: &str, expr: &str) -> Value {
    let mut encoded = String::new();
    for b in expr.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(b as char)
            }
            _ => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    tests::http_get_json(&format!("{url}/api/v1/query?query={encoded}"))
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn sum_of(result: &Value) -> f64 {
    result["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

/// Records `runs` runs over two envs: each iteration an LLM call with usage and time to
/// first chunk, a tool call (every fifth failing) and an env step; cost on each call.
fn record(tracer: &LoopTracer, first: u64, runs: u64) -> u64 {
    let mut successes = 0;
    for r in first..first + runs {
        let env = if r % 2 == 0 {
            "dash/env-a"
        } else {
            "dash/env-b"
        };
        let run = tracer.run("dash-loop").env_id(env).start();
        for n in 1..=3u64 {
            let mut it = run.iteration(n);
            {
                let mut chat = it.span("chat dash-model", SpanKind::Worker.client());
                chat.set_attribute("gen_ai.operation.name", "chat");
                chat.set_attribute("gen_ai.request.model", "dash-model");
                chat.set_attribute("gen_ai.usage.input_tokens", 30i64);
                chat.set_attribute("gen_ai.usage.output_tokens", 5i64);
                chat.set_attribute("gen_ai.response.time_to_first_chunk", 0.05);
                chat.add_tokens(35);
                chat.add_cost_usd(0.001);
            }
            {
                let mut tool = it.span("execute_tool search", SpanKind::Worker);
                tool.set_attribute("gen_ai.operation.name", "execute_tool");
                tool.set_attribute("gen_ai.tool.name", "search");
                if (r + n) % 5 == 0 {
                    tool.record_error("timeout", "the tool timed out");
                }
            }
            drop(it.span("loop.env.step", SpanKind::Worker));
            it.evaluator_complete("judge", 0.3 * n as f64);
        }
        let ok = r % 3 != 0;
        successes += u64::from(ok);
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        drop(run.finish(outcome, "done"));
    }
    successes
}

/// An exporter standing for a collector that refuses every batch.
#[derive(Debug)]
struct Refused;

impl opentelemetry_sdk::trace::SpanExporter for Refused {
    async fn export(
        &self,
        _: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
            "collector unavailable".into(),
        ))
    }
}

/// Records a run whose spans the real disk spool takes while the collector refuses them.
fn spool_some(endpoint: &PrometheusEndpoint) {
    let dir = tempfile::tempdir().unwrap();
    let counters = loopotel::otel::delivery::DeliveryCounters::new()
        .with_meter_provider(endpoint.meter_provider());
    let exporter = loopotel::otel::spool::SpoolingSpanExporter::new(
        Refused,
        loopotel::otel::spool::SpoolConfig::new(dir.path()),
        counters.clone(),
    )
    .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    drop(
        tracer
            .run("dash-spooled")
            .start()
            .finish(Outcome::Success, "done"),
    );
    let _ = provider.shutdown();
    assert!(counters.snapshot().spooled >= 1);
}

#[test]
fn every_panel_of_the_dashboard_answers_with_the_batch() {
    let Some((url, addr)) = prometheus() else {
        return;
    };
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(tests::workspace_root().join("dashboards/grafana/loopotel.json"))
            .unwrap(),
    )
    .unwrap();
    let endpoint = PrometheusEndpoint::serve(addr.as_str()).expect("the metrics port is free");
    let tracer = LoopTracer::builder()
        .meter_provider(endpoint.meter_provider())
        .build();
    // A tracer that drops spans beyond its cap: telemetry health has something to show.
    let capped = LoopTracer::builder()
        .meter_provider(endpoint.meter_provider())
        .max_spans_per_run(2)
        .build();

    // Two halves with scrapes between them, so that rates see the counters move.
    let mut successes = record(&tracer, 0, 20);
    let wait_for = |expr: &str, at_least: f64| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if sum_of(&query(&url, expr)) >= at_least {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("Prometheus never saw {expr} ≥ {at_least}");
    };
    wait_for("sum(loop_runs_total)", 20.0);
    std::thread::sleep(Duration::from_secs(2));
    successes += record(&tracer, 20, 20);
    let run = capped.run("dash-capped").start();
    for n in 1..=4 {
        drop(run.iteration(n));
    }
    drop(run.finish(Outcome::Success, "done"));
    // Spans a collector did not take, spooled to disk and counted.
    spool_some(&endpoint);
    wait_for("sum(loop_runs_total)", 41.0);
    std::thread::sleep(Duration::from_secs(2));

    let panels = dashboard["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 12);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m");
            promql_parser::parser::parse(&expr)
                .unwrap_or_else(|e| panic!("{}: {expr}: {e}", panel["title"]));
            let answer = query(&url, &expr);
            assert_eq!(answer["status"], "success", "{}: {answer}", panel["title"]);
            let series = answer["data"]["result"].as_array().unwrap();
            assert!(
                !series.is_empty(),
                "{}: no series for {expr}",
                panel["title"]
            );
        }
    }
    // Values agree with the batch.
    let totals = query(
        &url,
        "sum by (loop_env_id, loop_outcome) (loop_runs_total{loop_name=\"dash-loop\"})",
    );
    assert_eq!(sum_of(&totals), 40.0);
    let rate = query(
        &url,
        "sum(loop_runs_total{loop_name=\"dash-loop\",loop_outcome=\"success\"}) / sum(loop_runs_total{loop_name=\"dash-loop\"})",
    );
    assert!((sum_of(&rate) - successes as f64 / 40.0).abs() < 1e-9);
    let tokens = query(&url, "sum(gen_ai_client_token_usage_sum)");
    assert_eq!(sum_of(&tokens), 40.0 * 3.0 * 35.0);
    let tool_calls = query(&url, "sum(loop_tool_duration_seconds_count)");
    assert_eq!(sum_of(&tool_calls), 120.0);
    let dropped = query(&url, "sum(loop_telemetry_dropped_total)");
    assert!(sum_of(&dropped) >= 1.0);
    let cost = query(&url, "sum by (gen_ai_request_model) (loop_llm_cost_total)");
    assert!((sum_of(&cost) - 40.0 * 3.0 * 0.001).abs() < 1e-9, "{cost}");
    drop(endpoint);
}
