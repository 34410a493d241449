//! A second framework that emits GenAI `tracing` spans: genai (with its `otel` feature,
//! `genai.chat` spans carrying `otel.name`, `otel.kind` and `gen_ai.*` fields) against the
//! local llmock server that `scripts/test.sh` starts. Each chat call becomes an LLM span of
//! its iteration, named `chat {model}`, OpenTelemetry kind `Client`, with the server's usage
//! rolled up into the iteration.

use genai::adapter::AdapterKind;
use genai::chat::{ChatMessage, ChatRequest};
use genai::resolver::{AuthData, Endpoint, ServiceTargetResolver};
use genai::{Client, ModelIden, ServiceTarget};
use loopotel::{LoopTracer, Outcome};
use loopotel_tracing::LoopLayer;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind as OtelKind;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn client(base: &str) -> Client {
    let endpoint = Endpoint::from_owned(format!("{base}/v1/"));
    let resolver = ServiceTargetResolver::from_resolver_fn(
        move |target: ServiceTarget| -> Result<ServiceTarget, genai::resolver::Error> {
            Ok(ServiceTarget {
                endpoint: endpoint.clone(),
                auth: AuthData::from_single("sk-genai-test-0123456789"),
                model: ModelIden::new(AdapterKind::OpenAI, target.model.model_name),
            })
        },
    );
    Client::builder()
        .with_service_target_resolver(resolver)
        .build()
        .expect("a genai client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genai_chat_spans_join_the_loop_with_their_usage() {
    let Some(base) = loopotel_test_support::llmock() else {
        return;
    };
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
    let dispatch = tracing::Dispatch::new(subscriber);
    let client = client(&base);

    let run = tracer.run("genai-loop").start();
    let mut reported = Vec::new();
    for n in 1..=2u64 {
        let it = run.iteration(n);
        let request = ChatRequest::new(vec![ChatMessage::user(format!("genai question {n}"))]);
        let reply = client
            .exec_chat("lt-genai", request, None)
            .with_subscriber(dispatch.clone())
            .with_context(it.context())
            .await
            .expect("llmock answers");
        let usage = &reply.usage;
        reported.push(
            i64::from(usage.prompt_tokens.unwrap_or(0))
                + i64::from(usage.completion_tokens.unwrap_or(0)),
        );
        drop(it);
    }
    let doc = run.finish(Outcome::Success, "done");

    for (it, server_tokens) in doc.iterations().zip(&reported) {
        let chats: Vec<_> = doc
            .spans
            .iter()
            .filter(|s| s.parent_span_id == Some(it.span_id))
            .collect();
        assert_eq!(chats.len(), 1, "one genai chat span per iteration");
        let chat = chats[0];
        assert_eq!(chat.name.as_str(), "chat lt-genai");
        assert_eq!(
            chat.attributes
                .get("gen_ai.operation.name")
                .and_then(|v| v.as_str()),
            Some("chat")
        );
        assert!(*server_tokens > 0);
        assert_eq!(
            it.attributes
                .get("loop.tokens_delta")
                .and_then(|v| v.as_i64()),
            Some(*server_tokens),
            "the iteration's tokens are the server's usage"
        );
    }
    assert!(loopotel::validate::validate_document(&doc).is_empty());
    let p2 = provider.clone();
    tokio::task::spawn_blocking(move || p2.force_flush())
        .await
        .unwrap()
        .unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let chat = spans.iter().find(|s| s.name == "chat lt-genai").unwrap();
    assert_eq!(chat.span_kind, OtelKind::Client);
    assert_eq!(
        chat.span_context.trace_id().to_bytes(),
        doc.trace_id.to_bytes()
    );
}
