//! Traced episodes: the reference's `run_traced_episode`, with real iteration spans and the
//! environment step and agent calls nested inside them.
//!
//! Per step: a `loop.iteration` span (real duration) holding the policy's work (any LLM or
//! tool span it starts through the context nests here) and a `loop.env.step` span around
//! the environment's step (`loop.env.reward`, `loop.env.done`, `loop.env.quality`); then the
//! iteration records what the reference records — goal score and target, tokens used since
//! the last step, latency, the worker and evaluator events, LES. The run ends `success` or
//! `failure` with the env's termination reason. An env error or panic ends the episode
//! `failure` (`env_error: …` / `env_panic`) and the trace is still returned.
//!
//! Compared with the reference's trace (same env, task and seed; ids, timestamps and
//! latency aside) ours is the same document plus: the `loop.env.step` spans, and iteration
//! spans with real durations (the reference's are instants).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt as _;
use loopotel::{LoopTracer, LtfDocument, Outcome, SpanKind};
use opentelemetry::context::FutureExt as _;

use crate::env::{Action, Env, Observation, Step};

/// What the runner reads from an environment beyond the gym API (the reference reads the
/// same from the env's spec and mock LLM).
#[derive(Debug, Clone, PartialEq)]
pub struct EnvDescription {
    /// The env id (`loop.env_id`).
    pub env_id: Option<String>,
    /// The loop's name (`loop.name`).
    pub loop_name: String,
    /// The goal target of every iteration.
    pub goal_target: f64,
    /// The first worker's id (`loop.worker.complete`).
    pub worker_id: Option<String>,
    /// The first evaluator's id (`loop.evaluator.complete`).
    pub evaluator_id: Option<String>,
}

impl Default for EnvDescription {
    fn default() -> Self {
        Self {
            env_id: None,
            loop_name: "unknown-loop".into(),
            goal_target: 0.8,
            worker_id: None,
            evaluator_id: None,
        }
    }
}

/// An environment the runner can describe and count tokens for.
pub trait EpisodeEnv: Env {
    /// Names and targets for the trace.
    fn describe(&self) -> EnvDescription;
    /// Tokens the environment's own LLM used so far this episode (`None`: not known).
    fn tokens_used(&self) -> Option<u64>;
    /// Whether the episode has ended.
    fn is_done(&self) -> bool;
}

/// Decides each step's action from the observation. Closures returning a future work.
pub trait Policy: Send {
    /// The action for this observation.
    fn act(&mut self, observation: &Observation) -> impl Future<Output = Action> + Send;
}

/// Lets the environment's own worker act every step (the reference's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvWorkerPolicy;

impl Policy for EnvWorkerPolicy {
    async fn act(&mut self, _: &Observation) -> Action {
        Action::EnvWorker
    }
}

impl<F, Fut> Policy for F
where
    F: FnMut(&Observation) -> Fut + Send,
    Fut: Future<Output = Action> + Send,
{
    fn act(&mut self, observation: &Observation) -> impl Future<Output = Action> + Send {
        self(observation)
    }
}

/// What an episode came to (the reference's result fields, plus counts).
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeResult {
    /// As asked for.
    pub task_id: String,
    /// As asked for.
    pub seed: Option<i64>,
    /// The env.
    pub env_id: Option<String>,
    /// The last step said `success`.
    pub success: bool,
    /// The last observation's quality score.
    pub quality_score: f64,
    /// The last step's termination reason (or why the env failed).
    pub termination_reason: String,
    /// Steps taken.
    pub steps: u64,
    /// Tokens the env reported, when it does.
    pub tokens: Option<u64>,
    /// Wall time.
    pub duration: std::time::Duration,
}

/// The most steps one episode may take before it is cut (`max_steps`).
pub const DEFAULT_MAX_STEPS: u64 = 10_000;

/// Runs one episode of `env` under `policy`, traced on `tracer`; returns the result and the
/// LTF document (also sent to the tracer's sinks).
pub async fn run_traced_episode<E, P>(
    env: &mut E,
    tracer: &LoopTracer,
    task_id: &str,
    seed: Option<i64>,
    policy: &mut P,
) -> (EpisodeResult, LtfDocument)
where
    E: EpisodeEnv,
    P: Policy,
{
    let started = Instant::now();
    let d = env.describe();
    let mut builder = tracer.run(d.loop_name.clone()).goal_target(d.goal_target);
    if let Some(id) = &d.env_id {
        builder = builder.env_id(id.clone());
    }
    if !task_id.is_empty() {
        builder = builder.task_id(task_id.to_owned());
    }
    if let Some(seed) = seed {
        // Runs of the same env, task and seed are comparable (`loopotel compare` pairs them).
        builder = builder.metadata("seed", seed);
    }
    let run = builder.start();
    let mut result = EpisodeResult {
        task_id: task_id.to_owned(),
        seed,
        env_id: d.env_id.clone(),
        success: false,
        quality_score: 0.0,
        termination_reason: String::new(),
        steps: 0,
        tokens: None,
        duration: Default::default(),
    };
    let fail = |result: &mut EpisodeResult, why: String| {
        result.success = false;
        result.termination_reason = why;
    };
    let mut obs = match AssertUnwindSafe(env.reset(task_id, seed))
        .catch_unwind()
        .await
    {
        Ok(Ok(obs)) => obs,
        Ok(Err(e)) => {
            fail(&mut result, format!("env_error: {e}"));
            return finish(run, result, started);
        }
        Err(_) => {
            fail(&mut result, "env_panic".into());
            return finish(run, result, started);
        }
    };
    let mut prev_tokens = env.tokens_used().unwrap_or(0);
    let mut last_info = serde_json::Map::new();
    while !env.is_done() && result.steps < DEFAULT_MAX_STEPS {
        let mut it = run.iteration(obs.iteration + 1);
        let cx = it.context();
        let action = policy.act(&obs).with_context(cx.clone()).await;
        let mut step_span = it.span(loopotel::semconv::SPAN_ENV_STEP, SpanKind::Worker);
        // Usage that traced calls inside the step report (a live env's LLM calls) rolls up
        // through the step span; the env's own token count is then not added a second time.
        let step_cx = step_span.usage_context_on(&cx);
        let t0 = Instant::now();
        let stepped = AssertUnwindSafe(env.step(action).with_context(step_cx))
            .catch_unwind()
            .await;
        let latency_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let step: Step = match stepped {
            Ok(Ok(step)) => step,
            Ok(Err(e)) => {
                step_span.record_error("env_error", e.to_string());
                drop(step_span);
                drop(it);
                fail(&mut result, format!("env_error: {e}"));
                return finish(run, result, started);
            }
            Err(_) => {
                step_span.record_error("panic", "the environment panicked in step");
                drop(step_span);
                drop(it);
                fail(&mut result, "env_panic".into());
                return finish(run, result, started);
            }
        };
        result.steps += 1;
        step_span.set_attribute("loop.env.reward", step.reward);
        step_span.set_attribute("loop.env.done", step.done);
        step_span.set_attribute("loop.env.quality", step.observation.quality_score);
        let counted_inside = step_span.descendants_reported_usage();
        drop(step_span);
        let tokens_now = env.tokens_used().unwrap_or(0);
        let delta = tokens_now.saturating_sub(prev_tokens);
        prev_tokens = tokens_now;
        obs = step.observation;
        last_info = step.info;
        // The reference records an iteration once the env has made one.
        if obs.iteration > 0 {
            it.set_goal_score(obs.quality_score);
            it.set_goal_target(d.goal_target);
            if !counted_inside {
                it.add_tokens(delta);
            }
            it.set_latency_ms((latency_ms * 100.0).round() / 100.0);
            if let Some(w) = &d.worker_id {
                it.worker_complete(w.clone());
            }
            if let Some(e) = &d.evaluator_id {
                it.evaluator_complete(e.clone(), obs.quality_score);
            }
        }
        drop(it);
    }
    result.success = last_info
        .get("success")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    result.quality_score = obs.quality_score;
    result.termination_reason = match last_info.get("termination_reason") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    if !env.is_done() {
        result.success = false;
        result.termination_reason = format!("max_steps ({DEFAULT_MAX_STEPS})");
    }
    result.tokens = env.tokens_used();
    env.close().await;
    finish(run, result, started)
}

fn finish(
    run: loopotel::Run,
    mut result: EpisodeResult,
    started: Instant,
) -> (EpisodeResult, LtfDocument) {
    let outcome = if result.success {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let doc = run.finish(outcome, &result.termination_reason);
    result.duration = started.elapsed();
    (result, doc)
}

impl EpisodeEnv for crate::sim::SimEnv {
    fn describe(&self) -> EnvDescription {
        self.description()
    }

    fn tokens_used(&self) -> Option<u64> {
        Some(crate::sim::SimEnv::tokens_used(self))
    }

    fn is_done(&self) -> bool {
        self.done()
    }
}
