//! Embeddings: `create` as an `embeddings {model}` span.

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse};

use crate::client::TracedClient;
use crate::genai::{self, Usage};

/// Embeddings through a [`TracedClient`] (same call as `async_openai::Embeddings`).
#[derive(Debug)]
pub struct TracedEmbeddings<'c, C: Config> {
    pub(crate) client: &'c TracedClient<C>,
}

impl<C: Config> TracedEmbeddings<'_, C> {
    /// `async_openai::Embeddings::create`, recorded as an `embeddings {model}` span with
    /// input tokens and `gen_ai.embeddings.dimension.count`.
    pub async fn create(
        &self,
        request: CreateEmbeddingRequest,
    ) -> Result<CreateEmbeddingResponse, OpenAIError> {
        let t = &self.client.telemetry;
        let model = genai::shared(&request.model);
        let mut span = genai::start(
            t,
            &self.client.server,
            &self.client.names,
            "embeddings",
            &model,
        );
        if span.is_recording()
            && let Some(d) = request.dimensions
        {
            span.set_attribute("gen_ai.embeddings.dimension.count", i64::from(d));
        }
        genai::traced_call(
            span,
            self.client.inner.embeddings().create(request),
            |span, r| {
                if !span.is_recording() {
                    return;
                }
                span.set_attribute("gen_ai.response.model", genai::shared(&r.model));
                if let Some(first) = r.data.first() {
                    span.set_attribute(
                        "gen_ai.embeddings.dimension.count",
                        first.embedding.len() as i64,
                    );
                }
                let usage = Usage {
                    input: u64::from(r.usage.prompt_tokens),
                    output: 0,
                    cached_input: None,
                    reasoning_output: None,
                };
                genai::record_usage(span, t, usage, Some(&r.model), &model);
            },
        )
        .await
    }
}
