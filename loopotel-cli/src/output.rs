//! Where `run` and `demo` write: an existing non-empty file is refused unless the caller
//! says `--append` (add to it) or `--force` (replace it), so a rerun never silently mixes
//! two batches in one file.

use std::path::Path;

use loopotel::jsonl::JsonlExporter;

/// What to do with an existing, non-empty output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse (the default).
    Refuse,
    /// Add to it.
    Append,
    /// Replace it.
    Replace,
}

impl Existing {
    pub(crate) fn from_flags(append: bool, force: bool) -> Self {
        match (append, force) {
            (_, true) => Existing::Replace,
            (true, false) => Existing::Append,
            (false, false) => Existing::Refuse,
        }
    }
}

/// Opens `path` for JSON Lines output under the `existing` policy.
pub(crate) fn open(path: &Path, existing: Existing) -> Result<JsonlExporter, String> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > 0 {
        match existing {
            Existing::Refuse => {
                return Err(format!(
                    "{} already holds {len} bytes of traces; pass --append to add this batch \
                     to it, or --force to replace it",
                    path.display()
                ));
            }
            Existing::Replace => {
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Existing::Append => {}
        }
    }
    JsonlExporter::create(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The journal flags of `run` and `demo`: the crash-safe journal beside the output is on
/// unless `--no-journal`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct JournalFlags {
    /// Do not journal runs as they are recorded (a run cut short by the process's end is
    /// then lost from the JSONL).
    #[arg(long)]
    no_journal: bool,
    /// fdatasync the journal at each iteration end (survives a power loss, not only the
    /// process's end).
    #[arg(long, conflicts_with = "no_journal")]
    journal_sync: bool,
}

impl JournalFlags {
    /// The journal of `out`, unless turned off.
    pub(crate) fn config(&self, out: &Path) -> Option<loopotel::journal::JournalConfig> {
        (!self.no_journal)
            .then(|| loopotel::journal::JournalConfig::beside(out).sync(self.journal_sync))
    }
}

/// Says on stderr when the journal beside `path` holds unfinished runs of ended processes.
pub(crate) fn note_pending_journal(path: &Path) {
    let dir = loopotel::journal::dir_beside(path);
    if let Ok(p) = loopotel::journal::pending(&dir)
        && p.runs > 0
    {
        eprintln!(
            "note: {} holds {} unfinished run(s) of a process that ended; `loopotel recover {}` \
             turns them into documents",
            dir.display(),
            p.runs,
            path.display()
        );
    }
}
