//! Helpers shared by loopotel's cross-crate tests (`tests/tests/`), the CLI tests and the
//! fuzz targets: sample LTF documents, semantic comparison, the OpenTelemetry workload and
//! pipeline, and the fuzz harnesses. What needs no loopotel type (the local peers, the
//! Python reference, the OTLP receiver) lives in `loopotel-test-support` and is re-exported
//! here.
//!
//! The Python reference venv is made by `scripts/setup-python-ref.sh`; `scripts/test.sh`
//! exports `LOOPOTEL_REF_PYTHON` and `LOOPOTEL_REQUIRE_INTEROP=1`, so in CI a missing reference
//! fails the tests instead of skipping them.

mod documents;
pub mod fuzz;
mod otel;

pub use documents::{normalize, sample_documents};
pub use loopotel_test_support::*;
pub use otel::{assert_phoenix_has, counted_otlp_provider, loop_workload, ltf_span_ids};
