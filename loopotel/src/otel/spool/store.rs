//! The spool directory: files written under a temporary name and renamed into place,
//! claimed by rename before they are re-sent, evicted oldest first beyond the size cap.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_sdk::trace::SpanData;

use super::format::{SpoolBatch, SpooledSpan};
use super::*;

#[derive(Debug, Clone)]
pub(super) struct SpoolFile {
    pub(super) path: PathBuf,
    bytes: u64,
    pub(super) spans: u64,
}

pub(super) const EXT: &str = "spool";

/// Spool files re-sent after each successful export (the rest follow with later exports and
/// at shutdown), so catching up never stalls the batch queue for long.
pub(super) const DRAIN_FILES_PER_EXPORT: usize = 8;

#[derive(Debug)]
pub(super) struct Spool {
    pub(super) dir: PathBuf,
    max_bytes: u64,
    seq: AtomicU64,
    pub(super) draining: AtomicBool,
    /// Set when this process wrote a file or found some at start; cleared by a complete drain.
    nonempty: AtomicBool,
    /// Bytes on disk as this process knows them (other processes' writes are found by the
    /// directory scan that runs only when this passes the cap).
    bytes: AtomicU64,
    reported: AtomicBool,
}

impl Spool {
    pub(super) fn open(config: SpoolConfig) -> io::Result<Self> {
        create_private_dir(&config.dir)?;
        let spool = Self {
            dir: config.dir,
            max_bytes: config.max_bytes,
            seq: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            nonempty: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        };
        // Claims and temporary files of processes that died: back into the spool / away.
        for entry in fs::read_dir(&spool.dir)?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((original, pid)) = name.rsplit_once(".sending-") {
                if pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid)) {
                    let _ = fs::rename(&path, spool.dir.join(original));
                }
            } else if let Some(pid) = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next())
                && pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid))
            {
                let _ = fs::remove_file(&path);
            }
        }
        let files = spool.files();
        spool.nonempty.store(!files.is_empty(), Ordering::Relaxed);
        spool
            .bytes
            .store(files.iter().map(|f| f.bytes).sum(), Ordering::Relaxed);
        Ok(spool)
    }

    pub(super) fn maybe_nonempty(&self) -> bool {
        self.nonempty.load(Ordering::Relaxed)
    }

    /// The spool files, oldest first.
    pub(super) fn files(&self) -> Vec<SpoolFile> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<SpoolFile> = entries
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
                    return None;
                }
                let stem = path.file_stem()?.to_str()?;
                let spans = stem.rsplit('-').next()?.parse().ok()?;
                let bytes = entry.metadata().ok()?.len();
                Some(SpoolFile { path, bytes, spans })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if files.is_empty() {
            self.nonempty.store(false, Ordering::Relaxed);
        }
        files
    }

    /// Writes `batch` as a new file, then evicts the oldest files beyond the cap. Returns the
    /// number of spans evicted.
    pub(super) fn write(&self, batch: &[SpanData], why: &OTelSdkError) -> io::Result<u64> {
        self.report_once(why);
        let body = serde_json::to_vec(&SpoolBatch {
            version: 1,
            spans: batch.iter().map(SpooledSpan::from).collect(),
        })
        .map_err(io::Error::other)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let pid = std::process::id();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos:020}-{pid:010}-{seq:010}-{}.{EXT}", batch.len());
        let tmp = self.dir.join(format!(".tmp-{pid}-{seq}"));
        {
            let mut f = create_private_file(&tmp)?;
            f.write_all(&body)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, self.dir.join(name))?;
        self.nonempty.store(true, Ordering::Relaxed);
        let size = body.len() as u64;
        let known = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        // The directory is scanned only when the cap may be passed.
        Ok(if known > self.max_bytes {
            self.evict_beyond_cap()
        } else {
            0
        })
    }

    /// A file left the spool (delivered, or dropped as unreadable).
    pub(super) fn removed(&self, file: &SpoolFile) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(file.bytes))
            });
    }

    pub(super) fn evict_beyond_cap(&self) -> u64 {
        let files = self.files();
        let mut total: u64 = files.iter().map(|f| f.bytes).sum();
        let mut evicted = 0;
        for file in &files {
            if total <= self.max_bytes {
                break;
            }
            // Only the process whose remove succeeded counts it.
            if fs::remove_file(&file.path).is_ok() {
                evicted += file.spans;
            }
            total = total.saturating_sub(file.bytes);
        }
        self.bytes.store(total, Ordering::Relaxed);
        if evicted > 0 {
            eprintln!(
                "loopotel: spool {} is over its {}-byte cap; evicted the oldest {evicted} spans",
                self.dir.display(),
                self.max_bytes
            );
        }
        evicted
    }

    /// Renames `file` to a name only this process uses; `None` if someone else got it first.
    pub(super) fn claim(&self, file: &SpoolFile) -> Option<Claim> {
        let name = file.path.file_name()?.to_str()?;
        let claimed = self
            .dir
            .join(format!("{name}.sending-{}", std::process::id()));
        fs::rename(&file.path, &claimed).ok()?;
        Some(Claim {
            path: claimed,
            original: file.path.clone(),
            removed: false,
        })
    }

    pub(super) fn report_once(&self, error: &OTelSdkError) {
        if !self.reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "loopotel: the collector is unreachable ({error}); spooling spans to {} until \
                 it is back (counted in delivery stats).",
                self.dir.display()
            );
        }
    }
}

/// The spool holds what the collector would get: readable by this user only (Unix).
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// A spool file this process is sending. Dropped without [`Claim::remove`] (the collector
/// failed, or the drain was cancelled), it goes back into the spool under its own name.
pub(super) struct Claim {
    pub(super) path: PathBuf,
    original: PathBuf,
    removed: bool,
}

impl Claim {
    /// The collector has it: the file goes.
    pub(super) fn remove(mut self) {
        let _ = fs::remove_file(&self.path);
        self.removed = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.removed {
            let _ = fs::rename(&self.path, &self.original);
        }
    }
}

/// Holds a spool's `draining` flag; clears it when dropped.
pub(super) struct DrainingGuard<'a>(&'a AtomicBool);

impl<'a> DrainingGuard<'a> {
    pub(super) fn take(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::Acquire)).then_some(Self(flag))
    }
}

impl Drop for DrainingGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Whether a process with this id is running (Linux: `/proc`; elsewhere assumed dead, so
/// claims left by a crash are taken back when the next process opens the spool).
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

pub(super) fn read_batch(path: &Path) -> io::Result<Vec<SpanData>> {
    let bytes = fs::read(path)?;
    let batch: SpoolBatch = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    if batch.version != 1 {
        return Err(io::Error::other(format!(
            "spool format version {} (this build reads 1)",
            batch.version
        )));
    }
    batch
        .spans
        .into_iter()
        .map(SpanData::try_from)
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)
}
