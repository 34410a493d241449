//! The GenAI span of one call: start with the request attributes, record usage, cost and
//! errors (semantic conventions v1.41 names).

use std::borrow::BorrowMut;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use async_openai::error::OpenAIError;
use loopotel::{AttrValue, SharedStr, SpanGuard, SpanKind};

use crate::telemetry::{GenAiTelemetry, scrub_secrets};

/// Where the client sends requests: `server.address` / `server.port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) address: Option<SharedStr>,
    pub(crate) port: Option<u16>,
}

impl Server {
    /// From an API base such as `https://api.openai.com/v1` (an unparsable base gives none).
    pub(crate) fn from_api_base(base: &str) -> Self {
        let Ok(uri) = base.parse::<http::Uri>() else {
            return Self::default();
        };
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        Self {
            address: uri.host().map(shared),
            port,
        }
    }
}

/// Token usage as a provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) cached_input: Option<u64>,
    pub(crate) reasoning_output: Option<u64>,
}

/// `s` as a shared string: one allocation, then cloned for free into every attribute.
pub(crate) fn shared(s: &str) -> SharedStr {
    SharedStr::from(Arc::<str>::from(s))
}

/// Span names `{operation} {model}` a client made, so a call names its span without
/// formatting or allocating (up to [`SpanNames::MAX`] names; past that, each call makes its
/// own).
#[derive(Debug, Default)]
pub(crate) struct SpanNames(Mutex<HashMap<(&'static str, SharedStr), SharedStr>>);

impl SpanNames {
    /// Names kept per client.
    const MAX: usize = 64;

    /// The span name of `operation` on `model` (just the operation without a model).
    fn get(&self, operation: &'static str, model: &SharedStr) -> SharedStr {
        if model.is_empty() {
            return SharedStr::Static(operation);
        }
        let key = (operation, model.clone());
        let mut names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = names.get(&key) {
            return name.clone();
        }
        let name = shared(&format!("{operation} {model}"));
        if names.len() < Self::MAX {
            names.insert(key, name.clone());
        }
        name
    }
}

/// Starts `{operation} {model}` as a child of the current loop span (a no-op outside any run).
pub(crate) fn start(
    telemetry: &GenAiTelemetry,
    server: &Server,
    names: &SpanNames,
    operation: &'static str,
    model: &SharedStr,
) -> SpanGuard {
    if !loopotel::context::is_recording() {
        return SpanGuard::noop();
    }
    let name = names.get(operation, model);
    // The semantic conventions' sampling-relevant attributes, on the span from its creation.
    let attributes = [
        ("gen_ai.operation.name", AttrValue::from(operation)),
        (
            "gen_ai.provider.name",
            AttrValue::from(telemetry.provider.clone()),
        ),
    ]
    .into_iter()
    .chain((!model.is_empty()).then(|| ("gen_ai.request.model", AttrValue::from(model.clone()))))
    .chain(
        server
            .address
            .iter()
            .map(|a| ("server.address", AttrValue::from(a.clone()))),
    )
    .chain(
        server
            .port
            .map(|p| ("server.port", AttrValue::from(i64::from(p)))),
    );
    loopotel::context::start_span_with_attributes(name, SpanKind::Worker.client(), attributes)
}

/// Sets `key` when the request gave a value.
pub(crate) fn opt_f64(span: &mut SpanGuard, key: &'static str, v: Option<f32>) {
    if let Some(v) = v {
        // Through the decimal text: 0.7f32 is recorded as 0.7, not 0.699999988079071.
        let v = v.to_string().parse::<f64>().unwrap_or(f64::from(v));
        span.set_attribute(key, v);
    }
}

/// Sets `key` when the request gave a value.
pub(crate) fn opt_i64(span: &mut SpanGuard, key: &'static str, v: Option<i64>) {
    if let Some(v) = v {
        span.set_attribute(key, v);
    }
}

/// Records usage, rolls tokens (and cost, with a price table) up into the iteration.
pub(crate) fn record_usage(
    span: &mut SpanGuard,
    telemetry: &GenAiTelemetry,
    usage: Usage,
    response_model: Option<&str>,
    request_model: &str,
) {
    span.set_attribute("gen_ai.usage.input_tokens", usage.input);
    span.set_attribute("gen_ai.usage.output_tokens", usage.output);
    if let Some(c) = usage.cached_input {
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", c);
    }
    if let Some(r) = usage.reasoning_output {
        span.set_attribute("gen_ai.usage.reasoning.output_tokens", r);
    }
    span.add_tokens(usage.input.saturating_add(usage.output));
    if let Some(prices) = &telemetry.prices {
        let price = response_model
            .and_then(|m| prices.lookup(m))
            .or_else(|| prices.lookup(request_model));
        if let Some(p) = price {
            span.add_cost_usd(p.cost_usd(
                usage.input,
                usage.cached_input.unwrap_or(0),
                usage.output,
            ));
        }
    }
}

/// A low-cardinality `error.type` for an async-openai error.
pub(crate) fn error_type(err: &OpenAIError) -> String {
    match err {
        OpenAIError::ApiError(e) => e
            .api_error
            .code
            .clone()
            .or_else(|| e.api_error.r#type.clone())
            .unwrap_or_else(|| e.status_code.as_u16().to_string()),
        OpenAIError::Reqwest(e) if e.is_timeout() => "timeout".to_owned(),
        OpenAIError::Reqwest(e) => e
            .status()
            .map(|s| s.as_u16().to_string())
            .unwrap_or_else(|| "transport".to_owned()),
        OpenAIError::JSONDeserialize(..) => "malformed_response".to_owned(),
        OpenAIError::StreamError(_) => "stream_error".to_owned(),
        OpenAIError::InvalidArgument(_) => "invalid_argument".to_owned(),
        _ => "error".to_owned(),
    }
}

pin_project_lite::pin_project! {
    /// The shape of every call: `call` runs in its span's context (attached on each poll),
    /// then `on_ok` records the response or the error is recorded on the span, and an owned
    /// span ends. The call's own result is returned unchanged. A hand-written future, so the
    /// call's future (kilobytes for async-openai's) is stored once, not once per `async`
    /// layer, and is not copied between them.
    pub(crate) struct InSpan<S, F, R> {
        #[pin]
        call: F,
        cx: opentelemetry::Context,
        span: Option<S>,
        on_ok: Option<R>,
    }
}

impl<S, F, R> InSpan<S, F, R>
where
    S: BorrowMut<SpanGuard>,
{
    /// `call` in `span`: `S` is the span itself (it ends with the call) or `&mut` it (a
    /// stream's span lives on with the stream).
    pub(crate) fn new(mut span: S, call: F, on_ok: R) -> Self {
        let cx = span.borrow_mut().context();
        Self {
            call,
            cx,
            span: Some(span),
            on_ok: Some(on_ok),
        }
    }
}

impl<S, F, R, T> Future for InSpan<S, F, R>
where
    S: BorrowMut<SpanGuard>,
    F: Future<Output = Result<T, OpenAIError>>,
    R: FnOnce(&mut SpanGuard, &T),
{
    type Output = Result<T, OpenAIError>;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _attached = this.cx.clone().attach();
            this.call.poll(task)
        };
        let Poll::Ready(result) = polled else {
            return Poll::Pending;
        };
        if let Some(mut span) = this.span.take() {
            let span = span.borrow_mut();
            match &result {
                Ok(response) => {
                    if let Some(on_ok) = this.on_ok.take() {
                        on_ok(span, response);
                    }
                }
                Err(e) => record_error(span, e),
            }
        }
        Poll::Ready(result)
    }
}

/// A non-streaming call: `call` in `span`, `on_ok` on success; the span ends with the call.
pub(crate) fn traced_call<T, F, R>(span: SpanGuard, call: F, on_ok: R) -> InSpan<SpanGuard, F, R>
where
    F: Future<Output = Result<T, OpenAIError>>,
    R: FnOnce(&mut SpanGuard, &T),
{
    InSpan::new(span, call, on_ok)
}

/// Opens a stream: `call` in `span`'s context, its error (if any) recorded on the span,
/// which lives on with the stream.
pub(crate) fn call_in_span<T, F>(
    span: &mut SpanGuard,
    call: F,
) -> InSpan<&mut SpanGuard, F, fn(&mut SpanGuard, &T)>
where
    F: Future<Output = Result<T, OpenAIError>>,
{
    InSpan::new(span, call, |_, _| {})
}

/// `error.type` and an `exception` event (the message scrubbed of keys and tokens).
pub(crate) fn record_error(span: &mut SpanGuard, err: &OpenAIError) {
    if let OpenAIError::ApiError(e) = err {
        span.set_attribute(
            "http.response.status_code",
            i64::from(e.status_code.as_u16()),
        );
    }
    span.record_error(error_type(err), scrub_secrets(&err.to_string()));
}

/// The stream's item policy: an `Err` item ends the span `error` with the OpenAI error type.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OpenAiItem;

impl<T> loopotel::stream::ItemPolicy<Result<T, OpenAIError>> for OpenAiItem {
    fn error(&self, item: &Result<T, OpenAIError>) -> Option<(String, String)> {
        item.as_ref()
            .err()
            .map(|e| (error_type(e), scrub_secrets(&e.to_string())))
    }

    fn size(&self, _: &Result<T, OpenAIError>) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_comes_from_the_api_base() {
        let s = Server::from_api_base("https://api.openai.com/v1");
        assert_eq!(s.address.as_deref(), Some("api.openai.com"));
        assert_eq!(s.port, Some(443));
        let s = Server::from_api_base("http://127.0.0.1:8080/v1");
        assert_eq!(
            (s.address.as_deref(), s.port),
            (Some("127.0.0.1"), Some(8080))
        );
        assert_eq!(Server::from_api_base("not a url"), Server::default());
    }

    #[test]
    fn span_names_are_made_once_per_model_and_bounded() {
        let names = SpanNames::default();
        let model = shared("gpt-4o-mini");
        let first = names.get("chat", &model);
        assert_eq!(first, "chat gpt-4o-mini");
        let again = names.get("chat", &shared("gpt-4o-mini"));
        assert!(
            matches!((&first, &again), (SharedStr::Shared(a), SharedStr::Shared(b)) if Arc::ptr_eq(a, b))
        );
        assert_eq!(names.get("embeddings", &model), "embeddings gpt-4o-mini");
        assert_eq!(names.get("chat", &shared("")), "chat");
        for i in 0..2 * SpanNames::MAX {
            assert_eq!(
                names.get("chat", &shared(&format!("m{i}"))),
                format!("chat m{i}").as_str()
            );
        }
        assert_eq!(names.0.lock().map(|n| n.len()).unwrap_or(0), SpanNames::MAX);
    }
}
