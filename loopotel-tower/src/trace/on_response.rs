//! [`OnResponse`]: response attributes, tokens and cost, for a successful response.

use std::time::Duration;

use loopotel::SpanGuard;

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
