//! # loopotel-tower
//!
//! Status: scaffold. `LoopTraceLayer` (a `tower::Layer` that records each call of any
//! `tower::Service` as a span of the current loop run) is tracked in issue 4. Until it lands,
//! instrument calls with the core API, which this crate re-exports:
//!
//! ```
//! use loopotel_tower::loopotel::{LoopTracer, Outcome, SpanKind, context};
//!
//! let run = LoopTracer::new().run("tower-loop").start();
//! let it = run.iteration(1);
//! {
//!     let _cx = it.enter();
//!     let _span = context::start_span("execute_tool search", SpanKind::Worker);
//! }
//! drop(it);
//! assert_eq!(run.finish(Outcome::Success, "done").spans.len(), 3);
//! ```

pub use loopotel;
