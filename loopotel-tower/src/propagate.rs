//! W3C trace context over HTTP for Tower services: inject on the client side, extract on the
//! server side (`loopotel::propagation` underneath).
//!
//! ```
//! use http::{Request, Response};
//! use loopotel::{LoopTracer, Outcome};
//! use loopotel_tower::LoopTraceLayer;
//! use loopotel_tower::propagate::{ExtractTraceContextLayer, InjectTraceContextLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Server: a run started while handling the request joins the caller's trace.
//! let server = ServiceBuilder::new()
//!     .layer(ExtractTraceContextLayer::new())
//!     .service(service_fn(|_req: Request<String>| async move {
//!         let doc = LoopTracer::new().run("server-loop").start().finish(Outcome::Success, "ok");
//!         Ok::<_, std::convert::Infallible>(Response::new(doc.trace_id.to_string()))
//!     }));
//! // Client: the tool call's span travels in `traceparent`.
//! let client = ServiceBuilder::new()
//!     .layer(LoopTraceLayer::tool("remote"))
//!     .layer(InjectTraceContextLayer::new())
//!     .service(server);
//!
//! let run = LoopTracer::new().run("client-loop").start();
//! let it = run.iteration(1);
//! # use opentelemetry::context::FutureExt as _;
//! let response = client
//!     .oneshot(Request::new(String::new()))
//!     .with_context(it.context())
//!     .await
//!     .unwrap();
//! assert_eq!(response.body(), &run.trace_id().to_string());
//! # });
//! ```

use std::task::{Context as TaskContext, Poll};

use loopotel::propagation::{HeaderCarrier, HeaderExtractor, W3cPropagator, inject_current};
use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::propagation::TextMapPropagator as _;
use tower::{Layer, Service};

/// Writes the current context's `traceparent` (and non-empty `tracestate`) into every
/// outgoing request. Put it inside a `LoopTraceLayer` so the call's own span is the parent.
#[derive(Clone, Copy, Debug, Default)]
pub struct InjectTraceContextLayer;

impl InjectTraceContextLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for InjectTraceContextLayer {
    type Service = InjectTraceContext<S>;
    fn layer(&self, inner: S) -> Self::Service {
        InjectTraceContext { inner }
    }
}

/// See [`InjectTraceContextLayer`].
#[derive(Clone, Debug)]
pub struct InjectTraceContext<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for InjectTraceContext<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        inject_current(&mut HeaderCarrier(request.headers_mut()));
        self.inner.call(request)
    }
}

/// Continues the caller's trace: the inner service runs in the context extracted from the
/// request's `traceparent`/`tracestate` (and `baggage` with [`Self::with_baggage`]). Runs
/// started while handling the request join that trace. A missing or hostile header leaves the
/// context as it was (a new root).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtractTraceContextLayer {
    propagator: W3cPropagator,
}

impl ExtractTraceContextLayer {
    /// Trace context only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also extract W3C Baggage (opt-in: it may carry user data).
    pub fn with_baggage(mut self) -> Self {
        self.propagator = self.propagator.with_baggage();
        self
    }
}

impl<S> Layer<S> for ExtractTraceContextLayer {
    type Service = ExtractTraceContext<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ExtractTraceContext {
            inner,
            propagator: self.propagator,
        }
    }
}

/// See [`ExtractTraceContextLayer`].
#[derive(Clone, Debug)]
pub struct ExtractTraceContext<S> {
    inner: S,
    propagator: W3cPropagator,
}

impl<S, B> Service<http::Request<B>> for ExtractTraceContext<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = WithContext<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let cx = opentelemetry::Context::map_current(|current| {
            self.propagator
                .extract_with_context(current, &HeaderExtractor(request.headers()))
        });
        let future = {
            let _guard = cx.clone().attach();
            self.inner.call(request)
        };
        future.with_context(cx)
    }
}
