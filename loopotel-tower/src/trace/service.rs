//! [`LoopTrace`]: the `tower::Service`.

use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use loopotel::context::start_span;
use loopotel::{Outcome, Run};
use tower::Service;

use super::callbacks::{ClassifyResponse, MakeSpan, OnFailure, OnRequest, OnResponse, guarded};
use super::end::ResponseEnd;
use super::future::{CallState, ResponseFuture};
use super::layer::LoopTraceLayer;

/// The service [`LoopTraceLayer`] produces.
#[derive(Clone, Debug)]
pub struct LoopTrace<S, OnReq, OnRes, OnFail, C, M, K> {
    pub(crate) inner: S,
    pub(crate) layer: LoopTraceLayer<OnReq, OnRes, OnFail, C, M, K>,
}

impl<S, OnReq, OnRes, OnFail, C, M, K> LoopTrace<S, OnReq, OnRes, OnFail, C, M, K> {
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

impl<S, Req, OnReq, OnRes, OnFail, C, M, K> Service<Req>
    for LoopTrace<S, OnReq, OnRes, OnFail, C, M, K>
where
    S: Service<Req>,
    S::Error: std::fmt::Display + 'static,
    OnReq: OnRequest<Req>,
    OnRes: OnResponse<S::Response> + Clone,
    OnFail: OnFailure<S::Response, S::Error> + Clone,
    C: ClassifyResponse<S::Response> + Clone,
    M: MakeSpan<Req>,
    K: ResponseEnd<S::Response> + Clone,
{
    type Response = K::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, OnRes, OnFail, C, K>;

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
        self.call_recorded(request, in_run)
    }
}

impl<S, OnReq, OnRes, OnFail, C, M, K> LoopTrace<S, OnReq, OnRes, OnFail, C, M, K> {
    fn call_recorded<Req>(
        &mut self,
        request: Req,
        in_run: bool,
    ) -> ResponseFuture<S::Future, OnRes, OnFail, C, K>
    where
        S: Service<Req>,
        OnReq: OnRequest<Req>,
        OnRes: Clone,
        OnFail: Clone,
        C: Clone,
        M: MakeSpan<Req>,
        K: Clone,
    {
        let started = Instant::now();
        let default = &self.layer.default_span;
        let make_span = &mut self.layer.make_span;
        let spec =
            guarded(|| make_span.make_span(&request, default)).unwrap_or_else(|| default.clone());
        // Inside a run: a child of the current iteration. Outside: a run of its own.
        let (mut span, standalone): (_, Option<Run>) = match &self.layer.standalone {
            Some(tracer) if !in_run => {
                let run = tracer.run("standalone-call").start();
                let span = run.span(spec.name, spec.kinds);
                (span, Some(run))
            }
            _ => (start_span(spec.name, spec.kinds), None),
        };
        if span.is_recording() {
            for (k, v) in self.layer.default_attributes.iter() {
                span.set_attribute(*k, v.clone());
            }
            if self.layer.per_attempt {
                let attempt = loopotel::context::next_attempt().unwrap_or(1);
                span.set_attribute("loop.attempt", attempt);
            }
            let on_request = &mut self.layer.on_request;
            guarded(|| on_request.on_request(&request, &mut span));
        }
        let cx = span.context();
        // Work the inner service does in `call` itself also sees the span.
        let inner = {
            let _guard = cx.clone().attach();
            self.inner.call(request)
        };
        ResponseFuture::new(
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

/// Ends a standalone run with the call's outcome.
pub(crate) fn finish_standalone(run: Option<Run>, ok: bool, reason: &str) {
    if let Some(run) = run {
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        run.finish(outcome, reason);
    }
}
