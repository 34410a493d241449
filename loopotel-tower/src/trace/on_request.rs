//! [`OnRequest`]: request attributes, when the span has started.

use loopotel::SpanGuard;

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
