//! Reading a journal directory: the runs of processes that ended before their runs did
//! become LTF documents ([`recover`]); [`pending`] counts them; [`progress`] describes the
//! runs still being recorded.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::{File, TryLockError};
use std::io::{self, BufRead as _, BufReader};
use std::path::{Path, PathBuf};

use super::JournaledSpans;
use super::format::{self, Record};
use crate::attr::{AttrValue, Attributes, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::model::{LtfDocument, LtfSpan, Outcome, SpanKind, SpecPins};
use crate::semconv as sc;
use crate::time::Timestamp;

/// A recovered run of at most this many ended spans is built in memory and written in one
/// call; a larger one is written a span at a time as it is read from the journal.
const ONE_WRITE_SPANS: u64 = 65_536;

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
    // `NAME-INDEX.ltfj`: each process's segments in the order they were written.
    paths.sort_by_cached_key(|p| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        match stem.rsplit_once('-') {
            Some((name, index)) => (name.to_owned(), index.parse::<u32>().unwrap_or(u32::MAX)),
            None => (stem.to_owned(), u32::MAX),
        }
    });
    Ok(paths)
}

/// Reads every journal file of `dir` a line at a time into a summary of the runs it
/// describes (no file and no ended span is held in memory: only each run's spans still
/// open, and running totals); with `lock`, keeps the files of ended processes locked while
/// the result lives.
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
        let index = journal.files.len();
        let torn = format::read_records(BufReader::with_capacity(256 * 1024, &file), |r| {
            runs.add(r, live, index)
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
    parent: Option<SpanId>,
    name: String,
    kind: SpanKind,
    start: Timestamp,
    attributes: Attributes,
}

/// Running totals of a run's ended iterations.
#[derive(Default)]
struct Iterations {
    count: u64,
    /// Tokens, each iteration's counted from 0.
    tokens: u64,
    cost_usd: Option<f64>,
    /// The highest-numbered iteration's number, LES and goal score.
    last: Option<(u64, Option<f64>, Option<f64>)>,
}

impl Iterations {
    fn add(&mut self, s: &LtfSpan) {
        let get = |k: &str| s.attributes.get(k);
        self.count += 1;
        let tokens = get(sc::LOOP_TOKENS_DELTA).and_then(AttrValue::as_i64);
        self.tokens = self
            .tokens
            .saturating_add(tokens.map_or(0, |t| t.max(0) as u64));
        if let Some(c) = get(sc::LOOP_COST_USD).and_then(AttrValue::as_f64) {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
        let n = iteration_number(s);
        if self.last.is_none_or(|(last, ..)| n >= last) {
            self.last = Some((
                n,
                get(sc::LOOP_LES_CUMULATIVE).and_then(AttrValue::as_f64),
                get(sc::LOOP_GOAL_SCORE).and_then(AttrValue::as_f64),
            ));
        }
    }
}

/// What the journal shows of one run: enough to write its document header and root and
/// to describe its progress; its ended spans stay in the journal files.
#[derive(Default)]
struct RunJournal {
    info: Option<RunInfo>,
    /// Spans started and not (yet) ended.
    open: HashMap<SpanId, Started>,
    /// Ended spans.
    ended: u64,
    /// Ended iterations.
    iterations: Iterations,
    /// Ended iterations that ended normally (no `loop.end_reason`): the document's.
    completed: Iterations,
    /// The highest iteration number started.
    highest_started: Option<u64>,
    finished: bool,
    live: bool,
    last_seen: Option<Timestamp>,
    /// The files holding its records (indexes in [`Journal::files`]), in order.
    files: Vec<usize>,
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
    fn add(&mut self, record: Record, live: bool, file: usize) {
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
        if run.files.last() != Some(&file) {
            run.files.push(file);
        }
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
                if kind == SpanKind::Iteration
                    && let Some(n) = attributes
                        .get(sc::LOOP_ITERATION)
                        .and_then(AttrValue::as_i64)
                        .and_then(|n| u64::try_from(n).ok())
                {
                    run.highest_started = run.highest_started.max(Some(n));
                }
                run.open.insert(
                    span_id,
                    Started {
                        parent: parent_span_id,
                        name,
                        kind,
                        start: start_time,
                        attributes,
                    },
                );
            }
            Record::Span { span, .. } => {
                run.open.remove(&span.span_id);
                run.ended += 1;
                run.seen(span.start_time);
                if let Some(e) = span.end_time {
                    run.seen(e);
                }
                for ev in &span.events {
                    run.seen(ev.timestamp);
                }
                if span.kind == SpanKind::Iteration {
                    run.iterations.add(&span);
                    if span.attributes.get(sc::LOOP_END_REASON).is_none() {
                        run.completed.add(&span);
                    }
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

/// The document of an unfinished run, without the spans that ended (they are read from
/// the journal as it is written, [`JournaledSpans`]): its root, and the spans still open
/// closed at the run's last known time and marked [`RECOVERED_END_REASON`]; outcome
/// `unknown`.
fn document(trace_id: TraceId, run: RunJournal) -> Option<LtfDocument> {
    let info = run.info?;
    let last = run
        .last_seen
        .unwrap_or(info.started_at)
        .max(info.started_at);
    let mut open: Vec<LtfSpan> = run
        .open
        .into_iter()
        .filter(|(id, _)| *id != info.span_id)
        .map(|(span_id, s)| {
            let mut attributes = s.attributes;
            attributes.set(sc::LOOP_END_REASON, RECOVERED_END_REASON);
            LtfSpan {
                span_id,
                parent_span_id: s.parent.or(Some(info.span_id)),
                name: SharedStr::from(s.name),
                kind: s.kind,
                start_time: s.start,
                end_time: Some(last.max(s.start)),
                attributes,
                events: Vec::new(),
            }
        })
        .collect();
    open.sort_by_key(|s| (s.start_time, iteration_number(s), s.span_id));
    let done = &run.completed;
    let mut a = info.attributes;
    a.set(sc::LOOP_OUTCOME, Outcome::Unknown.as_str());
    a.set(sc::LOOP_TERMINATION_REASON, RECOVERED_REASON);
    a.set(sc::LOOP_TOKENS_TOTAL, done.tokens);
    a.set(sc::LOOP_ITERATIONS, done.count);
    if let Some(c) = done.cost_usd {
        a.set(sc::LOOP_COST_TOTAL_USD, c);
    }
    if let Some((_, Some(les), _)) = done.last {
        a.set(sc::LOOP_LES_CUMULATIVE, les);
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
    open.insert(0, root);
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
        spans: open,
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
    let mut out = None;
    for (trace_id, mut run) in runs.into_ordered() {
        if run.finished || run.live {
            continue;
        }
        if existing.contains(&trace_id) {
            report.already_recovered += 1;
            continue;
        }
        let ended = run.ended;
        let run_files = std::mem::take(&mut run.files);
        let Some(mut doc) = document(trace_id, run) else {
            continue;
        };
        let out = match &out {
            Some(out) => out,
            None => out.insert(crate::jsonl::JsonlExporter::create(output)?.with_fsync(true)),
        };
        let skip = doc.spans.iter().map(|s| s.span_id).collect();
        // Only the files that hold its records are read again.
        let paths = run_files.iter().map(|&i| files[i].path.clone()).collect();
        let rest = JournaledSpans::new(trace_id, paths, skip, ended, 1);
        report.spans += doc.spans.len() + ended as usize;
        if ended <= ONE_WRITE_SPANS {
            // Small enough to hold: one write, which no other writer of the output can
            // interleave with.
            doc.spans = rest.document_order(&doc).map(Cow::into_owned).collect();
            out.write_document(&doc)?;
        } else {
            out.write_large(&doc, &rest)?;
        }
        report.runs += 1;
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
        let its = &run.iterations;
        out.push(RunProgress {
            trace_id,
            loop_name: info.loop_name.clone(),
            env_id: info.env_id.clone(),
            task_id: info.task_id.clone(),
            started_at: info.started_at,
            last_seen: run.last_seen.unwrap_or(info.started_at),
            iterations: its.count,
            current_iteration: run.highest_started.max(its.last.map(|(n, ..)| n)),
            goal_score: its.last.and_then(|(_, _, goal)| goal),
            tokens: its.tokens,
            cost_usd: its.cost_usd,
            live: run.live,
        });
    }
    out.sort_by_key(|p| p.started_at);
    Ok(out)
}
