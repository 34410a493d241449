//! The Responses API: `create` and `create_stream` as `chat {model}` spans.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::responses::{
    CreateResponse, OutputItem, Response, ResponseStream, ResponseStreamEvent, Status,
};
use futures_util::Stream;
use loopotel::SpanGuard;
use loopotel::stream::{StreamEnd, StreamTraceExt as _, TracedStream};

use crate::client::TracedClient;
use crate::genai::{self, OpenAiItem, Usage};
use crate::telemetry::GenAiTelemetry;

/// The Responses API through a [`TracedClient`] (same calls as `async_openai::Responses`).
#[derive(Debug)]
pub struct TracedResponses<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

fn status_str(s: &Status) -> &'static str {
    match s {
        Status::Completed => "completed",
        Status::Failed => "failed",
        Status::InProgress => "in_progress",
        Status::Cancelled => "cancelled",
        Status::Queued => "queued",
        Status::Incomplete => "incomplete",
    }
}

fn record_request(span: &mut SpanGuard, t: &GenAiTelemetry, request: &CreateResponse) {
    if !span.is_recording() {
        return;
    }
    genai::opt_f64(span, "gen_ai.request.temperature", request.temperature);
    genai::opt_f64(span, "gen_ai.request.top_p", request.top_p);
    genai::opt_i64(
        span,
        "gen_ai.request.max_tokens",
        request.max_output_tokens.map(i64::from),
    );
    if t.capture
        && let Ok(json) = serde_json::to_string(&request.input)
    {
        span.set_attribute("gen_ai.input.messages", t.content(&json));
    }
}

/// Everything a finished response says: ids, status as the finish reason (or the
/// incomplete reason), function calls, usage, and with capture the output items.
fn record_response(span: &mut SpanGuard, t: &GenAiTelemetry, request_model: &str, r: &Response) {
    if !span.is_recording() {
        return;
    }
    span.set_attribute("gen_ai.response.id", genai::shared(&r.id));
    span.set_attribute("gen_ai.response.model", genai::shared(&r.model));
    let reason = match &r.incomplete_details {
        Some(d) => d.reason.clone(),
        None => status_str(&r.status).to_owned(),
    };
    span.set_attribute(
        "gen_ai.response.finish_reasons",
        serde_json::Value::Array(vec![reason.into()]),
    );
    let calls: Vec<serde_json::Value> = r
        .output
        .iter()
        .filter_map(|item| match item {
            OutputItem::FunctionCall(f) => {
                let mut call = serde_json::json!({"id": f.call_id, "name": f.name});
                if t.capture {
                    call["arguments"] = t.content(&f.arguments).into();
                }
                Some(call)
            }
            _ => None,
        })
        .collect();
    if !calls.is_empty() {
        span.set_attribute(
            "gen_ai.response.tool_calls",
            serde_json::Value::Array(calls),
        );
    }
    if t.capture
        && let Ok(json) = serde_json::to_string(&r.output)
    {
        span.set_attribute("gen_ai.output.messages", t.content(&json));
    }
    if let Some(u) = &r.usage {
        let usage = Usage {
            input: u64::from(u.input_tokens),
            output: u64::from(u.output_tokens),
            cached_input: Some(u64::from(u.input_tokens_details.cached_tokens)),
            reasoning_output: Some(u64::from(u.output_tokens_details.reasoning_tokens)),
        };
        genai::record_usage(span, t, usage, Some(&r.model), request_model);
    }
    if matches!(r.status, Status::Failed)
        && let Some(e) = &r.error
    {
        let code = serde_json::to_value(&e.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "response_failed".to_owned());
        span.record_error(code, crate::telemetry::scrub_secrets(&e.message));
    }
}

impl<C: Config> TracedResponses<'_, C> {
    /// `async_openai::Responses::create`, recorded as a `chat {model}` span.
    pub async fn create(&self, request: CreateResponse) -> Result<Response, OpenAIError> {
        let t = &self.client.telemetry;
        let model = genai::shared(request.model.as_deref().unwrap_or_default());
        let mut span = genai::start(t, &self.client.server, &self.client.names, "chat", &model);
        record_request(&mut span, t, &request);
        genai::traced_call(
            span,
            self.client.inner.responses().create(request),
            |span, r| record_response(span, t, &model, r),
        )
        .await
    }

    /// `async_openai::Responses::create_stream`: the span lives until the stream ends, errs
    /// or is dropped, and records the final response (`response.completed`, `.failed` or
    /// `.incomplete`); a stream that ends without one is marked incomplete.
    pub async fn create_stream(
        &self,
        request: CreateResponse,
    ) -> Result<ResponseEvents, OpenAIError> {
        let t = &self.client.telemetry;
        let model = genai::shared(request.model.as_deref().unwrap_or_default());
        let mut span = genai::start(t, &self.client.server, &self.client.names, "chat", &model);
        record_request(&mut span, t, &request);
        let stream = genai::call_in_span(
            &mut span,
            self.client.inner.responses().create_stream(request),
        )
        .await?;
        let last = Arc::new(Mutex::new(None::<Response>));
        let on_eos = {
            let last = last.clone();
            let t = t.clone();
            move |end: &StreamEnd, span: &mut SpanGuard| {
                if let Some(first) = end.time_to_first_item {
                    span.set_attribute("gen_ai.response.time_to_first_chunk", first.as_secs_f64());
                }
                let last = last.lock().unwrap_or_else(PoisonError::into_inner).take();
                match last {
                    Some(r) => record_response(span, &t, &model, &r),
                    None if end.reason == "completed" => {
                        span.set_attribute("loop.stream.incomplete", true);
                        span.record_error(
                            "incomplete_stream",
                            "the stream ended without a final response event",
                        );
                    }
                    None => {}
                }
            }
        };
        let inner = stream.traced_with(span, OpenAiItem).on_eos(on_eos);
        Ok(ResponseEvents { inner, last })
    }
}

/// A traced Responses API event stream: yields exactly what async-openai yields; its span
/// ends with the stream and records the final response.
pub struct ResponseEvents {
    inner: TracedStream<ResponseStream, OpenAiItem>,
    last: Arc<Mutex<Option<Response>>>,
}

impl std::fmt::Debug for ResponseEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseEvents").finish_non_exhaustive()
    }
}

impl Stream for ResponseEvents {
    type Item = Result<ResponseStreamEvent, OpenAIError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(event))) = &polled {
            let done = match event {
                ResponseStreamEvent::ResponseCompleted(e) => Some(&e.response),
                ResponseStreamEvent::ResponseFailed(e) => Some(&e.response),
                ResponseStreamEvent::ResponseIncomplete(e) => Some(&e.response),
                _ => None,
            };
            if let Some(r) = done {
                *this.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(r.clone());
            }
        }
        polled
    }
}
