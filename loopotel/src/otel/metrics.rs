//! Loop and GenAI metrics, recorded from the same recording as the spans and independent of
//! trace sampling (see `specs/otel-semconv-loop.md`, "Metrics").
//!
//! Attributes are bounded: loop names, outcomes, operation names, models, tool names and
//! error types — never trace, span, run or task ids. Free-text termination reasons are cut
//! to their first word and capped at [`MAX_REASONS`] distinct values (then `other`).

use std::collections::HashSet;
use std::sync::Mutex;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::attr::{AttrValue, SharedStr};
use crate::model::{LtfSpan, Outcome};
use crate::semconv as sc;
use crate::time::Timestamp;

/// Most distinct `loop.termination_reason` values a tracer reports before using `other`.
pub(crate) const MAX_REASONS: usize = 64;

/// GenAI semconv advice for `gen_ai.client.operation.duration` (seconds).
pub(crate) const DURATION_BUCKETS_S: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// GenAI semconv advice for `gen_ai.client.token.usage` (tokens).
pub(crate) const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// Buckets for scores in [0, 1] (goal score, cumulative LES).
pub(crate) const SCORE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Buckets for iterations per run.
pub(crate) const ITERATION_BUCKETS: [f64; 12] = [
    1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0, 233.0,
];

/// The instruments of one tracer.
pub(crate) struct LoopMetrics {
    genai_duration: Histogram<f64>,
    genai_tokens: Histogram<u64>,
    genai_ttfc: Histogram<f64>,
    run_iterations: Histogram<u64>,
    run_duration: Histogram<f64>,
    runs: Counter<u64>,
    iteration_goal_score: Histogram<f64>,
    iteration_les: Histogram<f64>,
    iteration_tokens: Histogram<u64>,
    cost: Counter<f64>,
    llm_cost: Counter<f64>,
    tool_duration: Histogram<f64>,
    tool_errors: Counter<u64>,
    env_step_duration: Histogram<f64>,
    env_step_errors: Counter<u64>,
    dropped: Counter<u64>,
    reasons: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for LoopMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopMetrics")
    }
}

pub(crate) fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.saturating_since(from).as_secs_f64()
}

fn str_attr(span: &LtfSpan, key: &'static str) -> Option<KeyValue> {
    span.attributes
        .get(key)
        .and_then(AttrValue::as_str)
        .map(|v| KeyValue::new(key, v.to_owned()))
}

/// The meter every loopotel instrument lives in.
fn loop_meter<P: MeterProvider + ?Sized>(provider: &P) -> Meter {
    let scope = InstrumentationScope::builder(super::SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    provider.meter_with_scope(scope)
}

fn dropped_counter_of(m: &Meter) -> Counter<u64> {
    m.u64_counter("loop.telemetry.dropped")
        .with_unit("{span}")
        .with_description("Telemetry that could not be recorded or delivered, by reason")
        .build()
}

/// `loop.telemetry.spooled` of `provider`: spans written to a disk spool (not lost; sent
/// later).
#[cfg_attr(not(feature = "sdk"), allow(dead_code))]
pub(crate) fn spooled_counter<P: MeterProvider + ?Sized>(provider: &P) -> Counter<u64> {
    loop_meter(provider)
        .u64_counter("loop.telemetry.spooled")
        .with_unit("{span}")
        .with_description("Spans written to the disk spool while the collector was away")
        .build()
}

/// `loop.telemetry.dropped` of `provider` (the SDK returns the same instrument each time).
#[cfg_attr(not(feature = "sdk"), allow(dead_code))]
pub(crate) fn dropped_counter<P: MeterProvider + ?Sized>(provider: &P) -> Counter<u64> {
    dropped_counter_of(&loop_meter(provider))
}

impl LoopMetrics {
    pub(crate) fn new<P: MeterProvider + ?Sized>(provider: &P) -> Self {
        let m = loop_meter(provider);
        Self {
            genai_duration: m
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("GenAI operation duration")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            genai_tokens: m
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Tokens used per GenAI operation, by gen_ai.token.type")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            genai_ttfc: m
                .f64_histogram("gen_ai.client.operation.time_to_first_chunk")
                .with_unit("s")
                .with_description("Time to the first chunk of a streamed GenAI operation")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            run_iterations: m
                .u64_histogram("loop.run.iterations")
                .with_unit("{iteration}")
                .with_description("Iterations per finished run")
                .with_boundaries(ITERATION_BUCKETS.to_vec())
                .build(),
            run_duration: m
                .f64_histogram("loop.run.duration")
                .with_unit("s")
                .with_description("Duration of finished runs")
                .with_boundaries(vec![
                    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
                ])
                .build(),
            runs: m
                .u64_counter("loop.runs")
                .with_unit("{run}")
                .with_description("Finished runs, by outcome and termination reason")
                .build(),
            iteration_goal_score: m
                .f64_histogram("loop.iteration.goal_score")
                .with_unit("1")
                .with_description("Goal score at the end of each iteration")
                .with_boundaries(SCORE_BUCKETS.to_vec())
                .build(),
            iteration_les: m
                .f64_histogram("loop.iteration.les.cumulative")
                .with_unit("1")
                .with_description("Cumulative LES at the end of each iteration")
                .with_boundaries(SCORE_BUCKETS.to_vec())
                .build(),
            iteration_tokens: m
                .u64_histogram("loop.iteration.tokens")
                .with_unit("{token}")
                .with_description("Tokens used per iteration")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            cost: m
                .f64_counter("loop.cost")
                .with_unit("USD")
                .with_description("Cost of iterations")
                .build(),
            llm_cost: m
                .f64_counter("loop.llm.cost")
                .with_unit("USD")
                .with_description("Cost of GenAI calls, by model")
                .build(),
            tool_duration: m
                .f64_histogram("loop.tool.duration")
                .with_unit("s")
                .with_description("Tool call duration")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            tool_errors: m
                .u64_counter("loop.tool.errors")
                .with_unit("{error}")
                .with_description("Failed tool calls, by error.type")
                .build(),
            env_step_duration: m
                .f64_histogram("loop.env.step.duration")
                .with_unit("s")
                .with_description("Environment step duration")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            env_step_errors: m
                .u64_counter("loop.env.step.errors")
                .with_unit("{error}")
                .with_description("Failed environment steps, by error.type")
                .build(),
            dropped: dropped_counter_of(&m),
            reasons: Mutex::new(HashSet::new()),
        }
    }

    /// A bounded form of a free-text termination reason.
    fn reason(&self, reason: &str) -> String {
        let word: String = reason
            .split(|c: char| c.is_whitespace() || c == '(' || c == ':')
            .next()
            .unwrap_or("")
            .chars()
            .take(48)
            .collect();
        let mut seen = self
            .reasons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(&word) {
            return word;
        }
        if seen.len() < MAX_REASONS {
            seen.insert(word.clone());
            word
        } else {
            "other".to_owned()
        }
    }

    pub(crate) fn run_finished(
        &self,
        loop_name: &SharedStr,
        env_id: Option<&SharedStr>,
        outcome: Outcome,
        reason: &str,
        iterations: u64,
        duration_s: f64,
    ) {
        // Env ids are few (one per environment), so they are a bounded attribute.
        let env = env_id.map_or_else(String::new, ToString::to_string);
        let base = [
            KeyValue::new(sc::LOOP_NAME, loop_name.to_string()),
            KeyValue::new(sc::LOOP_ENV_ID, env),
            KeyValue::new(sc::LOOP_OUTCOME, outcome.as_str()),
        ];
        self.run_iterations.record(iterations, &base);
        self.run_duration.record(duration_s, &base);
        let [a, b, c] = base;
        self.runs.add(
            1,
            &[
                a,
                b,
                c,
                KeyValue::new(sc::LOOP_TERMINATION_REASON, self.reason(reason)),
            ],
        );
    }

    pub(crate) fn iteration_ended(
        &self,
        loop_name: &SharedStr,
        goal_score: Option<f64>,
        les: Option<f64>,
        tokens: u64,
        cost: Option<f64>,
    ) {
        let attrs = [KeyValue::new(sc::LOOP_NAME, loop_name.to_string())];
        if let Some(g) = goal_score {
            self.iteration_goal_score.record(g, &attrs);
        }
        if let Some(l) = les {
            self.iteration_les.record(l, &attrs);
        }
        self.iteration_tokens.record(tokens, &attrs);
        if let Some(c) = cost.filter(|c| c.is_finite() && *c >= 0.0) {
            self.cost.add(c, &attrs);
        }
    }

    /// GenAI, tool and env-step metrics of a finished child span, from its attributes.
    pub(crate) fn span_ended(&self, span: &LtfSpan) {
        let end = span.end_time.unwrap_or(span.start_time);
        let duration = seconds(span.start_time, end);
        let error = str_attr(span, "error.type");
        let operation = span
            .attributes
            .get("gen_ai.operation.name")
            .and_then(AttrValue::as_str);
        match operation {
            Some("execute_tool") => {
                let mut attrs: Vec<KeyValue> =
                    str_attr(span, "gen_ai.tool.name").into_iter().collect();
                self.tool_duration.record(duration, &attrs);
                if let Some(e) = error {
                    attrs.push(e);
                    self.tool_errors.add(1, &attrs);
                }
            }
            Some(op) => {
                let mut attrs = vec![KeyValue::new("gen_ai.operation.name", op.to_owned())];
                attrs.extend(str_attr(span, "gen_ai.provider.name"));
                attrs.extend(str_attr(span, "gen_ai.request.model"));
                attrs.extend(str_attr(span, "gen_ai.response.model"));
                attrs.extend(str_attr(span, "server.address"));
                let mut with_error = attrs.clone();
                with_error.extend(error);
                self.genai_duration.record(duration, &with_error);
                for (key, kind) in [
                    ("gen_ai.usage.input_tokens", "input"),
                    ("gen_ai.usage.output_tokens", "output"),
                ] {
                    if let Some(n) = span.attributes.get(key).and_then(AttrValue::as_i64) {
                        let mut a = attrs.clone();
                        a.push(KeyValue::new("gen_ai.token.type", kind));
                        self.genai_tokens.record(n.max(0) as u64, &a);
                    }
                }
                if let Some(c) = span
                    .attributes
                    .get(sc::LOOP_COST_USD)
                    .and_then(AttrValue::as_f64)
                    .filter(|c| c.is_finite() && *c >= 0.0)
                {
                    let model: Vec<KeyValue> =
                        str_attr(span, "gen_ai.request.model").into_iter().collect();
                    self.llm_cost.add(c, &model);
                }
                if let Some(ttfc) = span
                    .attributes
                    .get("gen_ai.response.time_to_first_chunk")
                    .and_then(AttrValue::as_f64)
                {
                    self.genai_ttfc.record(ttfc, &attrs);
                }
            }
            None if span.name.as_str() == sc::SPAN_ENV_STEP => {
                let attrs: Vec<KeyValue> = error.into_iter().collect();
                self.env_step_duration.record(duration, &[]);
                if !attrs.is_empty() {
                    self.env_step_errors.add(1, &attrs);
                }
            }
            None => {}
        }
    }

    pub(crate) fn dropped(&self, n: u64, reason: &'static str) {
        self.dropped
            .add(n, &[KeyValue::new("loop.telemetry.reason", reason)]);
    }
}
