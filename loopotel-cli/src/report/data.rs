//! What a report holds: the overview aggregated over every run, the list rows and the detail
//! of the runs kept, and the lines skipped — built in one streaming pass.

use std::collections::BTreeMap;
use std::path::PathBuf;

use loopotel::{AttrValue, LtfDocument, LtfSpan, SpanKind};
use serde_json::{Value, json};

use super::sample::Keep;
use crate::runs::{RunSummary, Skipped};

/// How much of the input a report embeds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Runs in the run list (all runs up to this; beyond it, problem runs first, then a
    /// sample). The overview always counts every run.
    pub list: usize,
    /// Runs whose spans are embedded (problem runs first, then a sample).
    pub detail: usize,
    /// Spans embedded per detailed run (the run's loop and iteration spans first).
    pub spans_per_run: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            list: 50_000,
            detail: 200,
            spans_per_run: 2_000,
        }
    }
}

/// Most bytes of JSON embedded per detailed run: spans beyond it are left out (and the page
/// says so), so the detail of [`Limits::detail`] runs stays within a known size.
pub(crate) const MAX_DETAIL_BYTES: usize = 256 * 1024;
/// Longest attribute value embedded, in characters.
const MAX_VALUE_CHARS: usize = 4_000;
/// Most events embedded per span.
const MAX_EVENTS_PER_SPAN: usize = 100;
/// Most distinct termination reasons and batches named in the overview.
const MAX_NAMED: usize = 50;
/// Skipped lines named on the page.
const MAX_SKIPPED_NAMED: usize = 50;

/// A metric's values over every run (for the distribution charts).
#[derive(Default)]
pub(crate) struct Values(pub Vec<f32>);

/// One env and task.
#[derive(Default)]
pub(crate) struct Group {
    pub runs: u64,
    pub successes: u64,
    pub score_sum: f64,
    pub score_n: u64,
    pub les_sum: f64,
    pub les_n: u64,
    pub iterations: u64,
    pub tokens: u64,
    pub cost: f64,
    pub duration_ms: f64,
    pub errors: u64,
}

impl Group {
    fn add(&mut self, r: &RunSummary) {
        self.runs += 1;
        self.successes += u64::from(r.succeeded());
        if let Some(s) = r.final_score.filter(|s| s.is_finite()) {
            self.score_sum += s;
            self.score_n += 1;
        }
        if let Some(l) = r.les.filter(|l| l.is_finite()) {
            self.les_sum += l;
            self.les_n += 1;
        }
        self.iterations += r.iterations;
        self.tokens = self.tokens.saturating_add(r.tokens);
        self.cost += r.cost_usd.filter(|c| c.is_finite()).unwrap_or(0.0);
        self.duration_ms += r.duration_ms;
        self.errors += r.errors;
    }
}

/// Counts over every run.
#[derive(Default)]
pub(crate) struct Overview {
    pub runs: u64,
    pub all: Group,
    pub outcomes: BTreeMap<String, u64>,
    pub terminations: BTreeMap<String, u64>,
    /// Runs whose termination reason was not among the first [`MAX_NAMED`].
    pub terminations_other: u64,
    pub groups: BTreeMap<(String, String), Group>,
    pub batches: BTreeMap<String, u64>,
    pub iterations: Values,
    pub scores: Values,
    pub les: Values,
    pub tokens: Values,
    pub cost: Values,
    pub duration_ms: Values,
}

/// A run of the list, and where its detail is.
pub(crate) struct ListRow {
    seq: u64,
    run: RunSummary,
    problem: bool,
    detail: Option<usize>,
}

impl serde::Serialize for ListRow {
    /// `[seq, id, env, task, seed, outcome, termination, iterations, score, les, tokens,
    /// cost, duration_ms, errors, batch, source, detail, problem]` (see `page.js`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let r = &self.run;
        let mut seq = s.serialize_seq(Some(18))?;
        seq.serialize_element(&self.seq)?;
        seq.serialize_element(&r.trace_id)?;
        seq.serialize_element(r.env_id.as_deref().unwrap_or(&r.loop_name))?;
        seq.serialize_element(r.task_id.as_deref().unwrap_or("-"))?;
        seq.serialize_element(&r.seed)?;
        seq.serialize_element(&r.outcome)?;
        seq.serialize_element(&r.termination_reason)?;
        seq.serialize_element(&r.iterations)?;
        seq.serialize_element(&num(r.final_score))?;
        seq.serialize_element(&num(r.les))?;
        seq.serialize_element(&r.tokens)?;
        seq.serialize_element(&num(r.cost_usd))?;
        seq.serialize_element(&num(Some(r.duration_ms)))?;
        seq.serialize_element(&r.errors)?;
        seq.serialize_element(&r.batch_id)?;
        seq.serialize_element(&r.source)?;
        seq.serialize_element(&self.detail)?;
        seq.serialize_element(&self.problem)?;
        seq.end()
    }
}

/// The report, ready to render.
pub(crate) struct Report {
    pub overview: Overview,
    /// The listed runs.
    pub list: Vec<ListRow>,
    /// The detailed runs, each as JSON text.
    pub details: Vec<String>,
    pub limits: Limits,
    pub files: Vec<String>,
    pub batch: Option<String>,
    pub skipped_total: usize,
    pub skipped: Vec<(String, String)>,
}

/// One pass over the documents.
pub(crate) struct Collector {
    limits: Limits,
    overview: Overview,
    list: Keep<(RunSummary, bool)>,
    details: Keep<String>,
}

impl Collector {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            overview: Overview::default(),
            list: Keep::new(limits.list),
            details: Keep::new(limits.detail),
        }
    }

    /// Counts one document (when it belongs to `batch`, if given).
    pub(crate) fn add(&mut self, doc: &LtfDocument, source: String, batch: Option<&str>) {
        let mut run = RunSummary::of_document(doc);
        if batch.is_some_and(|b| run.batch_id.as_deref() != Some(b)) {
            return;
        }
        run.source = source;
        let seq = self.overview.runs;
        self.overview.runs += 1;
        self.count(&run);
        let problem = !run.succeeded() || run.errors > 0;
        let spans_per_run = self.limits.spans_per_run;
        self.details
            .offer(seq, problem, || detail(doc, &run, seq, spans_per_run));
        self.list.offer(seq, problem, || (run, problem));
    }

    fn count(&mut self, r: &RunSummary) {
        let o = &mut self.overview;
        o.all.add(r);
        *o.outcomes.entry(r.outcome.clone()).or_default() += 1;
        let reason = termination_kind(&r.termination_reason);
        if o.terminations.contains_key(&reason) || o.terminations.len() < MAX_NAMED {
            *o.terminations.entry(reason).or_default() += 1;
        } else {
            o.terminations_other += 1;
        }
        let env = r.env_id.clone().unwrap_or_else(|| r.loop_name.clone());
        let task = r.task_id.clone().unwrap_or_else(|| "-".to_owned());
        o.groups.entry((env, task)).or_default().add(r);
        if let Some(b) = &r.batch_id
            && (o.batches.contains_key(b) || o.batches.len() < MAX_NAMED)
        {
            *o.batches.entry(b.clone()).or_default() += 1;
        }
        o.iterations.0.push(r.iterations as f32);
        if let Some(s) = r.final_score.filter(|s| s.is_finite()) {
            o.scores.0.push(s as f32);
        }
        if let Some(l) = r.les.filter(|l| l.is_finite()) {
            o.les.0.push(l as f32);
        }
        o.tokens.0.push(r.tokens as f32);
        if let Some(c) = r.cost_usd.filter(|c| c.is_finite()) {
            o.cost.0.push(c as f32);
        }
        o.duration_ms.0.push(r.duration_ms as f32);
    }

    /// The report: the kept rows and details, with each row pointing at its detail.
    pub(crate) fn finish(
        self,
        paths: &[PathBuf],
        batch: Option<&str>,
        skipped: &[Skipped],
    ) -> Report {
        let details = self.details.finish();
        let detail_of: BTreeMap<u64, usize> = details
            .iter()
            .enumerate()
            .map(|(i, (seq, _))| (*seq, i))
            .collect();
        let list = self
            .list
            .finish()
            .into_iter()
            .map(|(seq, (run, problem))| ListRow {
                seq,
                run,
                problem,
                detail: detail_of.get(&seq).copied(),
            })
            .collect();
        Report {
            overview: self.overview,
            list,
            details: details.into_iter().map(|(_, d)| d).collect(),
            limits: self.limits,
            files: paths.iter().map(|p| p.display().to_string()).collect(),
            batch: batch.map(str::to_owned),
            skipped_total: skipped.len(),
            skipped: skipped
                .iter()
                .take(MAX_SKIPPED_NAMED)
                .map(|s| (s.source.clone(), s.reason.clone()))
                .collect(),
        }
    }
}

/// A termination reason without its particulars: `quality_threshold (0.91 >= 0.85)` →
/// `quality_threshold`.
pub(crate) fn termination_kind(reason: &str) -> String {
    let head = reason
        .split([' ', '(', ':'])
        .find(|s| !s.is_empty())
        .unwrap_or("(none)");
    head.chars().take(60).collect()
}

/// Finite numbers only (JSON has no NaN), rounded to keep the page small.
fn num(x: Option<f64>) -> Value {
    match x {
        Some(v) if v.is_finite() => json!((v * 1e4).round() / 1e4),
        _ => Value::Null,
    }
}

/// What a span is, for its colour: the GenAI operation it names, else its LTF kind.
fn category(s: &LtfSpan) -> &'static str {
    let op = s
        .attributes
        .get("gen_ai.operation.name")
        .and_then(AttrValue::as_str);
    match op {
        Some("chat" | "text_completion" | "generate_content") => "llm",
        Some("execute_tool") => "tool",
        Some("embeddings") => "embeddings",
        Some("invoke_agent" | "create_agent") => "agent",
        _ if s.name.as_str().starts_with("loop.env") => "env",
        _ if s.attributes.get("http.request.method").is_some() => "http",
        _ => match s.kind {
            SpanKind::Loop => "loop",
            SpanKind::Iteration => "iteration",
            SpanKind::Worker => "worker",
            SpanKind::Evaluator => "evaluator",
        },
    }
}

/// An attribute value as JSON, long strings cut (and said so).
struct Cut<'a>(&'a AttrValue);

impl serde::Serialize for Cut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AttrValue::Str(text) if text.len() > MAX_VALUE_CHARS => {
                let n = text.as_str().chars().count();
                if n <= MAX_VALUE_CHARS {
                    return s.serialize_str(text.as_str());
                }
                let mut cut: String = text.as_str().chars().take(MAX_VALUE_CHARS).collect();
                cut.push_str(&format!("… ({n} characters)"));
                s.serialize_str(&cut)
            }
            AttrValue::Json(v) => {
                let text = v.to_string();
                if text.chars().count() > MAX_VALUE_CHARS {
                    Cut(&AttrValue::Str(text.into())).serialize(s)
                } else {
                    v.serialize(s)
                }
            }
            other => other.serialize(s),
        }
    }
}

/// Milliseconds from `t0`, to the microsecond.
fn offset_ms(t: loopotel::Timestamp, t0: loopotel::Timestamp) -> f64 {
    (t.saturating_since(t0).as_secs_f64() * 1e6).round() / 1e3
}

/// Attributes as `[key, value]` pairs.
type Pairs<'a> = Vec<(&'a str, Cut<'a>)>;

/// One span of a detailed run (see `page.js`).
#[derive(serde::Serialize)]
struct SpanOut<'a> {
    id: String,
    p: Option<usize>,
    n: &'a str,
    k: &'static str,
    c: &'static str,
    s: f64,
    d: Option<f64>,
    err: Option<Cut<'a>>,
    end: Option<Cut<'a>>,
    a: Pairs<'a>,
    ct: Pairs<'a>,
    ev: Vec<(f64, &'a str, Pairs<'a>)>,
    evn: usize,
}

/// One run in full: its spans (at most `spans_per_run`, loop and iteration spans first,
/// within [`MAX_DETAIL_BYTES`]), attributes, events, and the per-iteration series — as JSON
/// text, written once.
fn detail(doc: &LtfDocument, r: &RunSummary, seq: u64, spans_per_run: usize) -> String {
    let t0 = doc.started_at;
    let mut order: Vec<&LtfSpan> = doc.spans.iter().collect();
    order.sort_by_key(|s| {
        (
            !matches!(s.kind, SpanKind::Loop | SpanKind::Iteration),
            s.start_time,
        )
    });
    order.truncate(spans_per_run);
    order.sort_by_key(|s| s.start_time);
    let index: std::collections::HashMap<_, usize> = order
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut its: Vec<(i64, [Option<f64>; 4])> = doc
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Iteration)
        .map(|s| {
            let get = |k: &str| s.attributes.get(k).and_then(AttrValue::as_f64);
            let n = s
                .attributes
                .get(loopotel::semconv::LOOP_ITERATION)
                .and_then(AttrValue::as_i64)
                .unwrap_or(0);
            (
                n,
                [
                    get(loopotel::semconv::LOOP_GOAL_SCORE),
                    get(loopotel::semconv::LOOP_LES_CUMULATIVE),
                    get(loopotel::semconv::LOOP_TOKENS_DELTA),
                    get(loopotel::semconv::LOOP_COST_USD),
                ],
            )
        })
        .collect();
    its.sort_by_key(|(n, _)| *n);
    let its: Vec<Value> = its
        .into_iter()
        .map(|(n, [g, l, t, c])| json!([n, num(g), num(l), num(t), num(c)]))
        .collect();
    let head = json!({
        "seq": seq,
        "id": r.trace_id,
        "name": r.loop_name,
        "started": doc.started_at.to_string(),
        "dur": offset_ms(doc.ended_at, t0),
        "spans_total": doc.spans.len(),
        "its": its,
        "target": doc.root().and_then(|r| r.attributes.get(loopotel::semconv::LOOP_GOAL_TARGET)).and_then(AttrValue::as_f64),
    })
    .to_string();
    // `{...head..., "spans": [...]}`: the spans are appended while they fit the budget.
    let mut out = Vec::with_capacity(head.len() + 256 * order.len());
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(br#","spans":["#);
    let budget = out.len() + MAX_DETAIL_BYTES;
    for (i, s) in order.iter().enumerate() {
        let mut a = Vec::with_capacity(s.attributes.len());
        let mut ct = Vec::new();
        for (k, v) in s.attributes.iter() {
            if loopotel::semconv::is_content_attribute(k) {
                ct.push((k, Cut(v)));
            } else {
                a.push((k, Cut(v)));
            }
        }
        let span = SpanOut {
            id: s.span_id.to_string(),
            p: s.parent_span_id.and_then(|p| index.get(&p).copied()),
            n: s.name.as_str(),
            k: s.kind.as_str(),
            c: category(s),
            s: offset_ms(s.start_time, t0),
            d: s.end_time
                .map(|e| (e.saturating_since(s.start_time).as_secs_f64() * 1e6).round() / 1e3),
            err: s.attributes.get("error.type").map(Cut),
            end: s
                .attributes
                .get(loopotel::semconv::LOOP_END_REASON)
                .map(Cut),
            a,
            ct,
            ev: s
                .events
                .iter()
                .take(MAX_EVENTS_PER_SPAN)
                .map(|e| {
                    (
                        offset_ms(e.timestamp, t0),
                        e.name.as_str(),
                        e.attributes.iter().map(|(k, v)| (k, Cut(v))).collect(),
                    )
                })
                .collect(),
            evn: s.events.len(),
        };
        let mark = out.len();
        if i > 0 {
            out.push(b',');
        }
        if serde_json::to_writer(&mut out, &span).is_err() || out.len() > budget {
            out.truncate(mark);
            break;
        }
    }
    out.extend_from_slice(b"]}");
    String::from_utf8(out).unwrap_or_default()
}
