//! [`OnFailure`]: more about a failed call, after `error.type` and the `exception` event
//! are recorded.

use std::time::Duration;

use loopotel::SpanGuard;

use super::classify::FailureClass;

/// What failed: the inner service's error, or a response the classifier called a failure.
#[derive(Debug)]
pub enum Failure<'a, Res, E> {
    /// The inner service returned an error.
    Error(&'a E),
    /// The response was classified as a failure, with this class.
    Response(&'a Res, &'a FailureClass),
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
