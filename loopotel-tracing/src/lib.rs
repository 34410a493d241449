//! # loopotel-tracing
//!
//! One [`LoopLayer`] added to a `tracing` subscriber makes every `tracing` span and event
//! inside a loop run part of that run: rig's `invoke_agent`, `chat` and `execute_tool`
//! spans, genai's `genai.chat` spans, tower-http, reqwest or sqlx instrumentation, and
//! your own `#[instrument]` functions land in the run's LTF document under the right
//! iteration — and, when the run's tracer has an OpenTelemetry provider, in the same
//! OpenTelemetry trace with the same ids and parents.
//!
//! Two set-ups are supported:
//!
//! - **`LoopLayer` alone**: it records both views (LTF, and OpenTelemetry through the
//!   provider given to the `LoopTracer`).
//! - **`LoopLayer::new().ltf_only()` beside `tracing-opentelemetry`**: tracing-opentelemetry
//!   records the `tracing` spans in OpenTelemetry, `LoopLayer` adds them to the LTF
//!   documents; no span is exported twice, and both views share the run's trace id.
//!
//! Log lines carry the loop: [`LoopLogProcessor`] (feature `logs`) adds the run and the
//! iteration to OpenTelemetry log records (from `opentelemetry-appender-tracing`, which
//! takes the trace and span ids from the context `LoopLayer` makes current), and
//! [`LoopFields`] (feature `fmt`) adds the trace id, span id, run and iteration to every
//! `tracing_subscriber::fmt` line.
//!
//! ```
//! use loopotel::{LoopTracer, Outcome};
//! use loopotel_tracing::LoopLayer;
//! use tracing_subscriber::layer::SubscriberExt as _;
//!
//! #[tracing::instrument]
//! fn search(query: &str) -> usize {
//!     tracing::info!(hits = 3, "searched");
//!     3
//! }
//!
//! let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
//! let _default = tracing::subscriber::set_default(subscriber);
//! let run = LoopTracer::new().run("instrumented").start();
//! let it = run.iteration(1);
//! {
//!     let _inside = it.enter();
//!     search("rust");
//! }
//! drop(it);
//! let doc = run.finish(Outcome::Success, "done");
//! let span = doc.spans.iter().find(|s| s.name == "search").unwrap();
//! assert_eq!(span.parent_span_id, Some(doc.iterations().next().unwrap().span_id));
//! assert_eq!(span.events[0].name, "searched");
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod enter;
mod fields;
#[cfg(feature = "fmt")]
mod fmt;
mod layer;
#[cfg(feature = "logs")]
mod logs;

#[cfg(feature = "fmt")]
pub use fmt::LoopFields;
pub use layer::{CAPTURE_CONTENT_ENV, DEFAULT_CONTENT_BUDGET, LoopLayer};
#[cfg(feature = "logs")]
pub use logs::LoopLogProcessor;
