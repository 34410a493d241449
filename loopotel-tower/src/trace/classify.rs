//! [`ClassifyResponse`]: whether an `Ok` response is a success or a failure, and which.
//!
//! ```
//! use loopotel_tower::LoopTraceLayer;
//! use loopotel_tower::trace::{FailureClass, ResponseClass};
//!
//! struct Reply { status: u16 }
//! let layer = LoopTraceLayer::llm("gpt-4o").classify_with(|reply: &Reply| {
//!     if reply.status >= 500 {
//!         ResponseClass::Failure(FailureClass::status_code(reply.status))
//!     } else {
//!         ResponseClass::Success
//!     }
//! });
//! # let _ = layer;
//! ```

use loopotel::SharedStr;

/// How a [`ClassifyResponse`] judged a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// The call succeeded.
    Success,
    /// The call failed although the service returned `Ok`.
    Failure(FailureClass),
}

/// Why a response is a failure: its `error.type` (OpenTelemetry's low-cardinality error
/// class, recorded on the span).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureClass {
    pub(crate) error_type: SharedStr,
}

impl FailureClass {
    /// A failure of this `error.type` (keep it low-cardinality: a class, not a message).
    pub fn new(error_type: impl Into<SharedStr>) -> Self {
        Self {
            error_type: error_type.into(),
        }
    }

    /// A failure by HTTP status code: `error.type` is the code (`"503"`), as the HTTP
    /// semantic conventions record it.
    pub fn status_code(code: u16) -> Self {
        Self::new(code.to_string())
    }

    /// The `error.type` recorded on the span.
    pub fn error_type(&self) -> &str {
        self.error_type.as_str()
    }
}

/// Decides whether a response is a success or a failure, and which failure.
pub trait ClassifyResponse<Res> {
    /// [`ResponseClass::Failure`] marks the call failed although the service returned `Ok`.
    fn classify(&mut self, response: &Res) -> ResponseClass;
}

/// Every `Ok` response is a success.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<Res> ClassifyResponse<Res> for DefaultClassifier {
    #[inline]
    fn classify(&mut self, _: &Res) -> ResponseClass {
        ResponseClass::Success
    }
}

impl<Res, F: FnMut(&Res) -> ResponseClass> ClassifyResponse<Res> for F {
    fn classify(&mut self, response: &Res) -> ResponseClass {
        self(response)
    }
}
