//! # loopotel-tower
//!
//! [`LoopTraceLayer`] records each call of any `tower::Service` — an LLM client, a tool, an
//! environment step — as a span of the current loop run, parented to the iteration found in
//! the OpenTelemetry context (LTF and OpenTelemetry, one recording). See [`trace`].
//!
//! Status: the layer, call kinds, callbacks, classifier, cancellation and attempt numbering
//! are here; the HTTP propagation layers, the traced stream adapter and the benches of
//! issue 4 are not yet.

pub mod trace;

pub use loopotel;
pub use loopotel::stream::{StreamTraceExt, TracedStream};
pub use trace::{CallKind, LoopTrace, LoopTraceLayer};
