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
    let Some(base) = tests::llmock() else {
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

/// An environment that leaks: its observations, step `info` and termination reason carry the
/// secret, and (when `fail` is set) its step error message does too.
struct LeakyEnv {
    steps: u64,
    fail: bool,
}

fn leaky_info() -> loopotel_gym::Info {
    let mut info = loopotel_gym::Info::new();
    info.insert("api_key".into(), json!(KEY));
    info.insert("owner".into(), json!({ "email": EMAIL }));
    info.insert("success".into(), json!(true));
    info.insert(
        "termination_reason".into(),
        json!(format!("done; used {KEY} for {EMAIL}")),
    );
    info
}

impl loopotel_gym::Env for LeakyEnv {
    async fn reset(
        &mut self,
        task_id: &str,
        _: Option<i64>,
    ) -> Result<loopotel_gym::Observation, loopotel_gym::EnvError> {
        self.steps = 0;
        Ok(loopotel_gym::Observation {
            task_id: task_id.into(),
            objective: format!("authenticate with {KEY}"),
            info: leaky_info(),
            ..Default::default()
        })
    }

    async fn step(
        &mut self,
        _: loopotel_gym::Action,
    ) -> Result<loopotel_gym::Step, loopotel_gym::EnvError> {
        if self.fail {
            return Err(loopotel_gym::EnvError::Remote(format!(
                "PermissionError: key {KEY} rejected for {EMAIL}"
            )));
        }
        self.steps += 1;
        let done = self.steps >= 2;
        Ok(loopotel_gym::Step {
            observation: loopotel_gym::Observation {
                iteration: self.steps,
                output: format!("Authorization: Bearer {KEY}"),
                quality_score: 0.5 * self.steps as f64,
                done,
                info: leaky_info(),
                ..Default::default()
            },
            reward: 0.5,
            done,
            info: leaky_info(),
        })
    }
}

impl loopotel_gym::EpisodeEnv for LeakyEnv {
    fn describe(&self) -> loopotel_gym::EnvDescription {
        loopotel_gym::EnvDescription {
            env_id: Some("leaky-v1".into()),
            ..Default::default()
        }
    }
    fn tokens_used(&self) -> Option<u64> {
        Some(10 * self.steps)
    }
    fn is_done(&self) -> bool {
        self.steps >= 2
    }
}

const CHILD: &str = "LOOPOTEL_SECRETS_CHILD_DIR";

/// The child's half: env info, env errors, run metadata, termination reasons and exporter
/// headers all carry the secret; the exports go to the parent's receiver (with the key as a
/// bearer header) and to a refused endpoint (so failures are logged), through a spool.
fn leaky_child(dir: &std::path::Path, endpoint: &str) {
    use loopotel::otel::delivery::DeliveryCounters;
    use loopotel::otel::pipeline::counted_batch_processor;
    let headers = [("authorization".to_owned(), format!("Bearer {KEY}"))];
    let live = span_exporter(
        endpoint,
        Protocol::HttpProtobuf,
        Duration::from_secs(5),
        &headers,
    )
    .unwrap();
    let refused_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = span_exporter(
        &format!("http://{refused_addr}"),
        Protocol::HttpProtobuf,
        Duration::from_secs(1),
        &headers,
    )
    .unwrap();
    let counters = DeliveryCounters::new();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(live)
        .with_span_processor(
            counted_batch_processor(
                dead,
                Some(loopotel::otel::spool::SpoolConfig::new(dir.join("spool"))),
                &counters,
            )
            .unwrap(),
        )
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(dir.join("t.jsonl")).unwrap())
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for fail in [false, true] {
        let mut env = LeakyEnv { steps: 0, fail };
        let (result, _) = rt.block_on(loopotel_gym::run_traced_episode(
            &mut env,
            &tracer,
            "t1",
            Some(1),
            &mut loopotel_gym::EnvWorkerPolicy,
        ));
        // The caller's own result is untouched: the episode says what the env said.
        assert!(
            result.termination_reason.contains(KEY)
                || result.termination_reason.contains("env_error")
        );
    }
    let run = tracer
        .run("metadata-loop")
        .metadata("api_key", KEY)
        .metadata(
            "owner",
            json!({ "email": EMAIL, "keys": [KEY], KEY: "as a key" }),
        )
        .start();
    run.set_metadata(format!("note {EMAIL}"), format!("Bearer {KEY}"));
    {
        let it = run.iteration(1);
        let mut span = it.span("execute_tool login", loopotel::SpanKind::Worker);
        span.record_error("auth_error", format!("login with {KEY} failed for {EMAIL}"));
    }
    run.finish(loopotel::Outcome::Failure, format!("gave up: {KEY}"));
    provider
        .shutdown()
        .unwrap_or_else(|e| eprintln!("shutdown: {e}"));
    let stats = counters.report_final();
    eprintln!("delivery to the dead endpoint: {stats:?}");
}

#[test]
fn a_known_secret_never_reaches_jsonl_otlp_or_logs_through_env_info_metadata_or_errors() {
    if let Ok(dir) = std::env::var(CHILD) {
        let endpoint = std::env::var("LOOPOTEL_SECRETS_ENDPOINT").unwrap();
        leaky_child(std::path::Path::new(&dir), &endpoint);
        return;
    }
    let rt = tests::server_runtime();
    let (endpoint, mut rx) = rt.block_on(tests::otlp_http_receiver());
    let dir = tempfile::tempdir().unwrap();
    // The scenario runs in a child process so that everything it logs is captured here.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_known_secret_never_reaches_jsonl_otlp_or_logs_through_env_info_metadata_or_errors",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .env("LOOPOTEL_SECRETS_ENDPOINT", &endpoint)
        .output()
        .unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{logs}");
    // The log paths were exercised: the dead endpoint's failure and the spool said so.
    assert!(logs.contains("spooling spans"), "{logs}");
    let jsonl = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    let mut otlp = Vec::new();
    let mut requests = 0;
    while let Ok((line, body)) = rx.try_recv() {
        if line.starts_with("POST /v1/traces") {
            requests += 1;
            otlp.extend(body);
        }
    }
    assert!(requests > 0, "spans were exported");
    let mut spooled = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("spool")).unwrap() {
        spooled.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(
        !spooled.is_empty(),
        "the spool holds the dead endpoint's spans"
    );
    for secret in [KEY, EMAIL, "loopotelSECRET", "secret-corp"] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
        assert!(!jsonl.contains(secret), "{secret} in JSONL");
        for (what, bytes) in [("OTLP", &otlp), ("the spool", &spooled)] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {what}"
            );
        }
    }
    // The paths were exercised: metadata, the env's error, the termination reasons.
    assert!(jsonl.contains("\"api_key\":\"[redacted]\""), "{jsonl}");
    assert!(jsonl.contains("PermissionError: key [redacted]"), "{jsonl}");
    assert!(jsonl.contains("gave up: [redacted]"), "{jsonl}");
    assert!(
        jsonl.contains("done; used [redacted] for [redacted]"),
        "{jsonl}"
    );
}
