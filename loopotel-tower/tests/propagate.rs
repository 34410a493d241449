//! Trace context over `http::Request` through tower stacks: the client's call span is the
//! server's parent; hostile headers start a new root.

use std::convert::Infallible;

use http::{HeaderValue, Request, Response};
use loopotel::propagation::TraceParent;
use loopotel::{LoopTracer, LtfDocument, Outcome};
use loopotel_tower::LoopTraceLayer;
use loopotel_tower::propagate::{ExtractTraceContextLayer, InjectTraceContextLayer};
use opentelemetry::context::FutureExt as _;
use tower::{ServiceBuilder, ServiceExt, service_fn};

async fn server_run(
    req: Request<()>,
) -> Result<Response<(Option<String>, LtfDocument)>, Infallible> {
    let header = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let doc = LoopTracer::new()
        .run("server-loop")
        .start()
        .finish(Outcome::Success, "ok");
    Ok(Response::new((header, doc)))
}

#[tokio::test]
async fn the_clients_call_span_is_the_servers_parent() {
    let client = ServiceBuilder::new()
        .layer(LoopTraceLayer::tool("remote-agent"))
        .layer(InjectTraceContextLayer::new())
        .layer(ExtractTraceContextLayer::new())
        .service(service_fn(server_run));
    let (response, client_doc) = LoopTracer::new()
        .run("client-loop")
        .scope(|run| async move {
            let it = run.iteration(1);
            client
                .oneshot(Request::new(()))
                .with_context(it.context())
                .await
                .unwrap()
        })
        .await;
    let (header, server_doc) = response.into_body();
    let tp: TraceParent = header.expect("traceparent sent").parse().unwrap();
    let call = client_doc
        .spans
        .iter()
        .find(|s| s.name.as_str() == "execute_tool remote-agent")
        .unwrap();
    assert_eq!(tp.span_id, call.span_id);
    assert_eq!(server_doc.trace_id, client_doc.trace_id);
    let root = server_doc.root().unwrap();
    assert_eq!(
        root.attributes
            .get("loop.parent_span_id")
            .and_then(|v| v.as_str()),
        Some(call.span_id.to_string().as_str())
    );
}

#[tokio::test]
async fn hostile_headers_start_a_new_root() {
    let server = ServiceBuilder::new()
        .layer(ExtractTraceContextLayer::new())
        .service(service_fn(server_run));
    for bad in [
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "not a header",
    ] {
        let mut req = Request::new(());
        req.headers_mut()
            .insert("traceparent", HeaderValue::from_static(bad));
        req.headers_mut().insert(
            "tracestate",
            HeaderValue::from_str(&"k=v,".repeat(2000)).unwrap(),
        );
        let (_, doc) = server.clone().oneshot(req).await.unwrap().into_body();
        assert_ne!(
            doc.trace_id.to_hex(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "{bad}"
        );
        assert!(
            doc.root()
                .unwrap()
                .attributes
                .get("loop.parent_span_id")
                .is_none(),
            "{bad}"
        );
    }
}
