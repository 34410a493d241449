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

use crate::jsonl::{JsonlError, JsonlReader};
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
    let time_of = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok())
    };
    if let (Some(start), Some(end)) = (time_of(doc.get("started_at")), time_of(doc.get("ended_at")))
        && end < start
    {
        errors.push("$.ended_at: ends before started_at (strict)".to_owned());
    }
    let Some(spans) = doc.get("spans").and_then(Value::as_array) else {
        return;
    };
    let mut ids = HashSet::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        if let Some(id) = span.get("span_id").and_then(Value::as_str)
            && !ids.insert(id)
        {
            errors.push(format!(
                "$.spans[{i}].span_id: duplicate span id '{id}' (strict)"
            ));
        }
    }
    let mut roots = Vec::new();
    let mut last_iteration: Option<(usize, f64)> = None;
    for (i, span) in spans.iter().enumerate() {
        let parent = span.get("parent_span_id").filter(|p| !p.is_null());
        let kind = span.get("kind").and_then(Value::as_str);
        match parent {
            None => roots.push(i),
            Some(p) => {
                if let Some(p) = p.as_str()
                    && !ids.contains(p)
                {
                    errors.push(format!(
                        "$.spans[{i}].parent_span_id: parent '{p}' is not a span of this document (strict)"
                    ));
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
                    if let Some((prev_i, prev)) = last_iteration
                        && n <= prev
                    {
                        errors.push(format!(
                            "$.spans[{i}].attributes['loop.iteration']: {n} does not increase on $.spans[{prev_i}] ({prev}) (strict)"
                        ));
                    }
                    last_iteration = Some((i, n));
                }
                None => errors.push(format!(
                    "$.spans[{i}].attributes: iteration span without a numeric 'loop.iteration' (strict)"
                )),
            }
        }
    }
    match roots.as_slice() {
        [] if !spans.is_empty() => {
            errors.push("$.spans: no root span (every span has a parent) (strict)".to_owned())
        }
        [one] => {
            if spans[*one].get("kind").and_then(Value::as_str) != Some("loop") {
                errors.push(format!(
                    "$.spans[{one}].kind: the root span must be of kind 'loop' (strict)"
                ));
            }
        }
        [] => {}
        many => errors.push(format!(
            "$.spans: {} root spans (no parent) at {:?}; expected exactly one (strict)",
            many.len(),
            many
        )),
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

/// Validates a file as `loopotel-validate` does: `.jsonl` line by line (blank lines skipped),
/// anything else as one JSON document.
pub fn validate_file(path: &Path, mode: Mode) -> Result<Vec<DocVerdict>, FileError> {
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
        let mut index = 0;
        for item in JsonlReader::new(BufReader::new(file)).parsed::<Value>() {
            index += 1;
            match item {
                Ok(rec) => out.push((rec.index, validate_value(&rec.value, mode))),
                Err(JsonlError::Io { line, message }) => {
                    out.push((index, vec![format!("line {line}: read error: {message}")]));
                }
                Err(e) => out.push((index, vec![format!("{e}")])),
            }
        }
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

    #[test]
    fn strict_catches_what_the_schema_cannot() {
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
}
