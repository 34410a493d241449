//! A crash-safe journal of runs in progress (`specs/ltf-journal-1.md`).
//!
//! An LTF document exists only when its run finishes. With a journal, each span and
//! iteration is also appended, as it ends, to a file beside the JSONL output, so a run cut
//! short by `kill -9`, an OOM kill, `panic = "abort"` or a reboot can be turned into a
//! document afterwards ([`recover`]; `loopotel recover FILE`; or the next tracer opened on
//! the same output).
//!
//! Recording threads only queue what ended (a lock and a push, no system call); a journal
//! thread writes the queue every 2 ms and flushes each write, so an iteration is on disk
//! within about 2 ms of its end — with [`JournalConfig::sync`], also `fdatasync`ed. When a
//! run finishes and its document went to the sinks, its records are retired: a journal file
//! is deleted once all its runs have finished. Each process writes files of its own, locked
//! while it runs, so several runs, tracers and processes may share one directory.
//!
//! ```
//! use loopotel::journal::JournalConfig;
//! use loopotel::jsonl::JsonlExporter;
//! use loopotel::{LoopTracer, Outcome};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let out = dir.path().join("traces.jsonl");
//! let tracer = LoopTracer::builder()
//!     .sink(JsonlExporter::create(&out)?)
//!     .journal(JournalConfig::beside(&out)) // traces.jsonl.journal/
//!     .build();
//! let run = tracer.run("refine-loop").start();
//! run.iteration(1).evaluator_complete("critic", 0.9);
//! tracer.flush_journal(); // iteration 1 would survive a crash from here on
//! run.finish(Outcome::Success, "quality_threshold");
//! # Ok::<(), std::io::Error>(())
//! ```

mod format;
mod recover;
mod spans;
pub(crate) mod writer;

use std::path::{Path, PathBuf};

pub use format::FORMAT;
pub use recover::{
    Pending, RECOVERED_END_REASON, RECOVERED_REASON, Recovery, RunProgress, pending, progress,
    recover,
};
pub use spans::JournaledSpans;

/// The journal directory of a JSON Lines output: `FILE.journal` beside it.
pub fn dir_beside(output: impl AsRef<Path>) -> PathBuf {
    let output = output.as_ref();
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "traces.jsonl".into());
    name.push(".journal");
    output.with_file_name(name)
}

/// Where and how a tracer journals its runs ([`crate::LoopTracerBuilder::journal`]).
#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub(crate) dir: PathBuf,
    pub(crate) output: Option<PathBuf>,
    pub(crate) sync: bool,
    pub(crate) recover_on_open: bool,
    pub(crate) in_memory_spans: usize,
}

/// Default of [`JournalConfig::in_memory_spans`].
pub const DEFAULT_IN_MEMORY_SPANS: usize = 65_536;

impl JournalConfig {
    /// The journal of the JSON Lines file `output`, in [`dir_beside`] it. When the tracer
    /// is built, unfinished runs that ended processes left there are recovered into
    /// `output` (see [`JournalConfig::recover_on_open`]).
    pub fn beside(output: impl AsRef<Path>) -> Self {
        Self {
            dir: dir_beside(&output),
            output: Some(output.as_ref().to_path_buf()),
            sync: false,
            recover_on_open: true,
            in_memory_spans: DEFAULT_IN_MEMORY_SPANS,
        }
    }

    /// A journal in `dir`, with no output to recover into when the tracer is built (use
    /// [`recover`]).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            output: None,
            sync: false,
            recover_on_open: false,
            in_memory_spans: DEFAULT_IN_MEMORY_SPANS,
        }
    }

    /// `fdatasync` the journal after each write that holds an ended iteration (default
    /// off: written and flushed to the operating system, which survives the process's end
    /// but not a power loss).
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Recover unfinished runs of ended processes into the output when the tracer is built
    /// (default on with [`JournalConfig::beside`]).
    pub fn recover_on_open(mut self, recover: bool) -> Self {
        self.recover_on_open = recover;
        self
    }

    /// Most spans a run holds in memory (default [`DEFAULT_IN_MEMORY_SPANS`]). Past that,
    /// each span that ends is kept only in the journal — a run of any length records in
    /// flat memory — and the run's document is read back from the journal as it goes to
    /// the sinks ([`crate::TraceSink::export_large`]; [`crate::jsonl::JsonlExporter`]
    /// streams it to the file). The [`crate::Run::finish`] value of such a run holds the
    /// root and the spans still in memory. A span the journal cannot take (its queue is
    /// full) stays in memory, up to [`crate::LoopTracerBuilder::max_spans_per_run`].
    /// `usize::MAX` keeps every span in memory.
    pub fn in_memory_spans(mut self, spans: usize) -> Self {
        self.in_memory_spans = spans.max(1);
        self
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
