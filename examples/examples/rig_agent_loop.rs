//! A rig agent in a loopotel loop: each iteration asks a rig agent (rig-core's OpenAI
//! provider on the Chat Completions API, rig-agent's runtime) a question it answers with
//! an `add` tool. rig instruments itself with `tracing` (`invoke_agent`, `chat`,
//! `execute_tool`); one `LoopLayer` on the subscriber puts those spans under the loop's
//! iterations, with their usage rolled up into `loop.tokens_delta`. The LTF trace goes to
//! `--out` (JSONL); with `--otlp URL` the same spans also go to an OTLP/HTTP collector.
//!
//! ```sh
//! bash scripts/llmock.sh start        # or any OpenAI-compatible server
//! OPENAI_BASE_URL=http://127.0.0.1:18080/v1 OPENAI_API_KEY=sk-local \
//!   cargo run -p examples --example rig_agent_loop -- --out rig.jsonl
//! cargo run -p loopotel-cli -- validate --strict rig.jsonl
//! ```
//!
//! Options: `--out PATH` (default `rig.jsonl`), `--otlp URL`, `--model NAME` (default
//! `gpt-4o-mini`), `--iterations N` (default 3).

use std::convert::Infallible;
use std::path::PathBuf;

use loopotel::jsonl::JsonlExporter;
use loopotel::{LoopTracer, LtfDocument, Outcome};
use opentelemetry::context::FutureExt as _;
use rig_agent::AgentBuilder;
use rig_agent::tool::{Tool, ToolContext};
use rig_core::providers::openai::OpenAIConfig;
use serde_json::json;

/// What the loop is told to do.
#[derive(Debug, Clone)]
pub(crate) struct RigOptions {
    /// OpenAI-compatible API base (`…/v1`).
    pub base_url: String,
    /// The API key (sent to the server only; never recorded).
    pub api_key: String,
    /// The model to ask.
    pub model: String,
    /// Iterations: one agent prompt each.
    pub iterations: u64,
}

/// The tool the agent is given.
#[derive(Clone)]
struct Add;

#[derive(rig_core::serde::Deserialize)]
#[serde(crate = "rig_core::serde")]
struct AddArgs {
    a: i64,
    b: i64,
}

impl Tool for Add {
    const NAME: &'static str = "add";
    type Args = AddArgs;
    type Output = i64;
    type Error = Infallible;

    fn description(&self) -> String {
        "Adds two integers and returns the sum.".to_owned()
    }

    fn parameters(&self) -> serde_json::Value {
        json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"]
        })
    }

    async fn call(&self, _context: &mut ToolContext, args: AddArgs) -> Result<i64, Infallible> {
        Ok(args.a.saturating_add(args.b))
    }
}

/// Runs the loop: one iteration per prompt, the agent's answer as the worker's output.
/// The caller installs a `tracing` subscriber with a `LoopLayer`.
pub(crate) async fn run_rig_loop(
    tracer: &LoopTracer,
    options: RigOptions,
) -> Result<(Vec<String>, LtfDocument), Box<dyn std::error::Error + Send + Sync>> {
    let provider = OpenAIConfig::new(options.api_key.clone())
        .with_base_url(options.base_url.clone())
        .client();
    let agent = AgentBuilder::new(provider.chat(options.model.clone()))
        .preamble("You add numbers. Always use the add tool, then answer with the sum.")
        .tool(Add)
        .build();
    let run = tracer.run("rig-agent-loop").start();
    let mut answers = Vec::new();
    for n in 1..=options.iterations {
        let mut it = run.iteration(n);
        let prompt = format!("rig-loop {n}: what is {n} plus 2?");
        let answer = agent
            .prompt(prompt)
            .max_turns(3)
            .into_future()
            .with_context(it.context())
            .await;
        match answer {
            Ok(response) => {
                let text = response.output();
                it.worker_complete("rig-agent");
                it.evaluator_complete("non-empty", if text.is_empty() { 0.0 } else { 1.0 });
                answers.push(text);
            }
            Err(error) => {
                drop(it);
                let doc = run.finish(Outcome::Failure, "agent_error");
                return Err(format!("iteration {n}: {error} (trace {})", doc.trace_id).into());
            }
        }
    }
    Ok((
        answers,
        run.finish(Outcome::Success, "all_prompts_answered"),
    ))
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[allow(dead_code)] // the test includes this file for `run_rig_loop`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use tracing_subscriber::layer::SubscriberExt as _;

    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(flag(&args, "--out").unwrap_or_else(|| "rig.jsonl".into()));
    let options = RigOptions {
        base_url: std::env::var("OPENAI_BASE_URL")
            .unwrap_or_else(|_| "https://api.openai.com/v1".into()),
        api_key: std::env::var("OPENAI_API_KEY").map_err(|_| "set OPENAI_API_KEY")?,
        model: flag(&args, "--model").unwrap_or_else(|| "gpt-4o-mini".into()),
        iterations: flag(&args, "--iterations")
            .map(|n| n.parse())
            .transpose()?
            .unwrap_or(3),
    };
    let otel = match flag(&args, "--otlp") {
        Some(endpoint) => Some(
            opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(loopotel::otel::otlp::span_exporter(
                    &endpoint,
                    loopotel::otel::otlp::Protocol::HttpProtobuf,
                    std::time::Duration::from_secs(5),
                    &[],
                )?)
                .build(),
        ),
        None => None,
    };
    let mut builder = LoopTracer::builder().sink(JsonlExporter::create(&out)?);
    if let Some(provider) = &otel {
        builder = builder.tracer_provider(provider);
    }
    let tracer = builder.build();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(loopotel_tracing::LoopLayer::new()),
    )?;
    let (answers, doc) = run_rig_loop(&tracer, options).await?;
    for (n, a) in answers.iter().enumerate() {
        println!("{}: {a}", n + 1);
    }
    let chats = doc
        .spans
        .iter()
        .filter(|s| {
            s.attributes
                .get("gen_ai.operation.name")
                .and_then(|v| v.as_str())
                == Some("chat")
        })
        .count();
    let tokens = doc
        .root()
        .and_then(|r| r.attributes.get("loop.tokens_total"))
        .and_then(|v| v.as_i64());
    println!(
        "{} iterations, {} spans ({chats} chat calls), tokens {:?}; trace {} in {}",
        doc.iterations().count(),
        doc.spans.len(),
        tokens,
        doc.trace_id,
        out.display()
    );
    if let Some(provider) = otel {
        provider.shutdown()?;
    }
    Ok(())
}
