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

use std::borrow::Cow;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone)]
struct SpoolFile {
    path: PathBuf,
    bytes: u64,
    spans: u64,
}

const EXT: &str = "spool";

/// Spool files re-sent after each successful export (the rest follow with later exports and
/// at shutdown), so catching up never stalls the batch queue for long.
const DRAIN_FILES_PER_EXPORT: usize = 8;

#[derive(Debug)]
struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    seq: AtomicU64,
    draining: AtomicBool,
    /// Set when this process wrote a file or found some at start; cleared by a complete drain.
    nonempty: AtomicBool,
    /// Bytes on disk as this process knows them (other processes' writes are found by the
    /// directory scan that runs only when this passes the cap).
    bytes: AtomicU64,
    reported: AtomicBool,
}

impl Spool {
    fn open(config: SpoolConfig) -> io::Result<Self> {
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
            } else if let Some(pid) = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next()) {
                if pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid)) {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let files = spool.files();
        spool.nonempty.store(!files.is_empty(), Ordering::Relaxed);
        spool
            .bytes
            .store(files.iter().map(|f| f.bytes).sum(), Ordering::Relaxed);
        Ok(spool)
    }

    fn maybe_nonempty(&self) -> bool {
        self.nonempty.load(Ordering::Relaxed)
    }

    /// The spool files, oldest first.
    fn files(&self) -> Vec<SpoolFile> {
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
    fn write(&self, batch: &[SpanData], why: &OTelSdkError) -> io::Result<u64> {
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
    fn removed(&self, file: &SpoolFile) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(file.bytes))
            });
    }

    fn evict_beyond_cap(&self) -> u64 {
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
    fn claim(&self, file: &SpoolFile) -> Option<Claim> {
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

    fn report_once(&self, error: &OTelSdkError) {
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
struct Claim {
    path: PathBuf,
    original: PathBuf,
    removed: bool,
}

impl Claim {
    /// The collector has it: the file goes.
    fn remove(mut self) {
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
struct DrainingGuard<'a>(&'a AtomicBool);

impl<'a> DrainingGuard<'a> {
    fn take(flag: &'a AtomicBool) -> Option<Self> {
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

fn read_batch(path: &Path) -> io::Result<Vec<SpanData>> {
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

// ---- the on-disk form of SpanData -------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct SpoolBatch {
    version: u32,
    spans: Vec<SpooledSpan>,
}

#[derive(Serialize, Deserialize)]
struct SpooledSpan {
    trace_id: String,
    span_id: String,
    flags: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    trace_state: String,
    #[serde(default)]
    remote: bool,
    parent: String,
    #[serde(default)]
    parent_remote: bool,
    kind: u8,
    name: String,
    start_ns: u64,
    end_ns: u64,
    attributes: Vec<SpooledKv>,
    #[serde(default)]
    dropped_attributes: u32,
    events: Vec<SpooledEvent>,
    #[serde(default)]
    dropped_events: u32,
    links: Vec<SpooledLink>,
    #[serde(default)]
    dropped_links: u32,
    status: SpooledStatus,
    scope: SpooledScope,
}

#[derive(Serialize, Deserialize)]
struct SpooledKv(String, SpooledValue);

/// Floats as their bits, so NaN and infinities survive JSON.
#[derive(Serialize, Deserialize)]
enum SpooledValue {
    B(bool),
    I(i64),
    F(u64),
    S(String),
    Bs(Vec<bool>),
    Is(Vec<i64>),
    Fs(Vec<u64>),
    Ss(Vec<String>),
}

#[derive(Serialize, Deserialize)]
struct SpooledEvent {
    name: String,
    time_ns: u64,
    attributes: Vec<SpooledKv>,
    #[serde(default)]
    dropped_attributes: u32,
}

#[derive(Serialize, Deserialize)]
struct SpooledLink {
    trace_id: String,
    span_id: String,
    flags: u8,
    #[serde(default)]
    trace_state: String,
    attributes: Vec<SpooledKv>,
    #[serde(default)]
    dropped_attributes: u32,
}

#[derive(Serialize, Deserialize)]
enum SpooledStatus {
    Unset,
    Ok,
    Error(String),
}

#[derive(Serialize, Deserialize)]
struct SpooledScope {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    schema_url: Option<String>,
    #[serde(default)]
    attributes: Vec<SpooledKv>,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn kvs(attributes: &[KeyValue]) -> Vec<SpooledKv> {
    attributes
        .iter()
        .map(|kv| SpooledKv(kv.key.as_str().to_owned(), (&kv.value).into()))
        .collect()
}

fn from_kvs(attributes: Vec<SpooledKv>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|SpooledKv(k, v)| KeyValue::new(Key::new(k), Value::from(v)))
        .collect()
}

impl From<&Value> for SpooledValue {
    fn from(v: &Value) -> Self {
        match v {
            Value::Bool(b) => Self::B(*b),
            Value::I64(i) => Self::I(*i),
            Value::F64(f) => Self::F(f.to_bits()),
            Value::String(s) => Self::S(s.as_str().to_owned()),
            Value::Array(Array::Bool(a)) => Self::Bs(a.clone()),
            Value::Array(Array::I64(a)) => Self::Is(a.clone()),
            Value::Array(Array::F64(a)) => Self::Fs(a.iter().map(|f| f.to_bits()).collect()),
            Value::Array(Array::String(a)) => {
                Self::Ss(a.iter().map(|s| s.as_str().to_owned()).collect())
            }
            // Kinds added to opentelemetry after this build: kept as their text.
            other => Self::S(other.to_string()),
        }
    }
}

impl From<SpooledValue> for Value {
    fn from(v: SpooledValue) -> Self {
        match v {
            SpooledValue::B(b) => Value::Bool(b),
            SpooledValue::I(i) => Value::I64(i),
            SpooledValue::F(bits) => Value::F64(f64::from_bits(bits)),
            SpooledValue::S(s) => Value::String(s.into()),
            SpooledValue::Bs(a) => Value::Array(Array::Bool(a)),
            SpooledValue::Is(a) => Value::Array(Array::I64(a)),
            SpooledValue::Fs(a) => {
                Value::Array(Array::F64(a.into_iter().map(f64::from_bits).collect()))
            }
            SpooledValue::Ss(a) => Value::Array(Array::String(
                a.into_iter().map(StringValue::from).collect(),
            )),
        }
    }
}

fn kind_code(kind: &SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 0,
        SpanKind::Server => 1,
        SpanKind::Client => 2,
        SpanKind::Producer => 3,
        SpanKind::Consumer => 4,
    }
}

fn kind_of(code: u8) -> SpanKind {
    match code {
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

impl From<&SpanData> for SpooledSpan {
    fn from(s: &SpanData) -> Self {
        let cx = &s.span_context;
        Self {
            trace_id: cx.trace_id().to_string(),
            span_id: cx.span_id().to_string(),
            flags: cx.trace_flags().to_u8(),
            trace_state: cx.trace_state().header(),
            remote: cx.is_remote(),
            parent: s.parent_span_id.to_string(),
            parent_remote: s.parent_span_is_remote,
            kind: kind_code(&s.span_kind),
            name: s.name.to_string(),
            start_ns: nanos(s.start_time),
            end_ns: nanos(s.end_time),
            attributes: kvs(&s.attributes),
            dropped_attributes: s.dropped_attributes_count,
            events: s
                .events
                .events
                .iter()
                .map(|e| SpooledEvent {
                    name: e.name.to_string(),
                    time_ns: nanos(e.timestamp),
                    attributes: kvs(&e.attributes),
                    dropped_attributes: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events: s.events.dropped_count,
            links: s
                .links
                .links
                .iter()
                .map(|l| SpooledLink {
                    trace_id: l.span_context.trace_id().to_string(),
                    span_id: l.span_context.span_id().to_string(),
                    flags: l.span_context.trace_flags().to_u8(),
                    trace_state: l.span_context.trace_state().header(),
                    attributes: kvs(&l.attributes),
                    dropped_attributes: l.dropped_attributes_count,
                })
                .collect(),
            dropped_links: s.links.dropped_count,
            status: match &s.status {
                Status::Unset => SpooledStatus::Unset,
                Status::Ok => SpooledStatus::Ok,
                Status::Error { description } => SpooledStatus::Error(description.to_string()),
            },
            scope: SpooledScope {
                name: s.instrumentation_scope.name().to_owned(),
                version: s.instrumentation_scope.version().map(str::to_owned),
                schema_url: s.instrumentation_scope.schema_url().map(str::to_owned),
                attributes: kvs(&s
                    .instrumentation_scope
                    .attributes()
                    .cloned()
                    .collect::<Vec<_>>()),
            },
        }
    }
}

fn context(
    trace_id: &str,
    span_id: &str,
    flags: u8,
    state: &str,
    remote: bool,
) -> Result<SpanContext, String> {
    let trace_id =
        TraceId::from_hex(trace_id).map_err(|e| format!("trace id {trace_id:?}: {e}"))?;
    let span_id = SpanId::from_hex(span_id).map_err(|e| format!("span id {span_id:?}: {e}"))?;
    let state = if state.is_empty() {
        TraceState::NONE
    } else {
        TraceState::from_str(state).unwrap_or(TraceState::NONE)
    };
    Ok(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        remote,
        state,
    ))
}

impl TryFrom<SpooledSpan> for SpanData {
    type Error = String;

    fn try_from(s: SpooledSpan) -> Result<Self, String> {
        let span_context = context(&s.trace_id, &s.span_id, s.flags, &s.trace_state, s.remote)?;
        let parent_span_id =
            SpanId::from_hex(&s.parent).map_err(|e| format!("parent id {:?}: {e}", s.parent))?;
        let mut events = SpanEvents::default();
        events.events = s
            .events
            .into_iter()
            .map(|e| {
                let mut event = Event::new(e.name, time(e.time_ns), from_kvs(e.attributes), 0);
                event.dropped_attributes_count = e.dropped_attributes;
                event
            })
            .collect();
        events.dropped_count = s.dropped_events;
        let mut links = SpanLinks::default();
        for l in s.links {
            let cx = context(&l.trace_id, &l.span_id, l.flags, &l.trace_state, true)?;
            links
                .links
                .push(Link::new(cx, from_kvs(l.attributes), l.dropped_attributes));
        }
        links.dropped_count = s.dropped_links;
        let mut scope = InstrumentationScope::builder(s.scope.name);
        if let Some(v) = s.scope.version {
            scope = scope.with_version(v);
        }
        if let Some(u) = s.scope.schema_url {
            scope = scope.with_schema_url(u);
        }
        Ok(SpanData {
            span_context,
            parent_span_id,
            parent_span_is_remote: s.parent_remote,
            span_kind: kind_of(s.kind),
            name: Cow::Owned(s.name),
            start_time: time(s.start_ns),
            end_time: time(s.end_ns),
            attributes: from_kvs(s.attributes),
            dropped_attributes_count: s.dropped_attributes,
            events,
            links,
            status: match s.status {
                SpooledStatus::Unset => Status::Unset,
                SpooledStatus::Ok => Status::Ok,
                SpooledStatus::Error(d) => Status::error(d),
            },
            instrumentation_scope: scope.with_attributes(from_kvs(s.scope.attributes)).build(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    fn rich_span() -> SpanData {
        let cx = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_str("vendor=a,other=b").unwrap(),
        );
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "exception",
            UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
            vec![KeyValue::new("exception.message", "boom")],
            2,
        ));
        events.dropped_count = 3;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            SpanContext::new(
                TraceId::from_hex("11111111111111111111111111111111").unwrap(),
                SpanId::from_hex("2222222222222222").unwrap(),
                TraceFlags::default(),
                true,
                TraceState::NONE,
            ),
            vec![KeyValue::new("link.kind", "retry")],
            1,
        ));
        SpanData {
            span_context: cx,
            parent_span_id: SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            parent_span_is_remote: true,
            span_kind: SpanKind::Client,
            name: "chat gpt-x".into(),
            start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001),
            end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_999_999_999),
            attributes: vec![
                KeyValue::new("b", true),
                KeyValue::new("i", -7_i64),
                KeyValue::new("f", 0.25),
                KeyValue::new("nan", f64::NAN),
                KeyValue::new("inf", f64::NEG_INFINITY),
                KeyValue::new("s", "text with \"quotes\" and \n newline"),
                KeyValue::new("bs", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("is", Value::Array(Array::I64(vec![1, 2]))),
                KeyValue::new("fs", Value::Array(Array::F64(vec![1.5, f64::INFINITY]))),
                KeyValue::new(
                    "ss",
                    Value::Array(Array::String(vec!["a".into(), "b".into()])),
                ),
            ],
            dropped_attributes_count: 4,
            events,
            links,
            status: Status::error("it broke"),
            instrumentation_scope: InstrumentationScope::builder("loopotel")
                .with_version("0.1.0")
                .with_schema_url("https://opentelemetry.io/schemas/1.41.0")
                .with_attributes([KeyValue::new("scope.attr", 1_i64)])
                .build(),
        }
    }

    /// Debug text compares every field (NaN included, which `PartialEq` would not); whether
    /// a string was static or owned is not data.
    fn same(a: &SpanData, b: &SpanData) {
        let text = |s: &SpanData| format!("{s:?}").replace("Static(", "Owned(");
        assert_eq!(text(a), text(b));
    }

    #[test]
    fn every_field_of_a_span_survives_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        let span = rich_span();
        let err = OTelSdkError::InternalFailure("down".into());
        assert_eq!(spool.write(std::slice::from_ref(&span), &err).unwrap(), 0);
        let files = spool.files();
        assert_eq!((files.len(), files[0].spans), (1, 1));
        let back = read_batch(&files[0].path).unwrap();
        same(&back[0], &span);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&files[0].path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "spool files are private: {mode:o}");
        }
    }

    #[test]
    fn drain_resends_oldest_first_and_drops_unreadable_files_counted() {
        let dir = tempfile::tempdir().unwrap();
        let err = OTelSdkError::InternalFailure("down".into());
        let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
        let mut first = rich_span();
        first.name = "first".into();
        let mut second = rich_span();
        second.name = "second".into();
        spool.write(&[first], &err).unwrap();
        spool.write(&[second.clone(), second], &err).unwrap();
        // A damaged file (written by hand, so it sorts first).
        fs::write(dir.path().join(format!("00-0-0-5.{EXT}")), b"{not json").unwrap();
        // A temporary file and a claim left by a process that no longer exists.
        fs::write(dir.path().join(".tmp-999999999-1"), b"partial").unwrap();
        let orphan = dir.path().join(format!("01-0-0-1.{EXT}"));
        fs::write(
            &orphan,
            serde_json::to_vec(&SpoolBatch {
                version: 1,
                spans: vec![SpooledSpan::from(&rich_span())],
            })
            .unwrap(),
        )
        .unwrap();
        let claimed = dir.path().join(format!("01-0-0-1.{EXT}.sending-999999999"));
        fs::rename(&orphan, &claimed).unwrap();

        let collector = InMemorySpanExporter::default();
        let counters = DeliveryCounters::new();
        let exporter = SpoolingSpanExporter::new(
            collector.clone(),
            SpoolConfig::new(dir.path()),
            counters.clone(),
        )
        .unwrap();
        assert!(!dir.path().join(".tmp-999999999-1").exists());
        assert_eq!(exporter.spooled_on_disk(), 5 + 1 + 1 + 2);
        let report = futures_executor::block_on(exporter.drain());
        assert_eq!((report.files, report.spans, report.complete), (3, 4, true));
        let names: Vec<_> = collector
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["chat gpt-x", "first", "second", "second"]);
        let stats = counters.snapshot();
        assert_eq!((stats.resent, stats.evicted), (4, 5));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_drain_cancelled_mid_export_leaves_nothing_claimed() {
        /// A collector that never answers: the drain's export stays pending.
        #[derive(Debug)]
        struct Hung;
        impl SpanExporter for Hung {
            async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
                std::future::pending().await
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let err = OTelSdkError::InternalFailure("down".into());
        Spool::open(SpoolConfig::new(dir.path()))
            .unwrap()
            .write(&[rich_span()], &err)
            .unwrap();
        let exporter =
            SpoolingSpanExporter::new(Hung, SpoolConfig::new(dir.path()), DeliveryCounters::new())
                .unwrap();
        {
            let mut drain = std::pin::pin!(exporter.drain());
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(drain.as_mut().poll(&mut cx).is_pending());
            let names: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert!(
                names[0].contains(".sending-"),
                "claimed while sending: {names:?}"
            );
        } // cancelled here (an export timeout, a shutdown)
        assert_eq!(
            exporter.spooled_on_disk(),
            1,
            "the file is back in the spool"
        );
        assert!(
            !exporter.spool.draining.load(Ordering::Relaxed),
            "a later drain can run"
        );
    }

    #[test]
    fn a_failing_collector_keeps_the_spool_and_a_spool_that_cannot_be_written_counts_a_failure() {
        #[derive(Debug)]
        struct Down;
        impl SpanExporter for Down {
            async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
                Err(OTelSdkError::InternalFailure("connection refused".into()))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let counters = DeliveryCounters::new();
        let exporter =
            SpoolingSpanExporter::new(Down, SpoolConfig::new(dir.path()), counters.clone())
                .unwrap();
        assert!(futures_executor::block_on(exporter.export(vec![rich_span()])).is_ok());
        let report = futures_executor::block_on(exporter.drain());
        assert_eq!((report.files, report.complete), (0, false));
        assert_eq!(
            exporter.spooled_on_disk(),
            1,
            "a failed re-send puts the file back"
        );
        // The spool directory disappears (disk trouble): the batch is lost, and counted.
        fs::remove_dir_all(dir.path()).unwrap();
        assert!(futures_executor::block_on(exporter.export(vec![rich_span()])).is_err());
        let stats = counters.snapshot();
        assert_eq!((stats.spooled, stats.failed), (1, 1));
    }
}
