//! What the traced client adds to plain async-openai: per chat call, and per chunk of a
//! 500-chunk stream. Two transports: a local OpenAI-compatible server (hyper on 127.0.0.1,
//! answering from memory so the server costs little) and an in-memory HTTP service
//! installed with `Client::with_http_service` (the request is still built and serialized,
//! the response still parsed; no socket, so the round trip's noise is gone and what the
//! traced client adds stands out). Criterion's means, and paired interleaved rounds for the
//! added time per call, both from this run.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
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
use loopotel_openai::async_openai::error::OpenAIError;
use loopotel_openai::async_openai::middleware::HttpRequestFactory;
use loopotel_openai::async_openai::types::chat::CreateChatCompletionRequest;
use opentelemetry::context::FutureExt as _;
use serde_json::json;

use common::{PairedRatio, mean_ns, paired_ratio};
use loopotel_test_support::bench as common;

const CHUNKS: usize = 500;

/// Paired rounds of each comparison, printed by [`report`].
static PAIRED: OnceLock<Vec<(&'static str, PairedRatio)>> = OnceLock::new();

/// The busy work of the "+ busy work" row: the traced call's added time in memory.
static WORK: OnceLock<Duration> = OnceLock::new();

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

/// Answers every request from memory, as the local server does, without a socket.
#[derive(Clone)]
struct InMemory {
    plain: Bytes,
    stream: Bytes,
}

type Answer = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

impl tower::Service<HttpRequestFactory> for InMemory {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Answer {
        let this = self.clone();
        Box::pin(async move {
            let request = factory.build().await?;
            let streaming = request
                .body()
                .and_then(|b| b.as_bytes())
                .is_some_and(|b| b.windows(13).any(|w| w == b"\"stream\":true"));
            let (ct, bytes) = if streaming {
                ("text/event-stream", this.stream)
            } else {
                ("application/json", this.plain)
            };
            let response = http::Response::builder()
                .header("content-type", ct)
                .body(bytes)
                .expect("response");
            Ok(reqwest::Response::from(response))
        })
    }
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
    let config = OpenAIConfig::new()
        .with_api_base(base)
        .with_api_key("sk-bench");
    let client = loopotel_openai::async_openai::Client::with_config(config.clone());
    let memory =
        loopotel_openai::async_openai::Client::with_config(config).with_http_service(InMemory {
            plain: completion(),
            stream: sse(),
        });
    let tracer = LoopTracer::new();
    let socket = Transport::new(&rt, &tracer, client);
    let memory = Transport::new(&rt, &tracer, memory);

    let mut g = c.benchmark_group("openai");
    g.sample_size(30);
    for (name, t) in [("", &socket), ("memory_", &memory)] {
        g.bench_function(format!("{name}chat_plain"), |b| {
            b.iter_custom(|n| t.timed(n, false, false))
        });
        g.bench_function(format!("{name}chat_traced"), |b| {
            b.iter_custom(|n| t.timed(n, true, false))
        });
        g.bench_function(format!("{name}stream_500_plain"), |b| {
            b.iter_custom(|n| t.timed(n, false, true))
        });
        g.bench_function(format!("{name}stream_500_traced"), |b| {
            b.iter_custom(|n| t.timed(n, true, true))
        });
    }
    g.finish();
    if std::env::args().any(|a| a == "--profile-time") {
        return; // profiling one benchmark: no paired rounds
    }

    // Streams get four times the rounds: a chunk's cost is a small part of a stream's, and
    // the median of 160 rounds resolves it to about ±15 ns (40 rounds: about ±30 ns).
    let pair = |t: &Transport<'_>, streaming: bool, per_round: u64| {
        paired_ratio(
            if streaming { 160 } else { 40 },
            per_round,
            |n| t.timed(n, false, streaming),
            |n| t.timed(n, true, streaming),
        )
    };
    // The floor over the socket: plain calls with as much busy work as the traced client
    // adds in memory, against plain calls.
    let in_memory = pair(&memory, false, 1000);
    let work = Duration::from_nanos(in_memory.added_ns.max(0.0) as u64);
    let _ = WORK.set(work);
    let worked = paired_ratio(
        40,
        200,
        |n| socket.timed(n, false, false),
        |n| socket.timed_with_work(n, false, false, work),
    );
    let _ = PAIRED.set(vec![
        ("chat completion, local server", pair(&socket, false, 200)),
        ("chat completion, in memory", in_memory),
        ("plain chat completion + busy work, local server", worked),
        (
            "stream of 500 chunks, local server",
            pair(&socket, true, 10),
        ),
        ("stream of 500 chunks, in memory", pair(&memory, true, 20)),
    ]);
}

/// One transport's plain and traced clients, timed inside an iteration's context.
struct Transport<'a> {
    rt: &'a tokio::runtime::Runtime,
    tracer: &'a LoopTracer,
    client: loopotel_openai::async_openai::Client<OpenAIConfig>,
    traced: TracedClient<OpenAIConfig>,
}

impl<'a> Transport<'a> {
    fn new(
        rt: &'a tokio::runtime::Runtime,
        tracer: &'a LoopTracer,
        client: loopotel_openai::async_openai::Client<OpenAIConfig>,
    ) -> Self {
        let traced = TracedClient::new(client.clone());
        Self {
            rt,
            tracer,
            client,
            traced,
        }
    }

    /// `iters` calls, plain or traced, each inside an iteration's context.
    fn timed(&self, iters: u64, traced_call: bool, streaming: bool) -> Duration {
        self.timed_with_work(iters, traced_call, streaming, Duration::ZERO)
    }

    /// [`Self::timed`], with `work` of busy waiting on the calling thread around each call
    /// (half before the request, half after the reply), as the traced client's own work
    /// sits around it: what that much work costs over this transport, whatever does it.
    fn timed_with_work(
        &self,
        iters: u64,
        traced_call: bool,
        streaming: bool,
        work: Duration,
    ) -> Duration {
        let (rt, tracer, client, traced) = (self.rt, self.tracer, &self.client, &self.traced);
        rt.block_on(async {
            let run = tracer.run("bench").start();
            let it = run.iteration(1);
            let cx = it.context();
            let start = Instant::now();
            for _ in 0..iters {
                let fut = async {
                    busy(work / 2);
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
                busy(work / 2);
            }
            let took = start.elapsed();
            drop(it);
            black_box(run.finish(Outcome::Success, "done"));
            took
        })
    }
}

/// Busy-waits for `work` (no sleep: the thread stays on its core, as instrumentation does).
fn busy(work: Duration) {
    if work.is_zero() {
        return;
    }
    let until = Instant::now() + work;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn report() {
    println!("\n## loopotel-openai overhead (this run)\n");
    println!("Criterion means:\n");
    println!("| call | plain async-openai | traced | ratio | added |");
    println!("|---|---|---|---|---|");
    let chunks = format!("stream of {CHUNKS} chunks");
    for (label, id, per) in [
        ("chat completion", "chat", None),
        (chunks.as_str(), "stream_500", Some(CHUNKS)),
    ] {
        for (transport, prefix) in [("local server", ""), ("in memory", "memory_")] {
            let (Some(p), Some(t)) = (
                mean_ns(&format!("openai/{prefix}{id}_plain")),
                mean_ns(&format!("openai/{prefix}{id}_traced")),
            ) else {
                continue;
            };
            let added = match per {
                Some(n) => format!("{:.0} ns per chunk", (t - p) / n as f64),
                None => format!("{:.2} µs per call", (t - p) / 1e3),
            };
            println!(
                "| {label}, {transport} | {:.1} µs | {:.1} µs | {:.3}× | {added} |",
                p / 1e3,
                t / 1e3,
                t / p,
            );
        }
    }
    let Some(paired) = PAIRED.get() else { return };
    println!("\nPaired rounds (traced ÷ plain; added = median of the per-round differences):\n");
    println!("| call | ratio | added |");
    println!("|---|---|---|");
    for (label, r) in paired {
        let added = if label.starts_with("stream") {
            format!(
                "{:.2} µs per stream, {:.0} ns per chunk",
                r.added_ns / 1e3,
                r.added_ns / CHUNKS as f64
            )
        } else {
            format!("{:.2} µs per call", r.added_ns / 1e3)
        };
        println!("| {label} | {r} | {added} |");
    }
    if let Some(work) = WORK.get() {
        println!(
            "\nBusy work: {:.2} µs per call (the traced call's added time in memory).",
            work.as_secs_f64() * 1e6
        );
    }
}

fn main() {
    common::run(benches, report);
}
