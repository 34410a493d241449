//! A bounded on-disk spool for span exports (feature `sdk`): nothing is lost while the
//! collector is away.
//!
//! [`SpoolingSpanExporter`] wraps any [`SpanExporter`] (the OTLP one, typically). Each batch
//! is offered to the collector first; when that fails (refused, hung past the exporter's
//! timeout, 5xx, 429), the batch is written to the spool directory instead and the export
//! reports success — the spans are safe. Once an export succeeds again, the spool is re-sent
//! oldest first, each span with its **original trace id, span id, parent, timestamps,
//! attributes, events, links, status and scope**, and each spool file is deleted once the
//! collector accepted it.
//!
//! - **Bounded**: the spool holds at most `max_bytes`; beyond that the oldest files are
//!   evicted, and the spans they held are counted ([`DeliveryStats::evicted`](super::delivery::DeliveryStats::evicted),
//!   `loop.telemetry.dropped{loop.telemetry.reason=spool_evicted}`) and reported on stderr.
//! - **Restart-safe**: a file is written under a temporary name and renamed into place, so a
//!   crash never leaves a torn file where a reader looks; spooled files outlive the process,
//!   and the next process using the same directory re-sends them (on its first successful
//!   export, or when you call [`SpoolingSpanExporter::drain`]).
//! - **Exactly once**: a file is claimed (renamed) before it is re-sent and deleted after the
//!   collector accepted it, so several processes can share one spool without sending a file
//!   twice. A collector that received a batch but failed to answer (a timeout after the
//!   request was read) cannot be told apart from one that never got it: that batch is
//!   spooled and sent again — at least once, never zero times.
//! - **Counted**: every span ends up in one of [`DeliveryStats`](super::delivery::DeliveryStats)' `exported`, `spooled`
//!   (then `resent` or `evicted`) or `failed` (the spool itself could not be written).
//!
//! [`crate::otel::init::init`] adds the spool when `LOOPOTEL_SPOOL_DIR` is set
//! (`LOOPOTEL_SPOOL_MAX_BYTES`, default 64 MiB).
//!
//! ```
//! use loopotel::otel::delivery::DeliveryCounters;
//! use loopotel::otel::spool::{SpoolConfig, SpoolingSpanExporter};
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//!
//! let dir = tempfile::tempdir()?;
//! let counters = DeliveryCounters::new();
//! let collector = InMemorySpanExporter::default();
//! let exporter = SpoolingSpanExporter::new(
//!     collector.clone(),
//!     SpoolConfig::new(dir.path()).max_bytes(16 << 20),
//!     counters.clone(),
//! )?;
//! let provider = SdkTracerProvider::builder().with_simple_exporter(exporter).build();
//! let tracer = loopotel::LoopTracer::builder().tracer_provider(&provider).build();
//! tracer.run("spooled").start().finish(loopotel::Outcome::Success, "done");
//! assert_eq!(counters.snapshot().delivered(), 1);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::delivery::DeliveryCounters;

/// Where and how much to spool.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    dir: PathBuf,
    max_bytes: u64,
}

impl SpoolConfig {
    /// The default size cap: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    /// Spool into `dir` (created if missing), capped at [`Self::DEFAULT_MAX_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }

    /// The size cap in bytes; the oldest files are evicted (counted) beyond it.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// From `LOOPOTEL_SPOOL_DIR` and `LOOPOTEL_SPOOL_MAX_BYTES`; `None` when no directory
    /// is set. An unparsable size keeps the default (and says so on stderr).
    pub fn from_env() -> Option<Self> {
        let dir = std::env::var_os("LOOPOTEL_SPOOL_DIR").filter(|d| !d.is_empty())?;
        let mut config = Self::new(PathBuf::from(dir));
        if let Ok(raw) = std::env::var("LOOPOTEL_SPOOL_MAX_BYTES") {
            match raw.trim().parse::<u64>() {
                Ok(n) => config.max_bytes = n,
                Err(_) => eprintln!(
                    "loopotel: LOOPOTEL_SPOOL_MAX_BYTES={raw:?} is not a byte count; using {}",
                    Self::DEFAULT_MAX_BYTES
                ),
            }
        }
        Some(config)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What a [`SpoolingSpanExporter::drain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Spool files the collector accepted (then deleted).
    pub files: u64,
    /// Spans in them.
    pub spans: u64,
    /// Whether the spool is empty now (false: the collector failed, the rest waits).
    pub complete: bool,
}

/// A [`SpanExporter`] that spools what its inner exporter cannot deliver and re-sends it
/// later (see the module docs). It counts into [`DeliveryCounters`] itself: do not also wrap
/// it in a [`super::delivery::CountingSpanExporter`].
#[derive(Debug)]
pub struct SpoolingSpanExporter<E> {
    inner: E,
    spool: Spool,
    counters: DeliveryCounters,
}

impl<E: SpanExporter> SpoolingSpanExporter<E> {
    /// Wraps `inner`, spooling into `config.dir()` (created if missing) and counting into
    /// `counters`. Fails only when the directory cannot be created or read.
    pub fn new(inner: E, config: SpoolConfig, counters: DeliveryCounters) -> io::Result<Self> {
        let spool = Spool::open(config)?;
        Ok(Self {
            inner,
            spool,
            counters,
        })
    }

    /// Spans currently in the spool directory (this process's and earlier ones').
    pub fn spooled_on_disk(&self) -> u64 {
        self.spool.files().iter().map(|f| f.spans).sum()
    }

    /// Re-sends the spool, oldest first, until it is empty or the collector fails. Runs after
    /// successful exports (a few files at a time, so the batch queue keeps moving) and in
    /// full at shutdown; call it yourself to empty a spool left by an earlier process without
    /// exporting anything new.
    pub async fn drain(&self) -> DrainReport {
        self.drain_at_most(usize::MAX).await
    }

    async fn drain_at_most(&self, max_files: usize) -> DrainReport {
        let mut report = DrainReport::default();
        // One drain at a time in this process; other processes are kept off by the claim.
        // The guards undo the flag and a claim if this future is dropped half-way (an
        // export timeout, a shutdown): nothing is left claimed by a drain that stopped.
        let Some(_draining) = DrainingGuard::take(&self.spool.draining) else {
            return report;
        };
        report.complete = true;
        let files = self.spool.files();
        if files.len() > max_files {
            report.complete = false;
        }
        for file in files.into_iter().take(max_files) {
            let Some(claimed) = self.spool.claim(&file) else {
                continue; // another process took it, or the cap evicted it
            };
            let batch = match read_batch(&claimed.path) {
                Ok(batch) => batch,
                Err(e) => {
                    // Unreadable (written by an incompatible version, or damaged on disk):
                    // counted as evicted, never retried forever.
                    eprintln!(
                        "loopotel: dropping unreadable spool file {}: {e}",
                        claimed.path.display()
                    );
                    claimed.remove();
                    self.spool.removed(&file);
                    self.counters.evicted(file.spans);
                    continue;
                }
            };
            let spans = batch.len() as u64;
            match self.inner.export(batch).await {
                Ok(()) => {
                    claimed.remove();
                    self.spool.removed(&file);
                    self.counters.resent(spans);
                    report.files += 1;
                    report.spans += spans;
                }
                Err(_) => {
                    drop(claimed); // back into the spool
                    report.complete = false;
                    break;
                }
            }
        }
        report
    }
}

impl<E: SpanExporter> SpanExporter for SpoolingSpanExporter<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let keep = batch.clone();
        let export = self.inner.export(batch);
        async move {
            match export.await {
                Ok(()) => {
                    self.counters.exported(spans);
                    if self.spool.maybe_nonempty() {
                        self.drain_at_most(DRAIN_FILES_PER_EXPORT).await;
                    }
                    Ok(())
                }
                Err(error) => match self.spool.write(&keep, &error) {
                    Ok(evicted) => {
                        self.counters.spooled(spans);
                        if evicted > 0 {
                            self.counters.evicted(evicted);
                        }
                        Ok(())
                    }
                    Err(io) => {
                        let why = format!(
                            "{error}; spooling to {} failed: {io}",
                            self.spool.dir.display()
                        );
                        self.counters.export_failed(spans, &why);
                        Err(OTelSdkError::InternalFailure(why))
                    }
                },
            }
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The batch processor has exported its last batch: what the spool still holds goes
        // now, if the collector answers (a failure stops at the first file).
        if self.spool.maybe_nonempty() {
            futures_executor::block_on(self.drain());
        }
        let on_disk = self.spooled_on_disk();
        if on_disk > 0 {
            eprintln!(
                "loopotel: {on_disk} spans remain spooled in {}; they are sent when a process \
                 using this spool next reaches the collector.",
                self.spool.dir.display()
            );
        }
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A spool file: `<unix nanos>-<pid>-<seq>-<spans>.spool`, so names sort oldest first and
/// never collide between processes.
mod format;
mod store;

use store::{DRAIN_FILES_PER_EXPORT, DrainingGuard, Spool, read_batch};

#[cfg(test)]
mod tests;
