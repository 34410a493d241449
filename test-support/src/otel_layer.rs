//! The baseline the Tower layer is measured against (its bench and its allocation gate): a
//! hand-written layer over the bare OpenTelemetry SDK that does what `LoopTraceLayer` does
//! for OpenTelemetry — a span with the same name and attributes, the call and every poll
//! inside the span's context, the span ended on completion — and nothing else.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use opentelemetry::KeyValue;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use opentelemetry_sdk::trace::SdkTracer;
use tower::{Layer, Service};

/// Wraps a service in [`OtelSpan`]: one `execute_tool echo` span per call.
#[derive(Clone, Debug)]
pub struct OtelSpanLayer(pub SdkTracer);

impl<S> Layer<S> for OtelSpanLayer {
    type Service = OtelSpan<S>;
    fn layer(&self, inner: S) -> OtelSpan<S> {
        OtelSpan(inner, self.0.clone())
    }
}

/// The service [`OtelSpanLayer`] produces.
#[derive(Clone, Debug)]
pub struct OtelSpan<S>(S, SdkTracer);

impl<S: Service<R>, R> Service<R> for OtelSpan<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = OtelSpanFuture<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> Self::Future {
        let span = self
            .1
            .span_builder("execute_tool echo")
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", "echo"),
            ])
            .start(&self.1);
        let cx = opentelemetry::Context::current_with_span(span);
        let inner = {
            let _guard = cx.clone().attach();
            self.0.call(req)
        };
        OtelSpanFuture { inner, cx }
    }
}

pin_project_lite::pin_project! {
    /// The future of an [`OtelSpan`] call: polls inside the span's context, ends the span
    /// when ready.
    pub struct OtelSpanFuture<F> {
        #[pin]
        inner: F,
        cx: opentelemetry::Context,
    }
}

impl<F: Future> Future for OtelSpanFuture<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = {
            let _guard = this.cx.clone().attach();
            this.inner.poll(task)
        };
        if polled.is_ready() {
            this.cx.span().end();
        }
        polled
    }
}
