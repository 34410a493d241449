//! `loopotel convert`: LTF ⇄ LoopNet `ln/record-v1` and LTF ⇄ LoopGym's Loop Trace 1.0,
//! streamed line by line. Every record
//! written is checked against the real LoopNet schema and every LTF document against
//! `validate --strict`; a line that cannot be converted is reported with its number and
//! reason, the rest converted, and the exit code is 1 if anything was skipped.
//!
//! The mapping is documented in `docs/formats.md`.

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The LoopNet record schema (MIT, from the LoopNet project; see `schemas/LOOPNET-LICENSE`).
const LOOPNET_SCHEMA: &str = include_str!("../schemas/loopnet-record-v1.schema.json");

/// Most iterations a record's trajectory holds (the schema's `maxItems`).
const MAX_TRAJECTORY: usize = 50;

/// Which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ToLoopnet,
    FromLoopnet,
    ToLooptrace,
    FromLooptrace,
}

/// What `convert` was asked.
pub(crate) struct Options {
    pub direction: Direction,
    pub input: PathBuf,
    pub output: PathBuf,
    pub existing: crate::output::Existing,
    /// Defaults for records whose trace does not say (`--source`, `--split`, `--pattern`,
    /// `--objective`).
    pub source: String,
    pub split: String,
    pub patterns: Vec<String>,
    pub objective: Option<String>,
}

fn loopnet_validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(LOOPNET_SCHEMA).ok()?;
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .ok()
    })
    .as_ref()
}

/// The schema's first complaint about `record`, if any.
fn loopnet_error(record: &Value) -> Option<String> {
    let Some(v) = loopnet_validator() else {
        return Some("the LoopNet schema did not compile".to_owned());
    };
    v.iter_errors(record)
        .next()
        .map(|e| format!("{}: {e}", e.instance_path()))
}

/// `loopotel convert`.
pub(crate) fn run(opts: &Options) -> ExitCode {
    let input = match std::fs::File::open(&opts.input) {
        Ok(f) => BufReader::new(f),
        Err(e) => {
            eprintln!("loopotel convert: {}: {e}", opts.input.display());
            return ExitCode::from(1);
        }
    };
    let out = match open_output(&opts.output, opts.existing) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loopotel convert: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = BufWriter::new(out);
    let (mut written, mut skipped) = (0u64, 0u64);
    for (n, line) in input.lines().enumerate() {
        let line_no = n + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                skipped += 1;
                eprintln!("{}:{line_no}: unreadable: {e}", opts.input.display());
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let converted = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| match opts.direction {
                Direction::ToLoopnet => to_loopnet(&v, opts),
                Direction::FromLoopnet => from_loopnet(&v),
                Direction::ToLooptrace => to_looptrace(&v),
                Direction::FromLooptrace => from_looptrace(&v),
            });
        match converted {
            Ok(v) => {
                if writeln!(out, "{v}").is_err() {
                    eprintln!("loopotel convert: cannot write {}", opts.output.display());
                    return ExitCode::from(1);
                }
                written += 1;
            }
            Err(why) => {
                skipped += 1;
                eprintln!("{}:{line_no}: skipped: {why}", opts.input.display());
            }
        }
    }
    if out.flush().is_err() {
        eprintln!("loopotel convert: cannot write {}", opts.output.display());
        return ExitCode::from(1);
    }
    eprintln!(
        "{written} converted, {skipped} skipped → {}",
        opts.output.display()
    );
    if skipped > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn open_output(path: &Path, existing: crate::output::Existing) -> Result<std::fs::File, String> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > 0 && existing == crate::output::Existing::Refuse {
        return Err(format!(
            "{} already exists; pass --append to add to it, or --force to replace it",
            path.display()
        ));
    }
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if existing == crate::output::Existing::Append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(path).map_err(|e| format!("{}: {e}", path.display()))
}

// ---- LTF → LoopNet ----------------------------------------------------------------------

/// The typed LTF document of a JSON value, or why it is not one.
fn parse_ltf(doc: &Value) -> Result<loopotel::LtfDocument, String> {
    if doc.get("schema_version").and_then(Value::as_str) != Some("ltf/0.1") {
        return Err(format!(
            "not an LTF 0.1 document (schema_version {})",
            doc.get("schema_version").unwrap_or(&Value::Null)
        ));
    }
    serde_json::from_value(doc.clone()).map_err(|e| format!("not an LTF document: {e}"))
}

/// LoopNet's `termination_reason` for a free-text LTF one (table in `docs/formats.md`).
fn termination_reason(reason: &str, outcome: &str) -> &'static str {
    const ENUM: [&str; 10] = [
        "goal_met",
        "budget_exhausted",
        "human_stop",
        "error",
        "stall",
        "safety_violation",
        "timeout",
        "max_iterations",
        "cost_exceeded",
        "evaluator_error",
    ];
    let r = reason.to_ascii_lowercase();
    if let Some(exact) = ENUM.iter().find(|e| r == **e) {
        return exact;
    }
    let has = |words: &[&str]| words.iter().any(|w| r.contains(w));
    if has(&["max_iter", "iteration cap", "max iterations"]) {
        "max_iterations"
    } else if has(&["cost"]) {
        "cost_exceeded"
    } else if has(&["budget"]) {
        "budget_exhausted"
    } else if has(&["timeout", "timed out", "deadline"]) {
        "timeout"
    } else if has(&["safety"]) {
        "safety_violation"
    } else if has(&["evaluator", "critic"]) {
        "evaluator_error"
    } else if has(&["human", "cancel", "interrupt", "dropped", "stop"]) {
        "human_stop"
    } else if has(&["stall", "plateau", "no_progress", "no progress"]) {
        "stall"
    } else if has(&["error", "panic", "exception", "fail"]) {
        "error"
    } else if has(&[
        "goal",
        "threshold",
        "quality",
        "success",
        "done",
        "answered",
    ]) {
        "goal_met"
    } else {
        match outcome {
            "success" => "goal_met",
            "failure" => "error",
            _ => "stall",
        }
    }
}

/// A LoopNet `loop_name` (`^[a-z][a-z0-9-]*$`, 3–64 characters) from any LTF loop name.
fn loopnet_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_owned();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "loop-");
    }
    while out.len() < 3 {
        out.push('x');
    }
    out.truncate(64);
    out.trim_end_matches('-').to_owned()
}

fn f64_at(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64()
}

fn clamp01(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// One LTF document → one `ln/record-v1` record.
fn to_loopnet(doc: &Value, opts: &Options) -> Result<Value, String> {
    let parsed = parse_ltf(doc)?;
    let kept: Map<String, Value> = doc
        .pointer("/metadata/loopnet")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let from_loopnet_record = !kept.is_empty();
    let trace_hex = parsed.trace_id.to_string();
    let record_id = format!("ln-{}", trace_hex.trim_start_matches("ltf-"));
    let outcome = match parsed.outcome.map(|o| o.as_str()) {
        Some("success") => "success",
        Some("failure") => "failure",
        _ => "partial",
    };
    let reason = parsed.termination_reason.clone().unwrap_or_default();
    let mut iterations: Vec<&Value> = doc["spans"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["kind"] == "iteration").collect())
        .unwrap_or_default();
    if iterations.is_empty() {
        return Err("no iteration spans: a LoopNet trajectory needs at least one".to_owned());
    }
    iterations.sort_by_key(|s| s["attributes"]["loop.iteration"].as_i64().unwrap_or(0));
    let total_iterations = iterations.len();
    if iterations.len() > MAX_TRAJECTORY {
        // The first 49 and the last: the start and the end of a long loop.
        let last = iterations[iterations.len() - 1];
        iterations.truncate(MAX_TRAJECTORY - 1);
        iterations.push(last);
    }
    let base = iterations
        .iter()
        .filter_map(|s| s["attributes"]["loop.iteration"].as_i64())
        .min()
        .unwrap_or(1);
    let shift = if base < 1 { 1 - base } else { 0 };
    let mut trajectory = Vec::new();
    let mut cost_total = 0.0;
    for (i, s) in iterations.iter().enumerate() {
        let a = &s["attributes"];
        let goal = clamp01(f64_at(a, "loop.goal_score").unwrap_or(0.0));
        let latency = match f64_at(a, "loop.latency_ms") {
            Some(ms) => ms.max(0.0) / 1000.0,
            None => {
                let parse = |k: &str| {
                    s[k].as_str()
                        .and_then(|t| t.parse::<loopotel::Timestamp>().ok())
                };
                match (parse("start_time"), parse("end_time")) {
                    (Some(a), Some(b)) => b.saturating_since(a).as_secs_f64(),
                    _ => 0.0,
                }
            }
        };
        let cost = f64_at(a, "loop.cost_usd").unwrap_or(0.0).max(0.0);
        cost_total += cost;
        let n = a["loop.iteration"]
            .as_i64()
            .map_or(i as i64 + 1, |n| n + shift)
            .max(1);
        let mut step = json!({
            "iteration": n,
            "goal_score": goal,
            "cost_usd": cost,
            "latency_seconds": latency,
        });
        if !from_loopnet_record {
            // As the reference's `trajectory_from_trace` writes them.
            step["primary_quality"] = json!(goal);
            step["failure_codes"] = json!([]);
            step["safety_events"] = json!(0);
            step["human_intervention"] = json!(false);
            if let Some(t) = a["loop.tokens_delta"].as_i64().filter(|t| *t >= 0) {
                step["tokens"] = json!(t);
            }
        }
        // Fields a LoopNet record carried into LTF come back as they were.
        for (ltf_key, ln_key) in [
            ("loopnet.primary_quality", "primary_quality"),
            ("loopnet.failure_codes", "failure_codes"),
            ("loopnet.safety_events", "safety_events"),
            ("loopnet.human_intervention", "human_intervention"),
            ("loopnet.tokens", "tokens"),
        ] {
            if let Some(v) = a.get(ltf_key) {
                step[ln_key] = v.clone();
            }
        }
        if let Some(c) = a.get("loopnet.cost_usd") {
            step["cost_usd"] = c.clone();
        }
        if let Some(l) = a.get("loopnet.latency_seconds") {
            step["latency_seconds"] = l.clone();
        }
        trajectory.push(step);
    }
    let last = iterations[iterations.len() - 1];
    let goal_final = clamp01(f64_at(&last["attributes"], "loop.goal_score").unwrap_or(0.0));
    let goal_target = clamp01(
        f64_at(&last["attributes"], "loop.goal_target")
            .or_else(|| f64_at(&doc["spans"][0]["attributes"], "loop.goal_target"))
            .unwrap_or(loopotel::les::DEFAULT_GOAL_TARGET),
    );
    let les = clamp01(f64_at(&last["attributes"], "loop.les.cumulative_normalized").unwrap_or(0.0));
    let spans = doc["spans"].as_array().map_or(0, Vec::len).max(1);
    let errors = doc["spans"].as_array().map_or(0, |s| {
        s.iter()
            .filter(|s| s["attributes"].get("error.type").is_some())
            .count()
    });
    // The run's own metadata first (`RunBuilder::metadata("objective", …)`), then the flags.
    let meta = |key: &str| doc.pointer(&format!("/metadata/{key}")).cloned();
    let objective = meta("objective")
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|o| o.chars().count() >= 10)
        .or_else(|| opts.objective.clone())
        .unwrap_or_else(|| {
            format!(
                "Run of loop {} (trace {trace_hex}).",
                parsed.loop_name.as_str()
            )
        });
    let source = meta("source").unwrap_or_else(|| json!(opts.source));
    let split = meta("split").unwrap_or_else(|| json!(opts.split));
    let patterns = meta("patterns").unwrap_or_else(|| json!(opts.patterns));
    let mut record = json!({
        "record_id": record_id,
        "schema_version": "ln/record-v1",
        "spec_pins": {"lss": "lss@1.0.0", "les": "les@1.0.0"},
        "created_at": parsed.started_at.to_string(),
        "source": source,
        "split": split,
        "patterns": patterns,
        "loop_name": loopnet_name(parsed.loop_name.as_str()),
        "objective": objective,
        "outcome": outcome,
        "termination_reason": termination_reason(&reason, outcome),
        "trajectory": trajectory,
        "les_observed": {
            "les_normalized": les,
            "les_display": round4(les * 100.0).min(100.0),
            "categories": {
                "effectiveness": les,
                "speed": 0.5,
                "cost": 0.5,
                "robustness": round4(1.0 - errors as f64 / spans as f64),
                "scalability": 0.5,
                "safety": 1.0,
                "adaptability": 0.5,
                "autonomy": 0.5,
            },
        },
        "metadata": {
            "iteration_count": total_iterations,
            "cost_total_usd": round4(cost_total * 1e4 / 1e4),
            "goal_target": goal_target,
            "goal_final": goal_final,
        },
    });
    if outcome != "success" {
        record["failure_modes"] = json!(["fail.open_loop"]);
        if outcome == "failure" {
            record["failure_mode"] = json!("fail.open_loop");
        }
    }
    // A record that came from LoopNet: every field it had comes back.
    for (k, v) in kept {
        record[k] = v;
    }
    if let Some(e) = loopnet_error(&record) {
        return Err(format!("the record would not be valid ln/record-v1: {e}"));
    }
    Ok(record)
}

// ---- LoopNet → LTF ----------------------------------------------------------------------

/// One `ln/record-v1` record → one LTF document that passes `validate --strict`.
fn from_loopnet(record: &Value) -> Result<Value, String> {
    if record.get("schema_version").and_then(Value::as_str) != Some("ln/record-v1") {
        return Err(format!(
            "not an ln/record-v1 record (schema_version {})",
            record.get("schema_version").unwrap_or(&Value::Null)
        ));
    }
    if let Some(e) = loopnet_error(record) {
        return Err(format!("not a valid ln/record-v1 record: {e}"));
    }
    let id = record["record_id"].as_str().unwrap_or_default();
    let hex = id.trim_start_matches("ln-");
    let trace_id = format!("ltf-{hex}");
    let started: loopotel::Timestamp = record["created_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or("created_at is not a date-time")?;
    let goal_target = record["metadata"]["goal_target"].as_f64().unwrap_or(0.8);
    let span_id = |i: usize| {
        // Deterministic ids from the record id and the position.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes().chain((i as u64).to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:016x}", h.max(1))
    };
    let root_id = span_id(0);
    let mut at = started;
    let mut spans = Vec::new();
    let mut les = loopotel::les::LesAccumulator::default();
    let mut tokens_total = 0i64;
    let mut cost_total = 0.0;
    let steps = record["trajectory"].as_array().cloned().unwrap_or_default();
    for (i, step) in steps.iter().enumerate() {
        let latency = step["latency_seconds"].as_f64().unwrap_or(0.0).max(0.0);
        let start = at;
        let end = start.saturating_add(std::time::Duration::from_secs_f64(latency.min(1e9)));
        at = end;
        let goal = step["goal_score"].as_f64().unwrap_or(0.0);
        let point = les.push(goal, goal_target);
        let tokens = step["tokens"].as_i64();
        tokens_total += tokens.unwrap_or(0);
        let cost = step["cost_usd"].as_f64().unwrap_or(0.0);
        cost_total += cost;
        let mut attributes = json!({
            "loop.iteration": step["iteration"],
            "loop.goal_score": goal,
            "loop.goal_target": goal_target,
            "loop.cost_usd": cost,
            "loop.latency_ms": latency * 1000.0,
            "loop.les.effectiveness": point.effectiveness,
            "loop.les.cumulative_normalized": point.cumulative,
            "loop.les.delta": point.delta,
            "loopnet.latency_seconds": step["latency_seconds"],
            "loopnet.cost_usd": step["cost_usd"],
        });
        if let Some(t) = tokens {
            attributes["loop.tokens_delta"] = json!(t);
        }
        for key in [
            "primary_quality",
            "failure_codes",
            "safety_events",
            "human_intervention",
            "tokens",
        ] {
            if let Some(v) = step.get(key) {
                attributes[format!("loopnet.{key}")] = v.clone();
            }
        }
        spans.push(json!({
            "span_id": span_id(i + 1),
            "parent_span_id": root_id,
            "name": "loop.iteration",
            "kind": "iteration",
            "start_time": start.to_string(),
            "end_time": end.to_string(),
            "attributes": attributes,
            "events": [],
        }));
    }
    let outcome = record["outcome"].as_str().unwrap_or("unknown");
    let reason = record["termination_reason"].as_str().unwrap_or_default();
    let loop_name = record["loop_name"].as_str().unwrap_or("loopnet-record");
    let root = json!({
        "span_id": root_id,
        "parent_span_id": null,
        "name": "loop.run",
        "kind": "loop",
        "start_time": started.to_string(),
        "end_time": at.to_string(),
        "attributes": {
            "loop.name": loop_name,
            "loop.goal_target": goal_target,
            "loop.outcome": outcome,
            "loop.termination_reason": reason,
            "loop.tokens_total": tokens_total,
            "loop.cost_total_usd": cost_total,
            "loop.iterations": steps.len(),
        },
        "events": [],
    });
    spans.insert(0, root);
    let mut kept = record.as_object().cloned().unwrap_or_default();
    kept.remove("trajectory");
    let doc = json!({
        "schema_version": "ltf/0.1",
        "trace_id": trace_id,
        "loop_name": loop_name,
        "started_at": started.to_string(),
        "ended_at": at.to_string(),
        "outcome": outcome,
        "termination_reason": reason,
        "spec_pins": {"lss": "lss@1.0.0", "les": "les@1.0.0", "ltf": "ltf@0.1.0"},
        "spans": spans,
        "metadata": {"loopnet": kept},
    });
    let errors = loopotel::validate::validate_value(&doc, loopotel::validate::Mode::Strict);
    if let Some(e) = errors.first() {
        return Err(format!("the LTF document would not be valid: {e}"));
    }
    Ok(doc)
}

// ---- Loop Trace 1.0 (LoopGym) -----------------------------------------------------------

/// 16 bytes derived from `text` (two FNV-1a hashes): a stable trace id for documents that
/// carry no id of the right shape.
fn derived_id(text: &str) -> [u8; 16] {
    let hash = |offset: u64| {
        let mut h = offset;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hash(0xcbf2_9ce4_8422_2325).to_be_bytes());
    out[8..].copy_from_slice(&hash(0x84222325cbf29ce4).to_be_bytes());
    if out == [0; 16] {
        out[15] = 1;
    }
    out
}

/// An LTF `loop_name` (3–64 characters) from any name.
fn ltf_name(name: &str) -> String {
    let mut n: String = name.chars().take(64).collect();
    while n.chars().count() < 3 {
        n.push('_');
    }
    n
}

/// One Loop Trace 1.0 document → one LTF document that passes `validate --strict`.
fn from_looptrace(lt: &Value) -> Result<Value, String> {
    if lt.get("trace_version").and_then(Value::as_str) != Some("1.0") {
        return Err(format!(
            "not a Loop Trace 1.0 document (trace_version {})",
            lt.get("trace_version").unwrap_or(&Value::Null)
        ));
    }
    let loop_id = lt["loop_id"].as_str().ok_or("loop_id is missing")?;
    let parse = |k: &str| -> Option<loopotel::Timestamp> { lt[k].as_str()?.parse().ok() };
    let started = parse("started_at").ok_or("started_at is not a date-time")?;
    let ended = parse("ended_at").unwrap_or(started).max(started);
    let iterations = lt["iterations"]
        .as_array()
        .filter(|i| !i.is_empty())
        .ok_or("iterations is missing or empty")?;
    let trace = loopotel::TraceId::from_bytes(derived_id(loop_id));
    let span_id = |i: usize| {
        let b = derived_id(&format!("{loop_id}#{i}"));
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[..8]);
        loopotel::SpanId::from_bytes(id).to_string()
    };
    let root_id = span_id(0);
    let mut les = loopotel::les::LesAccumulator::default();
    let mut spans = vec![];
    for (i, it) in iterations.iter().enumerate() {
        let at = it["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<loopotel::Timestamp>().ok())
            .unwrap_or(started)
            .max(started)
            .min(ended);
        let n = it["iteration"].as_i64().unwrap_or(i as i64) + 1;
        let quality = it["evaluator_scores"]["quality"].as_f64();
        let mut attributes = json!({
            "loop.iteration": n,
            "loop.worker.id": it["worker_id"].as_str().unwrap_or("worker"),
            "looptrace.iteration": it["iteration"],
            "looptrace.evaluator_scores": it["evaluator_scores"],
        });
        if let Some(q) = quality {
            let point = les.push(q, loopotel::les::DEFAULT_GOAL_TARGET);
            attributes["loop.goal_score"] = json!(q);
            attributes["loop.les.effectiveness"] = json!(point.effectiveness);
            attributes["loop.les.cumulative_normalized"] = json!(point.cumulative);
            attributes["loop.les.delta"] = json!(point.delta);
        }
        if let Some(c) = it["cost_usd"].as_f64() {
            attributes["loop.cost_usd"] = json!(c);
        }
        for key in ["worker_output", "feedback", "timestamp", "worker_id"] {
            if let Some(v) = it.get(key) {
                attributes[format!("looptrace.{key}")] = v.clone();
            }
        }
        spans.push(json!({
            "span_id": span_id(i + 1), "parent_span_id": root_id,
            "name": "loop.iteration", "kind": "iteration",
            "start_time": at.to_string(), "end_time": at.to_string(),
            "attributes": attributes, "events": [],
        }));
    }
    let success = lt["success"].as_bool().unwrap_or(false);
    let outcome = if success { "success" } else { "failure" };
    let reason = lt["termination_reason"].as_str().unwrap_or("");
    let name = ltf_name(lt["loop_name"].as_str().unwrap_or("unknown"));
    let mut root_attributes = json!({
        "loop.name": name, "loop.outcome": outcome, "loop.termination_reason": reason,
        "loop.iterations": iterations.len(),
    });
    if let Some(c) = lt["total_cost_usd"].as_f64() {
        root_attributes["loop.cost_total_usd"] = json!(c);
    }
    spans.insert(
        0,
        json!({
            "span_id": root_id, "parent_span_id": null, "name": "loop.run", "kind": "loop",
            "start_time": started.to_string(), "end_time": ended.to_string(),
            "attributes": root_attributes, "events": [],
        }),
    );
    let mut kept = lt.as_object().cloned().unwrap_or_default();
    kept.remove("iterations");
    let mut doc = json!({
        "schema_version": "ltf/0.1", "trace_id": trace.to_string(), "loop_name": name,
        "started_at": started.to_string(), "ended_at": ended.to_string(),
        "outcome": outcome, "termination_reason": reason,
        "spec_pins": {"lss": "lss@1.0.0", "les": "les@1.0.0", "ltf": "ltf@0.1.0"},
        "spans": spans,
        "metadata": {"looptrace": kept},
    });
    let meta = &lt["metadata"];
    for key in ["env_id", "task_id"] {
        if let Some(v) = meta[key].as_str() {
            doc[key] = json!(v);
        }
    }
    if let Some(seed) = meta["seed"].as_i64() {
        doc["metadata"]["seed"] = json!(seed);
    }
    let errors = loopotel::validate::validate_value(&doc, loopotel::validate::Mode::Strict);
    if let Some(e) = errors.first() {
        return Err(format!("the LTF document would not be valid: {e}"));
    }
    Ok(doc)
}

/// One LTF document → one Loop Trace 1.0 document (LoopGym's `loopgym/trace.py` shape).
fn to_looptrace(doc: &Value) -> Result<Value, String> {
    let parsed = parse_ltf(doc)?;
    let kept = doc
        .pointer("/metadata/looptrace")
        .and_then(Value::as_object);
    let mut its: Vec<&Value> = doc["spans"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["kind"] == "iteration").collect())
        .unwrap_or_default();
    its.sort_by_key(|s| s["attributes"]["loop.iteration"].as_i64().unwrap_or(0));
    let root = &doc["spans"][0]["attributes"];
    let total_cost = root["loop.cost_total_usd"].as_f64().unwrap_or(0.0);
    let spread = total_cost / its.len().max(1) as f64;
    let mut iterations: Vec<Value> = its
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let a = &s["attributes"];
            let n = a["loop.iteration"].as_i64().unwrap_or(i as i64 + 1);
            let mut entry = json!({
                "iteration": a.get("looptrace.iteration").cloned().unwrap_or(json!((n - 1).max(0))),
                "timestamp": a.get("looptrace.timestamp").cloned().unwrap_or(s["start_time"].clone()),
                "worker_id": a.get("looptrace.worker_id").or(a.get("loop.worker.id")).cloned().unwrap_or(json!("worker")),
                "evaluator_scores": a.get("looptrace.evaluator_scores").cloned().unwrap_or_else(|| {
                    a.get("loop.goal_score").map_or(json!({}), |g| json!({"quality": g}))
                }),
                "cost_usd": a.get("loop.cost_usd").cloned().unwrap_or(json!(spread)),
            });
            for key in ["worker_output", "feedback"] {
                if let Some(v) = a.get(format!("looptrace.{key}")) {
                    entry[key] = v.clone();
                }
            }
            entry
        })
        .collect();
    if iterations.is_empty() {
        iterations.push(json!({
            "iteration": 0, "timestamp": doc["started_at"], "worker_id": "worker",
            "evaluator_scores": {}, "cost_usd": 0.0,
        }));
    }
    let mut lt = json!({
        "trace_version": "1.0",
        "loop_id": parsed.trace_id.to_string(),
        "loop_name": parsed.loop_name.as_str(),
        "spec_path": "",
        "started_at": doc["started_at"],
        "ended_at": doc["ended_at"],
        "success": parsed.outcome == Some(loopotel::Outcome::Success),
        "termination_reason": parsed.termination_reason.clone().unwrap_or_default(),
        "total_cost_usd": total_cost,
        "iterations": iterations,
        "metadata": {"runtime": "loopotel"},
    });
    for key in ["env_id", "task_id"] {
        if let Some(v) = doc[key].as_str() {
            lt["metadata"][key] = json!(v);
        }
    }
    if let Some(seed) = doc.pointer("/metadata/seed") {
        lt["metadata"]["seed"] = seed.clone();
    }
    // A document that came from Loop Trace 1.0: every top-level field comes back.
    if let Some(kept) = kept {
        for (k, v) in kept {
            lt[k] = v.clone();
        }
    }
    Ok(lt)
}
