//! The reference's loop runtime (`loopgym.runtime.loop_runtime`): the deterministic mock
//! LLM, how a spec sets max iterations and the quality threshold, and one loop step.

use sha2::{Digest, Sha256};

use crate::pyvalue::{PyValue, float_repr, parse_py_float, prefix_chars, str_repr};
use crate::spec::{LssSpec, SpecError};

/// The deterministic mock LLM: SHA-256 of `"{seed}:{role}:{prompt[:200]}"` picks the text
/// and, for critics, the score; every call counts `max(50, len(prompt) // 4)` tokens.
#[derive(Debug, Clone)]
pub(crate) struct MockLlm {
    seed: String,
    /// Tokens counted so far.
    pub tokens_used: u64,
}

impl MockLlm {
    /// A mock LLM with this seed string.
    pub(crate) fn new(seed: impl Into<String>) -> Self {
        Self {
            seed: seed.into(),
            tokens_used: 0,
        }
    }

    /// The reply to `prompt` in `role`.
    pub(crate) fn complete(&mut self, prompt: &str, role: &str) -> String {
        let chars = prompt.chars().count() as u64;
        self.tokens_used += (chars / 4).max(50);
        let digest = Sha256::digest(format!(
            "{}:{role}:{}",
            self.seed,
            prefix_chars(prompt, 200)
        ));
        let score_hint = f64::from(digest[0]) / 255.0;
        if matches!(role, "critic" | "evaluator" | "verifier") {
            let quality = (0.45 + score_hint * 0.5 + self.tokens_used as f64 / 100000.0).min(0.95);
            let passed = quality >= 0.75;
            return format!(
                "Evaluation score: {quality:.2}. {}. Notes: {}",
                if passed { "PASS" } else { "FAIL" },
                if passed {
                    "Meets rubric criteria."
                } else {
                    "Needs clearer structure and evidence."
                }
            );
        }
        let lower = prompt.to_lowercase();
        if lower.contains("revise") || lower.contains("improve") {
            return format!(
                "Revised output for role={role}: Structured answer addressing: {}... [quality_boost={score_hint:.2}]",
                str_repr(prefix_chars(prompt, 80))
            );
        }
        if role == "researcher" {
            return format!(
                "Research findings on '{}': key points synthesized from mock sources.",
                prefix_chars(prompt, 60)
            );
        }
        if role == "orchestrator" {
            return format!(
                "Orchestrator merged specialist outputs for: {}",
                prefix_chars(prompt, 60)
            );
        }
        format!(
            "Draft output from {role}: Response to '{}' with actionable summary.",
            prefix_chars(prompt, 100)
        )
    }
}

/// One iteration as the reference records it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    /// 1-based.
    pub iteration: u64,
    /// The worker's output.
    pub output: String,
    /// The critic's score.
    pub quality_score: f64,
    /// The critic's text.
    pub feedback: String,
    /// The output came from the agent's action, not the env's worker.
    pub agent_override: bool,
}

/// The state carried across iterations.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LoopState {
    /// Iterations done.
    pub iteration: u64,
    /// The latest output.
    pub output: String,
    /// The latest score.
    pub quality_score: f64,
    /// Every iteration.
    pub history: Vec<HistoryRecord>,
    /// Whether the loop has ended.
    pub terminated: bool,
    /// Why (`quality_threshold (0.83 >= 0.8)`, `max_iterations (5)`).
    pub termination_reason: String,
}

fn items_of(v: Option<&PyValue>) -> &[PyValue] {
    v.map(PyValue::items).unwrap_or_default()
}

/// `int(x)` of a spec value, or a clear error naming the field.
fn spec_int(spec: &LssSpec, field: &str, v: &PyValue) -> Result<i64, SpecError> {
    v.py_int()
        .ok_or_else(|| spec.field_error(field, format!("expected an integer, got {}", v.py_repr())))
}

fn spec_float(spec: &LssSpec, field: &str, v: &PyValue) -> Result<f64, SpecError> {
    v.py_float()
        .ok_or_else(|| spec.field_error(field, format!("expected a number, got {}", v.py_repr())))
}

/// `_get_max_iterations(spec)`.
pub(crate) fn max_iterations(spec: &LssSpec) -> Result<i64, SpecError> {
    let ten = PyValue::Int(10);
    match spec.get("termination_conditions") {
        Some(term @ PyValue::Dict(_)) => {
            for (i, failure) in items_of(term.get("failure")).iter().enumerate() {
                if failure.get("type") == Some(&PyValue::Str("max_iterations".into())) {
                    let v = failure.get("value").unwrap_or(&ten);
                    return spec_int(
                        spec,
                        &format!("termination_conditions.failure[{i}].value"),
                        v,
                    );
                }
            }
        }
        Some(PyValue::List(conds)) => {
            for (i, cond) in conds.iter().enumerate() {
                if cond.get("type") == Some(&PyValue::Str("max_iterations".into())) {
                    let v = cond.get("value").unwrap_or(&ten);
                    return spec_int(spec, &format!("termination_conditions[{i}].value"), v);
                }
            }
        }
        _ => {}
    }
    let from_cost = spec
        .get("cost_limits")
        .filter(|v| v.truthy())
        .and_then(|c| c.get("max_iterations"))
        .filter(|v| v.truthy());
    if let Some(v) = from_cost {
        return spec_int(spec, "cost_limits.max_iterations", v);
    }
    let from_opt = spec
        .get("optimization_strategy")
        .filter(|v| v.truthy())
        .and_then(|o| o.get("max_steps"))
        .filter(|v| v.truthy());
    if let Some(v) = from_opt {
        return spec_int(spec, "optimization_strategy.max_steps", v);
    }
    Ok(10)
}

/// `_get_quality_threshold(spec)`.
pub(crate) fn quality_threshold(spec: &LssSpec) -> Result<f64, SpecError> {
    match spec.get("termination_conditions") {
        Some(term @ PyValue::Dict(_)) => {
            for (i, success) in items_of(term.get("success")).iter().enumerate() {
                let op = success.get("operator").map(PyValue::py_str);
                if matches!(op.as_deref(), Some("gte" | "gt"))
                    && let Some(v) = success.get_some("value")
                {
                    return spec_float(
                        spec,
                        &format!("termination_conditions.success[{i}].value"),
                        v,
                    );
                }
            }
        }
        Some(PyValue::List(conds)) => {
            for (i, cond) in conds.iter().enumerate() {
                if cond.get("type") == Some(&PyValue::Str("quality_threshold".into())) {
                    return match cond.get("threshold") {
                        Some(v) => {
                            spec_float(spec, &format!("termination_conditions[{i}].threshold"), v)
                        }
                        None => Ok(0.8),
                    };
                }
            }
        }
        _ => {}
    }
    for (i, ev) in items_of(spec.get("evaluators")).iter().enumerate() {
        if let Some(v) = ev.get("rubric").and_then(|r| r.get_some("pass_threshold")) {
            return spec_float(spec, &format!("evaluators[{i}].rubric.pass_threshold"), v);
        }
        if let Some(v) = ev.get_some("threshold") {
            return spec_float(spec, &format!("evaluators[{i}].threshold"), v);
        }
    }
    for (i, m) in items_of(spec.get("metrics")).iter().enumerate() {
        if m.get("primary").is_some_and(PyValue::truthy)
            && let Some(v) = m.get_some("target")
        {
            return spec_float(spec, &format!("metrics[{i}].target"), v);
        }
    }
    Ok(0.8)
}

/// `_worker_ids(spec)`: each worker's `id`, else its `role`.
pub(crate) fn worker_ids(spec: &LssSpec) -> Vec<String> {
    items_of(spec.get("workers"))
        .iter()
        .filter_map(|w| {
            w.get("id")
                .filter(|v| v.truthy())
                .or_else(|| w.get("role").filter(|v| v.truthy()))
                .map(PyValue::py_str)
        })
        .collect()
}

/// The reference's `LoopRuntime` over one spec.
#[derive(Debug, Clone)]
pub(crate) struct LoopRuntime {
    /// The mock LLM (its token count is the episode's).
    pub llm: MockLlm,
    /// From the spec.
    pub max_iterations: i64,
    /// From the spec.
    pub quality_threshold: f64,
    worker_ids: Vec<String>,
    /// `str(spec.get("objective", ""))`, used by the critic prompt.
    objective_or_empty: String,
    /// `str(spec.get("objective"))` (`None` when absent), used by the first worker prompt.
    objective_or_none: String,
}

impl LoopRuntime {
    /// Reads the spec's limits; a malformed limit is an error naming the field.
    pub(crate) fn new(spec: &LssSpec, llm: MockLlm) -> Result<Self, SpecError> {
        Ok(Self {
            llm,
            max_iterations: max_iterations(spec)?,
            quality_threshold: quality_threshold(spec)?,
            worker_ids: worker_ids(spec),
            objective_or_empty: spec.objective(),
            objective_or_none: spec
                .get("objective")
                .map(PyValue::py_str)
                .unwrap_or_else(|| "None".into()),
        })
    }

    /// The critic's role and prompt for `output` (`_evaluate`'s request).
    pub(crate) fn critic_request(&self, output: &str) -> (&'static str, String) {
        let role = if self.worker_ids.iter().any(|w| w == "critic") {
            "critic"
        } else {
            "evaluator"
        };
        let prompt = format!(
            "Evaluate this output against objective '{}':\n{output}",
            self.objective_or_empty
        );
        (role, prompt)
    }

    /// `_evaluate`'s score: the last number in `[0, 1]` the critic wrote (else `prior`), plus
    /// the iteration bonus, capped at 0.99.
    pub(crate) fn score(&self, feedback: &str, prior: f64, iteration: u64) -> f64 {
        let mut score = prior;
        for token in feedback.split_whitespace() {
            if let Some(rest) = token.strip_prefix("score:")
                && let Some(v) = rest.split(':').next().and_then(parse_py_float)
            {
                score = v;
            }
            if let Some(v) = parse_py_float(token.trim_end_matches('.'))
                && (0.0..=1.0).contains(&v)
            {
                score = v;
            }
        }
        (score + 0.12 * iteration as f64 + 0.05).min(0.99)
    }

    /// The worker's role and prompt (`_act`'s request) at `iteration`, given the last
    /// feedback and output.
    pub(crate) fn worker_request(
        &self,
        iteration: u64,
        last_feedback: &str,
        output: &str,
        user_input: &str,
    ) -> (String, String) {
        let role = self
            .worker_ids
            .first()
            .cloned()
            .unwrap_or_else(|| "implementer".into());
        let prompt = if iteration == 0 {
            format!("Objective: {}\nInput: {user_input}", self.objective_or_none)
        } else {
            format!("Revise output based on feedback:\n{last_feedback}\nPrevious output:\n{output}")
        };
        (role, prompt)
    }

    /// `_check_termination`.
    pub(crate) fn check_termination(&self, state: &mut LoopState) -> bool {
        if state.quality_score >= self.quality_threshold {
            state.terminated = true;
            state.termination_reason = format!(
                "quality_threshold ({:.2} >= {})",
                state.quality_score,
                float_repr(self.quality_threshold)
            );
            return true;
        }
        if state.iteration as i64 >= self.max_iterations {
            state.terminated = true;
            state.termination_reason = format!("max_iterations ({})", self.max_iterations);
            return true;
        }
        false
    }
}
