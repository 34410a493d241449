//! The gym-style environment API: [`Env`] with `reset` / `step` / `close`, and the values
//! it speaks in.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::spec::SpecError;

/// Extra facts a step reports (`termination_reason`, `success`, `last_feedback`, …).
pub type Info = serde_json::Map<String, serde_json::Value>;

/// What the agent sees: the reference's `Observation` fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The task.
    pub task_id: String,
    /// Iterations done (0 after reset).
    pub iteration: u64,
    /// The latest output.
    pub output: String,
    /// The latest quality score.
    pub quality_score: f64,
    /// The loop's objective.
    pub objective: String,
    /// Whether the episode has ended.
    pub done: bool,
    /// Extra facts.
    pub info: Info,
}

/// What the agent does in a step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Action {
    /// Let the environment's own worker act.
    #[default]
    EnvWorker,
    /// Use this text as the worker's output (an empty text lets the env's worker act, as in
    /// the reference).
    Output(String),
}

/// The result of a step: the reference's `(obs, reward, done, info)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The new observation.
    pub observation: Observation,
    /// The quality score on success, the score minus 0.5 otherwise.
    pub reward: f64,
    /// Whether the episode has ended.
    pub done: bool,
    /// Extra facts.
    pub info: Info,
}

/// Why an environment call failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// `step` before `reset`.
    #[error("call reset() before step()")]
    NotReset,
    /// The spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No environment with this id.
    #[error("unknown env {id:?}; available: {available}")]
    UnknownEnv {
        /// What was asked for.
        id: String,
        /// What exists.
        available: String,
    },
    /// A remote (Python) env failed: the bridge crashed, hung, sent garbage, or the Python
    /// env raised.
    #[error("remote env: {0}")]
    Remote(String),
    /// A live env's LLM call failed (the message is scrubbed of keys and tokens).
    #[error("LLM call failed: {0}")]
    Llm(String),
    /// A reference env, but no installed `loopgym` to load its spec from.
    #[error(
        "env {id:?} needs the loopgym package's specs: pip install loopgym, or set LOOPOTEL_LOOPGYM_DIR"
    )]
    NoLoopgym {
        /// The env.
        id: String,
    },
    /// A LoopNet records file for `replay/loopnet-v1` could not be read.
    #[error("LoopNet records {path}: {why}")]
    Records {
        /// The file (and line).
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The environment exists in the reference but has no native port yet.
    #[error("env {id:?} ({backend}) has no native implementation yet")]
    NotNative {
        /// The env.
        id: String,
        /// Its reference backend.
        backend: String,
    },
}

/// A LoopGym-style environment, async so remote and live environments fit the same shape.
pub trait Env: Send {
    /// Starts an episode of `task_id` (empty: the default task) with `seed` (`None` keeps
    /// the previous one).
    fn reset(
        &mut self,
        task_id: &str,
        seed: Option<i64>,
    ) -> impl Future<Output = Result<Observation, EnvError>> + Send;

    /// Advances one iteration.
    fn step(&mut self, action: Action) -> impl Future<Output = Result<Step, EnvError>> + Send;

    /// Releases resources.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl Env for crate::sim::SimEnv {
    async fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        crate::sim::SimEnv::reset(self, task_id, seed)
    }

    async fn step(&mut self, action: Action) -> Result<Step, EnvError> {
        crate::sim::SimEnv::step(self, &action)
    }
}
