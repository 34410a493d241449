//! [`ComposedSimEnv`]: the reference's `ComposedSimEnv` — branch loops run to the end first,
//! their results are merged into the orchestrator's input, then the orchestrator loop runs
//! step by step.

use super::SimEnv;
use crate::env::{Action, EnvError, Info, Observation, Step};
use crate::episode::{EnvDescription, EpisodeEnv};
use crate::pyvalue::{PyValue, prefix_chars};
use crate::spec::SpecError;

/// One branch's finished episode.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchEpisode {
    /// The branch id.
    pub branch_id: String,
    /// Its final quality score.
    pub quality_score: f64,
    /// Steps it took.
    pub steps: u64,
    /// Tokens its mock LLM counted.
    pub tokens_used: u64,
    /// Its last output.
    pub last_output: String,
}

/// Parallel branches merged by an orchestrator loop (see the module docs).
///
/// Branch seeds are `seed + hash(branch_id) % 997` with Python's string hash, so they depend
/// on the reference process's `PYTHONHASHSEED` (Python's SipHash string hash is reproduced
/// here); `hash_seed` is that
/// value (default 0: randomization off).
#[derive(Debug, Clone)]
pub struct ComposedSimEnv {
    env_id: String,
    orchestrator: SimEnv,
    branches: Vec<(String, SimEnv)>,
    hash_seed: u32,
    seed: i64,
    task_id: String,
    orch: Option<SimEnv>,
    episodes: Vec<BranchEpisode>,
    done: bool,
}

impl ComposedSimEnv {
    /// The orchestrator env (its spec and tasks) and the branch envs, in order.
    pub fn new(
        env_id: impl Into<String>,
        orchestrator: SimEnv,
        branches: Vec<(String, SimEnv)>,
    ) -> Self {
        Self {
            env_id: env_id.into(),
            orchestrator,
            branches,
            hash_seed: 0,
            seed: 0,
            task_id: String::new(),
            orch: None,
            episodes: Vec::new(),
            done: false,
        }
    }

    /// The `PYTHONHASHSEED` of the reference run to reproduce (0: randomization off).
    pub fn hash_seed(mut self, hash_seed: u32) -> Self {
        self.hash_seed = hash_seed;
        self
    }

    /// The branch episodes of the current episode.
    pub fn branch_episodes(&self) -> &[BranchEpisode] {
        &self.episodes
    }

    /// Tokens the orchestrator's mock LLM counted this episode.
    pub fn orchestrator_tokens(&self) -> u64 {
        self.orch.as_ref().map_or(0, SimEnv::tokens_used)
    }

    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.done || self.orch.as_ref().is_some_and(SimEnv::done)
    }

    /// The task ids of the orchestrator's task file.
    pub fn task_ids(&self) -> Vec<String> {
        self.orchestrator.task_ids()
    }

    fn run_branches(&mut self, task_id: &str) -> Result<(String, Vec<PyValue>), EnvError> {
        let base_task =
            super::task_input(self.orchestrator.spec(), task_id, self.orchestrator.tasks());
        self.episodes.clear();
        let mut dissent = Vec::new();
        for (branch_id, proto) in &self.branches {
            let hash = crate::pyhash::str_hash(branch_id, self.hash_seed).ok_or_else(|| {
                EnvError::Spec(SpecError::Field {
                    path: "<composed>".into(),
                    field: format!("branch {branch_id:?}"),
                    why: "branch ids must be Latin-1 text".into(),
                })
            })?;
            let branch_seed = self.seed + hash.rem_euclid(997);
            let mut env = proto
                .clone()
                .with_env_id(format!("{}/{branch_id}", self.env_id));
            let mut obs = env.reset(task_id, Some(branch_seed))?;
            let mut steps = 0;
            while !env.done() {
                obs = env.step(&Action::EnvWorker)?.observation;
                steps += 1;
            }
            if obs.quality_score < 0.75 {
                dissent.push(PyValue::Str(branch_id.clone()));
            }
            self.episodes.push(BranchEpisode {
                branch_id: branch_id.clone(),
                quality_score: obs.quality_score,
                steps,
                tokens_used: env.tokens_used(),
                last_output: env
                    .history()
                    .last()
                    .map(|h| h.output.clone())
                    .unwrap_or_default(),
            });
        }
        let payload = self
            .episodes
            .iter()
            .map(|e| {
                PyValue::Dict(vec![
                    ("id".into(), PyValue::Str(e.branch_id.clone())),
                    ("quality_score".into(), PyValue::Float(e.quality_score)),
                    (
                        "output".into(),
                        PyValue::Str(prefix_chars(&e.last_output, 500).to_owned()),
                    ),
                ])
            })
            .collect();
        let merged = PyValue::Dict(vec![
            ("task".into(), PyValue::Str(base_task)),
            ("branches".into(), PyValue::List(payload)),
            ("dissent".into(), PyValue::List(dissent.clone())),
            ("preserve_dissent".into(), PyValue::Bool(true)),
        ]);
        Ok((merged.json_dumps(), dissent))
    }

    /// Runs the branches, then starts the orchestrator (`task_id` empty → `comp-001`).
    pub fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        if let Some(s) = seed {
            self.seed = s;
        }
        self.task_id = if task_id.is_empty() {
            "comp-001".into()
        } else {
            task_id.into()
        };
        let task = self.task_id.clone();
        let (merged, dissent) = self.run_branches(&task)?;
        let mut orch = self.orchestrator.clone().with_env_id(self.env_id.clone());
        let mut obs = orch.reset(&task, Some(self.seed))?;
        orch.set_user_input(merged);
        self.orch = Some(orch);
        self.done = false;
        obs.info
            .insert("branches_run".into(), self.episodes.len().into());
        obs.info
            .insert("dissent".into(), PyValue::List(dissent).to_json());
        Ok(obs)
    }

    /// One orchestrator step.
    pub fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let Some(orch) = self.orch.as_mut() else {
            return Err(EnvError::NotReset);
        };
        let mut step = orch.step(action)?;
        self.done = step.done;
        let mut info: Info = step.info;
        info.insert("branches_run".into(), self.episodes.len().into());
        step.observation.info = info.clone();
        step.info = info;
        Ok(step)
    }
}

impl crate::env::Env for ComposedSimEnv {
    async fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        ComposedSimEnv::reset(self, task_id, seed)
    }

    async fn step(&mut self, action: Action) -> Result<Step, EnvError> {
        ComposedSimEnv::step(self, &action)
    }
}

impl EpisodeEnv for ComposedSimEnv {
    /// The orchestrator's names and targets. (The reference's `run_traced_episode` reads
    /// `env.spec`, which its composed env lacks, and so records `unknown-loop` and no
    /// tokens; ours records the orchestrator's loop and tokens. The branch loops run at
    /// reset, before the first iteration: their tokens are in [`Self::branch_episodes`].)
    fn describe(&self) -> EnvDescription {
        let mut d = self.orchestrator.description();
        d.env_id = Some(self.env_id.clone());
        d
    }

    fn tokens_used(&self) -> Option<u64> {
        Some(self.orchestrator_tokens())
    }

    fn is_done(&self) -> bool {
        self.done()
    }
}
