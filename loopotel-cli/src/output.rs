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
