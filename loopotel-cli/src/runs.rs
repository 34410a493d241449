//! Reading batches of runs for `show` and `compare`: every LTF document of the given files,
//! streamed, reduced to a [`RunSummary`] (a few dozen bytes a run); bad lines are counted
//! and reported with their file and line number, never fatal.

use std::io::BufReader;
use std::path::PathBuf;

use loopotel::jsonl::JsonlReader;
use loopotel::{LtfDocument, LtfSpan, SpanKind};

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
        let mut spans = SpanTally::default();
        for s in &doc.spans {
            spans.add(s);
        }
        Self::from_tally(doc, spans, source)
    }

    /// The summary of `doc`, whose spans were tallied in `spans` (`doc`'s own span list
    /// is used only for its root, when it has one).
    fn from_tally(doc: &LtfDocument, spans: SpanTally, source: String) -> Self {
        let root = spans.root.as_ref().or_else(|| doc.root());
        let attr_f64 = |key: &str| root.and_then(|r| r.attributes.get(key)?.as_f64());
        let SpanTally {
            last,
            iterations,
            errors,
            ..
        } = spans;
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

/// What a summary needs of a run's spans, gathered a span at a time.
#[derive(Default)]
struct SpanTally {
    /// The root, when the spans are not kept.
    root: Option<LtfSpan>,
    /// The highest-numbered iteration: its number, goal score and cumulative LES.
    last: Option<(i64, Option<f64>, Option<f64>)>,
    iterations: u64,
    errors: u64,
}

impl SpanTally {
    fn add(&mut self, s: &LtfSpan) {
        if s.attributes.get("error.type").is_some() {
            self.errors += 1;
        }
        if s.kind == SpanKind::Iteration {
            self.iterations += 1;
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
            if self.last.is_none_or(|(m, _, _)| n >= m) {
                self.last = Some((n, score, les));
            }
        }
    }

    /// [`SpanTally::add`], keeping the root.
    fn take(&mut self, s: LtfSpan) {
        self.add(&s);
        if s.parent_span_id.is_none() && self.root.is_none() {
            self.root = Some(s);
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

/// The runs of `paths` (only those of `batch` when given), and what was skipped. A JSON
/// Lines document of any length is summarized, those past the reader's line limit a span
/// at a time.
pub(crate) fn read_runs(
    paths: &[PathBuf],
    batch: Option<&str>,
) -> Result<(Vec<RunSummary>, Vec<Skipped>), String> {
    read_runs_within(paths, batch, loopotel::jsonl::DEFAULT_MAX_LINE_BYTES)
}

/// [`read_runs`], streaming lines longer than `max_line_bytes`.
fn read_runs_within(
    paths: &[PathBuf],
    batch: Option<&str>,
    max_line_bytes: usize,
) -> Result<(Vec<RunSummary>, Vec<Skipped>), String> {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut keep = |run: RunSummary| {
        if batch.is_none_or(|b| run.batch_id.as_deref() == Some(b)) {
            runs.push(run);
        }
    };
    for path in paths {
        if path.extension().is_some_and(|e| e == "json") {
            skipped.extend(for_each_document(
                std::slice::from_ref(path),
                |doc, source| keep(RunSummary::of(doc, source)),
            )?);
            continue;
        }
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let tally = std::cell::RefCell::new(SpanTally::default());
        JsonlReader::new(BufReader::new(file))
            .max_line_bytes(max_line_bytes)
            .each_document(
                |span| tally.borrow_mut().take(span),
                |item, streamed| {
                    let spans = tally.take();
                    match item {
                        Ok(rec) => {
                            let source = format!("{}:{}", path.display(), rec.line);
                            keep(if streamed {
                                RunSummary::from_tally(&rec.value, spans, source)
                            } else {
                                RunSummary::of(&rec.value, source)
                            })
                        }
                        Err(e) => skipped.push(Skipped {
                            source: format!("{}:{}", path.display(), e.line()),
                            reason: e.to_string(),
                        }),
                    }
                },
            );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_past_the_line_limit_is_summarized_as_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        let out = loopotel::jsonl::JsonlExporter::create(&path).unwrap();
        let tracer = loopotel::LoopTracer::builder().sink(out).build();
        for (name, outcome) in [
            ("a", loopotel::Outcome::Success),
            ("b", loopotel::Outcome::Failure),
        ] {
            let run = tracer.run(name).metadata("seed", 3).start();
            for n in 1..=4 {
                let mut it = run.iteration(n);
                it.add_tokens(10);
                let mut tool = it.span("execute_tool t", SpanKind::Worker);
                if n == 2 {
                    tool.record_error("tool_error", "boom");
                }
                tool.end();
                it.evaluator_complete("critic", 0.2 * n as f64);
            }
            run.finish(outcome, "done");
        }
        std::fs::write(
            &path,
            [std::fs::read(&path).unwrap(), b"{\"spans\":[{".to_vec()].concat(),
        )
        .unwrap();
        let paths = [path];
        let (whole, skipped_whole) = read_runs(&paths, None).unwrap();
        let (streamed, skipped_streamed) = read_runs_within(&paths, None, 100).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[1].errors, 1);
        assert_eq!(whole[1].iterations, 4);
        assert_eq!(streamed, whole);
        assert_eq!(skipped_whole.len(), 1);
        assert_eq!(skipped_streamed.len(), 1);
        assert!(
            skipped_streamed[0].reason.contains("torn"),
            "{}",
            skipped_streamed[0].reason
        );
    }
}
