//! [`LiveEnv`]: the same loop, with a real LLM (any OpenAI-compatible endpoint, through
//! `loopotel-openai`) as worker and critic; and [`LlmPolicy`], an agent policy over one.
//! Feature `live` (default).
//!
//! Unlike the reference's `LiveEnv`, it reports `done` when the loop terminates. Tokens are
//! the usage the server reports. Every LLM call is a GenAI span inside the step's
//! `loop.env.step` span (or, for the policy, inside the iteration).

use async_openai::config::Config;
use async_openai::types::chat::CreateChatCompletionRequest;
use loopotel_openai::TracedClient;

use crate::env::{Action, Env, EnvError, Observation, Step};
use crate::episode::{EnvDescription, EpisodeEnv, Policy};
use crate::sim::SimEnv;

/// Asks `model` one question as `role`; returns the text and the tokens the server reported.
async fn complete<C: Config>(
    client: &TracedClient<C>,
    model: &str,
    role: &str,
    prompt: &str,
) -> Result<(String, u64), EnvError> {
    let request: CreateChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": format!("You are a {role} agent in a loop.")},
            {"role": "user", "content": prompt},
        ],
        "temperature": 0.2,
    }))
    .map_err(|e| EnvError::Llm(e.to_string()))?;
    let reply = client
        .chat()
        .create(request)
        .await
        .map_err(|e| EnvError::Llm(loopotel_openai::scrub_secrets(&e.to_string())))?;
    let tokens = reply
        .usage
        .as_ref()
        .map_or(0, |u| u64::from(u.total_tokens));
    let text = reply
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .unwrap_or_default();
    Ok((text, tokens))
}

/// A loop environment whose worker and critic are a real LLM (see the module docs).
#[derive(Debug, Clone)]
pub struct LiveEnv<C: Config> {
    sim: SimEnv,
    client: TracedClient<C>,
    model: String,
}

impl<C: Config> LiveEnv<C> {
    /// The loop of `sim` (its spec, tasks and limits), answered by `model` through `client`.
    pub fn new(sim: SimEnv, client: TracedClient<C>, model: impl Into<String>) -> Self {
        Self {
            sim,
            client,
            model: model.into(),
        }
    }

    /// The underlying loop state.
    pub fn sim(&self) -> &SimEnv {
        &self.sim
    }

    async fn ask(&mut self, role: &str, prompt: &str) -> Result<String, EnvError> {
        let (text, tokens) = complete(&self.client, &self.model, role, prompt).await?;
        self.sim.add_tokens(tokens);
        Ok(text)
    }
}

impl<C: Config> Env for LiveEnv<C> {
    async fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        self.sim.reset(task_id, seed)
    }

    async fn step(&mut self, action: Action) -> Result<Step, EnvError> {
        if let Some(step) = self.sim.after_done_step()? {
            return Ok(step);
        }
        let (output, agent) = match action {
            Action::Output(text) if !text.is_empty() => (text, true),
            _ => {
                let (role, prompt) = self.sim.next_worker_request()?;
                (self.ask(&role, &prompt).await?, false)
            }
        };
        let (role, prompt) = self.sim.critic_request(&output)?;
        let feedback = self.ask(role, &prompt).await?;
        self.sim.apply_step(output, feedback, agent)
    }
}

impl<C: Config> EpisodeEnv for LiveEnv<C> {
    fn describe(&self) -> EnvDescription {
        self.sim.description()
    }

    fn tokens_used(&self) -> Option<u64> {
        Some(self.sim.tokens_used())
    }

    fn is_done(&self) -> bool {
        self.sim.done()
    }
}

/// An agent policy that asks an LLM for each step's output, from the objective, the last
/// output and the critic's feedback. When the LLM fails, the env's own worker acts (the
/// failure is on the policy's LLM span).
#[derive(Debug, Clone)]
pub struct LlmPolicy<C: Config> {
    client: TracedClient<C>,
    model: String,
}

impl<C: Config> LlmPolicy<C> {
    /// A policy answered by `model` through `client`.
    pub fn new(client: TracedClient<C>, model: impl Into<String>) -> Self {
        Self {
            client,
            model: model.into(),
        }
    }
}

impl<C: Config> Policy for LlmPolicy<C> {
    async fn act(&mut self, obs: &Observation) -> Action {
        let feedback = obs
            .info
            .get("last_feedback")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("(none yet)");
        let prompt = format!(
            "Objective: {}\nPrevious output:\n{}\nCritic feedback:\n{feedback}\nWrite the next, improved output.",
            obs.objective, obs.output
        );
        match complete(&self.client, &self.model, "agent", &prompt).await {
            Ok((text, _)) if !text.is_empty() => Action::Output(text),
            _ => Action::EnvWorker,
        }
    }
}
