//! Tracing any `tower::Service` as part of an agent loop.
//!
//! ```
//! use loopotel::{LoopTracer, Outcome};
//! use loopotel_tower::LoopTraceLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let search = ServiceBuilder::new()
//!     .layer(LoopTraceLayer::tool("search"))
//!     .service(service_fn(|q: String| async move { Ok::<_, std::io::Error>(format!("results for {q}")) }));
//!
//! let (_, doc) = LoopTracer::new().run("tool-loop").scope(|run| async move {
//!     let it = run.iteration(1);
//!     let _ = search.oneshot("rust".to_owned()).with_context(it.context()).await;
//! }).await;
//! let tool = doc.spans.iter().find(|s| s.name.as_str() == "execute_tool search").unwrap();
//! assert_eq!(tool.attributes.get("gen_ai.tool.name").unwrap().as_str(), Some("search"));
//! # use opentelemetry::context::FutureExt as _;
//! # });
//! ```

//!
//! Customisation follows tower-http: one trait per callback, each with a `Default*` type,
//! and closures accepted wherever a trait is — [`MakeSpan`], [`OnRequest`],
//! [`OnResponse`], [`OnFailure`], [`ClassifyResponse`], and [`ResponseEnd`] for when the
//! span ends. Callbacks run inside `catch_unwind` ([`callback_panics`]).

mod classify;
mod end;
mod future;
mod kind;
mod layer;
mod make_span;
mod on_failure;
mod on_request;
mod on_response;
mod panics;
mod service;

pub use classify::{ClassifyResponse, DefaultClassifier, FailureClass, ResponseClass};
pub use end::{EndOnBodyEnd, EndOnResponse, EndOnStreamEnd, ResponseEnd};
pub use future::ResponseFuture;
pub use kind::CallKind;
pub use layer::LoopTraceLayer;
pub use loopotel::stream::{DefaultOnEos, OnEos, StreamEnd};
pub use make_span::{DefaultMakeSpan, MakeSpan, SpanSpec};
pub use on_failure::{DefaultOnFailure, Failure, OnFailure};
pub use on_request::{DefaultOnRequest, OnRequest};
pub use on_response::{DefaultOnResponse, OnResponse};
pub use panics::callback_panics;
pub use service::LoopTraceService;
