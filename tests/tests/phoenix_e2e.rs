//! End to end against Arize Phoenix, a real LLM-observability backend (started on 127.0.0.1
//! by `scripts/phoenix.sh`): a traced multi-iteration loop over OTLP/HTTP and over OTLP/gRPC,
//! read back through Phoenix's REST API — span names, parent links, the LTF trace id, and
//! the `loop.*` attributes.

use std::time::Duration;

use loopotel::otel::otlp::{Protocol, span_exporter};
use loopotel::{LoopTracer, LtfDocument, Outcome, SpanKind};
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tests::{Phoenix, assert_phoenix_has, phoenix};

fn project(tag: &str) -> String {
    format!("loopotel-e2e-{tag}-{}", loopotel::SpanId::random())
}

/// A bridged loop of several iterations with LLM and tool spans.
fn traced_loop(provider: &SdkTracerProvider) -> LtfDocument {
    let tracer = LoopTracer::builder().tracer_provider(provider).build();
    let run = tracer.run("phoenix-loop").env_id("e2e/env-v1").start();
    for n in 1..=3 {
        let mut it = run.iteration(n);
        {
            let mut llm = it.span("chat e2e-model", SpanKind::Worker.client());
            llm.set_attribute("gen_ai.operation.name", "chat");
            llm.set_attribute("gen_ai.request.model", "e2e-model");
            llm.set_attribute("gen_ai.usage.input_tokens", 50i64 * n as i64);
            llm.add_tokens(50 * n);
        }
        {
            let mut tool = it.span("execute_tool lookup", SpanKind::Worker);
            tool.set_attribute("gen_ai.operation.name", "execute_tool");
            tool.set_attribute("gen_ai.tool.name", "lookup");
        }
        it.worker_complete("writer");
        it.evaluator_complete("critic", 0.3 * n as f64);
    }
    run.finish(Outcome::Success, "quality_threshold")
}

fn provider_for(exporter: opentelemetry_otlp::SpanExporter, project: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name("loopotel-e2e")
                .with_attribute(KeyValue::new(
                    "openinference.project.name",
                    project.to_owned(),
                ))
                .build(),
        )
        .build()
}

fn check(p: &Phoenix, project: &str, doc: &LtfDocument) {
    let spans = p.spans(project, doc.spans.len(), Duration::from_secs(60));
    assert_phoenix_has(doc, &spans);
    let root = spans.iter().find(|s| s["name"] == "loop.run").unwrap();
    assert_eq!(root["attributes"]["loop.outcome"], "success");
    assert_eq!(root["attributes"]["loop.iterations"], 3);
}

#[test]
fn a_traced_loop_over_otlp_http_reads_back_from_phoenix() {
    let Some(p) = phoenix() else { return };
    let project = project("http");
    let exporter =
        span_exporter(&p.url, Protocol::HttpProtobuf, Duration::from_secs(10), &[]).unwrap();
    let provider = provider_for(exporter, &project);
    let doc = traced_loop(&provider);
    provider.shutdown().unwrap();
    check(&p, &project, &doc);
}

#[test]
fn a_traced_loop_over_otlp_grpc_reads_back_from_phoenix() {
    let Some(p) = phoenix() else { return };
    let project = project("grpc");
    let rt = tests::server_runtime();
    let provider = {
        let _enter = rt.enter();
        let exporter =
            span_exporter(&p.grpc, Protocol::Grpc, Duration::from_secs(10), &[]).unwrap();
        provider_for(exporter, &project)
    };
    let doc = traced_loop(&provider);
    std::thread::spawn(move || provider.shutdown())
        .join()
        .unwrap()
        .unwrap();
    check(&p, &project, &doc);
    drop(rt);
}

/// Phoenix shows loops as loops: no loopotel span is UNKNOWN — the run is an agent, the
/// iterations and plain work chains, evaluations evaluators, LLM and tool calls by their
/// GenAI operation — and the run's cumulative token count equals `loop.tokens_total`; live
/// and through `loopotel export`'s replay alike.
#[test]
fn phoenix_shows_every_loopotel_span_with_a_kind_and_the_run_tokens() {
    let Some(p) = phoenix() else { return };
    let project = project("kinds");
    let exporter =
        span_exporter(&p.url, Protocol::HttpProtobuf, Duration::from_secs(10), &[]).unwrap();
    let provider = provider_for(exporter, &project);
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let run = tracer.run("kinds-loop").env_id("e2e/env-v1").start();
    for n in 1..=2u64 {
        let mut it = run.iteration(n);
        {
            let mut llm = it.span("chat e2e-model", SpanKind::Worker.client());
            llm.set_attribute("gen_ai.operation.name", "chat");
            llm.set_attribute("gen_ai.usage.input_tokens", 40i64);
            llm.set_attribute("gen_ai.usage.output_tokens", 2i64);
            llm.add_tokens(42);
        }
        drop(it.span("loop.env.step", SpanKind::Worker));
        drop(it.span("plan", SpanKind::Worker));
        drop(it.span("judge", SpanKind::Evaluator));
        it.evaluator_complete("judge", 0.4 * n as f64);
    }
    let doc = run.finish(Outcome::Success, "done");
    provider.shutdown().unwrap();
    let spans = p.spans(&project, doc.spans.len(), Duration::from_secs(60));
    assert_phoenix_has(&doc, &spans);
    let kind_of = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["span_kind"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert!(
        spans.iter().all(|s| s["span_kind"] != "UNKNOWN"),
        "{spans:#?}"
    );
    assert_eq!(kind_of("loop.run"), "AGENT");
    assert_eq!(kind_of("loop.iteration"), "CHAIN");
    assert_eq!(kind_of("loop.env.step"), "CHAIN");
    assert_eq!(kind_of("plan"), "CHAIN");
    assert_eq!(kind_of("judge"), "EVALUATOR");
    assert_eq!(kind_of("chat e2e-model"), "LLM");
    // The run's token total, as Phoenix adds it up over the run.
    let root = spans.iter().find(|s| s["name"] == "loop.run").unwrap();
    let query = format!(
        "{{ node(id: \"{}\") {{ ... on Span {{ cumulativeTokenCountTotal }} }} }}",
        root["id"].as_str().unwrap()
    );
    let answer = tests::http_post_json(
        &format!("{}/graphql", p.url),
        &serde_json::json!({ "query": query }),
    )
    .expect("Phoenix's GraphQL API answers");
    let total = answer["data"]["node"]["cumulativeTokenCountTotal"].as_f64();
    assert_eq!(total, Some(84.0), "{answer}");
    assert_eq!(
        doc.root()
            .unwrap()
            .attributes
            .get("loop.tokens_total")
            .unwrap()
            .as_i64(),
        Some(84)
    );
    // LTF keeps none of the backend's kind attributes.
    assert!(
        doc.spans
            .iter()
            .all(|s| s.attributes.get("openinference.span.kind").is_none()
                && (s.kind != loopotel::SpanKind::Loop
                    || s.attributes.get("gen_ai.operation.name").is_none()))
    );

    // The same document replayed through `loopotel export`'s conversion gets the same kinds.
    let replayed = loopotel::otel::replay::document_to_span_data(&doc);
    let kinds: Vec<String> = replayed
        .iter()
        .flat_map(|s| s.attributes.iter())
        .filter(|kv| kv.key.as_str() == "openinference.span.kind")
        .map(|kv| kv.value.to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "CHAIN").count(), 6);
    assert_eq!(kinds.iter().filter(|k| *k == "EVALUATOR").count(), 2);
}
