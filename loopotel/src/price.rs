//! A user-supplied price table (used by `loopotel-openai` and `loopotel-tracing`): model → US dollars per million tokens. loopotel ships no
//! prices (they change, and differ by contract); without a table no cost is recorded.
//!
//! The file is JSON, one entry per model:
//!
//! ```json
//! {
//!   "gpt-4o-mini": { "input_per_million": 0.15, "output_per_million": 0.60,
//!                    "cached_input_per_million": 0.075 }
//! }
//! ```
//!
//! A response's model is looked up exactly, then by the longest table key it starts with
//! (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`), then the requested model the same way.
//!
//! ```
//! use loopotel::price::{ModelPrice, PriceTable};
//!
//! let prices = PriceTable::from_json_str(
//!     r#"{"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}"#,
//! )?;
//! let price = prices.lookup("gpt-4o-mini-2024-07-18").unwrap();
//! // 1 000 input tokens, 200 of them cached (billed as input: no cached price given), 500 output.
//! let usd = price.cost_usd(1_000, 200, 500);
//! assert!((usd - (1_000.0 * 0.15 + 500.0 * 0.6) / 1e6).abs() < 1e-12);
//! # Ok::<(), loopotel::price::PriceError>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Prices of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Input (prompt) tokens.
    pub input_per_million: f64,
    /// Output (completion) tokens, reasoning tokens included.
    pub output_per_million: f64,
    /// Cached input tokens; when absent they cost as much as other input tokens.
    #[serde(default)]
    pub cached_input_per_million: Option<f64>,
}

impl ModelPrice {
    /// The cost of one call: `input` tokens (of which `cached` were served from a cache) and
    /// `output` tokens.
    pub fn cost_usd(&self, input: u64, cached: u64, output: u64) -> f64 {
        let cached = cached.min(input);
        let cached_price = self
            .cached_input_per_million
            .unwrap_or(self.input_per_million);
        ((input - cached) as f64 * self.input_per_million
            + cached as f64 * cached_price
            + output as f64 * self.output_per_million)
            / 1e6
    }
}

/// Why a price table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the expected JSON (with the line and column serde reports).
    #[error("{origin}: not a price table: {source}")]
    Format {
        /// The file, or `<string>`.
        origin: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A price is negative, NaN or infinite.
    #[error("{origin}: model {model:?}: {field} must be a finite number >= 0, got {value}")]
    Invalid {
        /// The file, or `<string>`.
        origin: String,
        /// The model.
        model: String,
        /// The field.
        field: &'static str,
        /// The value.
        value: f64,
    },
}

/// Model prices (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a model's prices.
    pub fn insert(&mut self, model: impl Into<String>, price: ModelPrice) -> &mut Self {
        self.models.insert(model.into(), price);
        self
    }

    /// Loads a JSON price file.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self, PriceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a JSON price table.
    pub fn from_json_str(text: &str) -> Result<Self, PriceError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, PriceError> {
        let models: BTreeMap<String, ModelPrice> =
            serde_json::from_str(text).map_err(|source| PriceError::Format {
                origin: origin.to_owned(),
                source,
            })?;
        for (model, p) in &models {
            for (field, value) in [
                ("input_per_million", Some(p.input_per_million)),
                ("output_per_million", Some(p.output_per_million)),
                ("cached_input_per_million", p.cached_input_per_million),
            ] {
                if let Some(v) = value
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(PriceError::Invalid {
                        origin: origin.to_owned(),
                        model: model.clone(),
                        field,
                        value: v,
                    });
                }
            }
        }
        Ok(Self { models })
    }

    /// The prices for `model`: an exact key, else the longest key `model` starts with.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        self.models.get(model).or_else(|| {
            self.models
                .iter()
                .filter(|(k, _)| model.starts_with(k.as_str()))
                .max_by_key(|(k, _)| k.len())
                .map(|(_, p)| p)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tables_get_clear_errors() {
        let e = PriceTable::from_json_str(
            r#"{"m": {"input_per_million": -1, "output_per_million": 1}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("model \"m\": input_per_million"),
            "{e}"
        );
        let e = PriceTable::from_json_str(r#"{"m": {"input_per_million": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("output_per_million"), "{e}");
        let e = PriceTable::from_json_str(r#"{"m": {"input": 1, "output_per_million": 1}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = PriceTable::from_json_file("/nonexistent/prices.json").unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/prices.json:"),
            "{e}"
        );
    }

    #[test]
    fn lookup_prefers_exact_then_longest_prefix() {
        let p = |x: f64| ModelPrice {
            input_per_million: x,
            output_per_million: x,
            cached_input_per_million: None,
        };
        let mut t = PriceTable::new();
        t.insert("gpt-4o", p(1.0)).insert("gpt-4o-mini", p(2.0));
        assert_eq!(t.lookup("gpt-4o").unwrap().input_per_million, 1.0);
        assert_eq!(t.lookup("gpt-4o-mini-2024").unwrap().input_per_million, 2.0);
        assert_eq!(t.lookup("gpt-4o-2024").unwrap().input_per_million, 1.0);
        assert!(t.lookup("o3").is_none());
    }
}
