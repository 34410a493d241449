//! A small tool-using agent loop against any OpenAI-compatible endpoint: each iteration is
//! one LLM call (traced by `loopotel-openai`, with per-attempt HTTP spans) and the tool
//! calls it asks for (a `LoopTraceLayer::tool` service). The loop asks about a few cities in
//! turn and ends when every question has an answer. The LTF trace goes to `--out` (JSONL);
//! with `--otlp URL` the same spans also go to an OTLP/HTTP collector.
//!
//! ```sh
//! bash scripts/llmock.sh start        # or any OpenAI-compatible server
//! OPENAI_BASE_URL=http://127.0.0.1:18080/v1 OPENAI_API_KEY=sk-local \
//!   cargo run -p examples --example openai_agent_loop -- --out agent.jsonl
//! cargo run -p loopotel-cli -- validate --strict agent.jsonl
//! ```
//!
//! Options: `--out PATH` (default `agent.jsonl`), `--otlp URL`, `--model NAME` (default
//! `gpt-4o-mini`), `--cities A,B,C`, `--max-iterations N` (default 12).

use std::path::PathBuf;
use std::time::Duration;

use loopotel::jsonl::JsonlExporter;
use loopotel::{LoopTracer, LtfDocument, Outcome, SpanGuard};
use loopotel_openai::TracedClient;
use loopotel_openai::async_openai;
use loopotel_openai::async_openai::config::OpenAIConfig;
use loopotel_openai::async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestMessage, CreateChatCompletionRequest,
};
use loopotel_openai::middleware::traced_http_service;
use loopotel_tower::LoopTraceLayer;
use opentelemetry::context::FutureExt as _;
use serde_json::json;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

/// What the loop is told to do.
#[derive(Debug, Clone)]
pub(crate) struct AgentOptions {
    /// OpenAI-compatible API base (`…/v1`).
    pub base_url: String,
    /// The API key (sent to the server only; never recorded).
    pub api_key: String,
    /// The model to ask.
    pub model: String,
    /// One question per city.
    pub cities: Vec<String>,
    /// Most iterations before giving up.
    pub max_iterations: u64,
}

/// What happened: the answers, the LTF document, and the usage the server reported.
#[derive(Debug)]
pub(crate) struct AgentReport {
    /// The final answer per city.
    pub answers: Vec<String>,
    /// The run's document.
    pub doc: LtfDocument,
    /// Sum of `usage.total_tokens` over every reply.
    pub server_reported_tokens: u64,
}

/// The weather tool: a tower service, traced as `execute_tool get_weather`.
async fn get_weather(arguments: String) -> Result<String, BoxError> {
    let args: serde_json::Value = serde_json::from_str(&arguments).unwrap_or_default();
    let city = args["city"].as_str().unwrap_or("somewhere");
    Ok(format!("{city}: 18°C and sunny"))
}

fn tools() -> serde_json::Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}])
}

/// Runs the agent loop on `tracer` and returns what happened.
pub(crate) async fn run_agent(
    tracer: &LoopTracer,
    opts: AgentOptions,
) -> Result<AgentReport, BoxError> {
    let config = OpenAIConfig::new()
        .with_api_base(opts.base_url.clone())
        .with_api_key(opts.api_key.clone());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let llm = TracedClient::new(
        async_openai::Client::with_config(config).with_http_service(traced_http_service(http)),
    );
    let weather = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("get_weather").on_response(
            |_: &String, _: Duration, span: &mut SpanGuard| {
                span.set_attribute("app.tool.result", "ok");
            },
        ))
        .service(service_fn(get_weather));

    let run = tracer
        .run("openai-agent-loop")
        .task_id("weather-questions")
        .goal_target(1.0)
        .start();
    let mut messages: Vec<serde_json::Value> = Vec::new();
    let mut next_city = 0;
    let mut answers = Vec::new();
    let mut server_tokens = 0u64;
    let mut outcome = (Outcome::Failure, "max_iterations");
    let total = opts.cities.len().max(1) as f64;
    for n in 1..=opts.max_iterations {
        let mut it = run.iteration(n);
        let cx = it.context();
        if messages.last().is_none_or(|m| m["role"] == "assistant") {
            let Some(city) = opts.cities.get(next_city) else {
                break;
            };
            next_city += 1;
            messages.push(
                json!({"role": "user", "content": format!("What is the weather in {city}?")}),
            );
        }
        let request: CreateChatCompletionRequest = serde_json::from_value(json!({
            "model": opts.model, "messages": messages, "tools": tools(),
        }))?;
        let reply = llm.chat().create(request).with_context(cx.clone()).await?;
        if let Some(u) = &reply.usage {
            server_tokens += u64::from(u.total_tokens);
        }
        let Some(choice) = reply.choices.into_iter().next() else {
            outcome = (Outcome::Failure, "empty_reply");
            break;
        };
        let message = choice.message;
        let calls: Vec<_> = message.tool_calls.clone().unwrap_or_default();
        messages.push(serde_json::to_value(
            ChatCompletionRequestMessage::Assistant(serde_json::from_value(json!({
                "role": "assistant",
                "content": message.content,
                "tool_calls": message.tool_calls,
            }))?),
        )?);
        if calls.is_empty() {
            answers.push(message.content.unwrap_or_default());
            it.evaluator_complete("answers", answers.len() as f64 / total);
            if answers.len() == opts.cities.len() {
                outcome = (Outcome::Success, "all_answered");
                drop(it);
                break;
            }
            continue;
        }
        for call in calls {
            let ChatCompletionMessageToolCalls::Function(f) = call else {
                continue;
            };
            let result = weather
                .clone()
                .oneshot(f.function.arguments.clone())
                .with_context(cx.clone())
                .await
                .unwrap_or_else(|e| format!("tool error: {e}"));
            messages.push(json!({"role": "tool", "tool_call_id": f.id, "content": result}));
        }
        it.evaluator_complete("answers", answers.len() as f64 / total);
    }
    let doc = run.finish(outcome.0, outcome.1);
    Ok(AgentReport {
        answers,
        doc,
        server_reported_tokens: server_tokens,
    })
}

fn args() -> Result<(AgentOptions, PathBuf, Option<String>), String> {
    let mut opts = AgentOptions {
        base_url: std::env::var("OPENAI_BASE_URL")
            .unwrap_or_else(|_| "https://api.openai.com/v1".to_owned()),
        api_key: std::env::var("OPENAI_API_KEY").unwrap_or_default(),
        model: "gpt-4o-mini".to_owned(),
        cities: ["Paris", "Oslo", "Lima"].map(String::from).to_vec(),
        max_iterations: 12,
    };
    let mut out = PathBuf::from("agent.jsonl");
    let mut otlp = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--otlp" => otlp = Some(value()?),
            "--model" => opts.model = value()?,
            "--cities" => opts.cities = value()?.split(',').map(str::to_owned).collect(),
            "--max-iterations" => {
                opts.max_iterations = value()?
                    .parse()
                    .map_err(|e| format!("--max-iterations: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((opts, out, otlp))
}

#[allow(dead_code)] // `main` is unused when a test includes this file as a module.
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (opts, out, otlp) = args().map_err(|e| {
        eprintln!("openai_agent_loop: {e}");
        e
    })?;
    let provider = match &otlp {
        Some(endpoint) => {
            let exporter = loopotel::otel::otlp::span_exporter(
                endpoint,
                loopotel::otel::otlp::Protocol::HttpProtobuf,
                Duration::from_secs(10),
                &[],
            )?;
            Some(
                opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
        None => None,
    };
    let mut builder = LoopTracer::builder().sink(JsonlExporter::create(&out)?);
    if let Some(p) = &provider {
        builder = builder.tracer_provider(p);
    }
    let tracer = builder.build();
    let report = run_agent(&tracer, opts).await?;
    for answer in &report.answers {
        println!("answer: {answer}");
    }
    let root = report.doc.root();
    println!(
        "{} iterations, {} spans, outcome {:?}; tokens recorded {:?}, reported by the server {}; trace in {}",
        report.doc.iterations().count(),
        report.doc.spans.len(),
        root.and_then(|r| r.attributes.get("loop.outcome")),
        root.and_then(|r| r.attributes.get("loop.tokens_total")),
        report.server_reported_tokens,
        out.display()
    );
    if let Some(p) = provider {
        // Flush off the async executor.
        tokio::task::spawn_blocking(move || p.shutdown()).await??;
    }
    Ok(())
}
