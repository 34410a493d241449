//! LoopTraceLayer with real tower stacks: ServiceBuilder, BoxCloneService, Buffer, Timeout,
//! Retry; classification, failures, cancellation, panics, standalone calls.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use loopotel::{LoopTracer, LtfDocument, LtfSpan, Outcome, SpanGuard};
use loopotel_tower::LoopTraceLayer;
use loopotel_tower::trace::{Failure, callback_panics};
use opentelemetry::context::FutureExt as _;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};

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
                .classify(|reply: &LlmReply| {
                    if reply.refused {
                        Err("refusal".to_owned())
                    } else {
                        Ok(())
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

#[tokio::test]
async fn retries_give_one_logical_span_and_one_span_per_attempt() {
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
    let (out, doc) = LoopTracer::new()
        .run("retry-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            svc.oneshot(7).with_context(it.context()).await.unwrap()
        })
        .await;
    assert_eq!(out, "ok");
    let logical = span(&doc, "chat m");
    assert_eq!(logical.len(), 1);
    assert!(attr(logical[0], "error.type").is_none());
    let attempts = span(&doc, "http attempt");
    assert_eq!(attempts.len(), 2);
    let numbers: Vec<_> = attempts
        .iter()
        .map(|s| attr(s, "loop.attempt").and_then(|v| v.as_i64()))
        .collect();
    assert_eq!(numbers, [Some(1), Some(2)]);
    assert!(
        attempts
            .iter()
            .all(|a| a.parent_span_id == Some(logical[0].span_id))
    );
    assert_eq!(
        attr(attempts[0], "error.type").and_then(|v| v.as_str()),
        Some("error")
    );
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
    let (results, doc) = LoopTracer::new()
        .run("panic-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
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
    assert_eq!(callback_panics(), before + 1);
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
