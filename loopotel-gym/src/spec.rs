//! LSS specs (YAML) and task files (`tasks.json`), loaded with clear errors.

use std::path::{Path, PathBuf};

use crate::pyvalue::PyValue;

/// Why a spec or task file could not be used: the file, the field, and why.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid YAML / JSON (with the position the parser reports).
    #[error("{path}: not valid {format}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Valid syntax, wrong shape.
    #[error("{path}: {field}: {why}")]
    Field {
        /// The file (or `<inline>`).
        path: PathBuf,
        /// The field, as a path (`workers[1].id`).
        field: String,
        /// Why.
        why: String,
    },
}

/// An LSS spec: the parsed mapping and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LssSpec {
    /// The top-level mapping, in file order.
    pub value: PyValue,
    /// The file (`<inline>` for specs built in code).
    pub path: PathBuf,
}

impl LssSpec {
    /// Loads a YAML spec; the top level must be a mapping.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses YAML text (`origin` names it in errors).
    pub fn from_yaml(text: &str, origin: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = origin.as_ref().to_owned();
        let value: PyValue = serde_norway::from_str(text).map_err(|e| SpecError::Parse {
            path: path.clone(),
            format: "YAML",
            message: e.to_string(),
        })?;
        if !matches!(value, PyValue::Dict(_)) {
            return Err(SpecError::Field {
                path,
                field: "(top level)".into(),
                why: "an LSS spec must be a mapping".into(),
            });
        }
        Ok(Self { value, path })
    }

    /// `spec.get(key)`.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        self.value.get(key)
    }

    pub(crate) fn field_error(
        &self,
        field: impl Into<String>,
        why: impl Into<String>,
    ) -> SpecError {
        SpecError::Field {
            path: self.path.clone(),
            field: field.into(),
            why: why.into(),
        }
    }

    /// `loop_name` (`unnamed` when absent), as the reference's compiler reads it.
    pub fn loop_name(&self) -> String {
        self.get("loop_name")
            .map(PyValue::py_str)
            .unwrap_or_else(|| "unnamed".into())
    }

    /// `objective` as `str(spec.get("objective", ""))`.
    pub fn objective(&self) -> String {
        self.get("objective")
            .map(PyValue::py_str)
            .unwrap_or_default()
    }
}

/// A `tasks.json` file: `{"tasks": [{"id": ..., "input": ...}, ...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFile {
    /// The whole file, in file order.
    pub value: PyValue,
    /// Where it came from.
    pub path: PathBuf,
}

impl TaskFile {
    /// Loads a task file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Parses task-file JSON (`origin` names it in errors).
    pub fn from_json_str(text: &str, origin: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = origin.as_ref().to_owned();
        let value: PyValue = serde_json::from_str(text).map_err(|e| SpecError::Parse {
            path: path.clone(),
            format: "JSON",
            message: e.to_string(),
        })?;
        if value
            .get("tasks")
            .is_some_and(|t| !matches!(t, PyValue::List(_)))
        {
            return Err(SpecError::Field {
                path,
                field: "tasks".into(),
                why: "must be a list of tasks".into(),
            });
        }
        Ok(Self { value, path })
    }

    /// The task ids, in file order.
    pub fn ids(&self) -> Vec<String> {
        self.value
            .get("tasks")
            .map(PyValue::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.get("id").map(PyValue::py_str))
            .collect()
    }

    /// The task whose `id` equals `task_id` (as the reference compares: by string).
    pub fn find(&self, task_id: &str) -> Option<&PyValue> {
        self.value
            .get("tasks")
            .map(PyValue::items)
            .unwrap_or_default()
            .iter()
            .find(|t| matches!(t.get("id"), Some(PyValue::Str(id)) if id == task_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_specs_name_the_file_and_the_problem() {
        let e = LssSpec::from_yaml("loop_name: [unclosed", "bad.yaml").unwrap_err();
        assert!(e.to_string().starts_with("bad.yaml: not valid YAML"), "{e}");
        let e = LssSpec::from_yaml("- a\n- b\n", "list.yaml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "list.yaml: (top level): an LSS spec must be a mapping"
        );
        let e = LssSpec::from_file("/nonexistent/spec.yaml").unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/spec.yaml:"), "{e}");
    }

    #[test]
    fn key_order_and_folded_text_are_kept() {
        let s = LssSpec::from_yaml("b: 1\na: >\n  two\n  lines\n", "x.yaml").unwrap();
        let PyValue::Dict(items) = &s.value else {
            panic!()
        };
        assert_eq!(items[0].0, "b");
        assert_eq!(s.get("a").unwrap().py_str(), "two lines\n");
    }
}
