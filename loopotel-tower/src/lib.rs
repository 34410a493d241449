//! # loopotel-tower
//!
//! [`LoopTraceLayer`] records each call of any `tower::Service` — an LLM client, a tool, an
//! environment step — as a span of the current loop run, parented to the iteration found in
//! the OpenTelemetry context (LTF and OpenTelemetry, one recording). See [`trace`].
//!
//! [`propagate`] carries W3C trace context over `http::Request`s (inject on the client,
//! extract on the server), and [`TracedStream`] (from `loopotel::stream`) keeps a span open
//! for as long as a stream.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod propagate;
pub mod trace;

pub use loopotel;
pub use loopotel::stream::{StreamTraceExt, TracedBody, TracedStream};
pub use trace::{CallKind, LoopTraceLayer, LoopTraceService};
