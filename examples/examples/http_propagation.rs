//! W3C trace context across a real HTTP hop on 127.0.0.1: a loop's tool call goes out
//! through hyper with `traceparent` injected; the server extracts it and the run it starts
//! joins the caller's trace. Both sides print their trace id; they are the same.
//!
//! `cargo run -p examples --example http_propagation`

use std::convert::Infallible;

use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use loopotel::{LoopTracer, LtfDocument, Outcome};
use loopotel_tower::LoopTraceLayer;
use loopotel_tower::propagate::{ExtractTraceContextLayer, InjectTraceContextLayer};
use opentelemetry::context::FutureExt as _;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

/// What one round trip shows: the client's run, and what the server's run said about itself.
#[derive(Debug)]
pub(crate) struct RoundTrip {
    /// The client loop's document (its tool span is the server run's remote parent).
    pub client: LtfDocument,
    /// The server run's trace id, as the server reported it.
    pub server_trace_id: String,
    /// The server run's `loop.parent_span_id`: the client span it continued.
    pub server_parent_span_id: String,
}

/// The server's handler: a run of its own, started inside the extracted context.
async fn handle(_request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    let doc = LoopTracer::new()
        .run("server-loop")
        .start()
        .finish(Outcome::Success, "served");
    let root = doc.root();
    let parent = root
        .and_then(|r| r.attributes.get("loop.parent_span_id"))
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let body = serde_json::json!({"trace_id": doc.trace_id.to_string(), "parent_span_id": parent});
    Ok(Response::new(body.to_string()))
}

/// Starts the server on 127.0.0.1 (an ephemeral port), makes one traced call from a loop
/// run, and returns both sides' view. The server task ends with the runtime.
pub(crate) async fn round_trip() -> Result<RoundTrip, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = ServiceBuilder::new()
        .layer(ExtractTraceContextLayer::new())
        .service(service_fn(handle));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = TowerToHyperService::new(server.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });

    // Client: the tool call's span is the parent the request carries.
    let http = Client::builder(TokioExecutor::new()).build_http::<String>();
    let remote_tool = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("remote_search"))
        .layer(InjectTraceContextLayer::new())
        .service(http);

    let run = LoopTracer::new().run("client-loop").start();
    let it = run.iteration(1);
    let request = Request::post(format!("http://{addr}/search")).body("rust".to_owned())?;
    let response = remote_tool
        .oneshot(request)
        .with_context(it.context())
        .await?;
    let body = response.into_body().collect().await?.to_bytes();
    drop(it);
    let client = run.finish(Outcome::Success, "done");
    let reply: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(RoundTrip {
        client,
        server_trace_id: reply["trace_id"].as_str().unwrap_or_default().to_owned(),
        server_parent_span_id: reply["parent_span_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    })
}

#[allow(dead_code)] // `main` is unused when a test includes this file as a module.
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let trip = round_trip().await?;
    let tool = trip
        .client
        .spans
        .iter()
        .find(|s| s.name.as_str() == "execute_tool remote_search")
        .ok_or("no tool span")?;
    println!("client trace id: {}", trip.client.trace_id);
    println!("server trace id: {}", trip.server_trace_id);
    println!(
        "server run's parent: {} (the client's tool span: {})",
        trip.server_parent_span_id, tool.span_id
    );
    if trip.server_trace_id != trip.client.trace_id.to_string()
        || trip.server_parent_span_id != tool.span_id.to_string()
    {
        return Err("the trace did not cross the HTTP hop".into());
    }
    println!("same trace on both sides");
    Ok(())
}
