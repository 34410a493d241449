//! Customisation in the tower-http style: traits with `Default*` implementations, and
//! closures accepted wherever a trait is.
//!
//! Callbacks run inside `catch_unwind`: a panicking callback is counted
//! ([`callback_panics`]) and skipped, never passed on to the caller.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use loopotel::{SpanGuard, SpanKinds, Text};

static CALLBACK_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many user callbacks panicked (caught and skipped) in this process.
pub fn callback_panics() -> u64 {
    CALLBACK_PANICS.load(Ordering::Relaxed)
}

/// Runs a user callback; a panic is caught and counted.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            CALLBACK_PANICS.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// The span a call starts: its name and kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanSpec {
    /// The span name.
    pub name: Text,
    /// The LTF and OpenTelemetry span kinds.
    pub kinds: SpanKinds,
}

/// Chooses the span's name and kind from the request, before the span starts (for example
/// `chat {model}` with the model the request asks for).
pub trait MakeSpan<Req> {
    /// The span to start; `default` is the layer's (from its [`super::CallKind`]).
    fn make_span(&mut self, request: &Req, default: &SpanSpec) -> SpanSpec;
}

/// The layer's default span name and kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultMakeSpan;

impl<Req> MakeSpan<Req> for DefaultMakeSpan {
    #[inline]
    fn make_span(&mut self, _: &Req, default: &SpanSpec) -> SpanSpec {
        default.clone()
    }
}

impl<Req, F: FnMut(&Req, &SpanSpec) -> SpanSpec> MakeSpan<Req> for F {
    fn make_span(&mut self, request: &Req, default: &SpanSpec) -> SpanSpec {
        self(request, default)
    }
}

/// Called with the request when the span has started: add request attributes.
pub trait OnRequest<Req> {
    /// Records what the request says.
    fn on_request(&mut self, request: &Req, span: &mut SpanGuard);
}

/// Records nothing more.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultOnRequest;

impl<Req> OnRequest<Req> for DefaultOnRequest {
    fn on_request(&mut self, _: &Req, _: &mut SpanGuard) {}
}

impl<Req, F: FnMut(&Req, &mut SpanGuard)> OnRequest<Req> for F {
    fn on_request(&mut self, request: &Req, span: &mut SpanGuard) {
        self(request, span)
    }
}

/// Called with a successful response (after classification): add response attributes,
/// tokens, cost.
pub trait OnResponse<Res> {
    /// Records what the response says.
    fn on_response(&mut self, response: &Res, latency: Duration, span: &mut SpanGuard);
}

/// Records nothing more (the span's duration is the latency).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultOnResponse;

impl<Res> OnResponse<Res> for DefaultOnResponse {
    fn on_response(&mut self, _: &Res, _: Duration, _: &mut SpanGuard) {}
}

impl<Res, F: FnMut(&Res, Duration, &mut SpanGuard)> OnResponse<Res> for F {
    fn on_response(&mut self, response: &Res, latency: Duration, span: &mut SpanGuard) {
        self(response, latency, span)
    }
}

/// What failed: the inner service's error, or a response the classifier called a failure.
#[derive(Debug)]
pub enum Failure<'a, Res, E> {
    /// The inner service returned an error.
    Error(&'a E),
    /// The response was classified as a failure, with this `error.type`.
    Response(&'a Res, &'a str),
}

/// Called on failure, after `error.type` and the `exception` event are recorded.
pub trait OnFailure<Res, E> {
    /// Records more about the failure.
    fn on_failure(&mut self, failure: Failure<'_, Res, E>, latency: Duration, span: &mut SpanGuard);
}

/// Records `error.type` (the error's type name for service errors) and an `exception`
/// event with the error's `Display` text — nothing more.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultOnFailure;

impl<Res, E> OnFailure<Res, E> for DefaultOnFailure {
    fn on_failure(&mut self, _: Failure<'_, Res, E>, _: Duration, _: &mut SpanGuard) {}
}

impl<Res, E, F: FnMut(Failure<'_, Res, E>, Duration, &mut SpanGuard)> OnFailure<Res, E> for F {
    fn on_failure(
        &mut self,
        failure: Failure<'_, Res, E>,
        latency: Duration,
        span: &mut SpanGuard,
    ) {
        self(failure, latency, span)
    }
}

/// Decides whether a response is a success (`Ok`) or a failure with an `error.type`.
pub trait ClassifyResponse<Res> {
    /// `Err(error_type)` marks the call failed although the service returned `Ok`.
    fn classify(&mut self, response: &Res) -> Result<(), String>;
}

/// Every `Ok` response is a success.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<Res> ClassifyResponse<Res> for DefaultClassifier {
    fn classify(&mut self, _: &Res) -> Result<(), String> {
        Ok(())
    }
}

impl<Res, F: FnMut(&Res) -> Result<(), String>> ClassifyResponse<Res> for F {
    fn classify(&mut self, response: &Res) -> Result<(), String> {
        self(response)
    }
}
