//! A traced episode of a live environment: the built-in triage loop with a real LLM as its
//! worker and critic (any OpenAI-compatible endpoint) and an LLM agent policy. Every LLM
//! call is a GenAI span — the env's inside its `loop.env.step` span, the agent's inside the
//! iteration — and the episode's tokens are the usage the server reported.
//!
//! ```sh
//! bash scripts/llmock.sh start
//! OPENAI_BASE_URL=http://127.0.0.1:18080/v1 OPENAI_API_KEY=sk-local \
//!   cargo run -p examples --example live_episode
//! ```

use loopotel::{LoopTracer, LtfDocument};
use loopotel_gym::live::{LiveEnv, LlmPolicy};
use loopotel_gym::registry::{NativeEnv, make_any};
use loopotel_gym::{EpisodeResult, run_traced_episode};
use loopotel_openai::TracedClient;
use loopotel_openai::async_openai::config::OpenAIConfig;

/// Runs one live episode of `builtin/triage-v1` against `base_url` (`…/v1`).
pub(crate) async fn run_live(
    base_url: &str,
    api_key: &str,
    model: &str,
) -> Result<(EpisodeResult, LtfDocument), loopotel_gym::EnvError> {
    let NativeEnv::Sim(sim) = make_any("builtin/triage-v1", None)? else {
        unreachable!("a built-in env is a SimEnv");
    };
    let client = TracedClient::new(loopotel_openai::async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base_url)
            .with_api_key(api_key),
    ));
    let mut env = LiveEnv::new(*sim, client.clone(), model);
    let mut policy = LlmPolicy::new(client, model);
    Ok(run_traced_episode(&mut env, &LoopTracer::new(), "tk-004", Some(1), &mut policy).await)
}

#[allow(dead_code)] // `main` is unused when a test includes this file as a module.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base =
        std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".into());
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    let (result, doc) = run_live(&base, &key, "gpt-4o-mini").await?;
    println!(
        "success {} after {} steps, quality {:.2}, {} tokens: {}",
        result.success,
        result.steps,
        result.quality_score,
        result.tokens.unwrap_or(0),
        result.termination_reason
    );
    println!("{}", doc.to_json_line());
    Ok(())
}
