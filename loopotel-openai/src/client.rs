//! [`TracedClient`]: an `async_openai::Client` whose calls are GenAI spans.

use std::sync::Arc;

use async_openai::Client;
use async_openai::config::Config;

use crate::chat::TracedChat;
use crate::embeddings::TracedEmbeddings;
use crate::genai::{Server, SpanNames};
use crate::responses::TracedResponses;
use crate::telemetry::GenAiTelemetry;

/// Wraps an `async_openai::Client<C>` (any config: OpenAI, Azure, any OpenAI-compatible base
/// URL). Each call becomes a span of the current loop run/iteration (found in the
/// OpenTelemetry context, like every loopotel span; outside any run nothing is recorded) and
/// returns exactly what the plain client returns.
///
/// ```no_run
/// use async_openai::config::OpenAIConfig;
/// use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs};
/// use loopotel::{LoopTracer, Outcome};
/// use loopotel_openai::{GenAiTelemetry, TracedClient};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let config = OpenAIConfig::new().with_api_base("http://127.0.0.1:8080/v1");
/// let client = TracedClient::new(async_openai::Client::with_config(config))
///     .telemetry(GenAiTelemetry::from_env());
/// let (_, doc) = LoopTracer::new().run("agent").scope(|run| async move {
///     let it = run.iteration(1);
///     let request = CreateChatCompletionRequestArgs::default()
///         .model("gpt-4o-mini")
///         .messages(vec![ChatCompletionRequestUserMessage::from("Say hi").into()])
///         .build()?;
///     # use opentelemetry::context::FutureExt as _;
///     let reply = client.chat().create(request).with_context(it.context()).await?;
///     Ok::<_, Box<dyn std::error::Error>>(reply)
/// }).await;
/// // doc: loop.run → loop.iteration → "chat gpt-4o-mini" with gen_ai.* attributes and
/// // the tokens rolled up into the iteration's loop.tokens_delta.
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TracedClient<C: Config> {
    pub(crate) inner: Client<C>,
    pub(crate) telemetry: Arc<GenAiTelemetry>,
    pub(crate) server: Server,
    pub(crate) names: Arc<SpanNames>,
}

impl<C: Config> TracedClient<C> {
    /// Traces `client` with the default settings (content capture off, no prices).
    pub fn new(client: Client<C>) -> Self {
        let server = Server::from_api_base(client.config().api_base());
        Self {
            inner: client,
            telemetry: Arc::new(GenAiTelemetry::default()),
            server,
            names: Arc::default(),
        }
    }

    /// Replaces the telemetry settings.
    pub fn telemetry(mut self, telemetry: GenAiTelemetry) -> Self {
        self.telemetry = Arc::new(telemetry);
        self
    }

    /// The wrapped client (calls made on it directly are not traced).
    pub fn inner(&self) -> &Client<C> {
        &self.inner
    }

    /// Chat completions.
    pub fn chat(&self) -> TracedChat<'_, C> {
        TracedChat { client: self }
    }

    /// Embeddings.
    pub fn embeddings(&self) -> TracedEmbeddings<'_, C> {
        TracedEmbeddings { client: self }
    }

    /// The Responses API.
    pub fn responses(&self) -> TracedResponses<'_, C> {
        TracedResponses { client: self }
    }
}
