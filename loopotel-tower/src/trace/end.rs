//! When a call's span ends: when the response arrives ([`EndOnResponse`], the default), or
//! when the response's stream or body ends ([`EndOnStreamEnd`], [`EndOnBodyEnd`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use loopotel::stream::{OnEos, StreamTraceExt as _, TracedBody, TracedStream};
use loopotel::{Outcome, Run, SpanGuard};

/// Decides what the caller gets for a response, and when the call's span ends.
pub trait ResponseEnd<Res> {
    /// What the traced service returns.
    type Response;

    /// A recorded call succeeded (or was classified `ok = false`): end `span` now, or hand
    /// it to the response to end later. `run` is the call's own run when it had no
    /// enclosing one; it ends after the span.
    fn attach(
        &mut self,
        response: Res,
        span: SpanGuard,
        run: Option<Run>,
        ok: bool,
    ) -> Self::Response;

    /// A call that records nothing.
    fn passthrough(response: Res) -> Self::Response;

    /// Polls the future of a call that records nothing (overridden where the response
    /// passes through as it is, so nothing is moved twice).
    #[inline]
    fn poll_passthrough<F, E>(
        inner: Pin<&mut F>,
        task: &mut Context<'_>,
    ) -> Poll<Result<Self::Response, E>>
    where
        F: Future<Output = Result<Res, E>>,
    {
        match inner.poll(task) {
            Poll::Ready(result) => Poll::Ready(result.map(Self::passthrough)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The span ends when the response arrives.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndOnResponse;

impl<Res> ResponseEnd<Res> for EndOnResponse {
    type Response = Res;

    fn attach(&mut self, response: Res, span: SpanGuard, run: Option<Run>, ok: bool) -> Res {
        drop(span);
        finish_standalone(run, ok, if ok { "completed" } else { "error" });
        response
    }

    #[inline]
    fn passthrough(response: Res) -> Res {
        response
    }

    #[inline]
    fn poll_passthrough<F, E>(inner: Pin<&mut F>, task: &mut Context<'_>) -> Poll<Result<Res, E>>
    where
        F: Future<Output = Result<Res, E>>,
    {
        inner.poll(task)
    }
}

/// The response is a `Stream`: the span ends with it (see
/// [`super::LoopTraceLayer::end_on_stream_end`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct EndOnStreamEnd<E>(pub E);

impl<S, E> ResponseEnd<S> for EndOnStreamEnd<E>
where
    S: Stream,
    E: OnEos + Clone + Send + Sync + 'static,
{
    type Response = TracedStream<S>;

    fn attach(&mut self, stream: S, span: SpanGuard, run: Option<Run>, _: bool) -> Self::Response {
        let traced = stream.traced(span).on_eos(self.0.clone());
        match run {
            Some(run) => traced.with_run(run),
            None => traced,
        }
    }

    fn passthrough(stream: S) -> Self::Response {
        stream.traced(SpanGuard::noop())
    }
}

/// The response is an `http::Response<B>`: the span ends with its body (see
/// [`super::LoopTraceLayer::end_on_body_end`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct EndOnBodyEnd<E>(pub E);

impl<B, E> ResponseEnd<http::Response<B>> for EndOnBodyEnd<E>
where
    E: OnEos + Clone + Send + Sync + 'static,
{
    type Response = http::Response<TracedBody<B>>;

    fn attach(
        &mut self,
        response: http::Response<B>,
        span: SpanGuard,
        run: Option<Run>,
        _: bool,
    ) -> Self::Response {
        response.map(|body| {
            let traced = TracedBody::new(body, span).on_eos(self.0.clone());
            match run {
                Some(run) => traced.with_run(run),
                None => traced,
            }
        })
    }

    fn passthrough(response: http::Response<B>) -> Self::Response {
        response.map(|body| TracedBody::new(body, SpanGuard::noop()))
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
