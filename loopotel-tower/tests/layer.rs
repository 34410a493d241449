//! LoopTraceLayer with real tower stacks: ServiceBuilder, BoxCloneService, Buffer, Timeout,
//! Retry; classification, failures, cancellation, panics, standalone calls.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use loopotel::{LoopTracer, LtfDocument, LtfSpan, Outcome, SpanGuard};
use loopotel_tower::LoopTraceLayer;
use loopotel_tower::trace::{Failure, FailureClass, ResponseClass, callback_panics};
use opentelemetry::context::FutureExt as _;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};

use loopotel_test_support::sampler::SeenAtCreation;

fn span<'a>(doc: &'a LtfDocument, name: &str) -> Vec<&'a LtfSpan> {
    doc.spans
        .iter()
        .filter(|s| s.name.as_str() == name)
        .collect()
}

fn attr<'a>(s: &'a LtfSpan, key: &str) -> Option<&'a loopotel::AttrValue> {
    s.attributes.get(key)
}

#[derive(Clone, Debug)]
struct LlmReply {
    tokens: u64,
    refused: bool,
}

#[tokio::test]
async fn calls_become_children_of_the_current_iteration_with_rollups_and_classification() {
    let llm = ServiceBuilder::new()
        .layer(
            LoopTraceLayer::llm("gpt-test")
                .on_request(|prompt: &String, span: &mut SpanGuard| {
                    span.set_attribute("app.prompt_chars", prompt.len());
                })
                .on_response(
                    |reply: &LlmReply, _latency: Duration, span: &mut SpanGuard| {
                        span.add_tokens(reply.tokens);
                        span.set_attribute("gen_ai.usage.output_tokens", reply.tokens);
                    },
                )
                .classify_with(|reply: &LlmReply| {
                    if reply.refused {
                        ResponseClass::Failure(FailureClass::new("refusal"))
                    } else {
                        ResponseClass::Success
                    }
                }),
        )
        .service(service_fn(|prompt: String| async move {
            Ok::<_, BoxError>(LlmReply {
                tokens: 40,
                refused: prompt.contains("forbidden"),
            })
        }));

    let (_, doc) = LoopTracer::new()
        .run("tower-loop")
        .scope(|run| async move {
            for n in 1..=2u64 {
                let mut it = run.iteration(n);
                let prompt = if n == 2 { "forbidden topic" } else { "hello" };
                let reply = llm
                    .clone()
                    .oneshot(prompt.to_owned())
                    .with_context(it.context())
                    .await
                    .unwrap();
                assert_eq!(reply.tokens, 40, "the response passes through unchanged");
                it.evaluator_complete("critic", 0.5);
            }
        })
        .await;
    let calls = span(&doc, "chat gpt-test");
    assert_eq!(calls.len(), 2);
    let iterations: Vec<_> = doc.iterations().collect();
    for ((call, it), tokens) in calls.iter().zip(&iterations).zip([40, 0]) {
        assert_eq!(call.parent_span_id, Some(it.span_id));
        assert_eq!(
            attr(call, "gen_ai.operation.name").and_then(|v| v.as_str()),
            Some("chat")
        );
        assert_eq!(
            attr(call, "app.prompt_chars")
                .and_then(|v| v.as_i64())
                .map(|n| n > 0),
            Some(true)
        );
        // Tokens roll up from on_response; the refused call never reached it.
        assert_eq!(
            attr(it, "loop.tokens_delta").and_then(|v| v.as_i64()),
            Some(tokens)
        );
    }
    assert!(attr(calls[0], "error.type").is_none());
    // Classified as a failure although the service said Ok: on_response did not run.
    assert_eq!(
        attr(calls[1], "error.type").and_then(|v| v.as_str()),
        Some("refusal")
    );
    assert!(
        calls[1]
            .events
            .iter()
            .any(|e| e.name.as_str() == "exception")
    );
}

#[tokio::test]
async fn errors_pass_through_unchanged_and_are_recorded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let tool = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("flaky").on_failure(
            move |f: Failure<'_, String, std::io::Error>, _: Duration, _: &mut SpanGuard| {
                if let Failure::Error(e) = f {
                    seen2.lock().unwrap().push(e.kind());
                }
            },
        ))
        .service(service_fn(|_: ()| async {
            Err::<String, _>(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "denied by policy",
            ))
        }));
    let (err, doc) = LoopTracer::new()
        .run("error-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            tool.oneshot(())
                .with_context(it.context())
                .await
                .unwrap_err()
        })
        .await;
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert_eq!(err.to_string(), "denied by policy");
    assert_eq!(
        *seen.lock().unwrap(),
        [std::io::ErrorKind::PermissionDenied]
    );
    let call = span(&doc, "execute_tool flaky")[0];
    assert_eq!(
        attr(call, "error.type").and_then(|v| v.as_str()),
        Some("Error")
    );
    let exception = call
        .events
        .iter()
        .find(|e| e.name.as_str() == "exception")
        .unwrap();
    assert_eq!(
        exception
            .attributes
            .get("exception.message")
            .and_then(|v| v.as_str()),
        Some("denied by policy")
    );
}

#[tokio::test]
async fn timeouts_cancel_the_inner_call_and_the_span_says_so() {
    let slow = service_fn(|_: ()| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, BoxError>("late")
    });
    // Outside the timeout: the call fails with error.type timeout.
    // Inside it: the attempt is cancelled (dropped), marked, and ended once.
    let svc = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("outer"))
        .timeout(Duration::from_millis(20))
        .layer(LoopTraceLayer::tool("inner"))
        .service(slow);
    let (err, doc) = LoopTracer::new()
        .run("timeout-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            svc.oneshot(())
                .with_context(it.context())
                .await
                .unwrap_err()
        })
        .await;
    assert!(err.is::<tower::timeout::error::Elapsed>());
    let outer = span(&doc, "execute_tool outer")[0];
    assert_eq!(
        attr(outer, "error.type").and_then(|v| v.as_str()),
        Some("timeout")
    );
    let inner = span(&doc, "execute_tool inner");
    assert_eq!(inner.len(), 1, "ended exactly once");
    assert_eq!(
        attr(inner[0], "loop.end_reason").and_then(|v| v.as_str()),
        Some("cancelled")
    );
    assert!(
        attr(inner[0], "loop.elapsed_ms")
            .and_then(|v| v.as_f64())
            .unwrap()
            >= 15.0
    );
    assert_eq!(inner[0].parent_span_id, Some(outer.span_id));
}

#[derive(Clone)]
struct RetryTwice;

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for RetryTwice {
    type Future = std::future::Ready<()>;
    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        result.is_err().then(|| std::future::ready(()))
    }
    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// One logical span and one span per attempt, numbered, under it: without a provider (the
/// call's context carries its scope), with one (the logical span's OpenTelemetry span is the
/// active span, found among the run's open spans), and with one that keeps a scope in every
/// context.
#[tokio::test]
async fn retries_give_one_logical_span_and_one_span_per_attempt() {
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracers = [
        ("ltf", LoopTracer::new()),
        (
            "bridged",
            LoopTracer::builder().tracer_provider(&provider).build(),
        ),
        (
            "bridged, scope in every context",
            LoopTracer::builder()
                .tracer_provider(&provider)
                .scope_through_foreign_spans(true)
                .build(),
        ),
    ];
    for (mode, tracer) in tracers {
        exporter.reset();
        let calls = Arc::new(AtomicU32::new(0));
        let calls2 = calls.clone();
        let flaky = service_fn(move |_: u8| {
            let n = calls2.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err::<&str, BoxError>("429 Too Many Requests".into())
                } else {
                    Ok("ok")
                }
            }
        });
        let svc = ServiceBuilder::new()
            .layer(LoopTraceLayer::llm("m"))
            .retry(RetryTwice)
            .layer(
                LoopTraceLayer::custom("http attempt", loopotel::SpanKind::Worker.client())
                    .per_attempt(),
            )
            .service(flaky);
        let (out, doc) = tracer
            .run("retry-loop")
            .scope(|run| async move {
                let it = run.iteration(1);
                svc.oneshot(7).with_context(it.context()).await.unwrap()
            })
            .await;
        assert_eq!(out, "ok");
        let logical = span(&doc, "chat m");
        assert_eq!(logical.len(), 1, "{mode}");
        assert!(attr(logical[0], "error.type").is_none());
        let attempts = span(&doc, "http attempt");
        assert_eq!(attempts.len(), 2, "{mode}");
        let numbers: Vec<_> = attempts
            .iter()
            .map(|s| attr(s, "loop.attempt").and_then(|v| v.as_i64()))
            .collect();
        assert_eq!(numbers, [Some(1), Some(2)], "{mode}");
        assert!(
            attempts
                .iter()
                .all(|a| a.parent_span_id == Some(logical[0].span_id)),
            "{mode}"
        );
        assert_eq!(
            attr(attempts[0], "error.type").and_then(|v| v.as_str()),
            Some("error")
        );
        if mode != "ltf" {
            let otel = exporter.get_finished_spans().unwrap();
            let otel_attempts: Vec<_> = otel.iter().filter(|s| s.name == "http attempt").collect();
            assert_eq!(otel_attempts.len(), 2, "{mode}");
            assert!(
                otel_attempts
                    .iter()
                    .all(|a| a.parent_span_id.to_bytes() == logical[0].span_id.to_bytes()),
                "{mode}"
            );
        }
        assert!(
            loopotel::validate::validate_document(&doc).is_empty(),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn works_through_box_clone_service_and_buffer() {
    let inner = service_fn(|x: u32| async move { Ok::<_, BoxError>(x * 2) });
    let traced: BoxCloneService<u32, u32, BoxError> = ServiceBuilder::new()
        .layer(LoopTraceLayer::env_step())
        .buffer(8)
        .service(inner)
        .boxed_clone();
    let (sum, doc) = LoopTracer::new()
        .run("buffer-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            let mut total = 0;
            for x in 0..5 {
                let mut svc = traced.clone();
                total += svc
                    .ready()
                    .await
                    .unwrap()
                    .call(x)
                    .with_context(it.context())
                    .await
                    .unwrap();
            }
            total
        })
        .await;
    assert_eq!(sum, 20);
    assert_eq!(span(&doc, "loop.env.step").len(), 5);
}

#[tokio::test]
async fn callback_panics_are_caught_and_inner_panics_are_not_swallowed() {
    let before = callback_panics();
    let svc = ServiceBuilder::new()
        .layer(
            LoopTraceLayer::tool("t")
                .on_response(|_: &u8, _: Duration, _: &mut SpanGuard| panic!("callback bug")),
        )
        .service(service_fn(|x: u8| async move {
            if x == 0 {
                panic!("service bug");
            }
            Ok::<_, BoxError>(x)
        }));
    // A panicking MakeSpan falls back to the default span; the call is unharmed.
    let panicky = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("fallback").make_span_with(
            |_: &u8, _: &loopotel_tower::trace::SpanSpec| -> loopotel_tower::trace::SpanSpec {
                panic!("user bug in make_span")
            },
        ))
        .service(service_fn(|n: u8| async move { Ok::<_, BoxError>(n) }));
    let (results, doc) = LoopTracer::new()
        .run("panic-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            let echoed = panicky.oneshot(7).with_context(it.context()).await.unwrap();
            assert_eq!(echoed, 7);
            let ok = svc
                .clone()
                .oneshot(3)
                .with_context(it.context())
                .await
                .unwrap();
            let inner_panic =
                std::panic::AssertUnwindSafe(svc.oneshot(0).with_context(it.context()))
                    .catch_unwind()
                    .await
                    .is_err();
            (ok, inner_panic)
        })
        .await;
    assert_eq!(results, (3, true));
    assert_eq!(callback_panics(), before + 2);
    assert_eq!(span(&doc, "execute_tool fallback").len(), 1);
    let spans = span(&doc, "execute_tool t");
    assert_eq!(spans.len(), 2);
    assert_eq!(
        attr(spans[1], "loop.end_reason").and_then(|v| v.as_str()),
        Some("panic")
    );
}

#[tokio::test]
async fn outside_a_run_calls_are_standalone_runs_or_not_recorded() {
    let docs = Arc::new(Mutex::new(Vec::new()));
    let docs2 = docs.clone();
    let tracer = LoopTracer::builder()
        .sink(move |d: &LtfDocument| docs2.lock().unwrap().push(d.clone()))
        .build();
    let echo = service_fn(|s: &'static str| async move { Ok::<_, BoxError>(s) });
    let standalone = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("echo").standalone(tracer))
        .service(echo);
    assert_eq!(standalone.oneshot("hi").await.unwrap(), "hi");
    let plain = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("echo"))
        .service(echo);
    assert_eq!(plain.oneshot("hi").await.unwrap(), "hi");
    let docs = docs.lock().unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].outcome, Some(Outcome::Success));
    assert_eq!(span(&docs[0], "execute_tool echo").len(), 1);
    assert!(loopotel::validate::validate_document(&docs[0]).is_empty());
}

#[tokio::test]
async fn dropping_the_call_at_any_poll_ends_the_span_exactly_once() {
    // A service that needs `steps` polls; the caller drops the future after `k` polls.
    for steps in 1..=4usize {
        for k in 0..=steps {
            let svc = ServiceBuilder::new()
                .layer(LoopTraceLayer::tool("steps"))
                .service(service_fn(move |_: ()| async move {
                    for _ in 0..steps {
                        tokio::task::yield_now().await;
                    }
                    Ok::<_, BoxError>(())
                }));
            let (completed, doc) = LoopTracer::new()
                .run("cancel-loop")
                .scope(|run| async move {
                    let it = run.iteration(1);
                    let mut fut = Box::pin(svc.oneshot(()).with_context(it.context()));
                    let waker = futures_util::task::noop_waker();
                    let mut cx = std::task::Context::from_waker(&waker);
                    let mut completed = false;
                    for _ in 0..k {
                        if fut.as_mut().poll(&mut cx).is_ready() {
                            completed = true;
                            break;
                        }
                    }
                    drop(fut);
                    completed
                })
                .await;
            let spans = span(&doc, "execute_tool steps");
            if k == 0 {
                // Never polled: oneshot had not called the service yet.
                assert!(spans.len() <= 1);
                continue;
            }
            assert_eq!(spans.len(), 1, "steps {steps}, dropped after {k} polls");
            let reason = attr(spans[0], "loop.end_reason").and_then(|v| v.as_str());
            if completed {
                assert_eq!(reason, None, "completed calls are not cancelled");
            } else {
                assert_eq!(reason, Some("cancelled"), "steps {steps}, k {k}");
            }
        }
    }
}

#[tokio::test]
async fn make_span_names_the_span_from_the_request() {
    use loopotel::SpanKind;
    use loopotel_tower::trace::SpanSpec;

    let llm = ServiceBuilder::new()
        .layer(LoopTraceLayer::llm("default-model").make_span_with(
            |req: &(String, String), default: &SpanSpec| SpanSpec {
                name: format!("chat {}", req.0).into(),
                kinds: default.kinds.clone(),
            },
        ))
        .service(service_fn(|req: (String, String)| async move {
            Ok::<_, BoxError>(req.1.len())
        }));
    let (_, doc) = LoopTracer::new()
        .run("make-span-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            let n = llm
                .oneshot(("gpt-4o-mini".into(), "hello".into()))
                .with_context(it.context())
                .await
                .unwrap();
            assert_eq!(n, 5);
        })
        .await;
    let chat = span(&doc, "chat gpt-4o-mini");
    assert_eq!(chat.len(), 1, "named from the request");
    assert_eq!(chat[0].kind, SpanKind::Worker);
    // The kind's attributes still apply (the model the layer was built with).
    assert_eq!(
        attr(chat[0], "gen_ai.operation.name").unwrap().as_str(),
        Some("chat")
    );
    assert!(span(&doc, "chat default-model").is_empty());
}

#[tokio::test]
async fn streaming_responses_keep_the_span_open_until_the_stream_ends() {
    use futures_util::StreamExt as _;
    use loopotel::stream::StreamEnd;

    let ends = Arc::new(Mutex::new(Vec::<StreamEnd>::new()));
    let seen = ends.clone();
    let tokens = ServiceBuilder::new()
        .layer(LoopTraceLayer::llm("stream-model").end_on_stream_end(
            move |end: &StreamEnd, span: &mut SpanGuard| {
                span.set_attribute("gen_ai.response.finish_reasons", "stop");
                span.add_tokens(end.items);
                seen.lock().unwrap().push(*end);
            },
        ))
        .service(service_fn(|n: usize| async move {
            Ok::<_, BoxError>(futures_util::stream::iter((0..n).map(|i| format!("t{i}"))))
        }));
    let (_, doc) = LoopTracer::new()
        .run("stream-loop")
        .scope(|run| {
            let tokens = tokens.clone();
            async move {
                let it = run.iteration(1);
                let all: Vec<String> = tokens
                    .clone()
                    .oneshot(4)
                    .with_context(it.context())
                    .await
                    .unwrap()
                    .collect()
                    .await;
                assert_eq!(all, ["t0", "t1", "t2", "t3"]);
                // Dropped after one item.
                let mut s = tokens.oneshot(10).with_context(it.context()).await.unwrap();
                assert_eq!(s.next().await.as_deref(), Some("t0"));
                drop(s);
            }
        })
        .await;
    let spans = span(&doc, "chat stream-model");
    assert_eq!(spans.len(), 2);
    let reasons: Vec<_> = spans
        .iter()
        .map(|s| attr(s, "loop.stream.end_reason").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["completed", "dropped_early"]);
    assert_eq!(
        attr(spans[0], "loop.stream.items").unwrap().as_i64(),
        Some(4)
    );
    assert_eq!(
        attr(spans[0], "loop.tokens_delta").unwrap().as_i64(),
        Some(4)
    );
    assert_eq!(
        attr(spans[0], "gen_ai.response.finish_reasons")
            .unwrap()
            .as_str(),
        Some("stop")
    );
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 2, "on_eos runs once per stream");
    assert_eq!((ends[0].reason, ends[0].items), ("completed", 4));
    assert_eq!((ends[1].reason, ends[1].items), ("dropped_early", 1));
    assert!(ends[0].time_to_first_item.is_some());
    // The iteration rolled the stream's tokens up.
    let it = doc.iterations().next().unwrap();
    assert_eq!(attr(it, "loop.tokens_delta").unwrap().as_i64(), Some(5));
}

#[tokio::test]
async fn http_body_responses_end_the_span_with_the_body_and_standalone_runs_after_it() {
    use http_body_util::BodyExt as _;
    use loopotel::stream::DefaultOnEos;

    let docs = Arc::new(Mutex::new(Vec::<LtfDocument>::new()));
    let sink = {
        let docs = docs.clone();
        move |doc: &LtfDocument| docs.lock().unwrap().push(doc.clone())
    };
    let tracer = LoopTracer::builder().sink(sink).build();
    let svc = ServiceBuilder::new()
        .layer(
            LoopTraceLayer::custom("GET /events", loopotel::SpanKind::Worker)
                .standalone(tracer)
                .end_on_body_end(DefaultOnEos),
        )
        .service(service_fn(|_: http::Request<()>| async move {
            let chunks = futures_util::stream::iter(["ab", "cde", "f"].map(|c| {
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from(c)))
            }));
            Ok::<_, BoxError>(http::Response::new(http_body_util::StreamBody::new(chunks)))
        }));
    let response = svc.oneshot(http::Request::new(())).await.unwrap();
    assert!(
        docs.lock().unwrap().is_empty(),
        "the run waits for the body"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"abcdef");
    let docs = docs.lock().unwrap();
    assert_eq!(docs.len(), 1);
    let call = span(&docs[0], "GET /events");
    assert_eq!(call.len(), 1);
    assert_eq!(
        attr(call[0], "loop.stream.bytes").unwrap().as_i64(),
        Some(6)
    );
    assert_eq!(
        attr(call[0], "loop.stream.end_reason").unwrap().as_str(),
        Some("completed")
    );
    assert_eq!(
        docs[0]
            .root()
            .unwrap()
            .attributes
            .get("loop.outcome")
            .unwrap()
            .as_str(),
        Some("success")
    );
}

/// The response future of a call is no larger than the inner service's future when that one
/// has a spare bit pattern (most do): a layer that records nothing costs no extra bytes to
/// move. (The recording state lives in the recorded call's own allocation.)
#[test]
fn the_response_future_is_the_size_of_the_inner_future() {
    #[derive(Clone, Copy)]
    struct Echo;
    impl Service<http::Request<String>> for Echo {
        type Response = http::Response<String>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<String>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(String::new())))
        }
    }
    fn future_size<S: Service<http::Request<String>>>(_: &S) -> usize {
        std::mem::size_of::<S::Future>()
    }
    let traced = tower::Layer::layer(&LoopTraceLayer::tool("echo"), Echo);
    assert_eq!(future_size(&traced), future_size(&Echo));
}

/// The kind's attributes (and the attempt number) are on the OpenTelemetry span from its
/// creation, so a sampler can decide on `gen_ai.operation.name` or the tool's name.
#[tokio::test]
async fn samplers_see_the_kinds_attributes_when_the_span_is_created() {
    let seen = SeenAtCreation::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(seen.clone())
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let mut tool = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("search").per_attempt())
        .service(service_fn(
            |q: String| async move { Ok::<_, BoxError>(q.len()) },
        ));
    let run = tracer.run("sampled-tools").start();
    let it = run.iteration(1);
    let cx = it.context();
    let n = async { tool.ready().await?.call("rust".to_owned()).await }
        .with_context(cx)
        .await;
    assert_eq!(n.ok(), Some(4));
    drop(it);
    let doc = run.finish(Outcome::Success, "done");
    let at_creation = seen
        .attributes_of("execute_tool search")
        .expect("the tool span was sampled");
    assert_eq!(
        at_creation,
        [
            (
                "gen_ai.operation.name".to_owned(),
                "execute_tool".to_owned()
            ),
            ("gen_ai.tool.name".to_owned(), "search".to_owned()),
            ("loop.attempt".to_owned(), "1".to_owned()),
        ]
    );
    let ltf = span(&doc, "execute_tool search");
    assert_eq!(ltf.len(), 1);
    assert_eq!(
        attr(ltf[0], "gen_ai.tool.name").and_then(|v| v.as_str()),
        Some("search")
    );
    let _ = provider.shutdown();
}

/// What the caller's context carries (baggage, other instrumentation's values) reaches the
/// inner service, together with the call's span — with and without an OpenTelemetry
/// provider.
#[tokio::test]
async fn the_callers_context_values_reach_the_inner_service() {
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::trace::TraceContextExt as _;

    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    for (tracer, bridged) in [
        (LoopTracer::new(), false),
        (
            LoopTracer::builder().tracer_provider(&provider).build(),
            true,
        ),
    ] {
        let seen = Arc::new(Mutex::new(None));
        let seen_inner = seen.clone();
        let mut tool = ServiceBuilder::new()
            .layer(LoopTraceLayer::tool("lookup"))
            .service(service_fn(move |_: ()| {
                let cx = opentelemetry::Context::current();
                let tenant = cx.baggage().get("tenant").map(|v| v.to_string());
                let span = cx.span().span_context().span_id();
                if let Ok(mut seen) = seen_inner.lock() {
                    *seen = Some((tenant, span));
                }
                async { Ok::<_, BoxError>(()) }
            }));
        let run = tracer.run("baggage-loop").start();
        let it = run.iteration(1);
        let cx = it
            .context()
            .with_baggage([opentelemetry::KeyValue::new("tenant", "acme")]);
        async { tool.ready().await?.call(()).await }
            .with_context(cx)
            .await
            .expect("the call");
        drop(it);
        let doc = run.finish(Outcome::Success, "done");
        let (tenant, active) = seen.lock().expect("seen").clone().expect("called");
        assert_eq!(tenant.as_deref(), Some("acme"), "bridged: {bridged}");
        let call = span(&doc, "execute_tool lookup");
        assert_eq!(call.len(), 1);
        if bridged {
            // The call's span is the active OpenTelemetry span inside the service.
            assert_eq!(active.to_string(), call[0].span_id.to_string());
        }
    }
    let _ = provider.shutdown();
}

/// Concurrent calls on a multi-threaded runtime, with a provider: each call's context holds
/// only its OpenTelemetry span, and the loopotel span its service starts inside (on another
/// worker thread, after an `.await`) still goes under that call in both views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bridged_calls_each_parent_their_nested_spans() {
    use opentelemetry::context::FutureExt as _;
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = LoopTracer::builder().tracer_provider(&provider).build();
    let svc = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("agent"))
        .service(service_fn(|i: u32| async move {
            tokio::task::yield_now().await;
            let cx = opentelemetry::Context::current();
            // Spawned work carries the call's context explicitly.
            let nested = tokio::spawn(
                async move {
                    tokio::task::yield_now().await;
                    let span = loopotel::context::start_span(
                        format!("chat c{i}"),
                        loopotel::SpanKind::Worker.client(),
                    );
                    span.span_id()
                }
                .with_context(cx),
            )
            .await
            .map_err(|e| BoxError::from(e.to_string()))?;
            Ok::<_, BoxError>((i, nested))
        }));
    let run = tracer.run("parallel-tools").start();
    let it = run.iteration(1);
    let calls = (0..64u32).map(|i| {
        let svc = svc.clone();
        tokio::spawn(svc.oneshot(i).with_context(it.context()))
    });
    let mut nested = Vec::new();
    for call in calls {
        let (i, id) = call.await.unwrap().unwrap();
        nested.push((i, id.unwrap()));
    }
    drop(it);
    let doc = run.finish(Outcome::Success, "done");
    let otel = exporter.get_finished_spans().unwrap();
    let tools = span(&doc, "execute_tool agent");
    assert_eq!(tools.len(), 64);
    for (i, id) in nested {
        let name = format!("chat c{i}");
        let chat = doc.spans.iter().find(|s| s.name == name.as_str()).unwrap();
        assert_eq!(chat.span_id, id);
        let parent = chat.parent_span_id.expect("a parent");
        assert!(tools.iter().any(|t| t.span_id == parent), "{name}");
        let otel_chat = otel.iter().find(|s| s.name == name).unwrap();
        assert_eq!(
            otel_chat.parent_span_id.to_bytes(),
            parent.to_bytes(),
            "{name}"
        );
    }
    // Each tool call parents exactly one nested span.
    let mut parents: Vec<_> = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str().starts_with("chat c"))
        .map(|s| s.parent_span_id)
        .collect();
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 64);
    assert!(loopotel::validate::validate_document(&doc).is_empty());
}
