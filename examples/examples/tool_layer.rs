//! A traced tool stack inside a loop run: `LoopTraceLayer` over a tower service, with a
//! timeout, a retry and per-attempt spans; the trace is printed as JSON.
//!
//! `cargo run -p examples --example tool_layer`

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use loopotel::{LoopTracer, Outcome, SpanGuard, SpanKind};
use loopotel_tower::LoopTraceLayer;
use opentelemetry::context::FutureExt as _;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

#[derive(Clone)]
struct RetryOnce;

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for RetryOnce {
    type Future = std::future::Ready<()>;
    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        result.is_err().then(|| std::future::ready(()))
    }
    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

#[tokio::main]
async fn main() {
    // A search tool that fails its first call.
    let calls = Arc::new(AtomicU32::new(0));
    let search = service_fn(move |query: String| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            if n == 0 {
                Err::<Vec<String>, BoxError>("503 Service Unavailable".into())
            } else {
                Ok(vec![format!("result for {query}")])
            }
        }
    });
    let tool = ServiceBuilder::new()
        .layer(
            LoopTraceLayer::tool("search")
                .on_request(|q: &String, span: &mut SpanGuard| {
                    span.set_attribute("app.query_len", q.len())
                })
                .on_response(|hits: &Vec<String>, _: Duration, span: &mut SpanGuard| {
                    span.set_attribute("app.hits", hits.len())
                }),
        )
        .timeout(Duration::from_secs(2))
        .retry(RetryOnce)
        .layer(LoopTraceLayer::custom("search attempt", SpanKind::Worker.client()).per_attempt())
        .service(search);

    let (_, doc) = LoopTracer::new()
        .run("tool-layer-demo")
        .scope(|run| async move {
            for n in 1..=2 {
                let mut it = run.iteration(n);
                let hits = tool
                    .clone()
                    .oneshot(format!("query {n}"))
                    .with_context(it.context())
                    .await;
                it.evaluator_complete("critic", if hits.is_ok() { 0.9 } else { 0.1 });
            }
            run.set_outcome(Outcome::Success, "done");
        })
        .await;
    for span in &doc.spans {
        println!(
            "{:<24} {:<10} attempt={:?} error={:?}",
            span.name.as_str(),
            span.kind.as_str(),
            span.attributes.get("loop.attempt").and_then(|v| v.as_i64()),
            span.attributes.get("error.type").and_then(|v| v.as_str()),
        );
    }
    println!("{}", doc.to_json_line());
}
