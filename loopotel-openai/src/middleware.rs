//! HTTP level (feature `middleware`): every HTTP attempt a call makes — the first and each
//! retry — becomes a `POST` client span under the call's GenAI span, and carries that
//! attempt's `traceparent`.
//!
//! async-openai's `Client::with_http_service` replaces its built-in retry layer; the stack
//! [`traced_http_service`] builds puts it back: `OpenAIRetryLayer` (429/5xx, 3 retries,
//! `Retry-After`) → [`HttpAttemptLayer`] → reqwest. Each attempt span records
//! `http.request.method`, `server.address`/`server.port`, `url.full`,
//! `http.request.resend_count` (retries only), `http.response.status_code`, a `Retry-After`
//! header as `http.response.header.retry-after`, and `error.type` (the status code, or the
//! transport error). Request headers are never recorded (the `Authorization` header
//! included).
//!
//! ```no_run
//! use async_openai::config::OpenAIConfig;
//! use loopotel_openai::TracedClient;
//! use loopotel_openai::middleware::traced_http_service;
//!
//! let config = OpenAIConfig::new().with_api_base("http://127.0.0.1:8080/v1");
//! let client = async_openai::Client::with_config(config)
//!     .with_http_service(traced_http_service(reqwest::Client::new()));
//! let client = TracedClient::new(client);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_openai::error::OpenAIError;
use async_openai::middleware::retry::{OpenAIRetry, OpenAIRetryLayer};
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use loopotel::propagation::{HeaderCarrier, inject};
use loopotel::{AttrValue, SpanGuard, SpanKind};
use opentelemetry::context::FutureExt as _;
use tower::{Layer, Service, ServiceBuilder};

use crate::genai::Server;

/// async-openai's retry layer over [`HttpAttemptLayer`] over reqwest: install it with
/// `Client::with_http_service`.
pub fn traced_http_service(http: reqwest::Client) -> OpenAIRetry<HttpAttempts<ReqwestService>> {
    ServiceBuilder::new()
        .layer(OpenAIRetryLayer::default())
        .layer(HttpAttemptLayer::new())
        .service(ReqwestService::new(http))
}

/// Records each HTTP attempt as a span and injects its `traceparent` (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpAttemptLayer;

impl HttpAttemptLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for HttpAttemptLayer {
    type Service = HttpAttempts<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpAttempts { inner }
    }
}

/// The service of [`HttpAttemptLayer`].
#[derive(Debug, Clone)]
pub struct HttpAttempts<S> {
    inner: S,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

impl<S> Service<HttpRequestFactory> for HttpAttempts<S>
where
    S: Service<HttpRequestFactory, Response = reqwest::Response, Error = OpenAIError>,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> BoxFuture {
        if !loopotel::context::is_recording() {
            return Box::pin(self.inner.call(request));
        }
        let attempt = loopotel::context::next_attempt().unwrap_or(1);
        // Method and resend count on the span from its creation (sampling-relevant).
        let resend = (attempt > 1).then(|| {
            (
                "http.request.resend_count",
                AttrValue::from(attempt as i64 - 1),
            )
        });
        let mut span = loopotel::context::start_span_with_attributes(
            "POST",
            SpanKind::Worker.client(),
            std::iter::once(("http.request.method", AttrValue::from("POST"))).chain(resend),
        );
        let cx = span.context();
        // Every build of the request (this attempt's) carries the attempt span's context.
        let inject_cx = cx.clone();
        let factory = HttpRequestFactory::new(move || {
            let request = request.clone();
            let cx = inject_cx.clone();
            async move {
                let mut built = request.build().await?;
                inject(&cx, &mut HeaderCarrier(built.headers_mut()));
                Ok(built)
            }
        });
        let response = self.inner.call(factory).with_context(cx);
        Box::pin(async move {
            let result = response.await;
            record_attempt(&mut span, &result);
            result
        })
    }
}

fn record_attempt(span: &mut SpanGuard, result: &Result<reqwest::Response, OpenAIError>) {
    match result {
        Ok(response) => {
            let url = response.url();
            let server = Server::from_api_base(url.as_str());
            if let Some(a) = server.address {
                span.set_attribute("server.address", a);
            }
            if let Some(p) = server.port {
                span.set_attribute("server.port", i64::from(p));
            }
            let mut full = url.clone();
            full.set_query(None);
            span.set_attribute("url.full", full.to_string());
            let status = response.status().as_u16();
            span.set_attribute("http.response.status_code", i64::from(status));
            if let Some(v) = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
            {
                span.set_attribute("http.response.header.retry-after", v.to_owned());
            }
            if status >= 400 {
                span.record_error(status.to_string(), format!("HTTP {status}"));
            }
        }
        Err(e) => span.record_error(
            crate::genai::error_type(e),
            crate::telemetry::scrub_secrets(&e.to_string()),
        ),
    }
}
