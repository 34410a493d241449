//! [`SimEnv`]: the reference's `SimEnv`, natively — same outputs, scores, rewards, tokens,
//! termination reasons and done flags for the same spec, task id and seed.

use std::path::Path;

use super::runtime::{HistoryRecord, LoopRuntime, LoopState, MockLlm};
use crate::env::{Action, EnvError, Info, Observation, Step};
use crate::episode::EnvDescription;
use crate::pyvalue::PyValue;
use crate::spec::{LssSpec, SpecError, TaskFile};

/// `_task_input`: the task's `input` (JSON-dumped when a mapping), else the spec's first
/// example, else `task:{id}`.
pub fn task_input(spec: &LssSpec, task_id: &str, tasks: Option<&TaskFile>) -> String {
    if let Some(task) = tasks.and_then(|t| t.find(task_id)) {
        let payload = task.get("input").filter(|v| v.truthy()).unwrap_or(task);
        return match payload {
            PyValue::Dict(_) => payload.json_dumps(),
            other => other.py_str(),
        };
    }
    let first = spec
        .get("inputs")
        .filter(|v| v.truthy())
        .and_then(|i| i.get("examples"))
        .map(PyValue::items)
        .unwrap_or_default()
        .first();
    match first {
        Some(d @ PyValue::Dict(_)) => d.json_dumps(),
        Some(other) => other.py_str(),
        None => format!(
            "task:{}",
            if task_id.is_empty() {
                "default"
            } else {
                task_id
            }
        ),
    }
}

/// `_goal_target_from_spec`: the first success condition's value, else the first rubric's
/// pass threshold, else 0.8 (values that are not numbers count as absent).
pub fn goal_target(spec: &LssSpec) -> f64 {
    if let Some(term @ PyValue::Dict(_)) = spec.get("termination_conditions") {
        for success in term.get("success").map(PyValue::items).unwrap_or_default() {
            if let Some(v) = success.get_some("value").and_then(PyValue::py_float) {
                return v;
            }
        }
    }
    for ev in spec
        .get("evaluators")
        .map(PyValue::items)
        .unwrap_or_default()
    {
        if let Some(v) = ev
            .get("rubric")
            .and_then(|r| r.get_some("pass_threshold"))
            .and_then(PyValue::py_float)
        {
            return v;
        }
    }
    0.8
}

/// A simulated loop environment: the reference's `SimEnv` (mock LLM, no API keys).
#[derive(Debug, Clone)]
pub struct SimEnv {
    env_id: String,
    spec: LssSpec,
    tasks: Option<TaskFile>,
    loop_name: String,
    objective: String,
    seed: i64,
    task_id: String,
    user_input: String,
    runtime: Option<LoopRuntime>,
    state: LoopState,
    done: bool,
    last: Option<Observation>,
    /// `Some` for the reference's `PerturbedSimEnv`: the episode's perturbation.
    perturbation: Option<PyValue>,
    perturbed: bool,
}

impl SimEnv {
    /// An environment over `spec` (and its tasks, if any). Fails like the reference's
    /// compiler when a worker or evaluator has no `id`, and on malformed limits.
    pub fn new(
        env_id: impl Into<String>,
        spec: LssSpec,
        tasks: Option<TaskFile>,
    ) -> Result<Self, SpecError> {
        for (kind, list) in [
            ("workers", spec.get("workers")),
            ("evaluators", spec.get("evaluators")),
        ] {
            for (i, item) in list
                .map(PyValue::items)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if item.get("id").is_none() {
                    return Err(spec.field_error(
                        format!("{kind}[{i}].id"),
                        "missing (every worker and evaluator needs an id)",
                    ));
                }
            }
        }
        // Limits are checked now, so a bad spec fails here rather than at reset.
        LoopRuntime::new(&spec, MockLlm::new(""))?;
        Ok(Self {
            env_id: env_id.into(),
            loop_name: spec.loop_name(),
            objective: spec.objective(),
            spec,
            tasks,
            seed: 0,
            task_id: String::new(),
            user_input: String::new(),
            runtime: None,
            state: LoopState::default(),
            done: false,
            last: None,
            perturbation: None,
            perturbed: false,
        })
    }

    /// The reference's `PerturbedSimEnv` over the same spec: each task's `perturbation` (or
    /// `env_perturbation`) in `tasks.json` — `hitl_reject` (a reviewer rejects the first
    /// iteration), `tool_denylist` (a forbidden tool call ends the episode),
    /// `missing_source` / `stale_source` (retrieval trouble lowers scores from the second
    /// iteration) — changes the input and the outcome exactly as the reference does.
    pub fn perturbed(mut self) -> Self {
        self.perturbed = true;
        self
    }

    /// Loads `spec.yaml` and the `tasks.json` next to it (when there is one).
    pub fn from_spec_file(
        env_id: impl Into<String>,
        spec_path: impl AsRef<Path>,
    ) -> Result<Self, SpecError> {
        let spec_path = spec_path.as_ref();
        let spec = LssSpec::from_file(spec_path)?;
        let tasks_path = spec_path.with_file_name("tasks.json");
        let tasks = if tasks_path.exists() {
            Some(TaskFile::from_file(&tasks_path)?)
        } else {
            None
        };
        Self::new(env_id, spec, tasks)
    }

    /// The environment id.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// The same env under another id.
    pub fn with_env_id(mut self, env_id: impl Into<String>) -> Self {
        self.env_id = env_id.into();
        self
    }

    /// Its spec.
    pub fn spec(&self) -> &LssSpec {
        &self.spec
    }

    /// Its task file.
    pub fn tasks(&self) -> Option<&TaskFile> {
        self.tasks.as_ref()
    }

    /// Replaces the episode's input after reset (the composed env feeds its merged branch
    /// results this way, as the reference does).
    pub(crate) fn set_user_input(&mut self, input: String) {
        self.user_input = input;
    }

    /// The spec's `loop_name`.
    pub fn loop_name(&self) -> &str {
        &self.loop_name
    }

    /// What a traced episode records about this env, read from the spec as the reference's
    /// `run_traced_episode` reads it.
    pub fn description(&self) -> EnvDescription {
        let first_id = |key: &str| {
            self.spec
                .get(key)
                .map(PyValue::items)
                .unwrap_or_default()
                .first()
                .and_then(|w| w.get("id"))
                .filter(|v| v.truthy())
                .map(PyValue::py_str)
        };
        EnvDescription {
            env_id: Some(self.env_id.clone()),
            loop_name: self
                .spec
                .get("loop_name")
                .map(PyValue::py_str)
                .unwrap_or_else(|| "unknown-loop".into()),
            goal_target: goal_target(&self.spec),
            worker_id: first_id("workers"),
            evaluator_id: first_id("evaluators"),
        }
    }

    /// The task ids of its task file, in order (empty without one).
    pub fn task_ids(&self) -> Vec<String> {
        self.tasks.as_ref().map(TaskFile::ids).unwrap_or_default()
    }

    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Tokens the mock LLM counted this episode.
    pub fn tokens_used(&self) -> u64 {
        self.runtime.as_ref().map_or(0, |r| r.llm.tokens_used)
    }

    /// The quality threshold that counts as success.
    pub fn quality_threshold(&self) -> f64 {
        self.runtime.as_ref().map_or(0.8, |r| r.quality_threshold)
    }

    /// Every iteration of this episode.
    pub fn history(&self) -> &[HistoryRecord] {
        &self.state.history
    }

    /// Why the episode ended (empty while it runs).
    pub fn termination_reason(&self) -> &str {
        &self.state.termination_reason
    }

    /// Starts an episode (`task_id` empty → `default`; `seed` `None` keeps the last one).
    pub fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        if let Some(s) = seed {
            self.seed = s;
        }
        self.task_id = if task_id.is_empty() {
            "default".into()
        } else {
            task_id.into()
        };
        self.user_input = task_input(&self.spec, &self.task_id, self.tasks.as_ref());
        self.perturbation = None;
        if self.perturbed {
            let task = self.tasks.as_ref().and_then(|t| t.find(&self.task_id));
            let p = task
                .and_then(|t| t.get("perturbation").filter(|v| v.truthy()))
                .or_else(|| task.and_then(|t| t.get("env_perturbation").filter(|v| v.truthy())))
                .cloned()
                .unwrap_or_else(|| PyValue::Str("none".into()));
            self.user_input.push_str(match &p {
                PyValue::Str(s) if s == "missing_source" => {
                    " [RETRIEVAL: corpus incomplete — key source missing]"
                }
                PyValue::Str(s) if s == "stale_source" => {
                    " [RETRIEVAL: conflicting stale document detected]"
                }
                PyValue::Str(s) if s == "hitl_reject" => {
                    " [HITL: human reviewer may reject this step]"
                }
                PyValue::Str(s) if s == "tool_denylist" => {
                    " [SAFETY: forbidden tool call shell_exec attempted]"
                }
                _ => "",
            });
            self.perturbation = Some(p);
        }
        let llm = MockLlm::new(format!("{}:{}:{}", self.seed, self.task_id, self.loop_name));
        self.runtime = Some(LoopRuntime::new(&self.spec, llm)?);
        self.state = LoopState::default();
        self.done = false;
        let obs = Observation {
            task_id: self.task_id.clone(),
            iteration: 0,
            output: String::new(),
            quality_score: 0.0,
            objective: self.objective.clone(),
            done: false,
            info: Info::from_iter([
                ("env_id".into(), self.env_id.clone().into()),
                ("seed".into(), self.seed.into()),
                ("loop_name".into(), self.loop_name.clone().into()),
                ("user_input".into(), self.user_input.clone().into()),
            ]),
        };
        let mut obs = obs;
        if let Some(p) = &self.perturbation {
            obs.info.insert("perturbation".into(), p.to_json());
        }
        self.last = Some(obs.clone());
        Ok(obs)
    }

    /// One iteration: the env's own worker acts, or the action's output replaces it (then,
    /// for a perturbed env, the task's perturbation applies).
    pub fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let after_done = self.done;
        let mut step = self.plain_step(action)?;
        if let Some(p) = self.perturbation.clone()
            && p != PyValue::Str("none".into())
        {
            self.perturb(&p, &mut step, after_done);
        }
        Ok(step)
    }

    /// `PerturbedSimEnv.step` after `SimEnv.step`. In the reference the step's info is the
    /// observation's info (one dict) except after the end, and the observation returned is
    /// the env's own, so both see the changes.
    fn perturb(&mut self, p: &PyValue, step: &mut Step, after_done: bool) {
        step.info.insert("perturbation".into(), p.to_json());
        let it = self.state.iteration;
        let q = self.state.quality_score;
        let forced = |reason: &str, cap: f64, state: &mut LoopState| {
            state.quality_score = q.min(cap);
            state.terminated = true;
            state.termination_reason = reason.into();
        };
        match p {
            PyValue::Str(s) if s == "hitl_reject" && it == 1 => {
                forced("human_rejected", 0.55, &mut self.state);
                self.done = true;
                step.done = true;
            }
            PyValue::Str(s) if s == "tool_denylist" && it >= 1 => {
                forced("safety_violation", 0.35, &mut self.state);
                self.done = true;
                step.done = true;
            }
            PyValue::Str(s) if (s == "missing_source" || s == "stale_source") && it >= 2 => {
                self.state.quality_score = 0.5_f64.max(q - 0.08);
            }
            _ => {}
        }
        let threshold = self.runtime.as_ref().map_or(0.8, |r| r.quality_threshold);
        let q = self.state.quality_score;
        step.info.insert("success".into(), (q >= threshold).into());
        step.info.insert(
            "termination_reason".into(),
            self.state.termination_reason.clone().into(),
        );
        step.info.insert("quality_score".into(), q.into());
        let last = self.last.get_or_insert_with(Observation::default);
        last.quality_score = q;
        last.done = step.done;
        if !after_done {
            last.info = step.info.clone();
        }
        step.observation = last.clone();
    }

    fn plain_step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if let Some(step) = self.after_done_step()? {
            return Ok(step);
        }
        let Some(runtime) = self.runtime.as_mut() else {
            return Err(EnvError::NotReset);
        };
        let (output, feedback, agent) = match action {
            Action::Output(text) if !text.is_empty() => {
                let (role, prompt) = runtime.critic_request(text);
                (text.clone(), runtime.llm.complete(&prompt, role), true)
            }
            _ => {
                let last = self
                    .state
                    .history
                    .last()
                    .map(|h| h.feedback.as_str())
                    .unwrap_or_default();
                let (role, prompt) = runtime.worker_request(
                    self.state.iteration + 1,
                    last,
                    &self.state.output,
                    &self.user_input,
                );
                let output = runtime.llm.complete(&prompt, &role);
                let (role, prompt) = runtime.critic_request(&output);
                let feedback = runtime.llm.complete(&prompt, role);
                (output, feedback, false)
            }
        };
        self.apply_step(output, feedback, agent)
    }

    /// After the end, a step changes nothing (`already_done`); `None` while it runs.
    pub(crate) fn after_done_step(&self) -> Result<Option<Step>, EnvError> {
        if self.runtime.is_none() {
            return Err(EnvError::NotReset);
        }
        Ok(self.done.then(|| Step {
            observation: self.last.clone().unwrap_or_default(),
            reward: 0.0,
            done: true,
            info: Info::from_iter([("reason".into(), "already_done".into())]),
        }))
    }

    /// The worker's role and prompt for the next env-worker step.
    pub(crate) fn next_worker_request(&self) -> Result<(String, String), EnvError> {
        let runtime = self.runtime.as_ref().ok_or(EnvError::NotReset)?;
        let last = self
            .state
            .history
            .last()
            .map(|h| h.feedback.as_str())
            .unwrap_or_default();
        Ok(runtime.worker_request(
            self.state.iteration + 1,
            last,
            &self.state.output,
            &self.user_input,
        ))
    }

    /// The critic's role and prompt for `output`.
    pub(crate) fn critic_request(&self, output: &str) -> Result<(&'static str, String), EnvError> {
        let runtime = self.runtime.as_ref().ok_or(EnvError::NotReset)?;
        Ok(runtime.critic_request(output))
    }

    /// Adds tokens an external LLM reported (a live env's).
    pub(crate) fn add_tokens(&mut self, tokens: u64) {
        if let Some(r) = self.runtime.as_mut() {
            r.llm.tokens_used = r.llm.tokens_used.saturating_add(tokens);
        }
    }

    /// Records one iteration from the worker's output and the critic's feedback: as the
    /// reference, an agent's output is scored before the iteration count goes up, the env
    /// worker's after.
    pub(crate) fn apply_step(
        &mut self,
        output: String,
        feedback: String,
        agent: bool,
    ) -> Result<Step, EnvError> {
        let Some(runtime) = self.runtime.as_mut() else {
            return Err(EnvError::NotReset);
        };
        let prior = self.state.quality_score;
        let score = if agent {
            let s = runtime.score(&feedback, prior, self.state.iteration);
            self.state.iteration += 1;
            s
        } else {
            self.state.iteration += 1;
            runtime.score(&feedback, prior, self.state.iteration)
        };
        self.state.output = output;
        self.state.quality_score = score;
        self.state.history.push(HistoryRecord {
            iteration: self.state.iteration,
            output: self.state.output.clone(),
            quality_score: score,
            feedback,
            agent_override: agent,
        });
        runtime.check_termination(&mut self.state);
        self.done = self.state.terminated;
        let success = self.state.quality_score >= runtime.quality_threshold;
        let reward = if success {
            self.state.quality_score
        } else {
            self.state.quality_score - 0.5
        };
        let mut info = Info::from_iter([
            ("iteration".into(), self.state.iteration.into()),
            (
                "termination_reason".into(),
                self.state.termination_reason.clone().into(),
            ),
            ("success".into(), success.into()),
            ("history_len".into(), self.state.history.len().into()),
        ]);
        if let Some(last) = self.state.history.last() {
            info.insert("last_feedback".into(), last.feedback.clone().into());
        }
        let observation = Observation {
            task_id: self.task_id.clone(),
            iteration: self.state.iteration,
            output: self.state.output.clone(),
            quality_score: self.state.quality_score,
            objective: self.objective.clone(),
            done: self.done,
            info: info.clone(),
        };
        self.last = Some(observation.clone());
        Ok(Step {
            observation,
            reward,
            done: self.done,
            info,
        })
    }
}
