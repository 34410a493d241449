//! Reading batches of runs for `show` and `compare`: every LTF document of the given files,
//! streamed, reduced to a [`RunSummary`] (a few dozen bytes a run); bad lines are counted
//! and reported with their file and line number, never fatal.

use std::io::BufReader;
use std::path::PathBuf;

use loopotel::jsonl::JsonlReader;
use loopotel::{LtfDocument, SpanKind};

/// One run, as `show` lists it and `compare` counts it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunSummary {
    /// Where it came from: the file and its line.
    pub source: String,
    pub trace_id: String,
    pub loop_name: String,
    pub env_id: Option<String>,
    pub task_id: Option<String>,
    pub seed: Option<i64>,
    pub batch_id: Option<String>,
    pub outcome: String,
    pub termination_reason: String,
    pub iterations: u64,
    /// The last iteration's goal score.
    pub final_score: Option<f64>,
    /// The last iteration's cumulative LES.
    pub les: Option<f64>,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    pub duration_ms: f64,
    /// Spans that ended with `error.type` set.
    pub errors: u64,
}

impl RunSummary {
    /// Success as `compare` counts it: outcome `success`.
    pub(crate) fn succeeded(&self) -> bool {
        self.outcome == "success"
    }

    /// The summary of one document.
    pub(crate) fn of_document(doc: &LtfDocument) -> Self {
        Self::of(doc, String::new())
    }

    fn of(doc: &LtfDocument, source: String) -> Self {
        let root = doc.root();
        let attr_f64 = |key: &str| root.and_then(|r| r.attributes.get(key)?.as_f64());
        let mut last: Option<(i64, Option<f64>, Option<f64>)> = None;
        let mut iterations = 0;
        let mut errors = 0;
        for s in &doc.spans {
            if s.attributes.get("error.type").is_some() {
                errors += 1;
            }
            if s.kind == SpanKind::Iteration {
                iterations += 1;
                let n = s
                    .attributes
                    .get("loop.iteration")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                let score = s.attributes.get("loop.goal_score").and_then(|v| v.as_f64());
                let les = s
                    .attributes
                    .get("loop.les.cumulative_normalized")
                    .and_then(|v| v.as_f64());
                if last.is_none_or(|(m, _, _)| n >= m) {
                    last = Some((n, score, les));
                }
            }
        }
        let tokens = root
            .and_then(|r| r.attributes.get("loop.tokens_total")?.as_i64())
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        let meta = |key: &str| doc.metadata.as_ref()?.get(key);
        RunSummary {
            source,
            trace_id: doc.trace_id.to_string(),
            loop_name: doc.loop_name.as_str().to_owned(),
            env_id: doc.env_id.as_ref().map(|s| s.as_str().to_owned()),
            task_id: doc.task_id.as_ref().map(|s| s.as_str().to_owned()),
            seed: meta("seed").and_then(|v| v.as_i64()),
            batch_id: root.and_then(|r| {
                r.attributes
                    .get("loop.batch.id")?
                    .as_str()
                    .map(str::to_owned)
            }),
            outcome: doc.outcome.map_or("unknown", |o| o.as_str()).to_owned(),
            termination_reason: doc.termination_reason.clone().unwrap_or_default(),
            iterations,
            final_score: last.and_then(|(_, s, _)| s),
            les: last.and_then(|(_, _, l)| l),
            tokens,
            cost_usd: attr_f64("loop.cost_total_usd"),
            duration_ms: doc.ended_at.saturating_since(doc.started_at).as_secs_f64() * 1e3,
            errors,
        }
    }
}

/// A line that was not a run: where, and why.
#[derive(Debug, Clone)]
pub(crate) struct Skipped {
    pub source: String,
    pub reason: String,
}

/// Calls `each` with every document of `paths` (a `.json` file holds one, anything else is
/// read as JSON Lines), and returns what was skipped. A missing file is an error.
pub(crate) fn for_each_document(
    paths: &[PathBuf],
    mut each: impl FnMut(&LtfDocument, String),
) -> Result<Vec<Skipped>, String> {
    let mut skipped = Vec::new();
    for path in paths {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if path.extension().is_some_and(|e| e == "json") {
            match serde_json::from_reader::<_, LtfDocument>(BufReader::new(file)) {
                Ok(doc) => each(&doc, path.display().to_string()),
                Err(e) => skipped.push(Skipped {
                    source: path.display().to_string(),
                    reason: format!("not an LTF document: {e}"),
                }),
            }
            continue;
        }
        for item in JsonlReader::new(BufReader::new(file)).documents() {
            match item {
                Ok(rec) => each(&rec.value, format!("{}:{}", path.display(), rec.line)),
                Err(e) => skipped.push(Skipped {
                    source: format!("{}:{}", path.display(), e.line()),
                    reason: e.to_string(),
                }),
            }
        }
    }
    Ok(skipped)
}

/// The runs of `paths` (only those of `batch` when given), and what was skipped.
pub(crate) fn read_runs(
    paths: &[PathBuf],
    batch: Option<&str>,
) -> Result<(Vec<RunSummary>, Vec<Skipped>), String> {
    let mut runs = Vec::new();
    let skipped = for_each_document(paths, |doc, source| {
        let run = RunSummary::of(doc, source);
        if batch.is_none_or(|b| run.batch_id.as_deref() == Some(b)) {
            runs.push(run);
        }
    })?;
    Ok((runs, skipped))
}

/// Reports skipped lines on stderr: a count, and the first few with their reasons.
pub(crate) fn report_skipped(skipped: &[Skipped]) {
    if skipped.is_empty() {
        return;
    }
    eprintln!("{} line(s) skipped:", skipped.len());
    for s in skipped.iter().take(20) {
        eprintln!("  {}: {}", s.source, s.reason);
    }
    if skipped.len() > 20 {
        eprintln!("  … and {} more", skipped.len() - 20);
    }
}
