//! What the traced client adds to plain async-openai, against a local OpenAI-compatible
//! server (hyper on 127.0.0.1, answering from memory so the server costs little): per
//! chat call, and per chunk of a 500-chunk stream. Ratios are computed from this run.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::Criterion;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use loopotel::{LoopTracer, Outcome};
use loopotel_openai::TracedClient;
use loopotel_openai::async_openai::config::OpenAIConfig;
use loopotel_openai::async_openai::types::chat::CreateChatCompletionRequest;
use opentelemetry::context::FutureExt as _;
use serde_json::json;

use common::mean_ns;
use loopotel_test_support::bench as common;

const CHUNKS: usize = 500;

fn completion() -> Bytes {
    Bytes::from(
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
        .to_string(),
    )
}

fn sse() -> Bytes {
    let mut body = String::new();
    for i in 0..CHUNKS {
        let finish = if i + 1 == CHUNKS {
            json!("stop")
        } else {
            json!(null)
        };
        let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "bench", "choices": [{"index": 0, "delta": {"content": "tok"},
            "finish_reason": finish}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "bench", "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": CHUNKS, "total_tokens": CHUNKS + 5}});
    body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    Bytes::from(body)
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (plain, stream) = (completion(), sse());
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (plain, stream) = (plain.clone(), stream.clone());
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (plain, stream) = (plain.clone(), stream.clone());
                async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                    let streaming = body
                        .map(|b| b.windows(13).any(|w| w == b"\"stream\":true"))
                        .unwrap_or(false);
                    let (ct, bytes) = if streaming {
                        ("text/event-stream", stream)
                    } else {
                        ("application/json", plain)
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", ct)
                            .body(Full::new(bytes))
                            .expect("response"),
                    )
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/v1")
}

fn request() -> CreateChatCompletionRequest {
    serde_json::from_value(
        json!({"model": "bench", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .expect("request")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = rt.block_on(serve());
    let client = loopotel_openai::async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key("sk-bench"),
    );
    let traced = TracedClient::new(client.clone());
    let tracer = LoopTracer::new();

    // Every timed call runs inside an iteration's context, plain or traced.
    let timed = |iters: u64, traced_call: bool, streaming: bool| -> Duration {
        rt.block_on(async {
            let run = tracer.run("bench").start();
            let it = run.iteration(1);
            let cx = it.context();
            let start = Instant::now();
            for _ in 0..iters {
                let fut = async {
                    match (traced_call, streaming) {
                        (false, false) => {
                            black_box(client.chat().create(request()).await.expect("reply"));
                        }
                        (true, false) => {
                            black_box(traced.chat().create(request()).await.expect("reply"));
                        }
                        (false, true) => {
                            let mut r = request();
                            r.stream_options = Some(Default::default());
                            if let Some(o) = r.stream_options.as_mut() {
                                o.include_usage = Some(true);
                            }
                            let s = client.chat().create_stream(r).await.expect("stream");
                            black_box(s.count().await);
                        }
                        (true, true) => {
                            let s = traced
                                .chat()
                                .create_stream(request())
                                .await
                                .expect("stream");
                            black_box(s.count().await);
                        }
                    }
                };
                fut.with_context(cx.clone()).await;
            }
            let took = start.elapsed();
            drop(it);
            black_box(run.finish(Outcome::Success, "done"));
            took
        })
    };

    let mut g = c.benchmark_group("openai");
    g.sample_size(30);
    g.bench_function("chat_plain", |b| b.iter_custom(|n| timed(n, false, false)));
    g.bench_function("chat_traced", |b| b.iter_custom(|n| timed(n, true, false)));
    g.bench_function("stream_500_plain", |b| {
        b.iter_custom(|n| timed(n, false, true))
    });
    g.bench_function("stream_500_traced", |b| {
        b.iter_custom(|n| timed(n, true, true))
    });
    g.finish();
}

fn report() {
    println!("\n## loopotel-openai overhead (this run, local server)\n");
    println!("| call | plain async-openai | traced | ratio | added |");
    println!("|---|---|---|---|---|");
    if let (Some(p), Some(t)) = (mean_ns("openai/chat_plain"), mean_ns("openai/chat_traced")) {
        println!(
            "| chat completion | {:.1} µs | {:.1} µs | {:.3}× | {:.1} µs per call |",
            p / 1e3,
            t / 1e3,
            t / p,
            (t - p) / 1e3
        );
    }
    if let (Some(p), Some(t)) = (
        mean_ns("openai/stream_500_plain"),
        mean_ns("openai/stream_500_traced"),
    ) {
        println!(
            "| stream of {CHUNKS} chunks | {:.1} µs | {:.1} µs | {:.3}× | {:.0} ns per chunk |",
            p / 1e3,
            t / 1e3,
            t / p,
            (t - p) / CHUNKS as f64
        );
    }
}

fn main() {
    common::run(benches, report);
}
