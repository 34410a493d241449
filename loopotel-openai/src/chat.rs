//! Chat completions: `create` and `create_stream` as `chat {model}` spans.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionResponseStream, ChatCompletionStreamOptions,
    CompletionUsage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason,
};
use futures_util::Stream;
use loopotel::SpanGuard;
use loopotel::stream::{StreamEnd, StreamTraceExt as _, TracedStream};

use crate::client::TracedClient;
use crate::genai::{self, OpenAiItem, Usage};
use crate::telemetry::GenAiTelemetry;

/// Chat completions through a [`TracedClient`] (same calls as `async_openai::Chat`).
#[derive(Debug)]
pub struct TracedChat<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

pub(crate) fn finish_reason_str(r: &FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}

fn usage_of(u: &CompletionUsage) -> Usage {
    Usage {
        input: u64::from(u.prompt_tokens),
        output: u64::from(u.completion_tokens),
        cached_input: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .map(u64::from),
        reasoning_output: u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .map(u64::from),
    }
}

/// Request attributes (and, with capture, the input messages).
fn record_request(span: &mut SpanGuard, t: &GenAiTelemetry, request: &CreateChatCompletionRequest) {
    if !span.is_recording() {
        return;
    }
    genai::opt_f64(span, "gen_ai.request.temperature", request.temperature);
    genai::opt_f64(span, "gen_ai.request.top_p", request.top_p);
    genai::opt_f64(
        span,
        "gen_ai.request.frequency_penalty",
        request.frequency_penalty,
    );
    genai::opt_f64(
        span,
        "gen_ai.request.presence_penalty",
        request.presence_penalty,
    );
    // Deprecated upstream but still sent by callers: record what the request says.
    #[allow(deprecated)]
    let (max_tokens, seed) = (
        request.max_completion_tokens.or(request.max_tokens),
        request.seed,
    );
    genai::opt_i64(span, "gen_ai.request.max_tokens", max_tokens.map(i64::from));
    genai::opt_i64(span, "gen_ai.request.seed", seed);
    if let Some(n) = request.n.filter(|n| *n != 1) {
        span.set_attribute("gen_ai.request.choice.count", i64::from(n));
    }
    if t.capture
        && let Ok(json) = serde_json::to_string(&request.messages)
    {
        span.set_attribute("gen_ai.input.messages", t.content(&json));
    }
}

/// One tool call as recorded on the span: id and name; arguments only with capture.
fn tool_call_json(
    t: &GenAiTelemetry,
    id: &str,
    name: &str,
    arguments: Option<&str>,
) -> serde_json::Value {
    let mut call = serde_json::json!({"id": id, "name": name});
    if t.capture
        && let Some(args) = arguments
    {
        call["arguments"] = serde_json::Value::String(t.content(args));
    }
    call
}

fn record_response(
    span: &mut SpanGuard,
    t: &GenAiTelemetry,
    request_model: &str,
    response: &CreateChatCompletionResponse,
) {
    if !span.is_recording() {
        return;
    }
    span.set_attribute("gen_ai.response.id", genai::shared(&response.id));
    span.set_attribute("gen_ai.response.model", genai::shared(&response.model));
    let reasons: Vec<serde_json::Value> = response
        .choices
        .iter()
        .filter_map(|c| c.finish_reason.as_ref())
        .map(|r| finish_reason_str(r).into())
        .collect();
    span.set_attribute(
        "gen_ai.response.finish_reasons",
        serde_json::Value::Array(reasons),
    );
    let calls: Vec<serde_json::Value> = response
        .choices
        .iter()
        .filter_map(|c| c.message.tool_calls.as_ref())
        .flatten()
        .filter_map(|call| match call {
            ChatCompletionMessageToolCalls::Function(f) => Some(tool_call_json(
                t,
                &f.id,
                &f.function.name,
                Some(&f.function.arguments),
            )),
            ChatCompletionMessageToolCalls::Custom(_) => None,
        })
        .collect();
    if !calls.is_empty() {
        span.set_attribute(
            "gen_ai.response.tool_calls",
            serde_json::Value::Array(calls),
        );
    }
    if t.capture {
        let messages: Vec<_> = response.choices.iter().map(|c| &c.message).collect();
        if let Ok(json) = serde_json::to_string(&messages) {
            span.set_attribute("gen_ai.output.messages", t.content(&json));
        }
    }
    if let Some(u) = &response.usage {
        genai::record_usage(span, t, usage_of(u), Some(&response.model), request_model);
    }
}

impl<C: Config> TracedChat<'_, C> {
    /// `async_openai::Chat::create`, recorded as a `chat {model}` span.
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        let t = &self.client.telemetry;
        let model = genai::shared(&request.model);
        let mut span = genai::start(t, &self.client.server, &self.client.names, "chat", &model);
        record_request(&mut span, t, &request);
        genai::traced_call(span, self.client.inner.chat().create(request), |span, r| {
            record_response(span, t, &model, r)
        })
        .await
    }

    /// `async_openai::Chat::create_stream`: the span lives until the stream ends, errs or is
    /// dropped. Asks for usage (`stream_options.include_usage`) unless the request says.
    pub async fn create_stream(
        &self,
        mut request: CreateChatCompletionRequest,
    ) -> Result<ChatStream, OpenAIError> {
        let t = &self.client.telemetry;
        let options = request
            .stream_options
            .get_or_insert_with(ChatCompletionStreamOptions::default);
        let expect_usage = *options.include_usage.get_or_insert(true);
        let model = genai::shared(&request.model);
        let mut span = genai::start(t, &self.client.server, &self.client.names, "chat", &model);
        record_request(&mut span, t, &request);
        let stream =
            genai::call_in_span(&mut span, self.client.inner.chat().create_stream(request)).await?;
        let acc = Arc::new(Mutex::new(ChatStreamState {
            expect_usage,
            ..Default::default()
        }));
        let on_eos = {
            let acc = acc.clone();
            let t = t.clone();
            move |end: &StreamEnd, span: &mut SpanGuard| {
                acc.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .finish(end, span, &t, &model);
            }
        };
        let inner = stream.traced_with(span, OpenAiItem).on_eos(on_eos);
        Ok(ChatStream { inner, acc })
    }
}

/// A streamed tool call being assembled from deltas.
#[derive(Debug, Default)]
struct ToolCallParts {
    id: String,
    name: String,
    arguments: String,
}

/// What a chat stream said so far.
#[derive(Debug, Default)]
struct ChatStreamState {
    expect_usage: bool,
    id: Option<String>,
    model: Option<String>,
    finish_reasons: Vec<&'static str>,
    usage: Option<Usage>,
    /// By (choice, tool call index).
    tool_calls: BTreeMap<(u32, u32), ToolCallParts>,
}

impl ChatStreamState {
    fn observe(&mut self, chunk: &CreateChatCompletionStreamResponse) {
        if self.id.is_none() && !chunk.id.is_empty() {
            self.id = Some(chunk.id.clone());
        }
        if self.model.is_none() && !chunk.model.is_empty() {
            self.model = Some(chunk.model.clone());
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(usage_of(u));
        }
        for choice in &chunk.choices {
            if let Some(r) = &choice.finish_reason {
                self.finish_reasons.push(finish_reason_str(r));
            }
            for delta in choice.delta.tool_calls.iter().flatten() {
                let parts = self
                    .tool_calls
                    .entry((choice.index, delta.index))
                    .or_default();
                if let Some(id) = &delta.id {
                    parts.id.push_str(id);
                }
                if let Some(f) = &delta.function {
                    if let Some(n) = &f.name {
                        parts.name.push_str(n);
                    }
                    if let Some(a) = &f.arguments {
                        // Bounded: arguments past a generous cap are not kept.
                        if parts.arguments.len() < 1 << 20 {
                            parts.arguments.push_str(a);
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self, end: &StreamEnd, span: &mut SpanGuard, t: &GenAiTelemetry, model: &str) {
        if let Some(id) = self.id.take() {
            span.set_attribute("gen_ai.response.id", id);
        }
        if let Some(m) = &self.model {
            span.set_attribute("gen_ai.response.model", genai::shared(m));
        }
        if let Some(first) = end.time_to_first_item {
            span.set_attribute("gen_ai.response.time_to_first_chunk", first.as_secs_f64());
        }
        span.set_attribute(
            "gen_ai.response.finish_reasons",
            serde_json::Value::Array(self.finish_reasons.iter().map(|r| (*r).into()).collect()),
        );
        if !self.tool_calls.is_empty() {
            let calls = self
                .tool_calls
                .values()
                .map(|c| tool_call_json(t, &c.id, &c.name, Some(&c.arguments)))
                .collect();
            span.set_attribute(
                "gen_ai.response.tool_calls",
                serde_json::Value::Array(calls),
            );
        }
        // Never zero tokens for a stream that did not say: usage only when reported.
        if let Some(u) = self.usage {
            genai::record_usage(span, t, u, self.model.as_deref(), model);
        }
        if end.reason == "completed"
            && (self.finish_reasons.is_empty() || (self.expect_usage && self.usage.is_none()))
        {
            span.set_attribute("loop.stream.incomplete", true);
            span.record_error(
                "incomplete_stream",
                "the stream ended without a finish reason or usage",
            );
        }
    }
}

/// A traced chat completion stream: yields exactly what async-openai yields; its span ends
/// when the stream does (`completed`, `error`, `dropped_early`) with the response id and
/// model, finish reasons, time to first chunk, assembled tool calls and usage. A stream that
/// ends without a finish reason (or without the usage it asked for) is marked
/// `loop.stream.incomplete` with `error.type = incomplete_stream`.
pub struct ChatStream {
    inner: TracedStream<ChatCompletionResponseStream, OpenAiItem>,
    acc: Arc<Mutex<ChatStreamState>>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream").finish_non_exhaustive()
    }
}

impl Stream for ChatStream {
    type Item = Result<CreateChatCompletionStreamResponse, OpenAIError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            this.acc
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .observe(chunk);
        }
        polled
    }
}
