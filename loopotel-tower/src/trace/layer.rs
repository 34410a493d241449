//! [`LoopTraceLayer`]: the `tower::Layer`.

use std::sync::Arc;

use loopotel::{LoopTracer, SharedStr, SpanKindPair};
use tower::Layer;

use super::classify::DefaultClassifier;
use super::end::{EndOnBodyEnd, EndOnResponse, EndOnStreamEnd};
use super::kind::CallKind;
use super::make_span::{DefaultMakeSpan, SpanSpec};
use super::on_failure::DefaultOnFailure;
use super::on_request::DefaultOnRequest;
use super::on_response::DefaultOnResponse;
use super::service::LoopTraceService;

/// Records every call of the wrapped service as a span of the current loop run (the
/// iteration found in the OpenTelemetry context), LTF and OpenTelemetry from one recording.
///
/// Without a current run the call is recorded as a run of its own when the layer has a
/// [`LoopTraceLayer::standalone`] tracer, and is not recorded otherwise — never a panic.
///
/// The kind's attributes ([`CallKind::attributes`]) and, for a
/// [`LoopTraceLayer::per_attempt`] layer, `loop.attempt` are on the OpenTelemetry span from
/// its creation, so a sampler can decide on them. The call's context is the caller's with
/// the call's span in it: baggage and other values the caller's context carries reach the
/// inner service.
///
/// Customise it in the tower-http style: [`MakeSpan`](super::MakeSpan) (span name and kind
/// from the request), [`OnRequest`](super::OnRequest), [`OnResponse`](super::OnResponse),
/// [`OnFailure`](super::OnFailure), a [`ClassifyResponse`](super::ClassifyResponse), and, for
/// responses that stream, [`OnEos`](loopotel::stream::OnEos) through
/// [`LoopTraceLayer::end_on_stream_end`] / [`LoopTraceLayer::end_on_body_end`].
#[derive(Clone, Debug)]
pub struct LoopTraceLayer<
    OnRequestT = DefaultOnRequest,
    OnResponseT = DefaultOnResponse,
    OnFailureT = DefaultOnFailure,
    ClassifierT = DefaultClassifier,
    MakeSpanT = DefaultMakeSpan,
    ResponseEndT = EndOnResponse,
> {
    pub(crate) kind: CallKind,
    /// The kind's span name and kinds, built once.
    pub(crate) default_span: SpanSpec,
    /// The kind's attributes, built once.
    pub(crate) default_attributes: Arc<[(&'static str, SharedStr)]>,
    pub(crate) make_span: MakeSpanT,
    pub(crate) on_request: OnRequestT,
    pub(crate) on_response: OnResponseT,
    pub(crate) on_failure: OnFailureT,
    pub(crate) classifier: ClassifierT,
    pub(crate) end: ResponseEndT,
    pub(crate) standalone: Option<LoopTracer>,
    pub(crate) per_attempt: bool,
}

impl LoopTraceLayer {
    /// Traces calls of `kind` with the default callbacks.
    pub fn new(kind: CallKind) -> Self {
        Self {
            default_span: SpanSpec {
                name: kind.span_name(),
                kinds: kind.kinds(),
            },
            default_attributes: kind.attributes().into(),
            kind,
            make_span: DefaultMakeSpan,
            on_request: DefaultOnRequest,
            on_response: DefaultOnResponse,
            on_failure: DefaultOnFailure,
            classifier: DefaultClassifier,
            end: EndOnResponse,
            standalone: None,
            per_attempt: false,
        }
    }

    /// An LLM call to `model` (`chat {model}`, OpenTelemetry kind `Client`).
    pub fn llm(model: impl Into<SharedStr>) -> Self {
        Self::new(CallKind::Llm {
            model: model.into(),
        })
    }

    /// A tool invocation (`execute_tool {name}`).
    pub fn tool(name: impl Into<SharedStr>) -> Self {
        Self::new(CallKind::Tool { name: name.into() })
    }

    /// An environment step (`loop.env.step`).
    pub fn env_step() -> Self {
        Self::new(CallKind::EnvStep)
    }

    /// Any other call.
    pub fn custom(name: impl Into<SharedStr>, kind: impl Into<SpanKindPair>) -> Self {
        Self::new(CallKind::Custom {
            name: name.into(),
            kind: kind.into(),
        })
    }
}

impl<OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
    LoopTraceLayer<OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
{
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

    /// Replaces how the span is named (and its kind chosen) from the request.
    pub fn make_span_with<T>(
        self,
        make_span: T,
    ) -> LoopTraceLayer<OnRequestT, OnResponseT, OnFailureT, ClassifierT, T, ResponseEndT> {
        self.with_callbacks(|(req, res, fail, c, _, k)| (req, res, fail, c, make_span, k))
    }

    /// Replaces the request callback.
    pub fn on_request<T>(
        self,
        on_request: T,
    ) -> LoopTraceLayer<T, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT> {
        self.with_callbacks(|(_, res, fail, c, m, k)| (on_request, res, fail, c, m, k))
    }

    /// Replaces the response callback.
    pub fn on_response<T>(
        self,
        on_response: T,
    ) -> LoopTraceLayer<OnRequestT, T, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT> {
        self.with_callbacks(|(req, _, fail, c, m, k)| (req, on_response, fail, c, m, k))
    }

    /// Replaces the failure callback.
    pub fn on_failure<T>(
        self,
        on_failure: T,
    ) -> LoopTraceLayer<OnRequestT, OnResponseT, T, ClassifierT, MakeSpanT, ResponseEndT> {
        self.with_callbacks(|(req, res, _, c, m, k)| (req, res, on_failure, c, m, k))
    }

    /// Replaces the response classifier (which decides failures from `Ok` responses).
    pub fn classify_with<T>(
        self,
        classifier: T,
    ) -> LoopTraceLayer<OnRequestT, OnResponseT, OnFailureT, T, MakeSpanT, ResponseEndT> {
        self.with_callbacks(|(req, res, fail, _, m, k)| (req, res, fail, classifier, m, k))
    }

    /// For services whose response is a `Stream` (an LLM token stream, paged results): the
    /// span stays open until the stream ends, errs or is dropped (a
    /// [`TracedStream`](loopotel::stream::TracedStream), with its `loop.stream.*`
    /// attributes), and `on_eos` ([`DefaultOnEos`](loopotel::stream::DefaultOnEos) or a
    /// closure) sees the end before the span closes.
    pub fn end_on_stream_end<E>(
        self,
        on_eos: E,
    ) -> LoopTraceLayer<
        OnRequestT,
        OnResponseT,
        OnFailureT,
        ClassifierT,
        MakeSpanT,
        EndOnStreamEnd<E>,
    > {
        self.with_callbacks(|(req, res, fail, c, m, _)| {
            (req, res, fail, c, m, EndOnStreamEnd(on_eos))
        })
    }

    /// For services returning `http::Response<B>`: the span stays open until the body ends
    /// (a [`TracedBody`](loopotel::stream::TracedBody)), and `on_eos` sees the end.
    pub fn end_on_body_end<E>(
        self,
        on_eos: E,
    ) -> LoopTraceLayer<OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, EndOnBodyEnd<E>>
    {
        self.with_callbacks(|(req, res, fail, c, m, _)| {
            (req, res, fail, c, m, EndOnBodyEnd(on_eos))
        })
    }

    /// The one place a layer is rebuilt with other callbacks (each builder method swaps one):
    /// `(on_request, on_response, on_failure, classifier, make_span, end)`.
    fn with_callbacks<OnRequest2, OnResponse2, OnFailure2, Classifier2, MakeSpan2, ResponseEnd2>(
        self,
        swap: impl FnOnce(
            (
                OnRequestT,
                OnResponseT,
                OnFailureT,
                ClassifierT,
                MakeSpanT,
                ResponseEndT,
            ),
        ) -> (
            OnRequest2,
            OnResponse2,
            OnFailure2,
            Classifier2,
            MakeSpan2,
            ResponseEnd2,
        ),
    ) -> LoopTraceLayer<OnRequest2, OnResponse2, OnFailure2, Classifier2, MakeSpan2, ResponseEnd2>
    {
        let (on_request, on_response, on_failure, classifier, make_span, end) = swap((
            self.on_request,
            self.on_response,
            self.on_failure,
            self.classifier,
            self.make_span,
            self.end,
        ));
        LoopTraceLayer {
            kind: self.kind,
            default_span: self.default_span,
            default_attributes: self.default_attributes,
            make_span,
            on_request,
            on_response,
            on_failure,
            classifier,
            end,
            standalone: self.standalone,
            per_attempt: self.per_attempt,
        }
    }
}

impl<
    S,
    OnRequestT: Clone,
    OnResponseT: Clone,
    OnFailureT: Clone,
    ClassifierT: Clone,
    MakeSpanT: Clone,
    ResponseEndT: Clone,
> Layer<S>
    for LoopTraceLayer<OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
{
    type Service = LoopTraceService<
        S,
        OnRequestT,
        OnResponseT,
        OnFailureT,
        ClassifierT,
        MakeSpanT,
        ResponseEndT,
    >;

    fn layer(&self, inner: S) -> Self::Service {
        LoopTraceService {
            inner,
            layer: self.clone(),
        }
    }
}
