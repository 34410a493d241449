//! # loopotel-openai
//!
//! A traced [async-openai](https://docs.rs/async-openai) client: chat completions (plain and
//! streamed), embeddings and the Responses API (plain and streamed) become GenAI spans
//! (`chat {model}`, `embeddings {model}`; OpenTelemetry kind `Client`) inside the current
//! loop run and iteration — LTF and OpenTelemetry from one recording.
//!
//! Recorded (semantic conventions v1.41 names): `gen_ai.operation.name`,
//! `gen_ai.provider.name`, `gen_ai.request.model` / `.temperature` / `.top_p` /
//! `.max_tokens` / `.seed` / `.frequency_penalty` / `.presence_penalty`,
//! `gen_ai.response.id` / `.model` / `.finish_reasons`, `gen_ai.usage.input_tokens` /
//! `.output_tokens` / `.cache_read.input_tokens` / `.reasoning.output_tokens`,
//! `server.address` / `server.port`, `error.type` (and `http.response.status_code` for API
//! errors); for streams `gen_ai.response.time_to_first_chunk` (s) and the `loop.stream.*`
//! attributes; tool calls (ids and names; arguments only with content capture) as
//! `gen_ai.response.tool_calls`. Tokens (and cost, given a [`PriceTable`]) roll up into the
//! iteration's `loop.tokens_delta` / `loop.cost_usd` and the run's totals.
//!
//! Private by default: prompts, completions and tool arguments are recorded only with
//! [`GenAiTelemetry::capture_content`] (or `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`
//! through [`GenAiTelemetry::from_env`]), after API keys and bearer tokens are scrubbed, your
//! redaction hook ran, and the size budget cut them. Request headers and the API key are
//! never read.
//!
//! Fail-open: every call returns exactly what the plain client returns — the same values and
//! the same errors.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod chat;
mod client;
mod embeddings;
mod genai;
#[cfg(feature = "middleware")]
pub mod middleware;

mod responses;
mod telemetry;

pub use chat::{ChatStream, TracedChat};
pub use client::TracedClient;
pub use embeddings::TracedEmbeddings;
pub use loopotel::price::{ModelPrice, PriceError, PriceTable};
pub use responses::{ResponseEvents, TracedResponses};
pub use telemetry::{
    CAPTURE_CONTENT_ENV, DEFAULT_CONTENT_BUDGET, GenAiTelemetry, REDACTION_FAILED,
    redaction_panics, scrub_secrets,
};

pub use async_openai;
pub use loopotel;
