//! [`LoopTraceService`]: the `tower::Service`.

use std::task::{Context as TaskContext, Poll};

use loopotel::context::LoopScope;
use loopotel::{AttrValue, SpanGuard, Timestamp};
use opentelemetry::Context;
use tower::Service;

use super::classify::ClassifyResponse;
use super::end::ResponseEnd;
use super::future::{CallState, RecordedBox, ResponseFuture};
use super::layer::LoopTraceLayer;
use super::make_span::MakeSpan;
use super::on_failure::OnFailure;
use super::on_request::OnRequest;
use super::on_response::OnResponse;
use super::panics::guarded;

/// The service [`LoopTraceLayer`] produces.
#[derive(Clone, Debug)]
pub struct LoopTraceService<
    S,
    OnRequestT,
    OnResponseT,
    OnFailureT,
    ClassifierT,
    MakeSpanT,
    ResponseEndT,
> {
    pub(crate) inner: S,
    pub(crate) layer:
        LoopTraceLayer<OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>,
}

impl<S, OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
    LoopTraceService<S, OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
{
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT> Service<Req>
    for LoopTraceService<
        S,
        OnRequestT,
        OnResponseT,
        OnFailureT,
        ClassifierT,
        MakeSpanT,
        ResponseEndT,
    >
where
    S: Service<Req>,
    S::Error: std::fmt::Display + 'static,
    OnRequestT: OnRequest<Req>,
    OnResponseT: OnResponse<S::Response> + Clone,
    OnFailureT: OnFailure<S::Response, S::Error> + Clone,
    ClassifierT: ClassifyResponse<S::Response> + Clone,
    MakeSpanT: MakeSpan<Req>,
    ResponseEndT: ResponseEnd<S::Response> + Clone,
{
    type Response = ResponseEndT::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let in_run = loopotel::context::is_recording();
        if !in_run && self.layer.standalone.is_none() {
            // Nothing to record: no span, no context, no clock read.
            return ResponseFuture::passthrough(self.inner.call(request));
        }
        // The recording path returns only its allocation, so each path builds the future
        // in place (one returned whole through both paths was copied where they join: a
        // disabled layer cost 1.66× a pass-through layer, and 1.3× without the copy).
        ResponseFuture::recorded(self.call_recorded(request, in_run))
    }
}

impl<S, OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
    LoopTraceService<S, OnRequestT, OnResponseT, OnFailureT, ClassifierT, MakeSpanT, ResponseEndT>
{
    /// Starts the call's span, and calls the inner service inside the call's context.
    fn call_recorded<Req>(
        &mut self,
        request: Req,
        in_run: bool,
    ) -> RecordedBox<S::Future, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
    where
        S: Service<Req>,
        OnRequestT: OnRequest<Req>,
        OnResponseT: Clone,
        OnFailureT: Clone,
        ClassifierT: Clone,
        MakeSpanT: MakeSpan<Req>,
        ResponseEndT: Clone,
    {
        let default = &self.layer.default_span;
        let make_span = &mut self.layer.make_span;
        let spec =
            guarded(|| make_span.make_span(&request, default)).unwrap_or_else(|| default.clone());
        // Inside a run: a child of the current iteration. Outside: a run of its own. One
        // look at the context: the scope starts the span and numbers the attempt.
        let standalone = match &self.layer.standalone {
            Some(tracer) if !in_run => Some(tracer.run("standalone-call").start()),
            _ => None,
        };
        let current = match &standalone {
            Some(run) => run.context(),
            None => Context::current(),
        };
        let mut span = match current.get::<LoopScope>() {
            Some(scope) => {
                // The kind's attributes and the attempt go to the span at its start
                // (samplers see them).
                let attempt = self.layer.per_attempt.then(|| {
                    (
                        "loop.attempt",
                        AttrValue::from(scope.next_attempt_in(&current)),
                    )
                });
                let kind = self
                    .layer
                    .default_attributes
                    .iter()
                    .map(|(k, v)| (*k, AttrValue::Str(v.clone())));
                scope.start_span_in(&current, spec.name, spec.kinds, kind.chain(attempt))
            }
            None => SpanGuard::noop(),
        };
        // The callbacks' latency counts from the span's start (no clock read of its own).
        let started = span.start_time().unwrap_or_else(Timestamp::now);
        if span.is_recording() {
            let on_request = &mut self.layer.on_request;
            guarded(|| on_request.on_request(&request, &mut span));
        }
        // The call's context is the caller's (its baggage and other values reach the
        // service) with the call's span in it.
        let cx = match &standalone {
            Some(_) => span.context(),
            None => span.context_on(&current),
        };
        drop(current);
        // Work the inner service does in `call` itself also sees the span.
        let inner = {
            let _guard = cx.clone().attach();
            self.inner.call(request)
        };
        RecordedBox::new(
            inner,
            CallState {
                span,
                standalone,
                cx,
                started,
                on_response: self.layer.on_response.clone(),
                on_failure: self.layer.on_failure.clone(),
                classifier: self.layer.classifier.clone(),
                end: self.layer.end.clone(),
                inner_panicked: Default::default(),
                completed: false,
            },
        )
    }
}
