//! JSON Lines: one compact LTF document per line.
//!
//! [`JsonlExporter`] appends each document with a single `write` on a file opened in append
//! mode, so a crash (even `kill -9`) leaves at most one partial last line. [`JsonlReader`]
//! yields every complete line and reports, never panics on, a torn or malformed line with its
//! line number, then keeps going. A line longer than the reader's limit is skipped by
//! [`JsonlReader::documents`] and read a span at a time by [`JsonlReader::each_document`]
//! ([`read_streamed`]), for documents of any length.
//!
//! ```
//! use loopotel::{LoopTracer, Outcome, jsonl::{JsonlExporter, JsonlReader}};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("traces.jsonl");
//! let tracer = LoopTracer::builder().sink(JsonlExporter::create(&path).unwrap()).build();
//! tracer.run("jsonl-demo").start().finish(Outcome::Success, "done");
//!
//! let docs: Vec<_> = JsonlReader::open(&path).unwrap().documents().collect();
//! assert_eq!(docs.len(), 1);
//! assert_eq!(docs[0].as_ref().unwrap().value.loop_name.as_str(), "jsonl-demo");
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::journal::JournaledSpans;
use crate::model::LtfDocument;
use crate::tracer::TraceSink;

/// Appends LTF documents to a JSONL file. Usable as a [`TraceSink`] (fail-open: errors are
/// counted and the first one is kept for [`JsonlExporter::last_error`]).
#[derive(Debug)]
pub struct JsonlExporter {
    path: PathBuf,
    file: Mutex<File>,
    fsync: bool,
    written: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl JsonlExporter {
    /// Opens (creating it and its parent folders if needed) `path` for appending.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        end_torn_line(&path, &file);
        Ok(Self {
            path,
            file: Mutex::new(file),
            fsync: false,
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    /// Also `fsync` after each document (durable across power loss; slower).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one document as one line.
    pub fn write_document(&self, doc: &LtfDocument) -> io::Result<()> {
        let mut line = Vec::with_capacity(4096);
        crate::model::write_json_line(&mut line, doc).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One write call for the whole line: O_APPEND makes it land after everything else,
        // and a crash can only tear this last line.
        file.write_all(&line)?;
        if self.fsync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Appends one document whose spans are `doc`'s followed by `rest`'s, writing each span
    /// as it is read from the journal: memory stays flat however many spans the run has.
    /// The line is written in several calls while the file is held, so a crash may tear
    /// it; its run then stays in the journal, to be recovered.
    pub fn write_large(&self, doc: &LtfDocument, rest: &JournaledSpans) -> io::Result<()> {
        let shell = LtfDocument {
            schema_version: doc.schema_version.clone(),
            trace_id: doc.trace_id,
            loop_name: doc.loop_name.clone(),
            env_id: doc.env_id.clone(),
            task_id: doc.task_id.clone(),
            started_at: doc.started_at,
            ended_at: doc.ended_at,
            outcome: doc.outcome,
            termination_reason: doc.termination_reason.clone(),
            spec_pins: doc.spec_pins.clone(),
            spans: Vec::new(),
            metadata: doc.metadata.clone(),
        };
        let mut line = Vec::with_capacity(4096);
        crate::model::write_json_line(&mut line, &shell).map_err(io::Error::other)?;
        // Every field before `spans` is a string, a number or the fixed `spec_pins`: the
        // first `"spans":[]` is the document's own.
        const EMPTY: &[u8] = b"\"spans\":[]";
        let at = memchr::memmem::find(&line, EMPTY)
            .ok_or_else(|| io::Error::other("no span list in the document"))?;
        let (head, tail) = line.split_at(at + EMPTY.len() - 1);
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = io::BufWriter::with_capacity(1 << 20, &*file);
        let written = (|| {
            out.write_all(head)?;
            let mut buf = Vec::with_capacity(4096);
            let mut first = true;
            let mut one = |span: &crate::model::LtfSpan, out: &mut io::BufWriter<&File>| {
                buf.clear();
                if !std::mem::take(&mut first) {
                    buf.push(b',');
                }
                crate::model::write_json_line(&mut buf, span).map_err(io::Error::other)?;
                out.write_all(&buf)
            };
            for span in rest.document_order(doc) {
                one(&span, &mut out)?;
            }
            out.write_all(tail)?;
            out.write_all(b"\n")?;
            out.flush()
        })();
        if let Err(e) = written {
            // End the torn line, so the next document starts a line of its own.
            let _ = out.write_all(b"\n").and_then(|()| out.flush());
            return Err(e);
        }
        drop(out);
        if self.fsync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Documents written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Documents that failed to write.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first write error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl JsonlExporter {
    fn count(&self, result: io::Result<()>) {
        match result {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    let msg = format!("{}: {e}", self.path.display());
                    eprintln!("loopotel: JSONL export failed (reported once): {msg}");
                    *self
                        .last_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(msg);
                }
            }
        }
    }
}

impl TraceSink for JsonlExporter {
    fn export(&self, doc: &LtfDocument) {
        self.count(self.write_document(doc));
    }

    fn export_large(&self, doc: &LtfDocument, rest: &JournaledSpans) {
        self.count(self.write_large(doc, rest));
    }
}

/// Ends a last line cut short (a crash while a document was written) with a newline, so
/// that what is appended next starts a line of its own and the cut line stays one bad line.
/// Best effort: a file that cannot be read back (a pipe, a write-only file) is left as it is.
fn end_torn_line(path: &Path, mut append: &File) {
    use std::io::{Seek, SeekFrom};
    let last = (|| {
        let mut reader = File::open(path)?;
        let len = reader.metadata()?.len();
        if len == 0 {
            return Ok::<_, io::Error>(None);
        }
        reader.seek(SeekFrom::Start(len - 1))?;
        let mut last = [0u8; 1];
        reader.read_exact(&mut last)?;
        Ok(Some(last[0]))
    })();
    if let Ok(Some(byte)) = last
        && byte != b'\n'
    {
        let _ = append.write_all(b"\n");
    }
}

/// A line that could not be read as a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonlError {
    /// The last line has no newline and does not parse: a write was cut off.
    #[error("line {line}: torn last line (no newline, incomplete JSON): {message}")]
    Torn {
        /// 1-based line number.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// A complete line that is not valid JSON, or not the expected shape.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A line longer than the reader's limit (skipped).
    #[error("line {line}: longer than {limit} bytes, skipped")]
    TooLong {
        /// 1-based line number.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// Reading the file failed; reading stops.
    #[error("line {line}: read error: {message}")]
    Io {
        /// The line being read.
        line: usize,
        /// The I/O error.
        message: String,
    },
}

impl JsonlError {
    /// The 1-based line number the error is about.
    pub fn line(&self) -> usize {
        match self {
            JsonlError::Torn { line, .. }
            | JsonlError::Malformed { line, .. }
            | JsonlError::TooLong { line, .. }
            | JsonlError::Io { line, .. } => *line,
        }
    }
}

/// A parsed line and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonlRecord<T> {
    /// 1-based line number in the file.
    pub line: usize,
    /// 1-based index among non-blank lines (the reference validator's `#n` label).
    pub index: usize,
    /// The parsed value.
    pub value: T,
}

/// Reads JSON Lines, one value per non-blank line.
pub struct JsonlReader<R> {
    reader: R,
    line: usize,
    index: usize,
    max_line_bytes: usize,
    done: bool,
    buf: Vec<u8>,
}

/// Default longest line accepted: 256 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 << 20;

impl JsonlReader<BufReader<File>> {
    /// Opens a file.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::new(BufReader::new(File::open(path)?)))
    }
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads from any buffered reader.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: 0,
            index: 0,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            done: false,
            buf: Vec::new(),
        }
    }

    /// Lines longer than this are reported as [`JsonlError::TooLong`] and skipped, so memory
    /// stays bounded on hostile input.
    pub fn max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max.max(1);
        self
    }

    /// Parses each line as [`LtfDocument`].
    pub fn documents(self) -> impl Iterator<Item = Result<JsonlRecord<LtfDocument>, JsonlError>> {
        self.parsed()
    }

    /// Parses each line as any deserializable type (e.g. `serde_json::Value`).
    pub fn parsed<T: serde::de::DeserializeOwned>(
        mut self,
    ) -> impl Iterator<Item = Result<JsonlRecord<T>, JsonlError>> {
        std::iter::from_fn(move || {
            Some(match self.next_line()? {
                Ok(Line::Short(line)) => Ok(line),
                Ok(Line::Long { line, .. }) => match skip_line(&mut self.reader) {
                    Ok(()) => Err(JsonlError::TooLong {
                        line,
                        limit: self.max_line_bytes,
                    }),
                    Err(e) => {
                        self.done = true;
                        Err(JsonlError::Io {
                            line,
                            message: e.to_string(),
                        })
                    }
                },
                Err(e) => Err(e),
            })
        })
        .map(|item| parse_line(item?))
    }

    /// Each document, as [`JsonlReader::documents`] reads them, except that a line longer
    /// than [`JsonlReader::max_line_bytes`] is read as a stream rather than skipped: its
    /// spans go one at a time to `span` and are not kept, then `each` gets its document
    /// with an empty span list and `true`. Memory then stays flat whatever the line's
    /// length. A long line that turns out not to be a document gives `each` its error
    /// (and `true`) after the spans read before it. `each` gets every other document
    /// whole, with `false`.
    pub fn each_document(
        self,
        mut span: impl FnMut(crate::model::LtfSpan),
        mut each: impl FnMut(Result<JsonlRecord<LtfDocument>, JsonlError>, bool),
    ) {
        self.each_line(|item| match item {
            LineItem::Short(line) => each(line.and_then(parse_line), false),
            LineItem::Long {
                line,
                index,
                reader,
            } => {
                let doc = read_streamed(reader, &mut span)
                    .map(|value| JsonlRecord { line, index, value })
                    .map_err(|e| JsonlError::of_parse(line, &e, false));
                each(doc, true);
            }
        });
    }

    /// Hands each non-blank line to `each`: as bytes, or, when it is longer than
    /// [`JsonlReader::max_line_bytes`], as a reader of the whole line (what was read of
    /// it, then the rest, up to its newline), for callers that can go through a line of
    /// any length in a stream. What a reader is left with of its line is skipped.
    pub(crate) fn each_line(mut self, mut each: impl FnMut(LineItem<'_>)) {
        while let Some(item) = self.next_line() {
            match item {
                Ok(Line::Short(line)) => each(LineItem::Short(Ok(line))),
                Ok(Line::Long { line, index, start }) => {
                    let mut rest = io::BufReader::with_capacity(
                        1 << 16,
                        LongLine {
                            start: io::Cursor::new(start),
                            reader: &mut self.reader,
                            ended: false,
                        },
                    );
                    each(LineItem::Long {
                        line,
                        index,
                        reader: &mut rest,
                    });
                    let ended = rest.get_ref().ended;
                    if !ended && let Err(e) = skip_line(&mut self.reader) {
                        self.done = true;
                        each(LineItem::Short(Err(JsonlError::Io {
                            line,
                            message: e.to_string(),
                        })));
                    }
                }
                Err(e) => each(LineItem::Short(Err(e))),
            }
        }
    }

    /// The next non-blank line.
    fn next_line(&mut self) -> Option<Result<Line, JsonlError>> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            self.line += 1;
            let limit = self.max_line_bytes as u64 + 1;
            let n = match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(JsonlError::Io {
                        line: self.line,
                        message: e.to_string(),
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            let complete = self.buf.last() == Some(&b'\n');
            self.index += 1;
            if !complete && n as u64 == limit {
                return Some(Ok(Line::Long {
                    line: self.line,
                    index: self.index,
                    start: std::mem::take(&mut self.buf),
                }));
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                self.index -= 1;
                continue;
            }
            return Some(Ok(Line::Short(ShortLine {
                line: self.line,
                index: self.index,
                bytes: std::mem::take(&mut self.buf),
                complete,
            })));
        }
    }
}

/// What [`JsonlReader::each_line`] hands on.
pub(crate) enum LineItem<'a> {
    /// A line within the reader's limit, or what stopped the reading.
    Short(Result<ShortLine, JsonlError>),
    /// A longer line: its number, its index, and a reader of it.
    Long {
        line: usize,
        index: usize,
        reader: &'a mut dyn Read,
    },
}

/// Parses a line within the reader's limit.
pub(crate) fn parse_line<T: serde::de::DeserializeOwned>(
    line: ShortLine,
) -> Result<JsonlRecord<T>, JsonlError> {
    serde_json::from_slice::<T>(&line.bytes)
        .map(|value| JsonlRecord {
            line: line.line,
            index: line.index,
            value,
        })
        .map_err(|e| JsonlError::of_parse(line.line, &e, line.complete))
}

impl JsonlError {
    /// A line that did not parse: torn when it has no newline and its JSON ends early.
    pub(crate) fn of_parse(line: usize, e: &serde_json::Error, complete: bool) -> Self {
        let message = e.to_string();
        if !complete && e.is_eof() {
            JsonlError::Torn { line, message }
        } else {
            JsonlError::Malformed { line, message }
        }
    }
}

/// Reads one LTF document from `reader` a span at a time: each span goes to `span`, and
/// the document comes back with an empty span list (memory does not grow with the spans).
/// If the input turns out not to be a document, `span` may have had some spans already.
pub fn read_streamed(
    reader: impl Read,
    span: impl FnMut(crate::model::LtfSpan),
) -> serde_json::Result<LtfDocument> {
    let (doc, _) = read_spans_streamed(reader, span)?;
    serde_json::from_value(doc)
}

/// Reads one JSON value from `reader`. When it is an object with a `spans` list, the
/// list's elements go to `span` one at a time and the value comes back with an empty list
/// and `true`; anything else comes back whole, with `false`.
pub(crate) fn read_spans_streamed<T: serde::de::DeserializeOwned>(
    reader: impl Read,
    mut span: impl FnMut(T),
) -> serde_json::Result<(serde_json::Value, bool)> {
    use serde::de::DeserializeSeed as _;
    let mut listed = false;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let value = Shell {
        span: &mut span,
        listed: &mut listed,
        element: std::marker::PhantomData,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, listed))
}

/// A value whose `spans` list, if it has one, goes to `span` an element at a time.
struct Shell<'a, F, T> {
    span: &'a mut F,
    listed: &'a mut bool,
    element: std::marker::PhantomData<T>,
}

impl<'de, F: FnMut(T), T: serde::de::DeserializeOwned> serde::de::DeserializeSeed<'de>
    for Shell<'_, F, T>
{
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(T), T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for Shell<'_, F, T> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an LTF document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == "spans" {
                let list = SpanList {
                    span: &mut *self.span,
                    element: std::marker::PhantomData,
                };
                match map.next_value_seed(list)? {
                    Some(other) => other,
                    None => {
                        *self.listed = true;
                        serde_json::Value::Array(Vec::new())
                    }
                }
            } else {
                map.next_value()?
            };
            members.insert(key, value);
        }
        Ok(serde_json::Value::Object(members))
    }

    // Anything but an object is kept whole.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
}

/// A `spans` member: a list goes to `span` an element at a time (`None`); anything else
/// is kept whole.
struct SpanList<'a, F, T> {
    span: &'a mut F,
    element: std::marker::PhantomData<T>,
}

impl<'de, F: FnMut(T), T: serde::de::DeserializeOwned> serde::de::DeserializeSeed<'de>
    for SpanList<'_, F, T>
{
    type Value = Option<serde_json::Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(T), T: serde::de::DeserializeOwned> serde::de::Visitor<'de>
    for SpanList<'_, F, T>
{
    type Value = Option<serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of spans")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while let Some(element) = seq.next_element::<T>()? {
            (self.span)(element);
        }
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Some(serde_json::Value::Null))
    }
}

/// A line within the reader's limit.
pub(crate) struct ShortLine {
    /// 1-based line number.
    pub(crate) line: usize,
    /// 1-based index among non-blank lines.
    pub(crate) index: usize,
    /// The line's bytes (with its newline, if it had one).
    pub(crate) bytes: Vec<u8>,
    /// Whether it ended with a newline.
    pub(crate) complete: bool,
}

enum Line {
    Short(ShortLine),
    /// Longer than the limit: its first bytes; the rest is still in the reader.
    Long {
        line: usize,
        index: usize,
        start: Vec<u8>,
    },
}

/// A line longer than a reader's limit: its first bytes, then the reader up to (and
/// including) the line's newline.
struct LongLine<'a, R> {
    start: io::Cursor<Vec<u8>>,
    reader: &'a mut R,
    ended: bool,
}

impl<R: BufRead> Read for LongLine<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.start.read(out)?;
        if n > 0 || out.is_empty() || self.ended {
            return Ok(n);
        }
        let available = self.reader.fill_buf()?;
        if available.is_empty() {
            self.ended = true;
            return Ok(0);
        }
        let available = &available[..available.len().min(out.len())];
        let line_end = memchr::memchr(b'\n', available).map(|at| at + 1);
        let take = line_end.unwrap_or(available.len());
        out[..take].copy_from_slice(&available[..take]);
        self.reader.consume(take);
        self.ended = line_end == Some(take);
        Ok(take)
    }
}

fn skip_line<R: BufRead>(reader: &mut R) -> io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                reader.consume(pos + 1);
                return Ok(());
            }
            None => {
                let len = available.len();
                reader.consume(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(input: &str) -> Vec<Result<JsonlRecord<serde_json::Value>, JsonlError>> {
        JsonlReader::new(input.as_bytes()).parsed().collect()
    }

    #[test]
    fn reports_torn_and_malformed_lines_and_keeps_going() {
        let out = values("{\"a\":1}\n\n{bad}\n{\"b\":2}\n{\"c\":");
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().unwrap().line, 1);
        assert!(matches!(out[1], Err(JsonlError::Malformed { line: 3, .. })));
        let rec = out[2].as_ref().unwrap();
        assert_eq!((rec.line, rec.index), (4, 3));
        assert!(matches!(out[3], Err(JsonlError::Torn { line: 5, .. })));
    }

    #[test]
    fn complete_last_line_without_newline_is_fine() {
        let out = values("{\"a\":1}\n{\"b\":2}");
        assert!(out.iter().all(Result::is_ok));
    }

    #[test]
    fn long_lines_are_skipped_with_bounded_memory() {
        let long = format!("{{\"x\":\"{}\"}}", "y".repeat(10_000));
        let input = format!("{long}\n{{\"ok\":true}}\n");
        let out: Vec<_> = JsonlReader::new(input.as_bytes())
            .max_line_bytes(100)
            .parsed::<serde_json::Value>()
            .collect();
        assert!(matches!(out[0], Err(JsonlError::TooLong { line: 1, .. })));
        assert_eq!(out[1].as_ref().unwrap().line, 2);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let out: Vec<_> = JsonlReader::new(&b"\"\xff\xfe\"\n"[..])
            .parsed::<serde_json::Value>()
            .collect();
        assert!(matches!(out[0], Err(JsonlError::Malformed { line: 1, .. })));
    }

    #[test]
    fn a_line_past_the_limit_is_read_as_a_stream_of_spans() {
        let tracer = crate::LoopTracer::new();
        let mut text = Vec::new();
        let mut docs = Vec::new();
        for name in ["a", "b"] {
            let run = tracer.run(name).metadata("seed", 7).start();
            for n in 1..=3 {
                run.iteration(n).evaluator_complete("critic", 0.3);
            }
            let doc = run.finish(crate::Outcome::Success, "done");
            crate::model::write_json_line(&mut text, &doc).unwrap();
            text.extend_from_slice(b"\n\n");
            docs.push(doc);
        }
        text.extend_from_slice(b"{\"spans\":[");
        let mut spans = Vec::new();
        let mut read = Vec::new();
        JsonlReader::new(&text[..])
            .max_line_bytes(64)
            .each_document(
                |span| spans.push(span),
                |doc, streamed| read.push((doc.map(|d| d.value), streamed)),
            );
        assert_eq!(read.len(), 3);
        for (doc, (got, streamed)) in docs.iter().zip(&read) {
            assert!(streamed);
            let got = got.as_ref().unwrap();
            assert!(got.spans.is_empty());
            let mut whole = got.clone();
            whole.spans = spans.drain(..doc.spans.len()).collect();
            assert_eq!(&whole, doc);
        }
        assert!(
            matches!(read[2].0, Err(JsonlError::Torn { line: 5, .. })),
            "{:?}",
            read[2].0
        );
        // Within the limit, documents come whole.
        let mut whole = Vec::new();
        JsonlReader::new(&text[..]).each_document(
            |_| panic!("no line is past the limit"),
            |doc, streamed| whole.push((doc.map(|d| d.value), streamed)),
        );
        assert_eq!(whole[0], (Ok(docs[0].clone()), false));
        assert_eq!(whole[1], (Ok(docs[1].clone()), false));
    }
}
