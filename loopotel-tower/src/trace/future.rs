//! [`ResponseFuture`]: ends the call's span exactly once — on completion, on error, or when
//! the caller drops it (timeout, `select!`, cancellation: `loop.end_reason = cancelled`).

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use loopotel::{Run, SpanGuard, Timestamp};
use opentelemetry::Context;
use pin_project_lite::pin_project;

use super::classify::{ClassifyResponse, ResponseClass};
use super::end::{EndOnResponse, ResponseEnd, finish_standalone};
use super::on_failure::{Failure, OnFailure};
use super::on_response::OnResponse;
use super::panics::guarded;

pub(crate) struct CallState<OnResponseT, OnFailureT, ClassifierT, ResponseEndT> {
    pub(crate) span: SpanGuard,
    pub(crate) standalone: Option<Run>,
    pub(crate) cx: Context,
    /// The span's start (the callbacks' latency counts from it).
    pub(crate) started: Timestamp,
    pub(crate) on_response: OnResponseT,
    pub(crate) on_failure: OnFailureT,
    pub(crate) classifier: ClassifierT,
    pub(crate) end: ResponseEndT,
    /// Executors catch a panic and drop the future afterwards, when nothing is unwinding any
    /// more: the panic is noticed in `poll` itself.
    pub(crate) inner_panicked: Cell<bool>,
    /// Set once the span was ended by `poll`.
    pub(crate) completed: bool,
}

/// Sets its flag if dropped while a panic unwinds out of the inner service's `poll`.
struct PanicDetector<'a>(&'a Cell<bool>);

impl Drop for PanicDetector<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.set(true);
        }
    }
}

pin_project! {
    /// The response future of [`super::LoopTraceService`]. It has no `Drop` of its own: a call that
    /// records nothing is the inner future itself (where the inner future has a spare bit
    /// pattern, as most do, not even a byte larger); a recorded call moves the inner future
    /// next to its state in one allocation, and that state ends the span when dropped
    /// unfinished.
    pub struct ResponseFuture<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT = EndOnResponse> {
        #[pin]
        call: Call<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>,
    }
}

pin_project! {
    #[project = CallProj]
    enum Call<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT> {
        Passthrough { #[pin] inner: F },
        Recorded { call: RecordedBox<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT> },
    }
}

/// A recorded call, in its own allocation. It is freed out of line, so the future's drop
/// glue stays small enough to inline, and for a call that recorded nothing it compiles
/// away. (Empty only while being dropped.)
pub(crate) struct RecordedBox<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>(
    Option<PinnedCall<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>>,
);

type PinnedCall<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT> =
    Pin<Box<RecordedCall<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>>>;

impl<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT> Drop
    for RecordedBox<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
{
    #[inline]
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            free_recorded(call);
        }
    }
}

#[inline(never)]
fn free_recorded<T>(call: Pin<Box<T>>) {
    drop(call);
}

pin_project! {
    struct RecordedCall<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT> {
        #[pin]
        inner: F,
        // `None` once the span was ended by `poll`.
        state: Option<CallState<OnResponseT, OnFailureT, ClassifierT, ResponseEndT>>,
    }
}

impl<OnResponseT, OnFailureT, ClassifierT, ResponseEndT> Drop
    for CallState<OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
{
    /// A call dropped before it completed (timeout, `select!`, cancellation), or whose
    /// service panicked: the span ends here with the reason and the elapsed time.
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let ms = Timestamp::now()
            .saturating_since(self.started)
            .as_secs_f64()
            * 1000.0;
        self.span.set_attribute("loop.elapsed_ms", ms);
        let reason = if self.inner_panicked.get() || std::thread::panicking() {
            // The inner service panicked; the panic itself goes on to the caller.
            self.span.record_error("panic", "the service panicked");
            "panic"
        } else {
            self.span.set_attribute("loop.cancelled", true);
            "cancelled"
        };
        self.span
            .set_attribute(loopotel::semconv::LOOP_END_REASON, reason);
        // The span ends as the fields drop; a standalone run ends after it.
        let standalone = self.standalone.take();
        let span = std::mem::replace(&mut self.span, SpanGuard::noop());
        drop(span);
        finish_standalone(standalone, false, reason);
    }
}

impl<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
    ResponseFuture<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
{
    /// A call that records nothing: polls the inner future and nothing else.
    #[inline]
    pub(crate) fn passthrough(inner: F) -> Self {
        Self {
            call: Call::Passthrough { inner },
        }
    }

    /// A recorded call.
    #[inline]
    pub(crate) fn recorded(
        call: RecordedBox<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>,
    ) -> Self {
        Self {
            call: Call::Recorded { call },
        }
    }
}

impl<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
    RecordedBox<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
{
    /// Moves the inner future next to its state, in one allocation.
    pub(crate) fn new(
        inner: F,
        state: CallState<OnResponseT, OnFailureT, ClassifierT, ResponseEndT>,
    ) -> Self {
        Self(Some(Box::pin(RecordedCall {
            inner,
            state: Some(state),
        })))
    }
}

/// A low-cardinality `error.type` for a service error.
fn error_type<E: 'static>(err: &E) -> String {
    if let Some(boxed) = (err as &dyn Any).downcast_ref::<tower::BoxError>() {
        if boxed.is::<tower::timeout::error::Elapsed>() {
            return "timeout".to_owned();
        }
        return "error".to_owned();
    }
    loopotel::semconv::error_type_of::<E>()
}

impl<F, Res, E, OnResponseT, OnFailureT, ClassifierT, ResponseEndT> Future
    for ResponseFuture<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>
where
    F: Future<Output = Result<Res, E>>,
    E: std::fmt::Display + 'static,
    OnResponseT: OnResponse<Res>,
    OnFailureT: OnFailure<Res, E>,
    ClassifierT: ClassifyResponse<Res>,
    ResponseEndT: ResponseEnd<Res>,
{
    type Output = Result<ResponseEndT::Response, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().call.project() {
            CallProj::Passthrough { inner } => ResponseEndT::poll_passthrough(inner, task),
            CallProj::Recorded { call } => {
                let mut out = Poll::Pending;
                // Empty only while being dropped: never polled.
                if let Some(call) = call.0.as_mut() {
                    poll_recorded(call.as_mut(), task, &mut out);
                }
                out
            }
        }
    }
}

/// The recording half of `poll`, out of line. Its output goes straight to `out`: returned,
/// it would be copied where the two halves of `poll` join.
#[inline(never)]
fn poll_recorded<F, Res, E, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>(
    call: Pin<&mut RecordedCall<F, OnResponseT, OnFailureT, ClassifierT, ResponseEndT>>,
    task: &mut TaskContext<'_>,
    out: &mut Poll<Result<ResponseEndT::Response, E>>,
) where
    F: Future<Output = Result<Res, E>>,
    E: std::fmt::Display + 'static,
    OnResponseT: OnResponse<Res>,
    OnFailureT: OnFailure<Res, E>,
    ClassifierT: ClassifyResponse<Res>,
    ResponseEndT: ResponseEnd<Res>,
{
    let call = call.project();
    let (inner, state_slot) = (call.inner, call.state);
    *out = 'polled: {
        let result = {
            let Some(state) = state_slot.as_ref() else {
                break 'polled ResponseEndT::poll_passthrough(inner, task);
            };
            let _guard = state.cx.clone().attach();
            let detector = PanicDetector(&state.inner_panicked);
            let polled = inner.poll(task);
            std::mem::forget(detector);
            match polled {
                Poll::Pending => break 'polled Poll::Pending,
                Poll::Ready(result) => result,
            }
        };
        let Some(mut state) = state_slot.take() else {
            break 'polled Poll::Ready(result.map(ResponseEndT::passthrough));
        };
        let latency = Timestamp::now().saturating_since(state.started);
        let span = &mut state.span;
        let ok = match &result {
            Ok(response) => {
                let classifier = &mut state.classifier;
                let class = guarded(|| classifier.classify(response));
                match class.unwrap_or(ResponseClass::Success) {
                    ResponseClass::Success => {
                        let on_response = &mut state.on_response;
                        guarded(|| on_response.on_response(response, latency, span));
                        true
                    }
                    ResponseClass::Failure(class) => {
                        span.record_error(
                            class.error_type.clone(),
                            "response classified as a failure",
                        );
                        let on_failure = &mut state.on_failure;
                        guarded(|| {
                            on_failure.on_failure(
                                Failure::Response(response, &class),
                                latency,
                                span,
                            )
                        });
                        false
                    }
                }
            }
            Err(err) => {
                span.record_error(error_type(err), err.to_string());
                let on_failure = &mut state.on_failure;
                guarded(|| on_failure.on_failure(Failure::Error(err), latency, span));
                false
            }
        };
        state.completed = true;
        let standalone = state.standalone.take();
        let span = std::mem::replace(&mut state.span, SpanGuard::noop());
        Poll::Ready(match result {
            // The span ends now, or with the response's stream or body.
            Ok(response) => Ok(state.end.attach(response, span, standalone, ok)),
            Err(err) => {
                drop(span);
                finish_standalone(standalone, false, "error");
                Err(err)
            }
        })
    }
}
