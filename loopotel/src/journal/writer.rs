//! The journal thread: recording threads queue [`Entry`]s (a lock and a push, no system
//! call); the thread writes them every [`TICK`] to the current segment file, flushing each
//! write (and, with `sync`, `fdatasync` after every write holding an ended iteration), and
//! deletes a segment once every run with records in it has finished.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::JournalConfig;
use super::format::{self, Record};
use crate::attr::{Attributes, SharedStr};
use crate::ids::{SpanId, TraceId};
use crate::model::{LtfSpan, SpanKind};
use crate::time::Timestamp;
use crate::tracer::record::IterationData;
use crate::tracer::run::RunShared;

/// How often the journal thread writes what was queued.
pub(crate) const TICK: Duration = Duration::from_millis(2);
/// Most entries queued; beyond, entries are lost (counted, warned once).
const MAX_QUEUED: usize = 1 << 16;
/// A segment file grows to about this size before the next one starts.
const SEGMENT_BYTES: u64 = 16 << 20;

/// What a recording thread hands to the journal.
pub(crate) enum Entry {
    /// A run started.
    Run(Arc<RunShared>),
    /// A span or iteration started (behind a pointer, as a span: the queue moves small
    /// entries).
    Start(Box<Started>),
    /// An iteration ended, in compact form (made an LTF span by the journal thread).
    Iteration {
        trace_id: TraceId,
        data: Arc<IterationData>,
    },
    /// A span ended (an iteration's too, when it was built already).
    Span {
        trace_id: TraceId,
        span: Box<LtfSpan>,
        iteration: bool,
    },
    /// The run finished and went to the sinks.
    End { trace_id: TraceId },
}

/// A span or iteration that started.
pub(crate) struct Started {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent: Option<SpanId>,
    pub(crate) name: SharedStr,
    pub(crate) kind: SpanKind,
    pub(crate) start: Timestamp,
    pub(crate) iteration: Option<u64>,
}

struct Queue {
    entries: Vec<Entry>,
    /// Entries ever queued.
    seq: u64,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    written: Mutex<u64>,
    written_cv: Condvar,
    stop: AtomicBool,
    /// Entries not journaled: the queue was full, or writing failed.
    pub(crate) lost: AtomicU64,
    warned: AtomicBool,
    pub(crate) config: JournalConfig,
    /// This journal's files are `NAME-INDEX.ltfj`.
    name: String,
}

impl Shared {
    fn warn_once(&self, what: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "loopotel: journal {}: {what}; recording goes on in memory, and what the journal \
                 misses is counted (TracerStats::journal_lost). Reported once.",
                self.config.dir.display()
            );
        }
    }
}

/// The journal of one tracer: its queue and its thread (stopped and joined on drop, after
/// writing what was queued).
pub(crate) struct Journal {
    pub(crate) shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    pub(crate) fn start(config: JournalConfig) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                entries: Vec::new(),
                seq: 0,
            }),
            written: Mutex::new(0),
            written_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            config,
            name: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("loopotel-journal".to_owned())
                .spawn(move || run(&shared))
        };
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                shared.warn_once(&format!("its thread could not start ({e})"));
                None
            }
        };
        Self { shared, thread }
    }

    /// Queues `entry`: a lock and a push, never a system call. When it cannot be queued
    /// (the queue is full, or the journal thread could not start), the loss is counted
    /// and the entry comes back.
    #[inline]
    pub(crate) fn push(&self, entry: Entry) -> Result<(), Entry> {
        if self.thread.is_none() {
            self.shared.lost.fetch_add(1, Ordering::Relaxed);
            return Err(entry);
        }
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if q.entries.len() >= MAX_QUEUED {
            drop(q);
            self.shared.lost.fetch_add(1, Ordering::Relaxed);
            self.shared
                .warn_once("records arrive faster than they can be written");
            return Err(entry);
        }
        q.entries.push(entry);
        q.seq += 1;
        Ok(())
    }

    /// The spans of `doc`'s run that went only to the journal: waits until what was
    /// queued is written (at most a minute; a journal that cannot keep up loses what it
    /// has not written, counted), then reads them back on demand.
    pub(crate) fn journaled_spans(
        &self,
        doc: &crate::model::LtfDocument,
        spilled: crate::tracer::run::Spilled,
    ) -> super::JournaledSpans {
        if !self.flush(Duration::from_secs(60)) {
            self.shared
                .warn_once("it could not write a finished run's spans within a minute");
        }
        let skip = doc.spans.iter().map(|s| s.span_id).collect();
        super::JournaledSpans::new(
            doc.trace_id,
            self.files(),
            skip,
            spilled.journal_only,
            spilled.before,
        )
    }

    /// This journal's files, oldest first (some may be gone by the time they are read).
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let prefix = format!("{}-", self.shared.name);
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.shared.config.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let index = name
                    .to_str()?
                    .strip_prefix(&prefix)?
                    .strip_suffix(".ltfj")?
                    .parse()
                    .ok()?;
                Some((index, e.path()))
            })
            .collect();
        files.sort_unstable_by_key(|(i, _)| *i);
        files.into_iter().map(|(_, p)| p).collect()
    }

    /// Waits until everything queued before the call is written (and synced, with
    /// `sync`), at most `timeout`. Returns whether it was.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let Some(thread) = &self.thread else {
            return false;
        };
        let target = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seq;
        thread.thread().unpark();
        let written = self
            .shared
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (written, _) = self
            .shared
            .written_cv
            .wait_timeout_while(written, timeout, |w| *w < target)
            .unwrap_or_else(PoisonError::into_inner);
        *written >= target
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // The journal thread itself may drop the last run, and with it the tracer: it
            // then ends on its own once its queue is written.
            if t.thread().id() == std::thread::current().id() {
                return;
            }
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// One journal file, locked while this process writes it.
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    /// Runs with records in this file that have not finished.
    open_runs: HashSet<TraceId>,
}

struct Writer {
    dir: PathBuf,
    sync: bool,
    name: String,
    next_index: u32,
    current: Option<Segment>,
    /// Earlier segments that still hold unfinished runs.
    older: Vec<Segment>,
    runs: HashMap<TraceId, Arc<RunShared>>,
    buf: Vec<u8>,
}

fn run(shared: &Arc<Shared>) {
    let mut w = Writer {
        dir: shared.config.dir.clone(),
        sync: shared.config.sync,
        name: shared.name.clone(),
        next_index: 0,
        current: None,
        older: Vec::new(),
        runs: HashMap::new(),
        buf: Vec::with_capacity(64 * 1024),
    };
    // Two queues, swapped each tick: recording threads push into a vector that already
    // has its capacity, never one that grows from empty.
    let mut batch: Vec<Entry> = Vec::new();
    loop {
        let stopping = shared.stop.load(Ordering::SeqCst);
        let seq = {
            let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut q.entries, &mut batch);
            q.seq
        };
        let n = batch.len();
        if n > 0 {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| w.write_batch(batch.drain(..))));
            batch.clear();
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    shared.lost.fetch_add(n as u64, Ordering::Relaxed);
                    shared.warn_once(&format!("cannot be written ({e})"));
                }
                Err(_) => {
                    shared.lost.fetch_add(n as u64, Ordering::Relaxed);
                    shared.warn_once("its writer panicked (caught)");
                }
            }
        }
        {
            let mut written = shared
                .written
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *written = seq;
        }
        shared.written_cv.notify_all();
        if stopping && n == 0 {
            break;
        }
        std::thread::park_timeout(TICK);
    }
    w.close();
}

impl Writer {
    fn record_of(&mut self, entry: Entry) -> Option<(TraceId, Record, bool)> {
        Some(match entry {
            Entry::Run(shared) => {
                let trace_id = shared.trace_id;
                let (attributes, metadata) = {
                    let mut state = shared.lock();
                    let attributes = match state.spans.get_mut(0) {
                        Some(crate::tracer::record::SpanSlot::Span(root)) => {
                            root.attributes.clone()
                        }
                        _ => Attributes::new(),
                    };
                    (attributes, state.metadata.clone())
                };
                let record = Record::Run {
                    trace_id,
                    span_id: shared.root_span_id,
                    loop_name: shared.loop_name.as_str().to_owned(),
                    env_id: shared.env_id.as_ref().map(|s| s.as_str().to_owned()),
                    task_id: shared.task_id.as_ref().map(|s| s.as_str().to_owned()),
                    started_at: shared.started_at,
                    attributes,
                    metadata,
                };
                self.runs.insert(trace_id, shared);
                (trace_id, record, false)
            }
            Entry::Start(started) => {
                let Started {
                    trace_id,
                    span_id,
                    parent,
                    name,
                    kind,
                    start,
                    iteration,
                } = *started;
                let mut attributes = Attributes::new();
                if let Some(n) = iteration {
                    attributes.set(crate::semconv::LOOP_ITERATION, n);
                }
                let record = Record::Start {
                    trace_id,
                    span_id,
                    parent_span_id: parent,
                    name: name.as_str().to_owned(),
                    kind,
                    start_time: start,
                    attributes,
                };
                (trace_id, record, false)
            }
            Entry::Iteration { trace_id, data } => {
                let run = self.runs.get(&trace_id)?;
                let span = Arc::unwrap_or_clone(data).into_span(run);
                (trace_id, Record::Span { trace_id, span }, true)
            }
            Entry::Span {
                trace_id,
                span,
                iteration,
            } => (
                trace_id,
                Record::Span {
                    trace_id,
                    span: *span,
                },
                iteration,
            ),
            Entry::End { trace_id } => {
                self.runs.remove(&trace_id);
                (trace_id, Record::End { trace_id }, false)
            }
        })
    }

    fn segment(&mut self) -> std::io::Result<&mut Segment> {
        if self.current.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let path = self
                .dir
                .join(format!("{}-{}.ltfj", self.name, self.next_index));
            self.next_index += 1;
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            // Held while this process lives: recovery leaves locked files alone.
            file.lock()?;
            let mut header = Vec::new();
            format::encode(
                &Record::Header {
                    journal: format::FORMAT.to_owned(),
                    pid: std::process::id(),
                },
                &mut header,
            );
            (&file).write_all(&header)?;
            self.current = Some(Segment {
                path,
                file,
                len: header.len() as u64,
                open_runs: HashSet::new(),
            });
        }
        self.current
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no segment"))
    }

    fn write_batch(&mut self, batch: impl Iterator<Item = Entry>) -> std::io::Result<()> {
        self.buf.clear();
        let mut iteration_ended = false;
        let mut touched = Vec::new();
        let mut ended = Vec::new();
        for entry in batch {
            let Some((trace_id, record, iteration)) = self.record_of(entry) else {
                continue;
            };
            iteration_ended |= iteration;
            if matches!(record, Record::End { .. }) {
                ended.push(trace_id);
            } else {
                touched.push(trace_id);
            }
            format::encode(&record, &mut self.buf);
        }
        let buf = std::mem::take(&mut self.buf);
        let sync = iteration_ended && self.sync;
        let result = (|| {
            let seg = self.segment()?;
            (&seg.file).write_all(&buf)?;
            seg.len += buf.len() as u64;
            if sync {
                seg.file.sync_data()?;
            }
            Ok::<_, std::io::Error>(())
        })();
        self.buf = buf;
        if let Err(e) = result {
            // Start a new file next time: this one may be cut. It stays locked (and is
            // deleted) with the others.
            if let Some(seg) = self.current.take() {
                self.older.push(seg);
            }
            return Err(e);
        }
        if let Some(seg) = &mut self.current {
            // One insert at a time: `extend` would reserve room for every record of the
            // batch, and the set would grow with the records rather than with the runs.
            for t in touched {
                seg.open_runs.insert(t);
            }
        }
        for t in &ended {
            if let Some(seg) = &mut self.current {
                seg.open_runs.remove(t);
            }
            for seg in &mut self.older {
                seg.open_runs.remove(t);
            }
        }
        self.retire();
        Ok(())
    }

    /// Deletes older segments whose runs all finished; starts a new segment when the
    /// current one is full.
    fn retire(&mut self) {
        // A segment is done when none of its runs is still open (the writer's own list of
        // open runs is the authority).
        let runs = &self.runs;
        let done = |seg: &Segment| !seg.open_runs.iter().any(|t| runs.contains_key(t));
        if self
            .current
            .as_ref()
            .is_some_and(|s| s.len >= SEGMENT_BYTES || (runs.is_empty() && done(s)))
            && let Some(full) = self.current.take()
        {
            self.older.push(full);
        }
        let before = self.older.len();
        self.older.retain(|seg| {
            if done(seg) {
                let _ = std::fs::remove_file(&seg.path);
                false
            } else {
                true
            }
        });
        if self.older.len() < before && self.current.is_none() && self.older.is_empty() {
            // Only succeeds when no other process has files here.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }

    /// At the tracer's end: files whose runs all finished are deleted; the others stay
    /// for recovery.
    fn close(&mut self) {
        if let Some(seg) = self.current.take() {
            self.older.push(seg);
        }
        self.retire();
        if let Ok(mut entries) = std::fs::read_dir(&self.dir)
            && entries.next().is_none()
        {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}
