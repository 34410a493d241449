//! `examples/rig_agent_loop.rs` — a real rig agent (rig-core's OpenAI provider, rig-agent's
//! runtime) in a loopotel loop, its `tracing` spans bridged by `LoopLayer` — against both
//! local OpenAI-compatible servers (llmock and aimock, started by `scripts/test.sh`). The
//! LTF holds rig's `invoke_agent`, `chat` and `execute_tool` spans under the right
//! iterations, each iteration's `loop.tokens_delta` is the sum of its chat spans' usage,
//! the file passes the reference `loopotel-validate`, and the OpenTelemetry side arrives in
//! a real OTLP collector and in Phoenix as one trace.

#[path = "../examples/rig_agent_loop.rs"]
mod example;

use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use fake_opentelemetry_collector::FakeCollectorServer;
use loopotel::jsonl::JsonlExporter;
use loopotel::{LoopTracer, LtfDocument, LtfSpan};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// One subscriber for the process: rig's runtime may poll on any worker thread.
fn install_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(loopotel_tracing::LoopLayer::new());
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

fn op(s: &LtfSpan) -> Option<&str> {
    s.attributes
        .get("gen_ai.operation.name")
        .and_then(|v| v.as_str())
}

fn int(s: &LtfSpan, key: &str) -> i64 {
    s.attributes.get(key).and_then(|v| v.as_i64()).unwrap_or(0)
}

/// The LTF document's shape: per iteration an `invoke_agent` span holding `chat` spans
/// with usage and an `execute_tool add` span; usage counted once, at the chat spans.
fn check_document(doc: &LtfDocument, iterations: u64) {
    let its: Vec<_> = doc.iterations().collect();
    assert_eq!(its.len() as u64, iterations);
    let mut run_tokens = 0;
    for it in its {
        let agents: Vec<_> = doc
            .spans
            .iter()
            .filter(|s| s.parent_span_id == Some(it.span_id) && op(s) == Some("invoke_agent"))
            .collect();
        assert_eq!(agents.len(), 1, "one invoke_agent span per iteration");
        let agent = agents[0];
        let inside = |name: &str| {
            doc.spans
                .iter()
                .filter(|s| s.parent_span_id == Some(agent.span_id) && op(s) == Some(name))
                .collect::<Vec<_>>()
        };
        let chats = inside("chat");
        assert!(chats.len() >= 2, "a tool turn and an answer turn");
        let tools = inside("execute_tool");
        assert!(
            tools.iter().any(|t| t.name.as_str() == "execute_tool add"
                && t.attributes
                    .get("gen_ai.tool.name")
                    .and_then(|v| v.as_str())
                    == Some("add")),
            "the add tool ran"
        );
        let mut chat_tokens = 0;
        for chat in &chats {
            let usage =
                int(chat, "gen_ai.usage.input_tokens") + int(chat, "gen_ai.usage.output_tokens");
            assert!(usage > 0, "chat spans carry usage: {:?}", chat.attributes);
            assert_eq!(int(chat, "loop.tokens_delta"), usage);
            chat_tokens += usage;
        }
        assert_eq!(int(it, "loop.tokens_delta"), chat_tokens);
        assert_eq!(
            int(agent, "loop.tokens_delta"),
            0,
            "the agent's sum is not counted again"
        );
        run_tokens += chat_tokens;
    }
    assert_eq!(int(doc.root().unwrap(), "loop.tokens_total"), run_tokens);
}

async fn run_against(base: &str, project: &str, phoenix: Option<&tests::Phoenix>) {
    install_subscriber();
    let mut collector = FakeCollectorServer::start().await.expect("a collector");
    let to_collector = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(collector.endpoint())
        .build()
        .expect("an OTLP/gRPC exporter");
    let resource = Resource::builder_empty()
        .with_service_name("rig-agent-loop")
        .with_attribute(KeyValue::new(
            "openinference.project.name",
            project.to_owned(),
        ))
        .build();
    let mut provider = SdkTracerProvider::builder()
        .with_batch_exporter(to_collector)
        .with_resource(resource);
    if let Some(p) = phoenix {
        let to_phoenix = loopotel::otel::otlp::span_exporter(
            &p.url,
            loopotel::otel::otlp::Protocol::HttpProtobuf,
            Duration::from_secs(10),
            &[],
        )
        .expect("an OTLP/HTTP exporter");
        provider = provider.with_batch_exporter(to_phoenix);
    }
    let provider = provider.build();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rig.jsonl");
    let tracer = LoopTracer::builder()
        .tracer_provider(&provider)
        .sink(JsonlExporter::create(&path).unwrap())
        .build();
    let (answers, doc) = example::run_rig_loop(
        &tracer,
        example::RigOptions {
            base_url: format!("{base}/v1"),
            api_key: "sk-rig-loop-test-0123456789".into(),
            model: "lt-rig".into(),
            iterations: 3,
        },
    )
    .await
    .expect("the rig loop runs");
    assert_eq!(answers.len(), 3);
    check_document(&doc, 3);
    assert!(
        !doc.to_json_line().contains("0123456789"),
        "API key recorded"
    );

    // The OpenTelemetry view: every LTF span, with its ids, in one trace.
    let p2 = provider.clone();
    tokio::task::spawn_blocking(move || p2.force_flush())
        .await
        .unwrap()
        .unwrap();
    let spans = collector
        .exported_spans(doc.spans.len(), Duration::from_secs(20))
        .await;
    let trace = doc.trace_id.to_hex();
    for ltf in &doc.spans {
        let got = spans
            .iter()
            .find(|s| s.span_id == ltf.span_id.to_string())
            .unwrap_or_else(|| panic!("the collector lacks {} {}", ltf.name, ltf.span_id));
        assert_eq!(got.trace_id, trace, "{}", ltf.name);
        assert_eq!(got.name, ltf.name.as_str());
        let parent = ltf
            .parent_span_id
            .map(|p| p.to_string())
            .unwrap_or_default();
        assert_eq!(got.parent_span_id, parent, "{}", ltf.name);
    }
    if let Some(p) = phoenix {
        let in_phoenix = p.spans(project, doc.spans.len(), Duration::from_secs(60));
        tests::assert_phoenix_has(&doc, &in_phoenix);
    }
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();

    // The file the sink wrote passes the reference validator.
    if let Some(reference) = loopotel_test_support::reference() {
        let out = loopotel_test_support::run(Command::new(&reference.validate).arg(&path));
        assert!(
            out.status.success(),
            "loopotel-validate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rig_agent_loop_against_llmock() {
    let Some(base) = loopotel_test_support::llmock() else {
        return;
    };
    let phoenix = loopotel_test_support::phoenix();
    let project = format!("rig-llmock-{}", loopotel::SpanId::random());
    run_against(&base, &project, phoenix.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rig_agent_loop_against_aimock() {
    let Some(base) = loopotel_test_support::aimock() else {
        return;
    };
    let project = format!("rig-aimock-{}", loopotel::SpanId::random());
    run_against(&base, &project, None).await;
}
