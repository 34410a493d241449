//! A known secret (an API key and an email address) sent through every path of a traced
//! LLM call — the client's key (the `Authorization` header of every attempt), the prompt and
//! tool-call arguments with content capture on, and an API error message — never appears
//! in the JSONL file or the OTLP payloads; the redacted places say `[redacted…]`.

use std::time::Duration;

use loopotel::LoopTracer;
use loopotel::jsonl::JsonlExporter;
use loopotel::otel::otlp::{Protocol, span_exporter};
use loopotel_openai::async_openai::config::OpenAIConfig;
use loopotel_openai::middleware::traced_http_service;
use loopotel_openai::{GenAiTelemetry, TracedClient};
use opentelemetry::context::FutureExt as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;

const KEY: &str = "sk-loopotelSECRETvalue123456";
const EMAIL: &str = "carol@secret-corp.example";

async fn scenario(base: &str, behaviors: serde_json::Value) {
    let resp = reqwest_post(base, behaviors).await;
    assert!(resp, "scenario accepted");
}

async fn reqwest_post(base: &str, behaviors: serde_json::Value) -> bool {
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/_llmock/scenario"))
        .json(&json!({ "behaviors": behaviors }))
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_secret_never_reaches_jsonl_or_otlp() {
    let Ok(base) = std::env::var("LOOPOTEL_LLMOCK_URL") else {
        assert!(std::env::var("LOOPOTEL_REQUIRE_LLMOCK").as_deref() != Ok("1"));
        eprintln!("SKIPPED: llmock not running");
        return;
    };
    let m = |name: &str| json!({"model": name});
    scenario(
        &base,
        json!([
            {"type": "reply", "tool_calls": [{"name": "lookup", "arguments": {"token": KEY, "owner": EMAIL}}], "match": m("sec-tools")},
            {"type": "fail", "status": 400, "message": format!("invalid key {KEY} for {EMAIL}"), "times": 1, "match": m("sec-error")},
        ]),
    )
    .await;

    let (endpoint, mut rx) = tests::otlp_http_receiver().await;
    let exporter = span_exporter(
        &endpoint,
        Protocol::HttpProtobuf,
        Duration::from_secs(5),
        &[],
    )
    .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(&path).unwrap())
        .build();
    let client = TracedClient::new(
        loopotel_openai::async_openai::Client::with_config(
            OpenAIConfig::new()
                .with_api_base(format!("{base}/v1"))
                .with_api_key(KEY),
        )
        .with_http_service(traced_http_service(reqwest::Client::new())),
    )
    .telemetry(GenAiTelemetry::default().capture_content(true));

    let run = tracer.run("secret-loop").start();
    let it = run.iteration(1);
    let prompt = format!("my key is {KEY}, mail me at {EMAIL}");
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    for model in ["sec-plain", "sec-tools", "sec-error"] {
        let req = serde_json::from_value(json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "tools": tools,
        }))
        .unwrap();
        let _ = client.chat().create(req).with_context(it.context()).await;
    }
    drop(it);
    let doc = run.finish(loopotel::Outcome::Success, "done");
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.shutdown())
        .await
        .unwrap()
        .unwrap();

    let jsonl = std::fs::read_to_string(&path).unwrap();
    let mut otlp = Vec::new();
    while let Ok((line, body)) = rx.try_recv() {
        if line.starts_with("POST /v1/traces") {
            otlp.extend(body);
        }
    }
    assert!(!otlp.is_empty(), "spans were exported");
    for secret in [KEY, EMAIL, "loopotelSECRET"] {
        assert!(!jsonl.contains(secret), "{secret} in JSONL");
        assert!(
            !otlp.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in OTLP"
        );
    }
    // The paths were exercised: captured prompt, tool arguments and the error message.
    let line = doc.to_json_line();
    assert!(line.contains("gen_ai.input.messages"));
    assert!(line.contains("\"lookup\""), "tool call recorded");
    assert!(line.matches("[redacted").count() >= 4, "{line}");
    assert!(
        doc.spans
            .iter()
            .any(|s| s.attributes.get("error.type").is_some())
    );
}
