//! The traced client against llmock, a real OpenAI-compatible server started by
//! `scripts/llmock.sh` (`LOOPOTEL_LLMOCK_URL`): plain and streamed chat, streamed tool calls
//! and the tool-result turn, embeddings, the Responses API, and scripted faults — 429 then
//! success, persistent 500, slow first token, truncated stream, disconnect, malformed chunk,
//! and a caller that drops the stream. Every test uses its own model name, and its scripted
//! behaviours match only that model, so tests run in parallel against one server.

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::CreateChatCompletionRequest;
use futures_util::StreamExt as _;
use loopotel::{AttrValue, LoopTracer, LtfDocument, LtfSpan};
use loopotel_openai::{GenAiTelemetry, ModelPrice, PriceTable, TracedClient};
use opentelemetry::context::FutureExt as _;
use serde_json::{Value, json};

use loopotel_test_support::sampler::SeenAtCreation;

const API_KEY: &str = "sk-loopotel-test-SECRET-0123456789";

use loopotel_test_support::llmock;

/// Queues scripted behaviours (each matched to `model`).
async fn scenario(base: &str, model: &str, behaviors: Value) {
    let mut behaviors = behaviors;
    for b in behaviors.as_array_mut().expect("a list") {
        let m = b
            .as_object_mut()
            .expect("an object")
            .entry("match")
            .or_insert_with(|| json!({}));
        m["model"] = json!(model);
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/_llmock/scenario"))
        .json(&json!({ "behaviors": behaviors }))
        .send()
        .await
        .expect("llmock admin");
    assert!(resp.status().is_success(), "scenario: {}", resp.status());
}

fn client(base: &str, telemetry: GenAiTelemetry) -> TracedClient<OpenAIConfig> {
    let config = OpenAIConfig::new()
        .with_api_base(format!("{base}/v1"))
        .with_api_key(API_KEY);
    TracedClient::new(async_openai::Client::with_config(config)).telemetry(telemetry)
}

fn chat_request(model: &str, extra: Value) -> CreateChatCompletionRequest {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the weather in Paris? PROMPT-MARKER"}],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    serde_json::from_value(body).expect("request")
}

fn spans<'a>(doc: &'a LtfDocument, name: &str) -> Vec<&'a LtfSpan> {
    doc.spans
        .iter()
        .filter(|s| s.name.as_str() == name)
        .collect()
}

fn a<'a>(s: &'a LtfSpan, key: &str) -> Option<&'a AttrValue> {
    s.attributes.get(key)
}

fn int(s: &LtfSpan, key: &str) -> Option<i64> {
    a(s, key).and_then(AttrValue::as_i64)
}

fn text<'a>(s: &'a LtfSpan, key: &str) -> Option<&'a str> {
    a(s, key).and_then(AttrValue::as_str)
}

/// An attribute as JSON text.
fn json_of(s: &LtfSpan, key: &str) -> Option<String> {
    a(s, key).map(|v| serde_json::to_string(v).expect("json"))
}

/// The whole document as JSON text (to check what never appears in it).
fn doc_text(doc: &LtfDocument) -> String {
    serde_json::to_string(doc).expect("json")
}

/// Runs `f` inside a one-iteration loop run; returns its output and the document.
async fn in_run<F, Fut, T>(f: F) -> (T, LtfDocument)
where
    F: FnOnce(opentelemetry::Context) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let run = LoopTracer::new().run("openai-test").start();
    let it = run.iteration(1);
    let out = f(it.context()).await;
    drop(it);
    (out, run.finish(loopotel::Outcome::Success, "done"))
}

#[tokio::test]
async fn plain_chat_is_a_genai_span_with_usage_cost_and_no_content() {
    let Some(base) = llmock() else { return };
    let mut prices = PriceTable::new();
    prices.insert(
        "lt-plain",
        ModelPrice {
            input_per_million: 1.0,
            output_per_million: 2.0,
            cached_input_per_million: None,
        },
    );
    let c = client(&base, GenAiTelemetry::default().prices(prices));
    let req = chat_request(
        "lt-plain",
        json!({"temperature": 0.7, "top_p": 0.9, "max_completion_tokens": 64, "seed": 7}),
    );
    let (reply, doc) = in_run(|cx| async { c.chat().create(req).with_context(cx).await }).await;
    let reply = reply.expect("the same reply as async-openai");
    let s = spans(&doc, "chat lt-plain");
    assert_eq!(s.len(), 1);
    let s = s[0];
    assert_eq!(text(s, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(text(s, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(text(s, "gen_ai.request.model"), Some("lt-plain"));
    assert_eq!(
        a(s, "gen_ai.request.temperature").and_then(AttrValue::as_f64),
        Some(0.7)
    );
    assert_eq!(
        a(s, "gen_ai.request.top_p").and_then(AttrValue::as_f64),
        Some(0.9)
    );
    assert_eq!(int(s, "gen_ai.request.max_tokens"), Some(64));
    assert_eq!(int(s, "gen_ai.request.seed"), Some(7));
    assert_eq!(text(s, "server.address"), Some("127.0.0.1"));
    assert!(int(s, "server.port").is_some());
    assert_eq!(text(s, "gen_ai.response.id"), Some(reply.id.as_str()));
    assert_eq!(text(s, "gen_ai.response.model"), Some(reply.model.as_str()));
    assert_eq!(
        json_of(s, "gen_ai.response.finish_reasons"),
        Some(r#"["stop"]"#.to_owned())
    );
    let usage = reply.usage.expect("llmock reports usage");
    assert_eq!(
        int(s, "gen_ai.usage.input_tokens"),
        Some(i64::from(usage.prompt_tokens))
    );
    assert_eq!(
        int(s, "gen_ai.usage.output_tokens"),
        Some(i64::from(usage.completion_tokens))
    );
    let total = i64::from(usage.prompt_tokens + usage.completion_tokens);
    assert_eq!(int(s, "loop.tokens_delta"), Some(total));
    let cost = f64::from(usage.prompt_tokens) * 1e-6 + f64::from(usage.completion_tokens) * 2e-6;
    let got = a(s, "loop.cost_usd")
        .and_then(AttrValue::as_f64)
        .expect("cost");
    assert!((got - cost).abs() < 1e-12, "{got} vs {cost}");
    // Rolled up into the iteration.
    let it = doc.iterations().next().expect("iteration");
    assert_eq!(int(it, "loop.tokens_delta"), Some(total));
    // Private by default; the key never appears.
    let all = doc_text(&doc);
    assert!(
        !all.contains("PROMPT-MARKER"),
        "prompt recorded without opt-in"
    );
    assert!(
        !all.contains("LLMock says"),
        "completion recorded without opt-in"
    );
    assert!(!all.contains("SECRET-0123456789"), "API key recorded");
    assert!(a(s, "error.type").is_none());
}

#[tokio::test]
async fn streamed_chat_records_usage_first_chunk_and_a_slow_first_token() {
    let Some(base) = llmock() else { return };
    scenario(
        &base,
        "lt-stream",
        json!([{"type": "slow_first_token", "seconds": 0.3}]),
    )
    .await;
    let c = client(&base, GenAiTelemetry::default());
    let req = chat_request("lt-stream", json!({}));
    let (chunks, doc) = in_run(|cx| async {
        let stream = c
            .chat()
            .create_stream(req)
            .with_context(cx)
            .await
            .expect("stream");
        stream.collect::<Vec<_>>().await
    })
    .await;
    assert!(chunks.len() > 2 && chunks.iter().all(Result::is_ok));
    let usage = chunks
        .iter()
        .filter_map(|c| c.as_ref().ok()?.usage.clone())
        .next_back()
        .expect("usage asked for by the traced client");
    let s = spans(&doc, "chat lt-stream")[0];
    assert_eq!(text(s, "loop.stream.end_reason"), Some("completed"));
    assert_eq!(int(s, "loop.stream.items"), Some(chunks.len() as i64));
    assert_eq!(
        json_of(s, "gen_ai.response.finish_reasons"),
        Some(r#"["stop"]"#.to_owned())
    );
    assert_eq!(
        int(s, "gen_ai.usage.output_tokens"),
        Some(i64::from(usage.completion_tokens))
    );
    let ttfc = a(s, "gen_ai.response.time_to_first_chunk")
        .and_then(AttrValue::as_f64)
        .expect("time to first chunk");
    assert!(ttfc >= 0.25, "slow first token not seen: {ttfc}");
    assert!(a(s, "loop.stream.incomplete").is_none());
    assert!(a(s, "error.type").is_none());
}

#[tokio::test]
async fn streamed_tool_calls_are_assembled_then_the_tool_result_turn_is_traced() {
    let Some(base) = llmock() else { return };
    scenario(
        &base,
        "lt-tools",
        json!([{"type": "reply", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}]),
    )
    .await;
    let tools = json!({"tools": [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
    for capture in [false, true] {
        let c = client(&base, GenAiTelemetry::default().capture_content(capture));
        if capture {
            scenario(
                &base,
                "lt-tools",
                json!([{"type": "reply", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}]),
            )
            .await;
        }
        let first = chat_request("lt-tools", tools.clone());
        let ((call_id, reply), doc) = in_run(|cx| async {
            let stream = c
                .chat()
                .create_stream(first)
                .with_context(cx.clone())
                .await
                .expect("stream");
            let chunks: Vec<_> = stream.collect().await;
            let call_id = chunks
                .iter()
                .filter_map(|c| c.as_ref().ok())
                .flat_map(|c| c.choices.iter())
                .flat_map(|ch| ch.delta.tool_calls.iter().flatten())
                .find_map(|d| d.id.clone())
                .expect("a streamed tool call");
            // The tool-result turn.
            let mut second = chat_request("lt-tools-result", json!({}));
            let mut msgs = serde_json::to_value(&second.messages).unwrap();
            msgs.as_array_mut().unwrap().extend([
                json!({"role": "assistant", "tool_calls": [{"id": call_id, "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
                json!({"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"}),
            ]);
            second.messages = serde_json::from_value(msgs).unwrap();
            let reply = c.chat().create(second).with_context(cx).await;
            (call_id, reply)
        })
        .await;
        reply.expect("tool result turn answered");
        let s = spans(&doc, "chat lt-tools")[0];
        let calls = json_of(s, "gen_ai.response.tool_calls").expect("tool calls");
        assert!(
            calls.contains("get_weather") && calls.contains(&call_id),
            "{calls}"
        );
        assert_eq!(
            json_of(s, "gen_ai.response.finish_reasons"),
            Some(r#"["tool_calls"]"#.to_owned())
        );
        assert_eq!(
            calls.contains("Paris"),
            capture,
            "arguments only with capture: {calls}"
        );
        assert_eq!(a(s, "gen_ai.input.messages").is_some(), capture);
        assert_eq!(spans(&doc, "chat lt-tools-result").len(), 1);
        assert!(!doc_text(&doc).contains("SECRET-0123456789"));
    }
}

#[tokio::test]
async fn embeddings_record_input_tokens_and_dimensions() {
    let Some(base) = llmock() else { return };
    let c = client(&base, GenAiTelemetry::default());
    let req = serde_json::from_value(json!({"model": "lt-embed", "input": ["a", "b c"]})).unwrap();
    let (resp, doc) =
        in_run(|cx| async { c.embeddings().create(req).with_context(cx).await }).await;
    let resp = resp.expect("embeddings");
    let s = spans(&doc, "embeddings lt-embed")[0];
    assert_eq!(text(s, "gen_ai.operation.name"), Some("embeddings"));
    assert_eq!(
        int(s, "gen_ai.usage.input_tokens"),
        Some(i64::from(resp.usage.prompt_tokens))
    );
    assert_eq!(
        int(s, "gen_ai.embeddings.dimension.count"),
        Some(resp.data[0].embedding.len() as i64)
    );
}

#[tokio::test]
async fn responses_api_create_and_stream() {
    let Some(base) = llmock() else { return };
    let c = client(&base, GenAiTelemetry::default());
    let req = serde_json::from_value(json!({"model": "lt-resp", "input": "hello"})).unwrap();
    let stream_req =
        serde_json::from_value(json!({"model": "lt-resp-stream", "input": "hello"})).unwrap();
    let ((plain, events), doc) = in_run(|cx| async {
        let plain = c.responses().create(req).with_context(cx.clone()).await;
        let s = c
            .responses()
            .create_stream(stream_req)
            .with_context(cx)
            .await
            .expect("stream");
        (plain, s.collect::<Vec<_>>().await)
    })
    .await;
    let plain = plain.expect("response");
    let s = spans(&doc, "chat lt-resp")[0];
    assert_eq!(text(s, "gen_ai.response.id"), Some(plain.id.as_str()));
    let usage = plain.usage.expect("usage");
    assert_eq!(
        int(s, "gen_ai.usage.input_tokens"),
        Some(i64::from(usage.input_tokens))
    );
    assert!(events.iter().all(Result::is_ok));
    let s = spans(&doc, "chat lt-resp-stream")[0];
    assert_eq!(text(s, "loop.stream.end_reason"), Some("completed"));
    assert!(
        int(s, "gen_ai.usage.output_tokens").is_some(),
        "final response recorded"
    );
    assert!(a(s, "loop.stream.incomplete").is_none());
}

#[tokio::test]
async fn a_429_then_success_is_one_logical_span_without_error() {
    let Some(base) = llmock() else { return };
    scenario(
        &base,
        "lt-429",
        json!([{"type": "fail", "status": 429, "retry_after": 0}]),
    )
    .await;
    let c = client(&base, GenAiTelemetry::default());
    let (reply, doc) = in_run(|cx| async {
        c.chat()
            .create(chat_request("lt-429", json!({})))
            .with_context(cx)
            .await
    })
    .await;
    reply.expect("async-openai retried the 429");
    let s = spans(&doc, "chat lt-429");
    assert_eq!(s.len(), 1);
    assert!(a(s[0], "error.type").is_none());
}

#[tokio::test]
async fn a_persistent_500_is_an_error_span_and_the_caller_gets_the_same_error() {
    let Some(base) = llmock() else { return };
    // The first attempt and async-openai's three retries.
    scenario(
        &base,
        "lt-500",
        json!([{"type": "fail", "status": 500, "times": 4}]),
    )
    .await;
    let c = client(&base, GenAiTelemetry::default());
    let (reply, doc) = in_run(|cx| async {
        c.chat()
            .create(chat_request("lt-500", json!({})))
            .with_context(cx)
            .await
    })
    .await;
    let err = reply.expect_err("500 after retries");
    let OpenAIError::ApiError(api) = &err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(api.status_code.as_u16(), 500);
    let s = spans(&doc, "chat lt-500")[0];
    assert!(a(s, "error.type").is_some());
    assert_eq!(int(s, "http.response.status_code"), Some(500));
    assert!(s.events.iter().any(|e| e.name.as_str() == "exception"));
    assert!(int(s, "gen_ai.usage.input_tokens").is_none());
}

#[tokio::test]
async fn a_truncated_stream_is_marked_incomplete_never_zero_tokens() {
    let Some(base) = llmock() else { return };
    scenario(
        &base,
        "lt-trunc",
        json!([{"type": "stream_fault", "kind": "truncate", "after_chunks": 2}]),
    )
    .await;
    let c = client(&base, GenAiTelemetry::default());
    let (chunks, doc) = in_run(|cx| async {
        let s = c
            .chat()
            .create_stream(chat_request("lt-trunc", json!({})))
            .with_context(cx)
            .await
            .unwrap();
        s.collect::<Vec<_>>().await
    })
    .await;
    assert!(
        chunks.iter().all(Result::is_ok),
        "async-openai sees a clean end"
    );
    let s = spans(&doc, "chat lt-trunc")[0];
    assert_eq!(
        a(s, "loop.stream.incomplete").and_then(|v| match v {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }),
        Some(true)
    );
    assert_eq!(text(s, "error.type"), Some("incomplete_stream"));
    assert!(int(s, "gen_ai.usage.output_tokens").is_none());
    assert!(int(s, "loop.tokens_delta").is_none());
}

#[tokio::test]
async fn disconnects_and_malformed_chunks_end_the_span_with_the_callers_error() {
    let Some(base) = llmock() else { return };
    for (model, kind) in [("lt-disc", "disconnect"), ("lt-malformed", "malformed")] {
        scenario(
            &base,
            model,
            json!([{"type": "stream_fault", "kind": kind, "after_chunks": 1}]),
        )
        .await;
        let c = client(&base, GenAiTelemetry::default());
        let (chunks, doc) = in_run(|cx| async {
            let s = c
                .chat()
                .create_stream(chat_request(model, json!({})))
                .with_context(cx)
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(20), s.collect::<Vec<_>>())
                .await
                .expect("the stream ends")
        })
        .await;
        let first_err = chunks
            .iter()
            .position(Result::is_err)
            .expect("the caller gets the error");
        let s = spans(&doc, &format!("chat {model}"))[0];
        assert_eq!(text(s, "loop.stream.end_reason"), Some("error"), "{kind}");
        assert_eq!(
            int(s, "loop.stream.items"),
            Some(first_err as i64 + 1),
            "{kind}"
        );
        let et = text(s, "error.type").expect("error.type");
        if kind == "malformed" {
            assert_eq!(et, "malformed_response");
        }
        assert!(!doc_text(&doc).contains("SECRET-0123456789"));
    }
}

#[tokio::test]
async fn a_stream_dropped_midway_ends_its_span_dropped_early() {
    let Some(base) = llmock() else { return };
    let c = client(&base, GenAiTelemetry::default());
    let (first, doc) = in_run(|cx| async {
        let mut s = c
            .chat()
            .create_stream(chat_request("lt-drop", json!({})))
            .with_context(cx)
            .await
            .unwrap();
        let first = s.next().await;
        drop(s);
        first
    })
    .await;
    assert!(matches!(first, Some(Ok(_))));
    let s = spans(&doc, "chat lt-drop")[0];
    assert_eq!(text(s, "loop.stream.end_reason"), Some("dropped_early"));
    assert_eq!(int(s, "loop.stream.items"), Some(1));
    assert!(int(s, "gen_ai.usage.output_tokens").is_none());
}

#[tokio::test]
async fn with_the_http_stack_each_attempt_is_a_child_span_with_its_retry_number() {
    let Some(base) = llmock() else { return };
    scenario(
        &base,
        "lt-attempts",
        json!([{"type": "fail", "status": 429, "retry_after": 0}]),
    )
    .await;
    let config = OpenAIConfig::new()
        .with_api_base(format!("{base}/v1"))
        .with_api_key(API_KEY);
    let inner = async_openai::Client::with_config(config).with_http_service(
        loopotel_openai::middleware::traced_http_service(reqwest::Client::new()),
    );
    let c = TracedClient::new(inner);
    let (reply, doc) = in_run(|cx| async {
        c.chat()
            .create(chat_request("lt-attempts", json!({})))
            .with_context(cx)
            .await
    })
    .await;
    reply.expect("retried by the re-added retry layer");
    let call = spans(&doc, "chat lt-attempts")[0];
    assert!(
        a(call, "error.type").is_none(),
        "the logical call succeeded"
    );
    let attempts: Vec<_> = spans(&doc, "POST")
        .into_iter()
        .filter(|s| s.parent_span_id == Some(call.span_id))
        .collect();
    assert_eq!(attempts.len(), 2, "one span per HTTP attempt");
    assert_eq!(int(attempts[0], "http.response.status_code"), Some(429));
    assert_eq!(text(attempts[0], "error.type"), Some("429"));
    assert_eq!(
        text(attempts[0], "http.response.header.retry-after"),
        Some("0")
    );
    assert!(int(attempts[0], "http.request.resend_count").is_none());
    assert_eq!(int(attempts[1], "http.response.status_code"), Some(200));
    assert_eq!(int(attempts[1], "http.request.resend_count"), Some(1));
    assert!(text(attempts[1], "url.full").is_some_and(|u| u.ends_with("/v1/chat/completions")));
    assert!(
        !doc_text(&doc).contains("SECRET-0123456789"),
        "no Authorization header recorded"
    );
}

#[tokio::test]
async fn the_opentelemetry_view_is_a_client_span_and_genai_metrics() {
    use opentelemetry::trace::SpanKind as OtelKind;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    let Some(base) = llmock() else { return };
    let spans_out = InMemorySpanExporter::default();
    let seen = SeenAtCreation::default();
    let traces = SdkTracerProvider::builder()
        .with_sampler(seen.clone())
        .with_simple_exporter(spans_out.clone())
        .build();
    let metrics_out = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics_out.clone()).build())
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&traces)
        .meter_provider(&meters)
        .build();
    let c = client(&base, GenAiTelemetry::default());
    let run = tracer.run("otel-openai").start();
    let it = run.iteration(1);
    let reply = c
        .chat()
        .create(chat_request("lt-otel", json!({})))
        .with_context(it.context())
        .await
        .expect("reply");
    drop(it);
    let doc = run.finish(loopotel::Outcome::Success, "done");
    let ltf = spans(&doc, "chat lt-otel")[0];
    let otel = spans_out.get_finished_spans().expect("spans");
    let span = otel
        .iter()
        .find(|s| s.name == "chat lt-otel")
        .expect("the OpenTelemetry span");
    assert_eq!(span.span_kind, OtelKind::Client);
    assert_eq!(
        span.span_context.span_id().to_string(),
        ltf.span_id.to_string()
    );
    // The sampling-relevant attributes were there when the span was created, and the
    // exported span has each of them once.
    let created = seen
        .attributes_of("chat lt-otel")
        .expect("the chat span was sampled");
    let created_keys: Vec<&str> = created.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "server.address",
        "server.port",
    ] {
        assert!(created_keys.contains(&key), "{key} not in {created_keys:?}");
        let n = span
            .attributes
            .iter()
            .filter(|kv| kv.key.as_str() == key)
            .count();
        assert_eq!(n, 1, "{key} exported {n} times");
    }
    assert!(created.contains(&("gen_ai.request.model".to_owned(), "lt-otel".to_owned())));
    let usage = reply.usage.expect("usage");
    assert!(
        span.attributes
            .iter()
            .any(|kv| kv.key.as_str() == "gen_ai.usage.input_tokens"
                && kv.value == opentelemetry::Value::I64(i64::from(usage.prompt_tokens)))
    );
    meters.force_flush().expect("flush");
    let names: Vec<String> = metrics_out
        .get_finished_metrics()
        .expect("metrics")
        .iter()
        .flat_map(|rm| rm.scope_metrics())
        .flat_map(|sm| sm.metrics())
        .map(|m| m.name().to_owned())
        .collect();
    for want in [
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}
