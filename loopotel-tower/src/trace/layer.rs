//! [`LoopTraceLayer`]: the `tower::Layer`.

use loopotel::{LoopTracer, SpanKinds, Text};
use tower::Layer;

use super::callbacks::{DefaultClassifier, DefaultOnFailure, DefaultOnRequest, DefaultOnResponse};
use super::kind::CallKind;
use super::service::LoopTrace;

/// Records every call of the wrapped service as a span of the current loop run (the
/// iteration found in the OpenTelemetry context), LTF and OpenTelemetry from one recording.
///
/// Without a current run the call is recorded as a run of its own when the layer has a
/// [`LoopTraceLayer::standalone`] tracer, and is not recorded otherwise — never a panic.
#[derive(Clone, Debug)]
pub struct LoopTraceLayer<
    OnReq = DefaultOnRequest,
    OnRes = DefaultOnResponse,
    OnFail = DefaultOnFailure,
    C = DefaultClassifier,
> {
    pub(crate) kind: CallKind,
    /// `kind.span_name()`, built once.
    pub(crate) span_name: Text,
    pub(crate) on_request: OnReq,
    pub(crate) on_response: OnRes,
    pub(crate) on_failure: OnFail,
    pub(crate) classifier: C,
    pub(crate) standalone: Option<LoopTracer>,
    pub(crate) per_attempt: bool,
}

impl LoopTraceLayer {
    /// Traces calls of `kind` with the default callbacks.
    pub fn new(kind: CallKind) -> Self {
        Self {
            span_name: kind.span_name(),
            kind,
            on_request: DefaultOnRequest,
            on_response: DefaultOnResponse,
            on_failure: DefaultOnFailure,
            classifier: DefaultClassifier,
            standalone: None,
            per_attempt: false,
        }
    }

    /// An LLM call to `model` (`chat {model}`, OpenTelemetry kind `Client`).
    pub fn llm(model: impl Into<Text>) -> Self {
        Self::new(CallKind::Llm {
            model: model.into(),
        })
    }

    /// A tool invocation (`execute_tool {name}`).
    pub fn tool(name: impl Into<Text>) -> Self {
        Self::new(CallKind::Tool { name: name.into() })
    }

    /// An environment step (`loop.env.step`).
    pub fn env_step() -> Self {
        Self::new(CallKind::EnvStep)
    }

    /// Any other call.
    pub fn custom(name: impl Into<Text>, kind: impl Into<SpanKinds>) -> Self {
        Self::new(CallKind::Custom {
            name: name.into(),
            kind: kind.into(),
        })
    }
}

impl<OnReq, OnRes, OnFail, C> LoopTraceLayer<OnReq, OnRes, OnFail, C> {
    /// Records calls made outside any run as runs of their own on `tracer`.
    pub fn standalone(mut self, tracer: LoopTracer) -> Self {
        self.standalone = Some(tracer);
        self
    }

    /// Marks this layer as the per-attempt one, for stacks with a retry in between:
    /// `logical layer → Retry → per-attempt layer → service`. Each attempt becomes a span
    /// with `loop.attempt` (1, 2, …) under the logical call's span.
    pub fn per_attempt(mut self) -> Self {
        self.per_attempt = true;
        self
    }

    /// Replaces the request callback.
    pub fn on_request<T>(self, on_request: T) -> LoopTraceLayer<T, OnRes, OnFail, C> {
        LoopTraceLayer {
            kind: self.kind,
            span_name: self.span_name,
            on_request,
            on_response: self.on_response,
            on_failure: self.on_failure,
            classifier: self.classifier,
            standalone: self.standalone,
            per_attempt: self.per_attempt,
        }
    }

    /// Replaces the response callback.
    pub fn on_response<T>(self, on_response: T) -> LoopTraceLayer<OnReq, T, OnFail, C> {
        LoopTraceLayer {
            kind: self.kind,
            span_name: self.span_name,
            on_request: self.on_request,
            on_response,
            on_failure: self.on_failure,
            classifier: self.classifier,
            standalone: self.standalone,
            per_attempt: self.per_attempt,
        }
    }

    /// Replaces the failure callback.
    pub fn on_failure<T>(self, on_failure: T) -> LoopTraceLayer<OnReq, OnRes, T, C> {
        LoopTraceLayer {
            kind: self.kind,
            span_name: self.span_name,
            on_request: self.on_request,
            on_response: self.on_response,
            on_failure,
            classifier: self.classifier,
            standalone: self.standalone,
            per_attempt: self.per_attempt,
        }
    }

    /// Replaces the response classifier (which decides failures from `Ok` responses).
    pub fn classify<T>(self, classifier: T) -> LoopTraceLayer<OnReq, OnRes, OnFail, T> {
        LoopTraceLayer {
            kind: self.kind,
            span_name: self.span_name,
            on_request: self.on_request,
            on_response: self.on_response,
            on_failure: self.on_failure,
            classifier,
            standalone: self.standalone,
            per_attempt: self.per_attempt,
        }
    }
}

impl<S, OnReq: Clone, OnRes: Clone, OnFail: Clone, C: Clone> Layer<S>
    for LoopTraceLayer<OnReq, OnRes, OnFail, C>
{
    type Service = LoopTrace<S, OnReq, OnRes, OnFail, C>;

    fn layer(&self, inner: S) -> Self::Service {
        LoopTrace {
            inner,
            layer: self.clone(),
        }
    }
}
