//! LTF 0.1 validation: the embedded JSON Schema (Draft 2020-12), the reference validator's
//! file handling, and stricter checks.
//!
//! **Reference mode** reaches the same verdict as Python's `loopotel-validate` on the same
//! input: the schema of `specs/ltf-0.1.schema.json` with formats not asserted, error lines
//! `<json path>: <message>` sorted and de-duplicated, `.jsonl` files validated line by line.
//! Where the reference crashes with a traceback (malformed JSON), we report the document
//! INVALID with the line and column instead: same exit code, readable message.
//!
//! **Strict mode** adds: `date-time` formats, unique span ids, exactly one root (the only
//! span without a parent, of kind `loop`), every parent id present in the document, iteration
//! numbers strictly increasing in document order, no span ending before it starts, and a
//! non-empty file.
//!
//! A document can be validated as a stream, a span at a time ([`validate_reader`]), with the
//! same verdict: [`validate_file`] reads a JSON Lines line over 1 MiB that way, so memory
//! does not grow with a document's size.
//!
//! Known divergence: Python's JSON parser accepts the non-standard tokens `NaN`, `Infinity`
//! and `-Infinity`; ours follows RFC 8259 and reports them as malformed JSON.
//!
//! ```
//! use loopotel::validate::{validate_value, Mode};
//!
//! let doc = serde_json::json!({"schema_version": "ltf/0.1"});
//! let errors = validate_value(&doc, Mode::Reference);
//! assert!(errors.iter().any(|e| e.starts_with("$: ") && e.contains("trace_id")));
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::BufReader;
use std::path::Path;
use std::sync::OnceLock;

use jsonschema::paths::LocationSegment;
use serde_json::Value;

use crate::jsonl::{JsonlError, JsonlReader, LineItem, parse_line};
use crate::model::LtfDocument;
use crate::time::Timestamp;

/// The LTF 0.1 JSON Schema, as shipped by the Python reference.
pub const LTF_SCHEMA: &str = include_str!("../schemas/ltf-0.1.schema.json");

/// How much to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Exactly what `loopotel-validate` checks.
    #[default]
    Reference,
    /// The schema with formats asserted, plus structural checks.
    Strict,
}

fn compile(formats: bool) -> Option<jsonschema::Validator> {
    let schema: Value = serde_json::from_str(LTF_SCHEMA).ok()?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(formats)
        .build(&schema)
        .ok()
}

fn schema_validator(mode: Mode) -> Option<&'static jsonschema::Validator> {
    static REFERENCE: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    static STRICT: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    match mode {
        Mode::Reference => REFERENCE.get_or_init(|| compile(false)).as_ref(),
        Mode::Strict => STRICT.get_or_init(|| compile(true)).as_ref(),
    }
}

/// Writes a JSON path the way Python's `jsonschema` does (`$.spans[0]['odd key']`).
fn json_path<'a>(segments: impl IntoIterator<Item = LocationSegment<'a>>) -> String {
    let mut path = String::from("$");
    for seg in segments {
        match seg {
            LocationSegment::Index(i) => {
                let _ = write!(path, "[{i}]");
            }
            LocationSegment::Property(p) => {
                let simple = p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if simple {
                    path.push('.');
                    path.push_str(&p);
                } else {
                    let escaped = p.replace('\\', "\\\\").replace('\'', "\\'");
                    let _ = write!(path, "['{escaped}']");
                }
            }
        }
    }
    path
}

/// Validates one parsed document. Returns the error lines (`<json path>: <message>`), sorted
/// and de-duplicated; empty means valid.
pub fn validate_value(doc: &Value, mode: Mode) -> Vec<String> {
    let mut errors: Vec<String> = match schema_validator(mode) {
        Some(v) => v
            .iter_errors(doc)
            .map(|e| format!("{}: {}", json_path(e.instance_path().iter()), e))
            .collect(),
        None => vec!["$: internal error: the embedded LTF schema did not compile".to_owned()],
    };
    if mode == Mode::Strict {
        strict_checks(doc, &mut errors);
    }
    errors.sort();
    errors.dedup();
    errors
}

/// Validates a typed document in strict mode (what every document we write must pass).
pub fn validate_document(doc: &LtfDocument) -> Vec<String> {
    match serde_json::to_value(doc) {
        Ok(v) => validate_value(&v, Mode::Strict),
        Err(e) => vec![format!("$: cannot serialize: {e}")],
    }
}

fn strict_checks(doc: &Value, errors: &mut Vec<String>) {
    let Some(spans) = doc.get("spans").and_then(Value::as_array) else {
        strict_times(doc, errors);
        return;
    };
    let mut checks = StrictSpans::default();
    for span in spans {
        checks.span(span);
    }
    checks.finish(doc, errors);
}

fn time_of(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
}

/// The document's own times, in strict mode.
fn strict_times(doc: &Value, errors: &mut Vec<String>) {
    if let (Some(start), Some(end)) = (time_of(doc.get("started_at")), time_of(doc.get("ended_at")))
        && end < start
    {
        errors.push("$.ended_at: ends before started_at (strict)".to_owned());
    }
}

/// The span ids of a document, as the strict checks keep them: 16 lowercase hex digits
/// (every id loopotel writes) in 8 bytes, anything else as it is.
#[derive(Default)]
struct SpanIds {
    hex: HashSet<u64>,
    other: HashSet<Box<str>>,
}

/// A span id as 16 lowercase hex digits, in 8 bytes.
fn hex_id(id: &str) -> Option<u64> {
    let hex = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| u64::from_str_radix(id, 16).ok()).flatten()
}

impl SpanIds {
    /// Adds `id`; false when it was there already.
    fn insert(&mut self, id: &str) -> bool {
        match hex_id(id) {
            Some(n) => self.hex.insert(n),
            None => self.other.insert(id.into()),
        }
    }

    fn contains(&self, id: &str) -> bool {
        match hex_id(id) {
            Some(n) => self.hex.contains(&n),
            None => self.other.contains(id),
        }
    }
}

/// Parent ids not seen yet when their child was read.
#[derive(Default)]
struct PendingParents {
    hex: Vec<(usize, u64)>,
    other: Vec<(usize, Box<str>)>,
}

/// The strict checks on a document's spans, a span at a time: what they keep is each
/// span's id, and a parent's id read before the parent itself, never the spans.
#[derive(Default)]
struct StrictSpans {
    errors: Vec<String>,
    index: usize,
    ids: SpanIds,
    parents: PendingParents,
    /// Spans without a parent, and whether each is of kind `loop`.
    roots: Vec<(usize, bool)>,
    last_iteration: Option<(usize, f64)>,
}

impl StrictSpans {
    fn span(&mut self, span: &Value) {
        let i = self.index;
        self.index += 1;
        let errors = &mut self.errors;
        if let Some(id) = span.get("span_id").and_then(Value::as_str)
            && !self.ids.insert(id)
        {
            errors.push(format!(
                "$.spans[{i}].span_id: duplicate span id '{id}' (strict)"
            ));
        }
        let parent = span.get("parent_span_id").filter(|p| !p.is_null());
        let kind = span.get("kind").and_then(Value::as_str);
        match parent {
            None => self.roots.push((i, kind == Some("loop"))),
            Some(p) => {
                if let Some(p) = p.as_str()
                    && !self.ids.contains(p)
                {
                    match hex_id(p) {
                        Some(n) => self.parents.hex.push((i, n)),
                        None => self.parents.other.push((i, p.into())),
                    }
                }
            }
        }
        if kind == Some("loop") && parent.is_some() {
            errors.push(format!(
                "$.spans[{i}]: a span of kind 'loop' must be the root (strict)"
            ));
        }
        if let (Some(start), Some(end)) = (
            time_of(span.get("start_time")),
            time_of(span.get("end_time")),
        ) && end < start
        {
            errors.push(format!(
                "$.spans[{i}].end_time: ends before start_time (strict)"
            ));
        }
        if kind == Some("iteration") {
            match span
                .get("attributes")
                .and_then(|a| a.get("loop.iteration"))
                .and_then(Value::as_f64)
            {
                Some(n) => {
                    if let Some((prev_i, prev)) = self.last_iteration
                        && n <= prev
                    {
                        errors.push(format!(
                            "$.spans[{i}].attributes['loop.iteration']: {n} does not increase on $.spans[{prev_i}] ({prev}) (strict)"
                        ));
                    }
                    self.last_iteration = Some((i, n));
                }
                None => errors.push(format!(
                    "$.spans[{i}].attributes: iteration span without a numeric 'loop.iteration' (strict)"
                )),
            }
        }
    }

    /// The checks across spans, and the document's own times (`doc`: the document, whose
    /// spans may be left out).
    fn finish(mut self, doc: &Value, errors: &mut Vec<String>) {
        strict_times(doc, errors);
        errors.append(&mut self.errors);
        let missing = |i: &usize, p: &dyn std::fmt::Display| {
            format!(
                "$.spans[{i}].parent_span_id: parent '{p}' is not a span of this document (strict)"
            )
        };
        for (i, p) in &self.parents.hex {
            if !self.ids.hex.contains(p) {
                errors.push(missing(i, &format_args!("{p:016x}")));
            }
        }
        for (i, p) in &self.parents.other {
            if !self.ids.other.contains(p) {
                errors.push(missing(i, p));
            }
        }
        match self.roots.as_slice() {
            [] if self.index > 0 => {
                errors.push("$.spans: no root span (every span has a parent) (strict)".to_owned())
            }
            [(one, is_loop)] => {
                if !is_loop {
                    errors.push(format!(
                        "$.spans[{one}].kind: the root span must be of kind 'loop' (strict)"
                    ));
                }
            }
            [] => {}
            many => errors.push(format!(
                "$.spans: {} root spans (no parent) at {:?}; expected exactly one (strict)",
                many.len(),
                many.iter().map(|(i, _)| *i).collect::<Vec<_>>()
            )),
        }
    }
}

/// The schema of one span (`$defs/Span` of [`LTF_SCHEMA`]).
fn span_validator(mode: Mode) -> Option<&'static jsonschema::Validator> {
    fn compile_span(formats: bool) -> Option<jsonschema::Validator> {
        let mut schema: Value = serde_json::from_str(LTF_SCHEMA).ok()?;
        let defs = schema.get_mut("$defs")?.take();
        let span = serde_json::json!({
            "$schema": schema.get("$schema").cloned().unwrap_or(Value::Null),
            "$defs": defs,
            "$ref": "#/$defs/Span",
        });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(formats)
            .build(&span)
            .ok()
    }
    static REFERENCE: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    static STRICT: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    match mode {
        Mode::Reference => REFERENCE.get_or_init(|| compile_span(false)).as_ref(),
        Mode::Strict => STRICT.get_or_init(|| compile_span(true)).as_ref(),
    }
}

/// Validates one document read from `reader` a span at a time, with the verdict of
/// [`validate_value`]: memory grows by about 24 bytes per span, not with the document
/// (`validate` goes this way for a JSON Lines line longer than the reader's limit).
pub fn validate_reader(reader: impl std::io::Read, mode: Mode) -> Vec<String> {
    validate_stream(reader, mode).unwrap_or_else(|e| vec![malformed(e.line(), &e)])
}

/// The message on malformed JSON, as the reference's line and column.
fn malformed(line: usize, e: &serde_json::Error) -> String {
    format!("line {line}: malformed JSON at column {}: {e}", e.column())
}

/// [`validate_reader`], with the parse error (if the input is not JSON) returned.
fn validate_stream(
    reader: impl std::io::Read,
    mode: Mode,
) -> Result<Vec<String>, serde_json::Error> {
    let mut spans = StreamedSpans {
        mode,
        first: None,
        errors: Vec::new(),
        strict: StrictSpans::default(),
    };
    let (mut doc, listed) = crate::jsonl::read_spans_streamed::<Value>(reader, |s| spans.span(s))?;
    if listed && let Value::Object(map) = &mut doc {
        map.insert(
            "spans".to_owned(),
            Value::Array(spans.first.take().into_iter().collect()),
        );
    }
    // The document without its spans (but the first, so that the span list is checked as
    // a list); the first span's own errors come again from the span checks, de-duplicated.
    let mut errors = match schema_validator(mode) {
        Some(v) => v
            .iter_errors(&doc)
            .map(|e| format!("{}: {}", json_path(e.instance_path().iter()), e))
            .collect(),
        None => vec!["$: internal error: the embedded LTF schema did not compile".to_owned()],
    };
    errors.append(&mut spans.errors);
    if mode == Mode::Strict {
        spans.strict.finish(&doc, &mut errors);
    }
    errors.sort();
    errors.dedup();
    Ok(errors)
}

/// A streamed document's spans, checked as they are read.
struct StreamedSpans {
    mode: Mode,
    /// The first span, kept for the document's own schema check.
    first: Option<Value>,
    errors: Vec<String>,
    strict: StrictSpans,
}

impl StreamedSpans {
    fn span(&mut self, span: Value) {
        let i = self.strict.index;
        match span_validator(self.mode) {
            Some(v) => {
                for e in v.iter_errors(&span) {
                    let path = json_path(e.instance_path().iter());
                    let rest = path.strip_prefix('$').unwrap_or(&path);
                    self.errors.push(format!("$.spans[{i}]{rest}: {e}"));
                }
            }
            None => self
                .errors
                .push("$: internal error: the embedded LTF schema did not compile".to_owned()),
        }
        if self.mode == Mode::Strict {
            self.strict.span(&span);
        } else {
            self.strict.index += 1;
        }
        if i == 0 {
            self.first = Some(span);
        }
    }
}

/// The verdict on one document of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocVerdict {
    /// `path`, or `path#n` when a `.jsonl` file holds more than one document.
    pub label: String,
    /// Error lines; empty means valid.
    pub errors: Vec<String>,
}

impl DocVerdict {
    /// True when there are no errors.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A file that could not be validated at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path does not exist (the reference prints `Missing: <path>`).
    #[error("Missing: {0}")]
    Missing(String),
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {message}")]
    Unreadable {
        /// The path.
        path: String,
        /// The I/O error.
        message: String,
    },
}

/// Validates a file as `loopotel-validate` does: `.jsonl` line by line (blank lines skipped;
/// a line of any length, those over 1 MiB as a stream), anything else as one JSON document.
pub fn validate_file(path: &Path, mode: Mode) -> Result<Vec<DocVerdict>, FileError> {
    validate_file_lines(path, mode, STREAMED_LINE_BYTES)
}

/// JSON Lines longer than this are validated as a stream ([`validate_reader`]), whatever
/// their length: memory stays within a few times this plus 24 bytes per span.
const STREAMED_LINE_BYTES: usize = 1 << 20;

/// [`validate_file`], with JSON Lines longer than `max_line_bytes` validated as a stream
/// ([`validate_reader`]).
fn validate_file_lines(
    path: &Path,
    mode: Mode,
    max_line_bytes: usize,
) -> Result<Vec<DocVerdict>, FileError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(FileError::Missing(shown));
    }
    let unreadable = |e: std::io::Error| FileError::Unreadable {
        path: shown.clone(),
        message: e.to_string(),
    };
    let results: Vec<(usize, Vec<String>)> = if path.extension().is_some_and(|e| e == "jsonl") {
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut out = Vec::new();
        // Which document an error is about, as the reference counts them.
        // Which document an error is about, as the reference counts them.
        let mut index = 0;
        JsonlReader::new(BufReader::new(file))
            .max_line_bytes(max_line_bytes)
            .each_line(|item| {
                index += 1;
                out.push(match item {
                    LineItem::Short(Ok(line)) => {
                        let at = line.index;
                        match parse_line::<Value>(line) {
                            Ok(doc) => (at, validate_value(&doc.value, mode)),
                            Err(e) => (at, vec![e.to_string()]),
                        }
                    }
                    LineItem::Short(Err(e)) => (index, vec![e.to_string()]),
                    LineItem::Long {
                        line,
                        index: at,
                        reader,
                    } => (
                        at,
                        validate_stream(reader, mode).unwrap_or_else(|e| {
                            vec![JsonlError::of_parse(line, &e, false).to_string()]
                        }),
                    ),
                });
            });
        if out.is_empty() && mode == Mode::Strict {
            out.push((1, vec!["$: the file holds no document (strict)".to_owned()]));
        }
        out
    } else {
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let errors = match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => validate_value(&v, mode),
            Err(e) => vec![format!(
                "line {}: malformed JSON at column {}: {e}",
                e.line(),
                e.column()
            )],
        };
        vec![(1, errors)]
    };
    let many = results.len() > 1;
    Ok(results
        .into_iter()
        .map(|(index, errors)| DocVerdict {
            label: if many {
                format!("{shown}#{index}")
            } else {
                shown.clone()
            },
            errors,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "schema_version": "ltf/0.1",
            "trace_id": "ltf-4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
            "loop_name": "demo-loop",
            "started_at": "2026-11-22T03:24:48.295794Z",
            "ended_at": "2026-11-22T03:24:49.295794Z",
            "spec_pins": {"lss": "lss@1.0.0", "les": "les@1.0.0", "ltf": "ltf@0.1.0"},
            "spans": [{"span_id": "00f067aa0ba902b7", "parent_span_id": null, "name": "loop.run",
                       "kind": "loop", "start_time": "2026-11-22T03:24:48.295794Z", "attributes": {}}]
        })
    }

    #[test]
    fn minimal_document_is_valid_in_both_modes() {
        assert_eq!(
            validate_value(&minimal(), Mode::Reference),
            Vec::<String>::new()
        );
        assert_eq!(
            validate_value(&minimal(), Mode::Strict),
            Vec::<String>::new()
        );
    }

    #[test]
    fn paths_look_like_pythons() {
        let mut doc = minimal();
        doc["spans"][0]["span_id"] = json!("XYZ");
        doc["spans"][0]["attributes"] = json!(7);
        doc["bad key"] = json!(1);
        let errors = validate_value(&doc, Mode::Reference);
        assert!(
            errors.iter().any(|e| e.starts_with("$.spans[0].span_id: ")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("$.spans[0].attributes: ")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("$: ") && e.contains("bad key")),
            "{errors:?}"
        );
        let mut sorted = errors.clone();
        sorted.sort();
        assert_eq!(errors, sorted);
    }

    /// A document the schema accepts, with every fault the strict checks catch.
    fn strict_faulty() -> Value {
        let mut doc = minimal();
        doc["started_at"] = json!("yesterday");
        let spans = doc["spans"].as_array_mut().unwrap();
        spans.push(
            json!({"span_id": "00f067aa0ba902b7", "parent_span_id": "1111111111111111",
            "name": "loop.iteration", "kind": "iteration", "start_time": "2026-11-22T03:24:48Z",
            "end_time": "2026-11-22T03:24:47Z", "attributes": {"loop.iteration": 2}}),
        );
        spans.push(
            json!({"span_id": "2222222222222222", "parent_span_id": null,
            "name": "loop.iteration", "kind": "iteration", "start_time": "2026-11-22T03:24:48Z",
            "attributes": {"loop.iteration": 1}}),
        );
        doc
    }

    #[test]
    fn strict_catches_what_the_schema_cannot() {
        let doc = strict_faulty();
        assert!(validate_value(&doc, Mode::Reference).is_empty());
        let errors = validate_value(&doc, Mode::Strict).join("\n");
        for needle in [
            "started_at",
            "duplicate span id",
            "is not a span of this document",
            "ends before start_time",
            "does not increase",
            "2 root spans",
        ] {
            assert!(errors.contains(needle), "missing {needle:?} in\n{errors}");
        }
    }

    /// Documents with schema and strict errors in the document, its spans and across
    /// spans.
    fn faulty() -> Vec<Value> {
        let mut schema = minimal();
        schema["spans"][0]["span_id"] = json!("XYZ");
        schema["spans"][0]["attributes"] = json!(7);
        schema["bad key"] = json!(1);
        let mut odd_ids = strict_faulty();
        odd_ids["spans"].as_array_mut().unwrap().push(
            json!({"span_id": "Upper-Case", "parent_span_id": "Upper-Case",
            "name": "loop.iteration", "kind": "iteration", "start_time": "2026-11-22T03:24:48Z",
            "attributes": {}}),
        );
        let mut no_spans = minimal();
        no_spans["spans"] = json!([]);
        let mut not_a_list = minimal();
        not_a_list["spans"] = json!({"a": 1});
        let mut missing = minimal();
        missing.as_object_mut().unwrap().remove("spans");
        vec![
            minimal(),
            schema,
            strict_faulty(),
            odd_ids,
            no_spans,
            not_a_list,
            missing,
            json!([1, 2]),
            json!("text"),
        ]
    }

    #[test]
    fn a_streamed_document_gets_the_same_verdict() {
        for doc in faulty() {
            let text = serde_json::to_vec(&doc).unwrap();
            for mode in [Mode::Reference, Mode::Strict] {
                assert_eq!(
                    validate_reader(&text[..], mode),
                    validate_value(&doc, mode),
                    "{mode:?} on {doc}"
                );
            }
        }
        let torn = validate_reader(&b"{\"spans\":[{\"span_id\""[..], Mode::Strict);
        assert!(torn[0].starts_with("line 1: malformed JSON"), "{torn:?}");
    }

    #[test]
    fn a_line_past_the_reader_limit_is_validated_as_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut text = Vec::new();
        for doc in faulty() {
            serde_json::to_writer(&mut text, &doc).unwrap();
            text.extend_from_slice(b"\n\n");
        }
        text.extend_from_slice(b"{\"spans\":[{\"span_id\":");
        std::fs::write(&path, &text).unwrap();
        for mode in [Mode::Reference, Mode::Strict] {
            let whole = validate_file(&path, mode).unwrap();
            // Every line but the blank ones is past a 16-byte limit.
            let streamed = validate_file_lines(&path, mode, 16).unwrap();
            assert_eq!(whole.len(), faulty().len() + 1);
            assert_eq!(streamed, whole, "{mode:?}");
        }
        let last = validate_file_lines(&path, Mode::Strict, 16).unwrap();
        let torn = &last.last().unwrap().errors[0];
        let line = 2 * faulty().len() + 1;
        assert!(
            torn.starts_with(&format!("line {line}: torn last line")),
            "{torn}"
        );
    }
}
