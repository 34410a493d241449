//! Reading a journal directory: the runs of processes that ended before their runs did
//! become LTF documents ([`recover`]); [`pending`] counts them; [`progress`] describes the
//! runs still being recorded.

use std::collections::{HashMap, HashSet};
use std::fs::{File, TryLockError};
use std::io::{self, BufRead as _, BufReader};
use std::path::{Path, PathBuf};

use super::format::{self, Record};
use crate::attr::{AttrValue, Attributes, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::model::{LtfDocument, LtfSpan, Outcome, SpanKind, SpecPins};
use crate::semconv as sc;
use crate::time::Timestamp;

/// The termination reason of a recovered run.
pub const RECOVERED_REASON: &str = "recovered: the recording process ended before the run finished";

/// `loop.end_reason` of a span or iteration that was still open when the recording process
/// ended (closed at the run's last known time).
pub const RECOVERED_END_REASON: &str = "recovered";

/// What [`recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Runs turned into documents and appended to the output.
    pub runs: usize,
    /// Spans in those documents.
    pub spans: usize,
    /// Unfinished runs whose document the output already held (a recovery that was cut
    /// short): not written again.
    pub already_recovered: usize,
    /// Journal files of processes still running, left alone.
    pub live_files: usize,
    /// Journal files read and removed.
    pub removed_files: usize,
    /// Torn or corrupt records skipped (a record cut by the process's end).
    pub torn_records: usize,
}

/// Unfinished runs in a journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Runs of ended processes that [`recover`] would turn into documents.
    pub runs: usize,
    /// Journal files of processes still running.
    pub live_files: usize,
}

/// A run still being recorded (or whose process ended), as its journal shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// The run's trace id.
    pub trace_id: TraceId,
    /// `loop_name`.
    pub loop_name: String,
    /// `env_id`.
    pub env_id: Option<String>,
    /// `task_id`.
    pub task_id: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// The last time the journal shows anything of it.
    pub last_seen: Timestamp,
    /// Iterations ended.
    pub iterations: u64,
    /// The highest iteration number started.
    pub current_iteration: Option<u64>,
    /// The last ended iteration's goal score.
    pub goal_score: Option<f64>,
    /// Tokens of the ended iterations.
    pub tokens: u64,
    /// Cost of the ended iterations, in US dollars.
    pub cost_usd: Option<f64>,
    /// Whether the recording process is still running.
    pub live: bool,
}

/// One journal file, read; locked (so no other recovery takes it) unless it is `live`.
struct JournalFile {
    path: PathBuf,
    torn: usize,
    live: bool,
    _lock: Option<File>,
}

/// A journal directory, read: its files and the runs their records describe.
struct Journal {
    files: Vec<JournalFile>,
    runs: Runs,
}

fn journal_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "ltfj") {
                    paths.push(p);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    paths.sort();
    Ok(paths)
}

/// Reads every journal file of `dir` a line at a time into the runs it describes (no
/// file is held in memory whole; a finished run's spans are let go when its end is
/// read); with `lock`, keeps the files of ended processes locked while the result lives.
fn read_journal(dir: &Path, lock: bool) -> io::Result<Journal> {
    let mut journal = Journal {
        files: Vec::new(),
        runs: Runs::default(),
    };
    for path in journal_files(dir)? {
        let file = match File::open(&path) {
            Ok(f) => f,
            // Removed meanwhile (its runs finished): nothing to read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let live = match file.try_lock() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => return Err(e),
        };
        let runs = &mut journal.runs;
        let torn = format::read_records(BufReader::with_capacity(256 * 1024, &file), |r| {
            runs.add(r, live)
        })?;
        if !live && !lock {
            let _ = file.unlock();
        }
        journal.files.push(JournalFile {
            path,
            torn,
            live,
            _lock: (lock && !live).then_some(file),
        });
    }
    Ok(journal)
}

struct RunInfo {
    span_id: SpanId,
    loop_name: String,
    env_id: Option<String>,
    task_id: Option<String>,
    started_at: Timestamp,
    attributes: Attributes,
    metadata: serde_json::Map<String, serde_json::Value>,
}

struct Started {
    span_id: SpanId,
    parent: Option<SpanId>,
    name: String,
    kind: SpanKind,
    start: Timestamp,
    attributes: Attributes,
}

#[derive(Default)]
struct RunJournal {
    info: Option<RunInfo>,
    started: Vec<Started>,
    ended: Vec<LtfSpan>,
    ended_ids: HashSet<SpanId>,
    finished: bool,
    live: bool,
    last_seen: Option<Timestamp>,
}

impl RunJournal {
    fn seen(&mut self, t: Timestamp) {
        self.last_seen = Some(self.last_seen.map_or(t, |l| l.max(t)));
    }
}

/// The runs of a journal's records, in the order they first appear.
#[derive(Default)]
struct Runs {
    order: Vec<TraceId>,
    runs: HashMap<TraceId, RunJournal>,
}

impl Runs {
    /// Adds a record (of a file a running process is writing, if `live`).
    fn add(&mut self, record: Record, live: bool) {
        let trace_id = match &record {
            Record::Header { .. } => return,
            Record::Run { trace_id, .. }
            | Record::Start { trace_id, .. }
            | Record::Span { trace_id, .. }
            | Record::End { trace_id } => *trace_id,
        };
        let run = self.runs.entry(trace_id).or_insert_with(|| {
            self.order.push(trace_id);
            RunJournal::default()
        });
        run.live |= live;
        if run.finished {
            // A finished run's document was written: nothing of it is kept.
            return;
        }
        match record {
            Record::Header { .. } => {}
            Record::Run {
                span_id,
                loop_name,
                env_id,
                task_id,
                started_at,
                attributes,
                metadata,
                ..
            } => {
                run.seen(started_at);
                run.info = Some(RunInfo {
                    span_id,
                    loop_name,
                    env_id,
                    task_id,
                    started_at,
                    attributes,
                    metadata,
                });
            }
            Record::Start {
                span_id,
                parent_span_id,
                name,
                kind,
                start_time,
                attributes,
                ..
            } => {
                run.seen(start_time);
                run.started.push(Started {
                    span_id,
                    parent: parent_span_id,
                    name,
                    kind,
                    start: start_time,
                    attributes,
                });
            }
            Record::Span { span, .. } => {
                if run.ended_ids.insert(span.span_id) {
                    run.seen(span.start_time);
                    if let Some(e) = span.end_time {
                        run.seen(e);
                    }
                    for ev in &span.events {
                        run.seen(ev.timestamp);
                    }
                    run.ended.push(span);
                }
            }
            Record::End { .. } => {
                *run = RunJournal {
                    finished: true,
                    live: run.live,
                    ..RunJournal::default()
                };
            }
        }
    }

    /// The runs, in the order they first appear.
    fn into_ordered(mut self) -> Vec<(TraceId, RunJournal)> {
        self.order
            .into_iter()
            .filter_map(|t| self.runs.remove(&t).map(|r| (t, r)))
            .collect()
    }
}

fn iteration_number(s: &LtfSpan) -> u64 {
    s.attributes
        .get(sc::LOOP_ITERATION)
        .and_then(AttrValue::as_i64)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// The document of an unfinished run: every span that had ended, the spans still open
/// closed at the run's last known time and marked [`RECOVERED_END_REASON`], outcome
/// `unknown`.
fn document(trace_id: TraceId, run: RunJournal) -> Option<LtfDocument> {
    let info = run.info?;
    let last = run
        .last_seen
        .unwrap_or(info.started_at)
        .max(info.started_at);
    let mut spans: Vec<LtfSpan> = run.ended;
    for s in run.started {
        if run.ended_ids.contains(&s.span_id) || s.span_id == info.span_id {
            continue;
        }
        let mut attributes = s.attributes;
        attributes.set(sc::LOOP_END_REASON, RECOVERED_END_REASON);
        spans.push(LtfSpan {
            span_id: s.span_id,
            parent_span_id: s.parent.or(Some(info.span_id)),
            name: SharedStr::from(s.name),
            kind: s.kind,
            start_time: s.start,
            end_time: Some(last.max(s.start)),
            attributes,
            events: Vec::new(),
        });
    }
    // Iterations in number order, each where it started; other spans by start time.
    spans.sort_by_key(|s| (s.start_time, iteration_number(s)));
    let mut iterations: Vec<&LtfSpan> = spans
        .iter()
        .filter(|s| {
            s.kind == SpanKind::Iteration && s.attributes.get(sc::LOOP_END_REASON).is_none()
        })
        .collect();
    iterations.sort_by_key(|s| iteration_number(s));
    let tokens: i64 = iterations
        .iter()
        .filter_map(|s| s.attributes.get(sc::LOOP_TOKENS_DELTA)?.as_i64())
        .sum();
    let cost: Option<f64> = iterations
        .iter()
        .filter_map(|s| s.attributes.get(sc::LOOP_COST_USD)?.as_f64())
        .reduce(|a, b| a + b);
    let les = iterations
        .last()
        .and_then(|s| s.attributes.get(sc::LOOP_LES_CUMULATIVE)?.as_f64());
    let mut a = info.attributes;
    a.set(sc::LOOP_OUTCOME, Outcome::Unknown.as_str());
    a.set(sc::LOOP_TERMINATION_REASON, RECOVERED_REASON);
    a.set(sc::LOOP_TOKENS_TOTAL, tokens.max(0));
    a.set(sc::LOOP_ITERATIONS, iterations.len() as u64);
    if let Some(c) = cost {
        a.set(sc::LOOP_COST_TOTAL_USD, c);
    }
    if let Some(l) = les {
        a.set(sc::LOOP_LES_CUMULATIVE, l);
    }
    a.set("loop.recovered", true);
    let root = LtfSpan {
        span_id: info.span_id,
        parent_span_id: None,
        name: SharedStr::Static(sc::SPAN_RUN),
        kind: SpanKind::Loop,
        start_time: info.started_at,
        end_time: Some(last),
        attributes: a,
        events: Vec::new(),
    };
    spans.insert(0, root);
    Some(LtfDocument {
        schema_version: SharedStr::Static(crate::model::SCHEMA_VERSION),
        trace_id,
        loop_name: SharedStr::from(info.loop_name),
        env_id: info.env_id.map(SharedStr::from),
        task_id: info.task_id.map(SharedStr::from),
        started_at: info.started_at,
        ended_at: last,
        outcome: Some(Outcome::Unknown),
        termination_reason: Some(RECOVERED_REASON.to_owned()),
        spec_pins: SpecPins::default(),
        spans,
        metadata: Some(info.metadata),
    })
}

/// The trace ids of the documents in a JSON Lines file (none if it does not exist).
fn trace_ids_in(path: &Path) -> io::Result<HashSet<TraceId>> {
    #[derive(serde::Deserialize)]
    struct Id {
        trace_id: TraceId,
    }
    let mut ids = HashSet::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e),
    };
    for line in BufReader::new(file).split(b'\n') {
        if let Ok(id) = serde_json::from_slice::<Id>(&line?) {
            ids.insert(id.trace_id);
        }
    }
    Ok(ids)
}

/// Turns each unfinished run of ended processes in the journal `dir` into a document
/// (outcome `unknown`, [`RECOVERED_REASON`]) appended to `output`, then removes the
/// journal files it read. Files of running processes are left alone. Idempotent: a run
/// whose document `output` already holds is not written again.
pub fn recover(output: &Path, dir: &Path) -> io::Result<Recovery> {
    let Journal { files, runs } = read_journal(dir, true)?;
    let mut report = Recovery {
        live_files: files.iter().filter(|f| f.live).count(),
        torn_records: files.iter().map(|f| f.torn).sum(),
        ..Recovery::default()
    };
    let dead: Vec<&JournalFile> = files.iter().filter(|f| !f.live).collect();
    if dead.is_empty() {
        return Ok(report);
    }
    let existing = trace_ids_in(output)?;
    let mut docs = Vec::new();
    for (trace_id, run) in runs.into_ordered() {
        if run.finished || run.live {
            continue;
        }
        if existing.contains(&trace_id) {
            report.already_recovered += 1;
            continue;
        }
        if let Some(doc) = document(trace_id, run) {
            docs.push(doc);
        }
    }
    if !docs.is_empty() {
        let out = crate::jsonl::JsonlExporter::create(output)?.with_fsync(true);
        for doc in &docs {
            out.write_document(doc)?;
            report.runs += 1;
            report.spans += doc.spans.len();
        }
    }
    for f in dead {
        if std::fs::remove_file(&f.path).is_ok() {
            report.removed_files += 1;
        }
    }
    if let Ok(mut rest) = std::fs::read_dir(dir)
        && rest.next().is_none()
    {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(report)
}

/// How many unfinished runs of ended processes the journal `dir` holds (what [`recover`]
/// would write), and how many files running processes are writing.
pub fn pending(dir: &Path) -> io::Result<Pending> {
    let Journal { files, runs } = read_journal(dir, false)?;
    let live_files = files.iter().filter(|f| f.live).count();
    let runs = runs
        .into_ordered()
        .into_iter()
        .filter(|(_, r)| !r.finished && !r.live && r.info.is_some())
        .count();
    Ok(Pending { runs, live_files })
}

/// The unfinished runs of the journal `dir`, oldest first: those being recorded now
/// (`live`) and those of processes that ended.
pub fn progress(dir: &Path) -> io::Result<Vec<RunProgress>> {
    let Journal { runs, .. } = read_journal(dir, false)?;
    let mut out = Vec::new();
    for (trace_id, run) in runs.into_ordered() {
        if run.finished {
            continue;
        }
        let Some(info) = &run.info else { continue };
        let mut its: Vec<&LtfSpan> = run
            .ended
            .iter()
            .filter(|s| s.kind == SpanKind::Iteration)
            .collect();
        its.sort_by_key(|s| iteration_number(s));
        let current = run
            .started
            .iter()
            .filter(|s| s.kind == SpanKind::Iteration)
            .filter_map(|s| s.attributes.get(sc::LOOP_ITERATION)?.as_i64())
            .chain(its.iter().map(|s| iteration_number(s) as i64))
            .max()
            .and_then(|n| u64::try_from(n).ok());
        out.push(RunProgress {
            trace_id,
            loop_name: info.loop_name.clone(),
            env_id: info.env_id.clone(),
            task_id: info.task_id.clone(),
            started_at: info.started_at,
            last_seen: run.last_seen.unwrap_or(info.started_at),
            iterations: its.len() as u64,
            current_iteration: current,
            goal_score: its
                .last()
                .and_then(|s| s.attributes.get(sc::LOOP_GOAL_SCORE)?.as_f64()),
            tokens: its
                .iter()
                .filter_map(|s| s.attributes.get(sc::LOOP_TOKENS_DELTA)?.as_i64())
                .map(|n| n.max(0) as u64)
                .sum(),
            cost_usd: its
                .iter()
                .filter_map(|s| s.attributes.get(sc::LOOP_COST_USD)?.as_f64())
                .reduce(|a, b| a + b),
            live: run.live,
        });
    }
    out.sort_by_key(|p| p.started_at);
    Ok(out)
}
