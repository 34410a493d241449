//! [`MakeSpan`]: the span's name and kinds, chosen from the request.

use loopotel::{SharedStr, SpanKindPair};

/// The span a call starts: its name and kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanSpec {
    /// The span name.
    pub name: SharedStr,
    /// The LTF and OpenTelemetry span kinds.
    pub kinds: SpanKindPair,
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
