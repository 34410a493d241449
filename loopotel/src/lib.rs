//! # loopotel — observable AI agent loops
//!
//! Records agent loops (run → iterations → LLM / tool / env-step spans) as
//! **LTF 0.1** documents (Loop Trace Format) with point-in-loop **LES** metrics, bit-identical
//! to the Python reference, and carries the current run through `opentelemetry::Context`.
//!
//! - [`LoopTracer`] starts runs; [`Run`], [`Iteration`] and [`SpanGuard`] are RAII guards
//!   that end their span exactly once, even on early drop or panic.
//! - [`context`]: find the current run/iteration anywhere (`emit_iteration`, `start_span`).
//! - [`les`]: effectiveness, cumulative LES and delta.
//! - [`stream`]: a span that lives as long as a stream (time to first item, gaps, end reason).
//! - [`jsonl`]: crash-safe JSON Lines writer and a reader that reports torn lines.
//! - [`validate`]: the LTF 0.1 JSON Schema (embedded) plus `--strict` checks.
//! - [`otel`]: the OpenTelemetry view (live spans with the same ids and timestamps).
//! - [`propagation`]: W3C `traceparent`/`tracestate` for headers, maps and JSON messages.
//! - [`model`]: the typed document; [`ids`]: LTF ⇄ OpenTelemetry ids; [`semconv`]: names.
//!
//! Instrumentation is fail-open: nothing here returns an error to, panics into or blocks
//! the code being traced. Memory per run is bounded
//! ([`LoopTracerBuilder::max_spans_per_run`]).
//!
//! ```
//! use loopotel::{LoopTracer, Outcome, IterationRecord};
//!
//! let tracer = LoopTracer::new();
//! let run = tracer.run("my-agent").task_id("task-7").start();
//! run.emit_iteration(IterationRecord::new(1, 0.55).tokens(300).worker("writer").evaluator("critic"));
//! run.emit_iteration(IterationRecord::new(2, 0.85).tokens(280).worker("writer").evaluator("critic"));
//! let doc = run.finish(Outcome::Success, "quality_threshold (0.85 >= 0.8)");
//! assert!(loopotel::validate::validate_document(&doc).is_empty());
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod attr;
mod clock;
pub mod context;
pub mod ids;
pub mod journal;
pub mod jsonl;
pub mod les;
pub mod limits;
pub mod model;
pub mod otel;
pub mod price;
pub mod propagation;
pub mod redact;
pub mod semconv;
pub mod stream;
pub mod time;
mod tracer;
pub mod validate;

pub use attr::{AttrValue, Attributes, SharedStr};
pub use context::{current_run, emit_iteration, start_span};
pub use ids::{IdError, SpanId, TraceId};
pub use limits::AttributeLimits;
pub use model::{LtfDocument, LtfEvent, LtfSpan, Outcome, SpanKind, SpanKindPair};
pub use time::Timestamp;
pub use tracer::{
    Iteration, IterationRecord, LoopScope, LoopTracer, LoopTracerBuilder, Run, RunBuilder,
    RunHandle, SpanGuard, TraceSink, TracerStats,
};
