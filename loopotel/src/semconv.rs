//! Names of the spans, events and attributes loopotel emits (`specs/otel-semconv-loop.md`).
//!
//! The `loop.*` names are the Python reference's, with the same meaning; names marked
//! *(loopotel)* are our additions.

/// Root span name.
pub const SPAN_RUN: &str = "loop.run";
/// Iteration span name.
pub const SPAN_ITERATION: &str = "loop.iteration";
/// *(loopotel)* Environment step span name (LTF kind `worker`).
pub const SPAN_ENV_STEP: &str = "loop.env.step";

/// Event at the start of an iteration.
pub const EVENT_ITERATION_START: &str = "loop.iteration.start";
/// Event when the iteration's worker finished.
pub const EVENT_WORKER_COMPLETE: &str = "loop.worker.complete";
/// Event when the iteration's evaluator scored the work.
pub const EVENT_EVALUATOR_COMPLETE: &str = "loop.evaluator.complete";
/// Event at the end of an iteration.
pub const EVENT_ITERATION_END: &str = "loop.iteration.end";

/// Loop name (every loop/iteration span).
pub const LOOP_NAME: &str = "loop.name";
/// Environment id.
pub const LOOP_ENV_ID: &str = "loop.env_id";
/// Task id.
pub const LOOP_TASK_ID: &str = "loop.task_id";
/// Iteration number (1-based by convention).
pub const LOOP_ITERATION: &str = "loop.iteration";
/// Goal score of the iteration, rounded to 4 decimals.
pub const LOOP_GOAL_SCORE: &str = "loop.goal_score";
/// Goal target the score is measured against.
pub const LOOP_GOAL_TARGET: &str = "loop.goal_target";
/// Tokens used in the iteration.
pub const LOOP_TOKENS_DELTA: &str = "loop.tokens_delta";
/// Cost of the iteration in US dollars.
pub const LOOP_COST_USD: &str = "loop.cost_usd";
/// Latency of the iteration in milliseconds.
pub const LOOP_LATENCY_MS: &str = "loop.latency_ms";
/// Cumulative LES after the iteration.
pub const LOOP_LES_CUMULATIVE: &str = "loop.les.cumulative_normalized";
/// Effectiveness of the iteration.
pub const LOOP_LES_EFFECTIVENESS: &str = "loop.les.effectiveness";
/// *(loopotel)* Change of the cumulative LES in this iteration.
pub const LOOP_LES_DELTA: &str = "loop.les.delta";
/// Worker id.
pub const LOOP_WORKER_ID: &str = "loop.worker.id";
/// Evaluator id.
pub const LOOP_EVALUATOR_ID: &str = "loop.evaluator.id";
/// LSS version (`1.0.0`).
pub const LOOP_LSS_VERSION: &str = "loop.lss_version";
/// LES version (`1.0.0`).
pub const LOOP_LES_VERSION: &str = "loop.les_version";
/// Run outcome (root span).
pub const LOOP_OUTCOME: &str = "loop.outcome";
/// Why the run stopped (root span).
pub const LOOP_TERMINATION_REASON: &str = "loop.termination_reason";
/// Tokens used by the whole run (root span).
pub const LOOP_TOKENS_TOTAL: &str = "loop.tokens_total";
/// *(loopotel)* Number of iterations recorded (root span).
pub const LOOP_ITERATIONS: &str = "loop.iterations";
/// *(loopotel)* Total cost of the run in US dollars (root span, when any cost was recorded).
pub const LOOP_COST_TOTAL_USD: &str = "loop.cost_total_usd";
/// *(loopotel)* Set on a span that was not ended explicitly: `dropped` or `panic`.
pub const LOOP_END_REASON: &str = "loop.end_reason";
/// *(loopotel)* Spans not recorded because the run hit its span cap (root span, when > 0).
pub const LOOP_TELEMETRY_DROPPED_SPANS: &str = "loop.telemetry.dropped_spans";

/// *(loopotel)* The span a run was started under — a propagated caller's, or an enclosing
/// OpenTelemetry span in this process (root span). The LTF root itself has no parent.
pub const LOOP_PARENT_SPAN_ID: &str = "loop.parent_span_id";

/// LSS version written in `loop.lss_version`.
pub const LSS_VERSION: &str = "1.0.0";
/// LES version written in `loop.les_version`.
pub const LES_VERSION: &str = "1.0.0";

/// The `error.type` for errors of type `E`: its type name without path or generics
/// (`std::io::Error` → `Error`), a low-cardinality value as the semantic conventions ask.
pub fn error_type_of<E: ?Sized>() -> String {
    let name = std::any::type_name::<E>();
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// Whether an attribute holds prompt or completion content (GenAI semantic conventions:
/// messages, prompts, completions, system instructions, tool definitions, tool call
/// arguments and results): recorded only when content capture is on, shown collapsed.
pub fn is_content_attribute(key: &str) -> bool {
    matches!(
        key,
        "gen_ai.input.messages"
            | "gen_ai.output.messages"
            | "gen_ai.prompt"
            | "gen_ai.completion"
            | "gen_ai.system_instructions"
            | "gen_ai.tool.call.arguments"
            | "gen_ai.tool.call.result"
            | "gen_ai.tool.definitions"
    ) || key.starts_with("gen_ai.prompt.")
        || key.starts_with("gen_ai.completion.")
}
